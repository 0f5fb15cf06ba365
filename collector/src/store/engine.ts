/**
 * The few primitives the store needs from ClickHouse. Two implementations,
 * embedded chDB (`chdb-engine.ts`) and a ClickHouse server over HTTP
 * (`server-engine.ts`); all SQL text lives above this seam and is shared.
 */

export type ClickHouseSettings = Record<string, string | number | boolean>;

export interface QueryResult<Row> {
  meta: { name: string; type: string }[];
  data: Row[];
}

export type InsertFormat = 'Native' | 'TabSeparated' | 'JSONEachRow';

export interface InsertOptions {
  table: string;
  columns?: readonly string[];
  format: InsertFormat;
  /** The payload, unless `file` holds it. */
  body?: Buffer;
  /**
   * A local file that holds exactly the payload (a spool segment): the embedded
   * engine reads it from disk itself (`file()`), a server gets it streamed, so
   * the payload never has to be in memory at once.
   */
  file?: string;
  settings?: ClickHouseSettings;
}

/** Output format of `queryAdHoc`: names, then types, then one JSON array per row, a line each. */
export const AD_HOC_FORMAT = 'JSONCompactEachRowWithNamesAndTypes';

export interface AdHocQueryOptions {
  /** Limits of the query (`readonly`, `max_execution_time`, `max_memory_usage`, …). */
  settings: ClickHouseSettings;
  /**
   * Aborting cancels the query: the engine stops reading its output and asks
   * ClickHouse to kill it (`KILL QUERY`); `queryAdHoc` settles once it stopped.
   */
  signal: AbortSignal;
  /**
   * Receives the output (`AD_HOC_FORMAT`) piece by piece, split anywhere; the
   * next piece is read only after the returned promise settles. Returning
   * `false` stops the query (enough rows).
   */
  onData(data: Uint8Array): Promise<boolean>;
  /**
   * A statement about the schema (DESCRIBE, SHOW, EXISTS): its output is small
   * and chDB cannot stream it, so it comes in one piece.
   */
  metadata?: boolean;
}

export interface ClickHouseEngine {
  /**
   * Ad-hoc queries run at once unless configured (`MODELMAXX_SQL_MAX_CONCURRENT`): 1 embedded
   * (they share the collector's process and cores), 4 on a server.
   */
  readonly adHocConcurrency: number;
  /** Runs a statement that returns no rows (DDL, INSERT … SELECT). */
  command(sql: string, params?: Record<string, unknown>): Promise<void>;
  /** Runs a query and returns its rows (format `JSON`; 64-bit integers as strings). */
  query<Row = Record<string, unknown>>(
    sql: string,
    params?: Record<string, unknown>,
    settings?: ClickHouseSettings,
  ): Promise<QueryResult<Row>>;
  /**
   * Runs one ad-hoc read (`/api/sql`, `modelmaxx sql`) apart from the
   * collector's own queries (its own chDB session, or its own HTTP request),
   * streaming the output to `onData`. The caller bounds how many run at once.
   */
  queryAdHoc(sql: string, options: AdHocQueryOptions): Promise<void>;
  /** Inserts a Native, TabSeparated or JSONEachRow payload. */
  insert(options: InsertOptions): Promise<void>;
  /**
   * Makes `database` the default for unqualified table names from now on (what
   * `/api/sql` and `modelmaxx sql` users write). Call after the database exists.
   */
  setDefaultDatabase(database: string): Promise<void>;
  close(): Promise<void>;
}

/** An error ClickHouse reported, with its numeric code when known. */
export class ClickHouseError extends Error {
  override readonly name = 'ClickHouseError';
  readonly code: number | undefined;
  constructor(message: string, code: number | undefined, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/**
 * `error` (thrown by chDB or `@clickhouse/client`) as a `ClickHouseError`: its code from the
 * error's `codeProperty` (`clickhouseCode` in chDB, `code` in the client), else from the
 * "Code: N." ClickHouse puts in its messages (a chDB stream error carries it there only).
 */
export function toClickHouseError(error: unknown, codeProperty: string): ClickHouseError {
  if (error instanceof ClickHouseError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const property =
    typeof error === 'object' && error !== null && codeProperty in error
      ? Number((error as Record<string, unknown>)[codeProperty])
      : Number.NaN;
  const code = Number.isFinite(property)
    ? property
    : Number(/\bCode: (\d+)\./.exec(message)?.[1] ?? Number.NaN);
  return new ClickHouseError(message, Number.isFinite(code) ? code : undefined, { cause: error });
}

/**
 * ClickHouse error codes that mean the data itself is bad: retrying the same
 * payload can never succeed (parse errors, type mismatches, too-large values).
 */
const DATA_ERROR_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  32, // ATTEMPT_TO_READ_AFTER_EOF
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  130, // CANNOT_READ_ARRAY_FROM_TEXT
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  467, // CANNOT_PARSE_BOOL
]);

export function isDataError(error: unknown): boolean {
  return (
    error instanceof ClickHouseError && error.code !== undefined && DATA_ERROR_CODES.has(error.code)
  );
}
