/**
 * `SpanRow` → one TabSeparated line for `otel_traces`, columns in
 * `OTEL_TRACES_INSERT_COLUMNS` order. Built as one string per batch, no
 * intermediate objects: this is the writer's hot path.
 */
import type { SpanRow } from './span-store.js';

/** Complex values (Map, Array) are written as quoted literals, which escape tabs and newlines themselves. */
const NEEDS_TSV_ESCAPE = /[\\\t\n\r\0]/;
const NEEDS_QUOTED_ESCAPE = /[\\'\t\n\r\0]/;
const DIGITS = /^\d{1,20}$/;

function escapeCharacter(character: string): string {
  switch (character) {
    case '\\':
      return '\\\\';
    case '\t':
      return '\\t';
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\0':
      return '\\0';
    default:
      return "\\'";
  }
}

/** A String field of a TabSeparated row. */
export function tsvString(value: string): string {
  return NEEDS_TSV_ESCAPE.test(value) ? value.replace(/[\\\t\n\r\0]/g, escapeCharacter) : value;
}

/** A quoted string inside an Array/Map literal of a TabSeparated row. */
export function quotedString(value: string): string {
  return NEEDS_QUOTED_ESCAPE.test(value)
    ? `'${value.replace(/[\\'\t\n\r\0]/g, escapeCharacter)}'`
    : `'${value}'`;
}

export function tsvMap(map: Record<string, string>): string {
  let out = '{';
  let first = true;
  for (const key in map) {
    const value = map[key];
    if (value === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += quotedString(key) + ':' + quotedString(value);
  }
  return out + '}';
}

/** Nanoseconds since the epoch (decimal string) → `seconds.nanoseconds`, which DateTime64(9) parses exactly. */
export function nanosToDateTime64(nanos: string): string {
  if (!DIGITS.test(nanos))
    throw new InvalidSpanRowError(`not a nanosecond timestamp: ${JSON.stringify(nanos)}`);
  const padded = nanos.padStart(10, '0');
  return `${padded.slice(0, -9)}.${padded.slice(-9)}`;
}

export class InvalidSpanRowError extends Error {
  override readonly name = 'InvalidSpanRowError';
}

function stringArray(values: string[]): string {
  let out = '[';
  for (let index = 0; index < values.length; index++) {
    if (index > 0) out += ',';
    out += quotedString(values[index] ?? '');
  }
  return out + ']';
}

function mapArray(values: Record<string, string>[]): string {
  let out = '[';
  for (let index = 0; index < values.length; index++) {
    if (index > 0) out += ',';
    out += tsvMap(values[index] ?? {});
  }
  return out + ']';
}

function timestampArray(values: string[]): string {
  let out = '[';
  for (let index = 0; index < values.length; index++) {
    if (index > 0) out += ',';
    out += `'${nanosToDateTime64(values[index] ?? '0')}'`;
  }
  return out + ']';
}

export function spanRowToTsv(row: SpanRow): string {
  if (!DIGITS.test(row.Duration)) {
    throw new InvalidSpanRowError(`not a nanosecond duration: ${JSON.stringify(row.Duration)}`);
  }
  const events = row.Events;
  const links = row.Links;
  return (
    nanosToDateTime64(row.Timestamp) +
    '\t' +
    tsvString(row.TraceId) +
    '\t' +
    tsvString(row.SpanId) +
    '\t' +
    tsvString(row.ParentSpanId) +
    '\t' +
    tsvString(row.TraceState) +
    '\t' +
    tsvString(row.SpanName) +
    '\t' +
    tsvString(row.SpanKind) +
    '\t' +
    tsvString(row.ServiceName) +
    '\t' +
    tsvMap(row.ResourceAttributes) +
    '\t' +
    tsvString(row.ScopeName) +
    '\t' +
    tsvString(row.ScopeVersion) +
    '\t' +
    tsvMap(row.SpanAttributes) +
    '\t' +
    row.Duration +
    '\t' +
    tsvString(row.StatusCode) +
    '\t' +
    tsvString(row.StatusMessage) +
    '\t' +
    timestampArray(events.Timestamp) +
    '\t' +
    stringArray(events.Name) +
    '\t' +
    mapArray(events.Attributes) +
    '\t' +
    stringArray(links.TraceId) +
    '\t' +
    stringArray(links.SpanId) +
    '\t' +
    stringArray(links.TraceState) +
    '\t' +
    mapArray(links.Attributes) +
    '\n'
  );
}

/** All rows of one request as one buffer. Throws `InvalidSpanRowError` before anything is written. */
export function spanRowsToTsv(rows: readonly SpanRow[]): Buffer {
  // One flat buffer, written row by row: concatenating a long string first makes
  // V8 flatten a deep rope, which costs more than the encoding itself.
  let buffer = Buffer.allocUnsafe(Math.max(4096, rows.length * 1024));
  let length = 0;
  for (const row of rows) {
    const line = spanRowToTsv(row);
    const worst = line.length * 3;
    if (length + worst > buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(buffer.length * 2, length + worst));
      buffer.copy(grown, 0, 0, length);
      buffer = grown;
    }
    length += buffer.write(line, length, 'utf8');
  }
  return buffer.subarray(0, length);
}
