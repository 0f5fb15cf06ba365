/**
 * Jaeger's JSON model (jaeger `model/json/model.go`, jaeger-ui `src/types/trace.tsx`)
 * built from `otel_traces` rows, the way Jaeger's own OTLP translator maps
 * OpenTelemetry spans: times in microseconds, the parent as a `CHILD_OF`
 * reference and links as `FOLLOWS_FROM`, span kind as the `span.kind` tag,
 * status as `otel.status_code` / `otel.status_description` plus `error=true`,
 * scope as `otel.scope.name` / `otel.scope.version`, events as logs (the event
 * name in an `event` field), resource attributes (minus `service.name`) as
 * process tags.
 *
 * `otel_traces` keeps every attribute value as text, so tag types are inferred
 * from the text (`typedTag`): `true`/`false` → bool; a canonical decimal
 * integer within ±2^53 → int64; a finite decimal with a fraction or exponent →
 * float64; anything else (including integers with leading zeros or beyond
 * 2^53, and JSON arrays) → string.
 */

import type { SpanRow } from '../store/span-store.js';

export type JaegerTagType = 'string' | 'bool' | 'int64' | 'float64';

export interface JaegerTag {
  key: string;
  type: JaegerTagType;
  value: string | number | boolean;
}

export interface JaegerReference {
  refType: 'CHILD_OF' | 'FOLLOWS_FROM';
  traceID: string;
  spanID: string;
}

export interface JaegerLog {
  /** Microseconds since the epoch. */
  timestamp: number;
  fields: JaegerTag[];
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  flags: number;
  operationName: string;
  references: JaegerReference[];
  /** Microseconds since the epoch. */
  startTime: number;
  /** Microseconds. */
  duration: number;
  tags: JaegerTag[];
  logs: JaegerLog[];
  processID: string;
  warnings: string[] | null;
}

export interface JaegerProcess {
  serviceName: string;
  tags: JaegerTag[];
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, JaegerProcess>;
  warnings: string[] | null;
}

/**
 * One `otel_traces` row as `SPAN_COLUMNS` selects it: the stored row's columns, with times as
 * nanosecond decimal strings and the Nested columns as flat arrays.
 */
export type StoredSpan = Omit<SpanRow, 'Timestamp' | 'Events' | 'Links'> & {
  /** Start, nanoseconds since the epoch. */
  StartNs: string;
  EventNs: string[];
  EventNames: string[];
  EventAttributes: Record<string, string>[];
  LinkTraceIds: string[];
  LinkSpanIds: string[];
};

/** The columns of `StoredSpan`, for `SELECT ${SPAN_COLUMNS} FROM otel_traces`. */
export const SPAN_COLUMNS = `TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes,
    toString(toUnixTimestamp64Nano(Timestamp)) AS StartNs, toString(Duration) AS Duration,
    StatusCode, StatusMessage,
    arrayMap(t -> toString(toUnixTimestamp64Nano(t)), Events.Timestamp) AS EventNs,
    Events.Name AS EventNames, Events.Attributes AS EventAttributes,
    Links.TraceId AS LinkTraceIds, Links.SpanId AS LinkSpanIds`;

const INTEGER = /^-?(0|[1-9][0-9]*)$/;
const FLOAT = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/;

/** A Jaeger tag with its type inferred from the stored text (see the module comment). */
export function typedTag(key: string, text: string): JaegerTag {
  if (text === 'true' || text === 'false') return { key, type: 'bool', value: text === 'true' };
  if (INTEGER.test(text)) {
    const value = Number(text);
    if (Number.isSafeInteger(value)) return { key, type: 'int64', value };
    return { key, type: 'string', value: text };
  }
  if (FLOAT.test(text)) {
    const value = Number(text);
    if (Number.isFinite(value)) return { key, type: 'float64', value };
  }
  return { key, type: 'string', value: text };
}

const stringTag = (key: string, value: string): JaegerTag => ({ key, type: 'string', value });

/** Nanoseconds (decimal string) to whole microseconds. */
export function nanosToMicros(nanos: string): number {
  return Number(BigInt(nanos) / 1000n);
}

/** `Server` → `server`; `Unspecified` (or empty) → `` (no `span.kind` tag). */
export function jaegerSpanKind(kind: string): string {
  const lower = kind.toLowerCase().replace(/^span_kind_/, '');
  return lower === 'unspecified' ? '' : lower;
}

/** OTel status as Jaeger's translator writes it: `OK` / `ERROR`, nothing for `Unset`. */
function statusCode(code: string): string | undefined {
  const upper = code.toUpperCase().replace(/^STATUS_CODE_/, '');
  return upper === 'OK' || upper === 'ERROR' ? upper : undefined;
}

function attributeTags(attributes: Record<string, string>): JaegerTag[] {
  return Object.keys(attributes)
    .sort()
    .map((key) => typedTag(key, attributes[key] ?? ''));
}

function spanTags(row: StoredSpan): JaegerTag[] {
  const tags = attributeTags(row.SpanAttributes);
  const kind = jaegerSpanKind(row.SpanKind);
  if (kind !== '') tags.push(stringTag('span.kind', kind));
  const status = statusCode(row.StatusCode);
  if (status !== undefined) tags.push(stringTag('otel.status_code', status));
  if (status === 'ERROR') tags.push({ key: 'error', type: 'bool', value: true });
  if (row.StatusMessage !== '') tags.push(stringTag('otel.status_description', row.StatusMessage));
  if (row.ScopeName !== '') tags.push(stringTag('otel.scope.name', row.ScopeName));
  if (row.ScopeVersion !== '') tags.push(stringTag('otel.scope.version', row.ScopeVersion));
  if (row.TraceState !== '') tags.push(stringTag('w3c.tracestate', row.TraceState));
  return tags;
}

function spanLogs(row: StoredSpan): JaegerLog[] {
  return row.EventNs.map((nanos, index) => ({
    timestamp: nanosToMicros(nanos),
    fields: [
      stringTag('event', row.EventNames[index] ?? ''),
      ...attributeTags(row.EventAttributes[index] ?? {}),
    ],
  }));
}

function spanReferences(row: StoredSpan): JaegerReference[] {
  const references: JaegerReference[] = [];
  if (row.ParentSpanId !== '') {
    references.push({ refType: 'CHILD_OF', traceID: row.TraceId, spanID: row.ParentSpanId });
  }
  row.LinkSpanIds.forEach((spanID, index) => {
    references.push({
      refType: 'FOLLOWS_FROM',
      traceID: row.LinkTraceIds[index] ?? row.TraceId,
      spanID,
    });
  });
  return references;
}

/** Process tags: resource attributes without `service.name` (that is the process's `serviceName`). */
function processOf(row: StoredSpan): JaegerProcess {
  const { 'service.name': _serviceName, ...rest } = row.ResourceAttributes;
  return { serviceName: row.ServiceName, tags: attributeTags(rest) };
}

/** Groups rows by trace id (in first-seen order) and builds one Jaeger trace each. */
export function toJaegerTraces(rows: readonly StoredSpan[]): JaegerTrace[] {
  const byTrace = new Map<string, StoredSpan[]>();
  for (const row of rows) {
    const list = byTrace.get(row.TraceId);
    if (list === undefined) byTrace.set(row.TraceId, [row]);
    else list.push(row);
  }
  return [...byTrace.values()].map(toJaegerTrace);
}

/** One trace: spans by start time, processes `p1`, `p2`, … one per distinct service and resource. */
export function toJaegerTrace(rows: readonly StoredSpan[]): JaegerTrace {
  const processIds = new Map<string, string>();
  const processes: Record<string, JaegerProcess> = {};
  const sorted = [...rows].sort((a, b) => {
    const difference = BigInt(a.StartNs) - BigInt(b.StartNs);
    return difference < 0n ? -1 : difference > 0n ? 1 : a.SpanId.localeCompare(b.SpanId);
  });
  const spans = sorted.map((row): JaegerSpan => {
    const process = processOf(row);
    const key = JSON.stringify(process);
    let processID = processIds.get(key);
    if (processID === undefined) {
      processID = `p${processIds.size + 1}`;
      processIds.set(key, processID);
      processes[processID] = process;
    }
    return {
      traceID: row.TraceId,
      spanID: row.SpanId,
      flags: 1,
      operationName: row.SpanName,
      references: spanReferences(row),
      startTime: nanosToMicros(row.StartNs),
      duration: nanosToMicros(row.Duration),
      tags: spanTags(row),
      logs: spanLogs(row),
      processID,
      warnings: null,
    };
  });
  return { traceID: rows[0]?.TraceId ?? '', spans, processes, warnings: null };
}

/**
 * One trace of `/api/v3/trace-summaries`, in proto3 JSON as Jaeger's IDL types it: the
 * 64-bit times as decimal strings, the `int32` counts as JSON numbers (the Jaeger UI
 * since v2.19 validates both with zod and rejects a count sent as a string).
 */
export interface TraceSummary {
  traceId: string;
  minStartTimeUnixNano: string;
  maxEndTimeUnixNano: string;
  rootServiceName: string;
  rootOperationName: string;
  spanCount: number;
  errorSpanCount: number;
  orphanSpanCount: number;
  services: { name: string; spanCount: number; errorSpanCount: number }[];
}

/** The slim per-span columns a summary needs. */
export interface SummarySpan {
  TraceId: string;
  SpanId: string;
  ParentSpanId: string;
  ServiceName: string;
  SpanName: string;
  StartNs: string;
  EndNs: string;
  StatusCode: string;
}

export const SUMMARY_COLUMNS = `TraceId, SpanId, ParentSpanId, ServiceName, SpanName,
    toString(toUnixTimestamp64Nano(Timestamp)) AS StartNs,
    toString(toUnixTimestamp64Nano(Timestamp) + Duration) AS EndNs, StatusCode`;

/**
 * The summary of one trace. The root is the earliest span without a parent;
 * failing that (the root is not stored yet) the earliest orphan. Orphans are
 * spans whose parent is not in the trace.
 */
export function summarizeTrace(rows: readonly SummarySpan[]): TraceSummary {
  const ids = new Set(rows.map((row) => row.SpanId));
  const byStart = [...rows].sort((a, b) => {
    const difference = BigInt(a.StartNs) - BigInt(b.StartNs);
    return difference < 0n ? -1 : difference > 0n ? 1 : 0;
  });
  const orphans = byStart.filter((row) => row.ParentSpanId !== '' && !ids.has(row.ParentSpanId));
  const root = byStart.find((row) => row.ParentSpanId === '') ?? orphans[0] ?? byStart[0];
  let minStart: bigint | undefined;
  let maxEnd: bigint | undefined;
  const services = new Map<string, { spanCount: number; errorSpanCount: number }>();
  let errors = 0;
  for (const row of byStart) {
    const start = BigInt(row.StartNs);
    const end = BigInt(row.EndNs);
    if (minStart === undefined || start < minStart) minStart = start;
    if (maxEnd === undefined || end > maxEnd) maxEnd = end;
    const isError = statusCode(row.StatusCode) === 'ERROR';
    if (isError) errors += 1;
    const service = services.get(row.ServiceName) ?? { spanCount: 0, errorSpanCount: 0 };
    service.spanCount += 1;
    if (isError) service.errorSpanCount += 1;
    services.set(row.ServiceName, service);
  }
  return {
    traceId: rows[0]?.TraceId ?? '',
    minStartTimeUnixNano: String(minStart ?? 0n),
    maxEndTimeUnixNano: String(maxEnd ?? 0n),
    rootServiceName: root?.ServiceName ?? '',
    rootOperationName: root?.SpanName ?? '',
    spanCount: rows.length,
    errorSpanCount: errors,
    orphanSpanCount: orphans.length,
    services: [...services.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, counts]) => ({
        name,
        spanCount: counts.spanCount,
        errorSpanCount: counts.errorSpanCount,
      })),
  };
}
