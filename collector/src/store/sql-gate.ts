/**
 * The read-only gate of ad-hoc SQL (`/api/sql`, `modelmaxx sql`). ClickHouse's own parser
 * checks the text first (one statement: a SELECT, or DESCRIBE / SHOW / EXISTS; no SETTINGS
 * clause of its own — a nested `SETTINGS readonly = 0` would lift the limits — no FORMAT, no
 * INTO OUTFILE); then it runs apart from the collector's own queries (`queryAdHoc`), at most
 * `maxConcurrent` at once with `maxQueued` waiting (`SqlBusyError` beyond), with
 * `readonly = 1`, `max_execution_time`, `max_memory_usage` and `max_result_rows`, and its
 * output cut at `maxResultBytes`. Aborting `signal` takes it out of the queue or kills it.
 */
import type { ClickHouseEngine, ClickHouseSettings } from './engine.js';
import { ClickHouseError } from './engine.js';
import {
  AdHocResultBuilder,
  SqlBusyError,
  SqlCancelledError,
  SqlLane,
  SqlRejectedError,
} from './sql-adhoc.js';
import type { ResultLimits } from './sql-adhoc.js';
import type { SqlOptions, SqlResult } from './span-store.js';

/** `EXPLAIN AST` kinds of queries run wrapped as `SELECT * FROM (…)`. */
const SELECT_KINDS = new Set(['SelectWithUnionQuery', 'SelectIntersectExceptQuery']);

/**
 * Read-only statements about the schema that run as they are:
 * DESCRIBE, SHOW TABLES | DATABASES | DICTIONARIES | SETTINGS (`ShowTables`),
 * SHOW COLUMNS | INDEX, SHOW CREATE …, EXISTS ….
 */
const METADATA_KINDS = new Set([
  'DescribeQuery',
  'ShowTables',
  'ShowColumns',
  'ShowCreateTableQuery',
  'ShowCreateViewQuery',
  'ShowCreateDictionaryQuery',
  'ShowCreateDatabaseQuery',
  'ExistsTableQuery',
  'ExistsViewQuery',
  'ExistsDictionaryQuery',
  'ExistsDatabaseQuery',
]);

/** Ad-hoc SQL defaults (the collector's config overrides them: `MODELMAXX_SQL_*`). */
const SQL_DEFAULTS = {
  maxMemoryBytes: 1024 ** 3,
  maxResultBytes: 32 * 1024 ** 2,
  maxQueued: 4,
} as const;

/** ClickHouse's MEMORY_LIMIT_EXCEEDED and TIMEOUT_EXCEEDED. */
const MEMORY_LIMIT_EXCEEDED = 241;
const TIMEOUT_EXCEEDED = 159;

/**
 * After ClickHouse's own `max_execution_time`, how long the collector waits
 * before it kills the query itself, and then before it answers the caller
 * anyway (the query still holds its turn in the lane until it really stopped).
 */
const KILL_GRACE_MS = 2_000;
const GIVE_UP_MS = 3_000;

/** Text outside quotes ('…', "…", `…`) of a formatted statement. */
const unquoted = (text: string): string =>
  text.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`/g, ' ');

const mebibytes = (bytes: number): string =>
  bytes >= 1024 ** 3 && bytes % 1024 ** 3 === 0
    ? `${bytes / 1024 ** 3} GiB`
    : `${Math.round((bytes / 1024 ** 2) * 10) / 10} MiB`;

const timeLimitText = (seconds: number): string =>
  `the query ran past the time limit for ad-hoc SQL (${seconds} s: max_execution_time, MODELMAXX_SQL_MAX_EXECUTION_SECONDS)`;

/** A statement that passed the gate: as it runs, and whether it is about the schema. */
interface GatedStatement {
  statement: string;
  metadata: boolean;
}

/** One query's limits, from `SqlOptions` and the defaults (each at least 1). */
interface AdHocLimits extends ResultLimits {
  seconds: number;
  maxMemoryBytes: number;
}

function limitsOf(options: SqlOptions): AdHocLimits {
  const atLeastOne = (value: number) => Math.max(1, Math.floor(value));
  return {
    seconds: Math.max(1, Math.ceil(options.maxExecutionSeconds)),
    maxRows: atLeastOne(options.maxRows),
    maxMemoryBytes: atLeastOne(options.maxMemoryBytes ?? SQL_DEFAULTS.maxMemoryBytes),
    maxResultBytes: atLeastOne(options.maxResultBytes ?? SQL_DEFAULTS.maxResultBytes),
  };
}

function settingsOf(limits: AdHocLimits): ClickHouseSettings {
  return {
    max_execution_time: limits.seconds,
    timeout_overflow_mode: 'throw',
    max_memory_usage: limits.maxMemoryBytes,
    // One row more than asked, so a cut result is told from an exact one.
    max_result_rows: limits.maxRows + 1,
    result_overflow_mode: 'break',
    // Blocks (= streamed chunks) of at most this many rows: chDB formats a whole
    // block before the first byte of it can be counted (20 KB rows: 40 MB).
    max_block_size: 2048,
    // Last: a server checks each change against the readonly level set before it.
    readonly: 1,
  };
}

/** What the caller is told when a query failed: ClickHouse's limits named as ours. */
function callerError(error: unknown, limits: AdHocLimits, signal?: AbortSignal): unknown {
  if (error instanceof SqlRejectedError || error instanceof SqlBusyError) return error;
  if (signal?.aborted === true)
    return new SqlCancelledError('the caller gave up on the query', { cause: error });
  if (error instanceof ClickHouseError && error.code === MEMORY_LIMIT_EXCEEDED) {
    return new SqlRejectedError(
      `the query needs more memory than ad-hoc SQL may use (${mebibytes(limits.maxMemoryBytes)}: max_memory_usage, MODELMAXX_SQL_MAX_MEMORY_BYTES): ${error.message}`,
      { cause: error },
    );
  }
  if (error instanceof ClickHouseError && error.code === TIMEOUT_EXCEEDED) {
    return new SqlRejectedError(`${timeLimitText(limits.seconds)}: ${error.message}`, {
      cause: error,
    });
  }
  return error;
}

/** The statement `sql` runs as, or `SqlRejectedError` saying why it may not run. */
function gate(normalized: string, ast: readonly string[]): GatedStatement {
  const kind = (ast[0] ?? '').trim().split(/\s+/)[0] ?? '';
  if (!SELECT_KINDS.has(kind) && !METADATA_KINDS.has(kind)) {
    throw new SqlRejectedError(
      `only SELECT, DESCRIBE, SHOW and EXISTS queries are allowed (got ${kind || 'nothing'})`,
    );
  }
  if (ast.some((line) => /^\s*Set\b/.test(line))) {
    throw new SqlRejectedError('SETTINGS clauses are not allowed; the collector sets the limits');
  }
  if (SELECT_KINDS.has(kind)) {
    if (ast.filter((line) => /^ \S/.test(line)).length !== 1) {
      throw new SqlRejectedError('FORMAT, INTO OUTFILE and SETTINGS clauses are not allowed');
    }
    return { statement: `SELECT * FROM (${normalized})`, metadata: false };
  }
  // Not wrapped: these statements take FORMAT and INTO OUTFILE (which even readonly
  // ClickHouse writes), so look for the words themselves outside quotes.
  if (/\b(?:FORMAT|OUTFILE|SETTINGS)\b/i.test(unquoted(normalized))) {
    throw new SqlRejectedError('FORMAT, INTO OUTFILE and SETTINGS clauses are not allowed');
  }
  // DESCRIBE of a table function (`file()`, `url()`) reads the file or URL, readonly or not.
  if (kind === 'DescribeQuery' && !/^\s*TableIdentifier\b/.test(ast[2] ?? '')) {
    throw new SqlRejectedError('DESCRIBE takes a table name (not a table function or subquery)');
  }
  return { statement: normalized, metadata: true };
}

export class ReadOnlySql {
  private readonly engine: ClickHouseEngine;
  private readonly database: string;
  private defaultDatabase: Promise<void> | undefined;
  private readonly lane: SqlLane;

  constructor(engine: ClickHouseEngine, database: string) {
    this.engine = engine;
    this.database = database;
    this.lane = new SqlLane(engine.adHocConcurrency, SQL_DEFAULTS.maxQueued);
  }

  /** Ad-hoc queries running and waiting in the lane now. */
  queue(): { running: number; waiting: number } {
    return this.lane.size;
  }

  async query(sql: string, options: SqlOptions): Promise<SqlResult> {
    // Unqualified names (`FROM llm_calls`) mean our database, as SPEC promises `modelmaxx sql` users.
    this.defaultDatabase ??= this.engine.setDefaultDatabase(this.database);
    await this.defaultDatabase;
    const gated = await this.readOnlyStatement(sql);
    const limits = limitsOf(options);
    this.lane.maxRunning = Math.max(1, options.maxConcurrent ?? this.engine.adHocConcurrency);
    this.lane.maxWaiting = Math.max(0, options.maxQueued ?? SQL_DEFAULTS.maxQueued);
    const { signal } = options;
    // Armed when the query gets its turn: then the caller is answered by the time limit plus
    // grace, killed or not.
    let giveUp: NodeJS.Timeout | undefined;
    let armGiveUp: () => void = () => undefined;
    const overdue = new Promise<never>((_resolve, reject) => {
      armGiveUp = () => {
        giveUp = setTimeout(
          () =>
            reject(new SqlRejectedError(`${timeLimitText(limits.seconds)}; it is being killed`)),
          limits.seconds * 1000 + KILL_GRACE_MS + GIVE_UP_MS,
        );
      };
    });
    try {
      const running = this.lane.run(
        () => {
          armGiveUp();
          return this.runAdHoc(gated, limits, signal);
        },
        signal,
        limits.seconds,
        // Waiting counts too: an answer within twice the time limit, or a 429.
        limits.seconds * 1000,
      );
      // When the caller was answered at the deadline, the query's own end is nobody's to see.
      running.catch(() => undefined);
      return await Promise.race([running, overdue]);
    } catch (error) {
      throw callerError(error, limits, signal);
    } finally {
      clearTimeout(giveUp);
    }
  }

  /** One ad-hoc query on the engine, killed at the time limit (plus grace) if ClickHouse overruns it. */
  private async runAdHoc(
    { statement, metadata }: GatedStatement,
    limits: AdHocLimits,
    signal: AbortSignal | undefined,
  ): Promise<SqlResult> {
    const controller = new AbortController();
    const onCallerAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    if (signal?.aborted === true) onCallerAbort();
    const timer = setTimeout(
      () =>
        controller.abort(new SqlRejectedError(`${timeLimitText(limits.seconds)} and was killed`)),
      limits.seconds * 1000 + KILL_GRACE_MS,
    );
    const builder = new AdHocResultBuilder(limits);
    try {
      await this.engine.queryAdHoc(statement, {
        settings: settingsOf(limits),
        signal: controller.signal,
        onData: (data) => builder.push(data),
        metadata,
      });
    } catch (error) {
      if (controller.signal.reason instanceof SqlRejectedError) throw controller.signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
    }
    return builder.result();
  }

  /** The statement `sql` runs as: formatted and parsed by ClickHouse, then through the gate. */
  private async readOnlyStatement(sql: string): Promise<GatedStatement> {
    const formatted = await this.engine.query<{ query: string }>(
      'SELECT formatQuerySingleLine({sql:String}) AS query',
      { sql },
    );
    const normalized = formatted.data[0]?.query ?? '';
    if (normalized.trim() === '') throw new SqlRejectedError('empty query');
    const ast = await this.engine.query<{ explain: string }>(`EXPLAIN AST ${normalized}`);
    return gate(
      normalized,
      ast.data.map((row) => row.explain),
    );
  }
}
