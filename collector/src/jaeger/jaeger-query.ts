/**
 * Read-only queries over `otel_traces` for the Jaeger query APIs. Every value
 * from a request reaches ClickHouse as a `{name:Type}` query parameter; the SQL
 * text is fixed (table names come from `tableNames`, whose identifiers are checked).
 */
import { tableNames } from '../schema/schema.js';
import type { ClickHouseSettings } from '../store/engine.js';
import type { TableReader } from '../store/span-store.js';
import { SPAN_COLUMNS, SUMMARY_COLUMNS, jaegerSpanKind } from './jaeger-model.js';
import type { StoredSpan, SummarySpan } from './jaeger-model.js';

/** Limits every Jaeger query runs with. */
const READ_SETTINGS: ClickHouseSettings = {
  readonly: 1,
  max_execution_time: 30,
  timeout_overflow_mode: 'throw',
};

/** A request the API refuses (400 in Jaeger's error shape). */
export class JaegerQueryError extends Error {
  override readonly name = 'JaegerQueryError';
}

export interface TraceSearch {
  service: string;
  operation?: string;
  /** Span (or resource, or event) attribute key → value; all must match one span. */
  tags: Record<string, string>;
  /** Window, nanoseconds since the epoch. */
  startNs: bigint;
  endNs: bigint;
  minDurationNs?: bigint;
  maxDurationNs?: bigint;
  limit: number;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
  d: 86_400e9,
};

/**
 * A Go duration (`10ms`, `1.5s`, `1h30m`, also protobuf JSON's `0.010s`) in
 * nanoseconds; a `d` unit is accepted for lookbacks like Jaeger UI's `2d`.
 */
export function parseGoDuration(text: string): bigint {
  const trimmed = text.trim();
  const part = /([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  let match: RegExpExecArray | null;
  while ((match = part.exec(trimmed)) !== null) {
    total += Number(match[1]) * (DURATION_UNITS[match[2] ?? 's'] ?? 1);
    matched = part.lastIndex;
  }
  if (trimmed === '' || matched !== trimmed.length || !Number.isFinite(total)) {
    throw new JaegerQueryError(`invalid duration ${JSON.stringify(text)}`);
  }
  return BigInt(Math.round(total));
}

/**
 * Tag filters as Jaeger's API takes them: `tags` as a JSON object
 * (`{"http.status_code":"500"}`, what Jaeger UI and Grafana send) or as logfmt
 * (`error=true http.method="GET"`), and repeated `tag=key:value`.
 */
export function parseTags(tags: unknown, tagList: unknown): Record<string, string> {
  const result: Record<string, string> = {};
  for (const text of asList(tags)) {
    const trimmed = text.trim();
    if (trimmed === '') continue;
    if (trimmed.startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(trimmed);
      } catch {
        throw new JaegerQueryError(`malformed tags JSON ${JSON.stringify(text)}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new JaegerQueryError('tags must be a JSON object');
      }
      for (const [key, value] of Object.entries(parsed)) {
        if (typeof value === 'object' && value !== null) {
          throw new JaegerQueryError(`tag ${key} must have a scalar value`);
        }
        result[key] = String(value);
      }
    } else {
      Object.assign(result, parseLogfmt(trimmed));
    }
  }
  for (const text of asList(tagList)) {
    const colon = text.indexOf(':');
    if (colon <= 0)
      throw new JaegerQueryError(`malformed tag ${JSON.stringify(text)}, want key:value`);
    result[text.slice(0, colon)] = text.slice(colon + 1);
  }
  return result;
}

function parseLogfmt(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const pair = /\s*([^\s=]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/gy;
  let matched = 0;
  let match: RegExpExecArray | null;
  while ((match = pair.exec(text)) !== null) {
    const key = match[1] ?? '';
    result[key] = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : (match[3] ?? '');
    matched = pair.lastIndex;
  }
  if (text.slice(matched).trim() !== '') {
    throw new JaegerQueryError(`malformed tags ${JSON.stringify(text)}`);
  }
  return result;
}

function asList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value.map(String);
  return [String(value)];
}

/** A Jaeger or OTel trace id as stored: lower-case hex, 32 digits (shorter ids are zero-padded). */
export function normalizeTraceId(id: string): string {
  const lower = id.trim().toLowerCase();
  if (!/^[0-9a-f]{1,32}$/.test(lower)) {
    throw new JaegerQueryError(`invalid trace id ${JSON.stringify(id)}`);
  }
  return lower.padStart(32, '0');
}

export class JaegerQueries {
  private readonly reader: TableReader;
  private readonly tables: ReturnType<typeof tableNames>;

  constructor(reader: TableReader) {
    this.reader = reader;
    this.tables = tableNames({ database: reader.database });
  }

  private async rows<Row>(sql: string, params: Record<string, unknown> = {}): Promise<Row[]> {
    const result = await this.reader.query<Row>(sql, params, READ_SETTINGS);
    return result.data;
  }

  async services(): Promise<string[]> {
    const rows = await this.rows<{ name: string }>(
      `SELECT DISTINCT ServiceName AS name FROM ${this.tables.traces} WHERE ServiceName != '' ORDER BY name`,
    );
    return rows.map((row) => row.name);
  }

  /** Operations of a service, with their Jaeger span kind (`server`, `client`, …, `` when unspecified). */
  async operations(
    service: string,
    spanKind?: string,
  ): Promise<{ name: string; spanKind: string }[]> {
    const rows = await this.rows<{ name: string; kind: string }>(
      `SELECT SpanName AS name, SpanKind AS kind FROM ${this.tables.traces}
       WHERE ServiceName = {service:String}
       GROUP BY name, kind ORDER BY name, kind`,
      { service },
    );
    const wanted = spanKind === undefined || spanKind === '' ? undefined : spanKind.toLowerCase();
    return rows
      .map((row) => ({ name: row.name, spanKind: jaegerSpanKind(row.kind) }))
      .filter((row) => wanted === undefined || row.spanKind === wanted);
  }

  /**
   * The ids of the traces with at least one span that matches every condition,
   * newest first (by their latest matching span).
   */
  async findTraceIds(search: TraceSearch): Promise<string[]> {
    const params: Record<string, unknown> = {
      service: search.service,
      startNs: search.startNs.toString(),
      endNs: search.endNs.toString(),
      limit: search.limit,
    };
    const conditions = [
      'ServiceName = {service:String}',
      'Timestamp >= fromUnixTimestamp64Nano({startNs:Int64})',
      'Timestamp <= fromUnixTimestamp64Nano({endNs:Int64})',
    ];
    if (search.operation !== undefined && search.operation !== '') {
      conditions.push('SpanName = {operation:String}');
      params.operation = search.operation;
    }
    if (search.minDurationNs !== undefined) {
      conditions.push('Duration >= {minDuration:UInt64}');
      params.minDuration = search.minDurationNs.toString();
    }
    if (search.maxDurationNs !== undefined) {
      conditions.push('Duration <= {maxDuration:UInt64}');
      params.maxDuration = search.maxDurationNs.toString();
    }
    Object.entries(search.tags).forEach(([key, value], index) => {
      params[`tagKey${index}`] = key;
      params[`tagValue${index}`] = value;
      conditions.push(tagCondition(key, `{tagKey${index}:String}`, `{tagValue${index}:String}`));
    });
    const rows = await this.rows<{ TraceId: string }>(
      `SELECT TraceId, max(Timestamp) AS latest FROM ${this.tables.traces}
       WHERE ${conditions.join('\n         AND ')}
       GROUP BY TraceId ORDER BY latest DESC, TraceId LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map((row) => row.TraceId);
  }

  /**
   * Service-to-service calls (Jaeger's dependency links): spans whose parent
   * span belongs to another service, counted per (parent, child) pair over
   * child spans that started in the window.
   */
  async dependencies(
    startNs: bigint,
    endNs: bigint,
  ): Promise<{ parent: string; child: string; callCount: number }[]> {
    const rows = await this.rows<{ parent: string; child: string; calls: string | number }>(
      `SELECT parent.ServiceName AS parent, child.ServiceName AS child, count() AS calls
       FROM
       (
           SELECT TraceId, ParentSpanId, ServiceName FROM ${this.tables.traces}
           WHERE Timestamp >= fromUnixTimestamp64Nano({startNs:Int64})
             AND Timestamp <= fromUnixTimestamp64Nano({endNs:Int64}) AND ParentSpanId != ''
       ) AS child
       INNER JOIN
       (
           SELECT TraceId, SpanId, ServiceName FROM ${this.tables.traces}
           WHERE Timestamp >= fromUnixTimestamp64Nano({startNs:Int64}) - INTERVAL 1 HOUR
             AND Timestamp <= fromUnixTimestamp64Nano({endNs:Int64})
       ) AS parent
       ON child.TraceId = parent.TraceId AND child.ParentSpanId = parent.SpanId
       WHERE parent.ServiceName != child.ServiceName
       GROUP BY parent, child
       ORDER BY parent, child`,
      { startNs: startNs.toString(), endNs: endNs.toString() },
    );
    return rows.map((row) => ({
      parent: row.parent,
      child: row.child,
      callCount: Number(row.calls),
    }));
  }

  /**
   * The time bounds of these traces from `otel_traces_trace_id_ts` (whole
   * seconds: `[Start, End + 1s)`), so the span scan reads only their partitions;
   * `undefined` when the lookup table has none of them.
   */
  private async bounds(
    traceIds: readonly string[],
  ): Promise<{ startNs: string; endNs: string } | undefined> {
    const rows = await this.rows<{ found: string | number; start: string; end: string }>(
      `SELECT count() AS found, toString(toUnixTimestamp(min(Start))) AS start, toString(toUnixTimestamp(max(End))) AS end
       FROM ${this.tables.traceIdTs} WHERE TraceId IN {ids:Array(String)}`,
      { ids: [...traceIds] },
    );
    const row = rows[0];
    if (row === undefined || Number(row.found) === 0) return undefined;
    return {
      startNs: (BigInt(row.start) * 1_000_000_000n).toString(),
      endNs: ((BigInt(row.end) + 1n) * 1_000_000_000n).toString(),
    };
  }

  private async spanRows<Row>(columns: string, traceIds: readonly string[]): Promise<Row[]> {
    if (traceIds.length === 0) return [];
    const bounds = await this.bounds(traceIds);
    // Without a lookup row (spans written without the view), scan by id alone.
    const window =
      bounds === undefined
        ? ''
        : 'AND Timestamp >= fromUnixTimestamp64Nano({startNs:Int64}) AND Timestamp < fromUnixTimestamp64Nano({endNs:Int64})';
    return this.rows<Row>(
      `SELECT ${columns} FROM ${this.tables.traces}
       WHERE TraceId IN {ids:Array(String)} ${window}
       ORDER BY TraceId, Timestamp, SpanId`,
      { ids: [...traceIds], ...bounds },
    );
  }

  /** Every stored span of these traces. */
  spansOf(traceIds: readonly string[]): Promise<StoredSpan[]> {
    return this.spanRows<StoredSpan>(SPAN_COLUMNS, traceIds);
  }

  /** The slim rows `summarizeTrace` needs, for these traces. */
  summarySpansOf(traceIds: readonly string[]): Promise<SummarySpan[]> {
    return this.spanRows<SummarySpan>(SUMMARY_COLUMNS, traceIds);
  }
}

/**
 * One tag filter on one span, the way Jaeger matches tags: the span's
 * attributes, its resource (process tags) or one of its events (log fields);
 * the tags this API derives (`span.kind`, `otel.status_code`, `error`,
 * `otel.status_description`, `otel.scope.name`) match the columns they come from.
 */
function tagCondition(key: string, keyParam: string, valueParam: string): string {
  const attributes = `(SpanAttributes[${keyParam}] = ${valueParam} OR ResourceAttributes[${keyParam}] = ${valueParam} OR arrayExists(a -> a[${keyParam}] = ${valueParam}, Events.Attributes))`;
  switch (key) {
    case 'span.kind':
      return `(lower(SpanKind) = lower(${valueParam}) OR ${attributes})`;
    case 'otel.status_code':
      return `(upper(StatusCode) = upper(${valueParam}) OR ${attributes})`;
    case 'error':
      return `((lower(${valueParam}) = 'true' AND StatusCode = 'Error') OR ${attributes})`;
    case 'otel.status_description':
      return `(StatusMessage = ${valueParam} OR ${attributes})`;
    case 'otel.scope.name':
      return `(ScopeName = ${valueParam} OR ${attributes})`;
    default:
      return attributes;
  }
}
