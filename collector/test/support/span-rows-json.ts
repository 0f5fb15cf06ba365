/**
 * `SpanRow`s as `JSONEachRow` lines for `otel_traces` (columns named as in
 * `OTEL_TRACES_INSERT_COLUMNS`): the reference the Native encoder is checked
 * against — ClickHouse parses these itself, so whatever the two store differs
 * only where `span-row-native.ts` is wrong.
 */
import type { SpanRow } from '../../src/store/span-store.js';

/** Nanoseconds since the epoch (decimal string) → `seconds.nanoseconds`, which DateTime64(9) parses exactly. */
function dateTime64(nanos: string): string {
  const padded = nanos.padStart(10, '0');
  return `${padded.slice(0, -9)}.${padded.slice(-9)}`;
}

export function spanRowsToJsonEachRow(rows: readonly SpanRow[]): Buffer {
  const lines = rows.map((row) =>
    JSON.stringify({
      Timestamp: dateTime64(row.Timestamp),
      TraceId: row.TraceId,
      SpanId: row.SpanId,
      ParentSpanId: row.ParentSpanId,
      TraceState: row.TraceState,
      SpanName: row.SpanName,
      SpanKind: row.SpanKind,
      ServiceName: row.ServiceName,
      ResourceAttributes: row.ResourceAttributes,
      ScopeName: row.ScopeName,
      ScopeVersion: row.ScopeVersion,
      SpanAttributes: row.SpanAttributes,
      Duration: row.Duration,
      StatusCode: row.StatusCode,
      StatusMessage: row.StatusMessage,
      'Events.Timestamp': row.Events.Timestamp.map(dateTime64),
      'Events.Name': row.Events.Name,
      'Events.Attributes': row.Events.Attributes,
      'Links.TraceId': row.Links.TraceId,
      'Links.SpanId': row.Links.SpanId,
      'Links.TraceState': row.Links.TraceState,
      'Links.Attributes': row.Links.Attributes,
    }),
  );
  return Buffer.from(lines.join('\n') + '\n');
}
