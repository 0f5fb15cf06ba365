/**
 * `SpanStore` over a `ClickHouseEngine` (embedded chDB or a server): schema
 * migration, the durable batching writer, feedback, stats from the rollups,
 * and read-only SQL. All SQL is built here from fixed text, whitelisted
 * identifiers and `{name:Type}` query parameters.
 */
import type { Feedback, StatsQuery, StatsResponse, StatsRow } from '@modelmaxx/semconv/schemas';
import { qualityFiguresOf, qualityFiguresSql, qualitySummary } from './quality-figures.js';
import type { FeedbackOutcome } from './span-store.js';
import type { StatsGroupKey } from '@modelmaxx/semconv/schemas';
import {
  LATENCY_DD_PARAMETERS,
  OTEL_TRACES_INSERT_COLUMNS,
  SCHEMA_VERSION,
  schemaStatements,
  tableNames,
  upgradeStatements,
} from '../schema/schema.js';
import type { SchemaOptions } from '../schema/schema.js';
import { BatchWriter, SMALL_BLOCK_ROWS } from '../writer/batch-writer.js';
import type { BatchOptions, WriterLogger } from '../writer/batch-writer.js';
import type { ClickHouseEngine, ClickHouseSettings } from './engine.js';
import { ClickHouseError, isDataError } from './engine.js';
import type { PriceRow } from './prices.js';
import { spanRowsToNative } from './span-row-native.js';
import { InvalidSpanRowError } from './span-row-tsv.js';
import { AdHocResultBuilder, SqlBusyError, SqlCancelledError, SqlLane } from './sql-adhoc.js';
import type { ResultLimits } from './sql-adhoc.js';
import type {
  Readiness,
  SpanRow,
  SpanStore,
  SqlOptions,
  SqlResult,
  WriteResult,
} from './span-store.js';

export interface ClickHouseStoreOptions extends SchemaOptions {
  engine: ClickHouseEngine;
  /** Spool folder; `undefined` acknowledges writes only after the ClickHouse insert. */
  spoolDir?: string;
  batch?: Partial<BatchOptions>;
  maxQueuedBytes?: number;
  maxSpoolBytes?: number;
  /** Free space the spool leaves on its disk for ClickHouse (see `BatchWriterOptions.minFreeBytes`). */
  minFreeBytes?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  logger?: WriterLogger;
  /** Extra ClickHouse settings for the span inserts. */
  insertSettings?: ClickHouseSettings;
  /** How long `close()` keeps trying to insert what is spooled (default 10 s). */
  closeTimeoutMs?: number;
  /** Rows for `llm_prices`, loaded by `migrate()` (see `catalogPriceRows`). */
  priceRows?: readonly PriceRow[];
}

/**
 * A span insert that can never succeed: bad data, or a Native stream ClickHouse cannot
 * read (`CANNOT_READ_ALL_DATA`; `SYNTAX_ERROR` "Empty query" while executing Native —
 * the insert's SQL is fixed text, so only its data can cause it).
 */
const isPermanentInsertError = (error: unknown): boolean =>
  isDataError(error) ||
  (error instanceof ClickHouseError && (error.code === 33 || error.code === 62));

/** ClickHouse's NOT_ENOUGH_SPACE: no disk room to reserve for the part an insert would write. */
const NOT_ENOUGH_SPACE = 243;

/**
 * A batch inserted in small blocks (after NOT_ENOUGH_SPACE): parts of at most
 * `SMALL_BLOCK_ROWS` rows (or 4 MiB), each reserving little room; fixed values, because each
 * block's deduplication token is the batch token plus the block's index.
 */
const SMALL_BLOCK_SETTINGS: ClickHouseSettings = {
  max_insert_block_size: SMALL_BLOCK_ROWS,
  min_insert_block_size_rows: SMALL_BLOCK_ROWS,
  min_insert_block_size_bytes: 4 * 1024 * 1024,
};

/** How long `/readyz` waits for ClickHouse to answer its ping. */
const READY_PING_TIMEOUT_MS = 5_000;

/** Settings of every span insert (overridable with `insertSettings`). */
const INSERT_SETTINGS: ClickHouseSettings = {};

const GROUP_COLUMNS: Record<StatsGroupKey, string> = {
  model: 'Model',
  provider: 'Provider',
  task: 'Task',
  service: 'ServiceName',
  feature: 'Feature',
};

/** A stats row's group, as one map key. */
const groupKey = (data: Record<string, unknown>, groupBy: readonly StatsGroupKey[]): string =>
  groupBy.map((key) => String(data[key] ?? '')).join('\u0000');

const HOURLY_FROM_SECONDS = 6 * 3600;

/**
 * Latency percentiles come from the DDSketch states (`LatencyMsDD`, 1 % relative accuracy),
 * cheap to merge; a group with at most this many calls in the window takes them from the
 * t-digest states instead (exact for so few values, as before). `-If` merges only the
 * t-digests of rollup rows that small, so a big group's (the expensive ones) never are.
 */
const EXACT_LATENCY_MAX_CALLS = 1000;

const WINDOW_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

export function windowSeconds(window: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(window);
  if (match === null) throw new Error(`invalid window ${JSON.stringify(window)}`);
  return Number(match[1]) * (WINDOW_UNITS[match[2] ?? 's'] ?? 1);
}

/** A refusal of `/api/sql` before the query reaches ClickHouse. */
export class SqlRejectedError extends Error {
  override readonly name = 'SqlRejectedError';
}

/** `EXPLAIN AST` kinds of queries `querySql` runs wrapped as `SELECT * FROM (…)`. */
const SELECT_KINDS = new Set(['SelectWithUnionQuery', 'SelectIntersectExceptQuery']);

/**
 * Read-only statements about the schema that `querySql` runs as they are:
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
export const SQL_DEFAULTS = {
  maxMemoryBytes: 1024 ** 3,
  maxResultBytes: 32 * 1024 ** 2,
  maxConcurrent: { embedded: 1, server: 4 },
  maxQueued: 4,
} as const;

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

interface StatsDbRow {
  calls: string | number;
  errors: string | number;
  cost: number;
  costCalls: string | number;
  inputTokens: string | number;
  outputTokens: string | number;
  latency: (number | null)[];
  scoreSum: number;
  scoreCount: string | number;
  [key: string]: unknown;
}

const finite = (value: number | null | undefined): number | null =>
  value === null || value === undefined || !Number.isFinite(value) ? null : value;

function secondsAndNanos(date: Date): string {
  const ms = date.getTime();
  return `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}000000`;
}

export class ClickHouseStore implements SpanStore {
  readonly engine: ClickHouseEngine;
  private readonly options: ClickHouseStoreOptions;
  private readonly tables: ReturnType<typeof tableNames>;
  private writer: BatchWriter | undefined;
  private defaultDatabase: Promise<void> | undefined;
  private sqlLane: SqlLane | undefined;

  constructor(options: ClickHouseStoreOptions) {
    this.options = options;
    this.engine = options.engine;
    this.tables = tableNames(options);
  }

  /** Starts the writer (and replays the spool). Call after `migrate()`. */
  async start(): Promise<void> {
    if (this.writer !== undefined) return;
    const options = this.options;
    this.writer = await BatchWriter.open({
      insert: (batch) =>
        this.engine.insert({
          table: this.tables.traces,
          columns: OTEL_TRACES_INSERT_COLUMNS,
          format: batch.format,
          ...(batch.file === undefined ? {} : { file: batch.file }),
          ...(batch.body === undefined ? {} : { body: batch.body }),
          settings: {
            ...INSERT_SETTINGS,
            ...options.insertSettings,
            ...(batch.smallBlocks === true ? SMALL_BLOCK_SETTINGS : {}),
            insert_deduplication_token: batch.token,
            deduplicate_blocks_in_dependent_materialized_views: 1,
          },
        }),
      format: 'Native',
      isPermanentError: isPermanentInsertError,
      isSpaceError: (error) => error instanceof ClickHouseError && error.code === NOT_ENOUGH_SPACE,
      ...(options.spoolDir === undefined ? {} : { spoolDir: options.spoolDir }),
      ...(options.batch === undefined ? {} : { batch: options.batch }),
      ...(options.maxQueuedBytes === undefined ? {} : { maxQueuedBytes: options.maxQueuedBytes }),
      ...(options.maxSpoolBytes === undefined ? {} : { maxSpoolBytes: options.maxSpoolBytes }),
      ...(options.minFreeBytes === undefined ? {} : { minFreeBytes: options.minFreeBytes }),
      ...(options.retryMinMs === undefined ? {} : { retryMinMs: options.retryMinMs }),
      ...(options.retryMaxMs === undefined ? {} : { retryMaxMs: options.retryMaxMs }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  }

  async migrate(): Promise<void> {
    const recorded = await this.recordedVersion();
    for (const statement of schemaStatements(this.options)) {
      if (
        recorded !== undefined &&
        statement.addedIn !== undefined &&
        recorded >= statement.addedIn
      ) {
        continue;
      }
      if (
        recorded !== undefined &&
        statement.replaceBelowVersion !== undefined &&
        recorded < statement.replaceBelowVersion &&
        statement.dropFirst !== undefined
      ) {
        await this.engine.command(
          `DROP ${statement.dropFirst.kind} IF EXISTS ${statement.dropFirst.name}${this.onCluster()}`,
        );
      }
      await this.engine.command(statement.sql);
    }
    for (const statement of upgradeStatements(this.options, recorded))
      await this.engine.command(statement.sql);
    if (recorded !== SCHEMA_VERSION) {
      await this.engine.command(
        `INSERT INTO ${this.tables.migrations} (Version, AppliedAt, Description) VALUES ({version:UInt32}, now64(3), {description:String})`,
        { version: SCHEMA_VERSION, description: `modelmaxx schema v${SCHEMA_VERSION}` },
      );
    }
    if (this.options.priceRows !== undefined) await this.loadPrices(this.options.priceRows);
    await this.reloadPriceDictionaries();
  }

  /** The `llm_calls` view reads prices through dictionaries; reload them after the prices changed. */
  async reloadPriceDictionaries(): Promise<void> {
    for (const dictionary of [this.tables.priceKeys, this.tables.priceEntries]) {
      await this.engine.command(`SYSTEM RELOAD DICTIONARY ${dictionary}${this.onCluster()}`);
    }
  }

  private onCluster(): string {
    return this.options.cluster === undefined ? '' : ` ON CLUSTER ${this.options.cluster}`;
  }

  private async recordedVersion(): Promise<number | undefined> {
    const exists = await this.engine.query<{ present: string | number }>(
      'SELECT count() AS present FROM system.tables WHERE database = {database:String} AND name = {table:String}',
      { database: this.options.database ?? 'modelmaxx', table: 'schema_migrations' },
    );
    if (Number(exists.data[0]?.present ?? 0) === 0) return undefined;
    const result = await this.engine.query<{ version: string | number | null }>(
      `SELECT max(Version) AS version FROM ${this.tables.migrations}`,
    );
    const version = result.data[0]?.version;
    return version === null || version === undefined || Number(version) === 0
      ? undefined
      : Number(version);
  }

  /** Inserts the price rows that are not stored yet (same key, version and prices). */
  async loadPrices(rows: readonly PriceRow[]): Promise<number> {
    const existing = await this.engine.query<Record<string, unknown>>(
      `SELECT Provider, KeyKind, Model, Version, InputPerMTok, OutputPerMTok, CacheReadPerMTok, CacheWritePerMTok,
              ReasoningPerMTok, CatalogModel, Rank
       FROM ${this.tables.prices} FINAL`,
    );
    const key = (row: Record<string, unknown>) =>
      JSON.stringify([
        row.Provider,
        row.KeyKind,
        row.Model,
        row.Version,
        Number(row.InputPerMTok),
        Number(row.OutputPerMTok),
        Number(row.CacheReadPerMTok),
        Number(row.CacheWritePerMTok),
        Number(row.ReasoningPerMTok),
        row.CatalogModel,
        Number(row.Rank),
      ]);
    const stored = new Set(existing.data.map(key));
    const missing = rows.filter(
      (row) => !stored.has(key(row as unknown as Record<string, unknown>)),
    );
    if (missing.length === 0) return 0;
    const loadedAt = (Date.now() / 1000).toFixed(3);
    const body = Buffer.from(
      missing.map((row) => JSON.stringify({ ...row, LoadedAt: loadedAt })).join('\n') + '\n',
    );
    await this.engine.insert({ table: this.tables.prices, format: 'JSONEachRow', body });
    await this.reloadPriceDictionaries();
    return missing.length;
  }

  async write(rows: SpanRow[]): Promise<WriteResult> {
    let body: Buffer;
    try {
      body = spanRowsToNative(rows);
    } catch (error) {
      if (error instanceof InvalidSpanRowError) return { status: 'failed', error };
      throw error;
    }
    return this.writeNative(body, rows.length);
  }

  async writeNative(block: Buffer, rows: number): Promise<WriteResult> {
    if (this.writer === undefined) await this.start();
    return (this.writer as BatchWriter).write(block, rows);
  }

  /** Waits until every acknowledged span is in ClickHouse (or `timeoutMs` passed). */
  async flush(timeoutMs?: number): Promise<boolean> {
    return this.writer === undefined ? true : this.writer.flush(timeoutMs);
  }

  async insertFeedback(feedback: Feedback): Promise<FeedbackOutcome> {
    let calls = await this.findCalls(feedback);
    if (calls.length === 0 && this.writer !== undefined && !this.writer.drained) {
      // The scored call may still be on its way from the spool: wait for the batches
      // acknowledged so far (without forcing small batches), then look again.
      await this.writer.settled(5_000);
      calls = await this.findCalls(feedback);
    }
    // A trace (and span) named by the caller is the target even when no call of it is stored;
    // a response id alone must name exactly one stored call.
    const named = feedback.traceId !== undefined;
    if (!named && calls.length === 0) return { status: 'unknown' };
    if (!named && calls.length > 1) {
      return {
        status: 'ambiguous',
        calls: calls.length,
        services: [...new Set(calls.map((found) => found['ServiceName'] ?? ''))].sort(),
      };
    }
    const call = calls[0];
    const timestamp = feedback.timestamp === undefined ? new Date() : new Date(feedback.timestamp);
    const row = {
      Timestamp: secondsAndNanos(timestamp),
      TraceId: feedback.traceId ?? call?.['TraceId'] ?? '',
      SpanId: feedback.spanId ?? call?.['SpanId'] ?? '',
      ResponseId: feedback.responseId ?? call?.['ResponseId'] ?? '',
      Name: feedback.name,
      Score: feedback.score,
      Label: feedback.label ?? '',
      Explanation: feedback.comment ?? '',
      Source: feedback.source,
      ServiceName: call?.['ServiceName'] ?? feedback.service ?? '',
      Provider: call?.['Provider'] ?? '',
      Model: call?.['Model'] ?? '',
      Task: call?.['Task'] ?? '',
      Feature: call?.['Feature'] ?? '',
    };
    await this.engine.insert({
      table: this.tables.scores,
      format: 'JSONEachRow',
      body: Buffer.from(JSON.stringify(row) + '\n'),
    });
    return { status: 'ok', linked: call !== undefined };
  }

  /**
   * The stored calls feedback names: by trace (and span) when given, else by response id within
   * `service` when given. Distinct spans, newest first; two are enough to know the id is ambiguous.
   */
  private async findCalls(feedback: Feedback): Promise<Record<string, string>[]> {
    const byTrace = feedback.traceId !== undefined;
    const result = await this.engine.query<Record<string, string>>(
      `SELECT TraceId, SpanId, any(ResponseId) AS ResponseId, any(ServiceName) AS ServiceName,
              any(Provider) AS Provider, any(if(RequestModel != '', RequestModel, ResponseModel)) AS Model,
              any(Task) AS Task, any(Feature) AS Feature, max(Timestamp) AS Last
       FROM (
         SELECT TraceId, SpanId, ResponseId, ServiceName, Provider, RequestModel, ResponseModel,
                Task, Feature, Timestamp
         FROM ${this.tables.calls}
         WHERE ${
           byTrace
             ? `TraceId = {traceId:String} AND ({spanId:String} = '' OR SpanId = {spanId:String})`
             : `ResponseId = {responseId:String} AND ({service:String} = '' OR ServiceName = {service:String})`
         }
       )
       GROUP BY TraceId, SpanId
       ORDER BY Last DESC
       LIMIT ${byTrace ? 1 : 10}`,
      {
        responseId: feedback.responseId ?? '',
        traceId: feedback.traceId ?? '',
        spanId: feedback.spanId ?? '',
        service: feedback.service ?? '',
      },
    );
    return result.data;
  }

  async stats(query: StatsQuery): Promise<StatsResponse> {
    const seconds = windowSeconds(query.window);
    const to = new Date();
    const from = new Date(to.getTime() - seconds * 1000);
    const groupBy = query.groupBy.filter((key): key is StatsGroupKey => key in GROUP_COLUMNS);
    // Windows of 6 h and more read the hourly rollup (its first hour may start before `from`).
    const hourly = seconds >= HOURLY_FROM_SECONDS;
    const keys = groupBy.map((key) => `${GROUP_COLUMNS[key]} AS ${key}`);
    const table = hourly ? this.tables.rollupHourly : this.tables.rollup;
    const where = `${hourly ? 'Hour >= toStartOfHour(toDateTime({from:UInt32})) AND Hour' : 'Minute >= toStartOfMinute(toDateTime({from:UInt32})) AND Minute'} <= toDateTime({to:UInt32})
         AND ({service:String} = '' OR ServiceName = {service:String})`;
    const params = {
      from: Math.floor(from.getTime() / 1000),
      to: Math.floor(to.getTime() / 1000),
      service: query.service ?? '',
    };
    const result = await this.engine.query<StatsDbRow>(
      `SELECT
          ${keys.join(',\n          ')},
          sum(Calls) AS calls,
          sum(Errors) AS errors,
          sum(CostUSD) AS cost,
          sum(CostCalls) AS costCalls,
          sum(InputTokens) AS inputTokens,
          sum(OutputTokens) AS outputTokens,
          if(sum(Calls) <= ${EXACT_LATENCY_MAX_CALLS},
             quantilesTDigestMergeIf(0.5, 0.95, 0.99)(LatencyMs, Calls <= ${EXACT_LATENCY_MAX_CALLS}),
             quantilesDDMerge(${LATENCY_DD_PARAMETERS})(LatencyMsDD)) AS latency,
          sum(ScoreSum) AS scoreSum,
          sum(ScoreCount) AS scoreCount
       FROM ${table}
       WHERE ${where}
       GROUP BY ${groupBy.join(', ')}
       HAVING calls > 0 OR scoreCount > 0
       ORDER BY calls DESC, ${groupBy.join(', ')}`,
      params,
    );
    // The window as read: from the start of the first minute (or hour) bucket.
    const bucketMs = hourly ? 3_600_000 : 60_000;
    const start = new Date(Math.floor(from.getTime() / bucketMs) * bucketMs);
    // Only some evaluation names: their sums come from `llm_scores` (the rollups sum all names).
    const named =
      query.scores === undefined
        ? undefined
        : await this.namedScores(query.scores, groupBy, start, to, params.service);
    const quality =
      query.quality === true
        ? await this.qualityFigures(groupBy, start, to, params.service)
        : undefined;
    const rows: StatsRow[] = result.data.map((data) => {
      const calls = Number(data.calls);
      const errors = Number(data.errors);
      const costCalls = Number(data.costCalls);
      const groupScores = named?.get(groupKey(data, groupBy));
      const scoreSum = named === undefined ? Number(data.scoreSum) : (groupScores?.sum ?? 0);
      const scoreCount = named === undefined ? Number(data.scoreCount) : (groupScores?.count ?? 0);
      const latency = calls > 0 ? data.latency : [];
      const row: StatsRow = {
        model: String(data.model ?? ''),
        calls,
        errors,
        errorRate: calls > 0 ? errors / calls : 0,
        costUsd: Math.max(0, Number(data.cost)),
        costPerCallUsd: costCalls > 0 ? Math.max(0, Number(data.cost) / costCalls) : null,
        meanInputTokens: calls > 0 ? Number(data.inputTokens) / calls : 0,
        meanOutputTokens: calls > 0 ? Number(data.outputTokens) / calls : 0,
        latencyP50Ms: finite(latency[0]),
        latencyP95Ms: finite(latency[1]),
        latencyP99Ms: finite(latency[2]),
        meanScore: scoreCount > 0 ? scoreSum / scoreCount : null,
        scoreCount,
        ...(quality === undefined
          ? {}
          : qualitySummary(qualityFiguresOf(quality.get(groupKey(data, groupBy))))),
      };
      for (const key of groupBy) {
        if (key !== 'model') row[key] = String(data[key] ?? '');
      }
      return row;
    });
    return { from: start.toISOString(), to: to.toISOString(), groupBy, rows };
  }

  /** Checks pass rate, judge and feedback scores per stats group (see `quality-figures.ts`). */
  private async qualityFigures(
    groupBy: readonly StatsGroupKey[],
    start: Date,
    to: Date,
    service: string,
  ): Promise<Map<string, Record<string, unknown>>> {
    const result = await this.engine.query<Record<string, unknown>>(
      qualityFiguresSql(
        this.tables.scores,
        groupBy.map((key) => ({ column: GROUP_COLUMNS[key], alias: key })),
      ),
      { from: start.getTime(), to: to.getTime() + 1, service },
    );
    return new Map(result.data.map((data) => [groupKey(data, groupBy), data]));
  }

  /** Score sums and counts of the named evaluations per stats group, over [start, to]. */
  private async namedScores(
    names: readonly string[],
    groupBy: readonly StatsGroupKey[],
    start: Date,
    to: Date,
    service: string,
  ): Promise<Map<string, { sum: number; count: number }>> {
    const sums = new Map<string, { sum: number; count: number }>();
    if (names.length === 0) return sums;
    const result = await this.engine.query<Record<string, unknown>>(
      `SELECT
          ${groupBy.map((key) => `${GROUP_COLUMNS[key]} AS ${key}`).join(',\n          ')},
          sum(assumeNotNull(Score)) AS scoreSum,
          count() AS scoreCount
       FROM ${this.tables.scores}
       WHERE Timestamp >= fromUnixTimestamp64Milli({from:Int64}) AND Timestamp <= fromUnixTimestamp64Milli({to:Int64})
         AND ({service:String} = '' OR ServiceName = {service:String})
         AND has(splitByChar(',', {names:String}), Name)
         AND Model != '' AND Score IS NOT NULL
       GROUP BY ${groupBy.join(', ')}`,
      {
        from: start.getTime(),
        to: to.getTime(),
        service,
        names: names.join(','),
      },
    );
    for (const data of result.data) {
      sums.set(groupKey(data, groupBy), {
        sum: Number(data.scoreSum),
        count: Number(data.scoreCount),
      });
    }
    return sums;
  }

  /**
   * Read-only SQL. ClickHouse's own parser checks the text first (one statement:
   * a SELECT, or DESCRIBE / SHOW / EXISTS; no SETTINGS clause of its own — a
   * nested `SETTINGS readonly = 0` would lift the limits — no FORMAT, no INTO
   * OUTFILE); then it runs apart from the collector's own queries (`queryAdHoc`),
   * at most `maxConcurrent` at once with `maxQueued` waiting (`SqlBusyError`
   * beyond), with `readonly = 1`, `max_execution_time`, `max_memory_usage` and
   * `max_result_rows`, and its output cut at `maxResultBytes`. Aborting
   * `signal` takes it out of the queue or kills it.
   */
  async querySql(sql: string, options: SqlOptions): Promise<SqlResult> {
    // Unqualified names (`FROM llm_calls`) mean our database, as SPEC promises `modelmaxx sql` users.
    this.defaultDatabase ??= this.engine.setDefaultDatabase(this.options.database ?? 'modelmaxx');
    await this.defaultDatabase;
    const { statement, metadata } = await this.readOnlyStatement(sql);
    const seconds = Math.max(1, Math.ceil(options.maxExecutionSeconds));
    const maxRows = Math.max(1, Math.floor(options.maxRows));
    const maxMemoryBytes = Math.max(
      1,
      Math.floor(options.maxMemoryBytes ?? SQL_DEFAULTS.maxMemoryBytes),
    );
    const maxResultBytes = Math.max(
      1,
      Math.floor(options.maxResultBytes ?? SQL_DEFAULTS.maxResultBytes),
    );
    const lane = (this.sqlLane ??= new SqlLane(1, SQL_DEFAULTS.maxQueued));
    lane.maxRunning = Math.max(
      1,
      options.maxConcurrent ?? SQL_DEFAULTS.maxConcurrent[this.engine.kind],
    );
    lane.maxWaiting = Math.max(0, options.maxQueued ?? SQL_DEFAULTS.maxQueued);
    const settings: ClickHouseSettings = {
      max_execution_time: seconds,
      timeout_overflow_mode: 'throw',
      max_memory_usage: maxMemoryBytes,
      // One row more than asked, so a cut result is told from an exact one.
      max_result_rows: maxRows + 1,
      result_overflow_mode: 'break',
      // Blocks (= streamed chunks) of at most this many rows: chDB formats a whole
      // block before the first byte of it can be counted (20 KB rows: 40 MB).
      max_block_size: 2048,
      // Last: a server checks each change against the readonly level set before it.
      readonly: 1,
    };
    const timeLimit = `the query ran past the time limit for ad-hoc SQL (${seconds} s: max_execution_time, MODELMAXX_SQL_MAX_EXECUTION_SECONDS)`;
    const { signal } = options;
    let giveUpTimer: NodeJS.Timeout | undefined;
    let armGiveUp: () => void = () => undefined;
    const overdue = new Promise<never>((_resolve, reject) => {
      armGiveUp = () => {
        giveUpTimer = setTimeout(
          () => reject(new SqlRejectedError(`${timeLimit}; it is being killed`)),
          seconds * 1000 + KILL_GRACE_MS + GIVE_UP_MS,
        );
      };
    });
    try {
      const running = lane.run(
        () => {
          armGiveUp();
          return this.runAdHoc(
            statement,
            metadata,
            settings,
            { maxRows, maxResultBytes },
            seconds,
            signal,
          );
        },
        signal,
        seconds,
        // Waiting counts too: an answer within twice the time limit, or a 429.
        seconds * 1000,
      );
      // When the caller was answered at the deadline, the query's own end is nobody's to see.
      running.catch(() => undefined);
      return await Promise.race([running, overdue]);
    } catch (error) {
      if (error instanceof SqlRejectedError || error instanceof SqlBusyError) throw error;
      if (signal?.aborted === true)
        throw new SqlCancelledError('the caller gave up on the query', { cause: error });
      if (error instanceof ClickHouseError && error.code === 241) {
        throw new SqlRejectedError(
          `the query needs more memory than ad-hoc SQL may use (${mebibytes(maxMemoryBytes)}: max_memory_usage, MODELMAXX_SQL_MAX_MEMORY_BYTES): ${error.message}`,
          { cause: error },
        );
      }
      if (error instanceof ClickHouseError && error.code === 159) {
        throw new SqlRejectedError(`${timeLimit}: ${error.message}`, { cause: error });
      }
      throw error;
    } finally {
      clearTimeout(giveUpTimer);
    }
  }

  /** Ad-hoc queries running and waiting in the SQL lane now. */
  sqlQueue(): { running: number; waiting: number } {
    return this.sqlLane?.size ?? { running: 0, waiting: 0 };
  }

  /** One ad-hoc query on the engine, killed at the time limit (plus grace) if ClickHouse overruns it. */
  private async runAdHoc(
    statement: string,
    metadata: boolean,
    settings: ClickHouseSettings,
    limits: ResultLimits,
    seconds: number,
    signal: AbortSignal | undefined,
  ): Promise<SqlResult> {
    const controller = new AbortController();
    const onCallerAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    if (signal?.aborted === true) onCallerAbort();
    const timer = setTimeout(
      () =>
        controller.abort(
          new SqlRejectedError(
            `the query ran past the time limit for ad-hoc SQL (${seconds} s: max_execution_time, MODELMAXX_SQL_MAX_EXECUTION_SECONDS) and was killed`,
          ),
        ),
      seconds * 1000 + KILL_GRACE_MS,
    );
    const builder = new AdHocResultBuilder(limits);
    try {
      await this.engine.queryAdHoc(statement, {
        settings,
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

  /** The statement `querySql` runs for `sql`, or `SqlRejectedError` saying why not. */
  private async readOnlyStatement(sql: string): Promise<{ statement: string; metadata: boolean }> {
    const formatted = await this.engine.query<{ query: string }>(
      'SELECT formatQuerySingleLine({sql:String}) AS query',
      { sql },
    );
    const normalized = formatted.data[0]?.query ?? '';
    if (normalized.trim() === '') throw new SqlRejectedError('empty query');
    const ast = await this.engine.query<{ explain: string }>(`EXPLAIN AST ${normalized}`);
    const lines = ast.data.map((row) => row.explain);
    const kind = (lines[0] ?? '').trim().split(/\s+/)[0] ?? '';
    if (!SELECT_KINDS.has(kind) && !METADATA_KINDS.has(kind)) {
      throw new SqlRejectedError(
        `only SELECT, DESCRIBE, SHOW and EXISTS queries are allowed (got ${kind || 'nothing'})`,
      );
    }
    if (lines.some((line) => /^\s*Set\b/.test(line))) {
      throw new SqlRejectedError('SETTINGS clauses are not allowed; the collector sets the limits');
    }
    if (SELECT_KINDS.has(kind)) {
      if (lines.filter((line) => /^ \S/.test(line)).length !== 1) {
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
    if (kind === 'DescribeQuery' && !/^\s*TableIdentifier\b/.test(lines[2] ?? '')) {
      throw new SqlRejectedError('DESCRIBE takes a table name (not a table function or subquery)');
    }
    return { statement: normalized, metadata: true };
  }

  metrics(): Record<string, number> {
    return this.writer?.metrics() ?? {};
  }

  /**
   * The writer's health first (spool writes, failing inserts, batch age); then, unless an
   * insert just succeeded, ClickHouse must answer a ping through the store's own query path.
   */
  async readiness(): Promise<Readiness> {
    const health = await this.writer?.health();
    if (health !== undefined && !health.ready)
      return { ready: false, reason: health.reason ?? 'the writer is failing' };
    if (health?.lastInsertAt !== undefined && Date.now() - health.lastInsertAt < 10_000)
      return { ready: true };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.engine.query('SELECT 1'),
        new Promise((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), READY_PING_TIMEOUT_MS);
        }),
      ]);
      return { ready: true };
    } catch {
      return { ready: false, reason: 'ClickHouse does not answer' };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Test hook: makes the `otel_traces` inserts fail for real (the table is
   * detached from ClickHouse) until called again with `false`.
   */
  async setInsertOutageForTesting(outage: boolean): Promise<void> {
    await this.engine.command(
      `${outage ? 'DETACH' : 'ATTACH'} TABLE ${this.tables.traces}${this.onCluster()}`,
    );
  }

  /** Test hook: stops the writer like a killed process would (the spool stays as it is on disk). */
  async stopWriterForTesting(): Promise<void> {
    await this.writer?.abandon();
    this.writer = undefined;
  }

  /** Test hook: a killed process — writer stopped, spool left on disk, engine closed. */
  async crashForTesting(): Promise<void> {
    await this.stopWriterForTesting();
    await this.engine.close();
  }

  async close(): Promise<void> {
    await this.writer?.close(this.options.closeTimeoutMs);
    this.writer = undefined;
    await this.engine.close();
  }
}

export { ClickHouseError, SqlBusyError, SqlCancelledError };
