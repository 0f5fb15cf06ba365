/**
 * The seam between the routes and ClickHouse storage: `SpanStore` (writes, feedback,
 * lifecycle) and its read side `StoreReader` (what the read routes need). Both engines
 * (embedded chDB and a ClickHouse server) sit behind it; the routes only ever see these
 * interfaces.
 */
import type { Feedback, StatsQuery, StatsResponse } from '@modelmaxx/semconv/schemas';
import type { WriterOverloadedError } from '../writer/overloaded.js';
import type { ClickHouseSettings, QueryResult } from './engine.js';

/**
 * One row of `otel_traces`, keys named exactly like the OpenTelemetry Collector
 * ClickHouse exporter's columns. Attribute maps hold string values the way the
 * exporter writes them (numbers and booleans as their text, arrays as JSON).
 */
export interface SpanRow {
  /** Start time, nanoseconds since the Unix epoch, as a decimal string (DateTime64(9)). */
  Timestamp: string;
  TraceId: string;
  SpanId: string;
  ParentSpanId: string;
  TraceState: string;
  SpanName: string;
  /** `Unspecified` | `Internal` | `Server` | `Client` | `Producer` | `Consumer` (the exporter's strings). */
  SpanKind: string;
  ServiceName: string;
  ResourceAttributes: Record<string, string>;
  ScopeName: string;
  ScopeVersion: string;
  SpanAttributes: Record<string, string>;
  /** Duration in nanoseconds (UInt64), decimal string. */
  Duration: string;
  /** `Unset` | `Ok` | `Error`. */
  StatusCode: string;
  StatusMessage: string;
  Events: {
    Timestamp: string[];
    Name: string[];
    Attributes: Record<string, string>[];
  };
  Links: {
    TraceId: string[];
    SpanId: string[];
    TraceState: string[];
    Attributes: Record<string, string>[];
  };
}

/** Outcome of handing spans to the writer: acknowledged only once durable. */
export type WriteResult =
  | { status: 'ok'; durability: 'clickhouse' | 'spool' }
  | {
      status: 'overloaded';
      /**
       * What is full, by class: `SpoolFullError` (ClickHouse has been behind for a
       * while: answered 503) or `QueueFullError` (a short burst: answered 429); its
       * message says why, its `retryAfterSeconds` when to try again.
       */
      error: WriterOverloadedError;
    }
  | { status: 'failed'; error: Error };

/** What `/readyz` reports: `reason` is short fixed text (no paths, no error messages). */
export interface Readiness {
  ready: boolean;
  reason?: string;
}

export interface SqlResult {
  columns: { name: string; type: string }[];
  rows: Record<string, unknown>[];
  /** True when the result was cut at `maxRows` or `maxResultBytes`. */
  truncated: boolean;
  /** The limit that cut it, when `truncated`. */
  truncatedBy?: 'maxRows' | 'maxResultBytes';
}

export interface SqlOptions {
  maxRows: number;
  maxExecutionSeconds: number;
  /** ClickHouse's `max_memory_usage` for the query (default 1 GiB). */
  maxMemoryBytes?: number;
  /** Largest result, counted as the rows' JSON text; cut there (default 32 MiB). */
  maxResultBytes?: number;
  /** Ad-hoc queries running at once (default 1 on the embedded engine, 4 on a server). */
  maxConcurrent?: number;
  /** Ad-hoc queries waiting for a turn before more are refused with `SqlBusyError` (default 4). */
  maxQueued?: number;
  /** Aborting cancels the query (it leaves the queue, or ClickHouse kills it). */
  signal?: AbortSignal;
}

/** What `insertFeedback` did. */
export type FeedbackOutcome =
  | { status: 'ok'; linked: boolean }
  | { status: 'unknown' }
  | { status: 'ambiguous'; calls: number; services: string[] };

/**
 * The read side of the store: what the read routes (Jaeger, dashboard, savings, stats, SQL)
 * and `clickhouseStatsSource` need. The collector's own reads go through `query` (fixed SQL
 * text, whitelisted identifiers, `{name:Type}` parameters); users' SQL goes through `querySql`.
 */
export interface StoreReader {
  /** Database of the collector's tables (`modelmaxx` unless configured). */
  readonly database: string;
  /** One of the collector's own queries; rows as `JSON` (64-bit integers as strings). */
  query<Row = Record<string, unknown>>(
    sql: string,
    params?: Record<string, unknown>,
    settings?: ClickHouseSettings,
  ): Promise<QueryResult<Row>>;
  stats(query: StatsQuery): Promise<StatsResponse>;
  /**
   * Read-only SQL (SELECT, DESCRIBE, SHOW, EXISTS) with ClickHouse's own limits
   * (`readonly`, `max_execution_time`, `max_memory_usage`, `max_result_rows`),
   * apart from the collector's own queries, in a bounded queue.
   */
  querySql(sql: string, options: SqlOptions): Promise<SqlResult>;
}

/** What the collector's own read queries need (Jaeger, dashboard, savings): tables and `query`. */
export type TableReader = Pick<StoreReader, 'database' | 'query'>;

export interface SpanStore extends StoreReader {
  /** Create or upgrade the schema (idempotent). */
  migrate(): Promise<void>;
  /** Resolves when the rows are durable (in ClickHouse or in the spool). */
  write(rows: SpanRow[]): Promise<WriteResult>;
  /**
   * `write` for rows already encoded as one Native block of `rows` rows
   * (`SpanColumns`, e.g. from `decodeTraceRequestProtobufToNative`).
   */
  writeNative(block: Buffer, rows: number): Promise<WriteResult>;
  /**
   * Stores a late score. By response id it must name exactly one stored call (within
   * `feedback.service` when given): none is `unknown`, several (providers or services reusing
   * ids) `ambiguous`, and nothing is stored. A `traceId` (with or without `spanId`) names the
   * target itself and is stored even when no call of it is stored yet.
   */
  insertFeedback(feedback: Feedback): Promise<FeedbackOutcome>;
  /**
   * Whether the insert path works (for `/readyz`): spool writes succeed, inserts are
   * not failing, nothing has waited too long, and ClickHouse answers.
   */
  readiness(): Promise<Readiness>;
  /** Counters for `/metrics`. */
  metrics(): Record<string, number>;
  close(): Promise<void>;
}
