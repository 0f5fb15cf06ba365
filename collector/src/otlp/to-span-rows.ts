/**
 * What the protobuf and the JSON decoders share: how OTLP values become the
 * strings of an `otel_traces` row (the OpenTelemetry Collector ClickHouse
 * exporter's conventions), and the checks that reject a span individually.
 *
 * Exporter conventions followed here (opentelemetry-collector-contrib
 * `exporter/clickhouseexporter`): `SpanKind` and `StatusCode` are pdata's
 * `String()` names (`Client`, `Error`, …; an unknown number gives `''`),
 * attribute values go through pdata's `Value.AsString()` (numbers and booleans
 * as text, doubles like ES6 `String(n)`, arrays and maps as Go `json.Marshal`
 * output with sorted map keys, bytes as standard base64), ids are lower-case hex
 * and empty when all zero, `ServiceName` is the resource's `service.name`.
 */
import type { SpanRow } from '../store/span-store.js';

export const SPAN_KIND_NAMES: readonly string[] = [
  'Unspecified',
  'Internal',
  'Server',
  'Client',
  'Producer',
  'Consumer',
];
export const STATUS_CODE_NAMES: readonly string[] = ['Unset', 'Ok', 'Error'];

/** The proto enum names, accepted in JSON besides the integers. */
export const SPAN_KIND_PROTO_NAMES: readonly string[] = [
  'SPAN_KIND_UNSPECIFIED',
  'SPAN_KIND_INTERNAL',
  'SPAN_KIND_SERVER',
  'SPAN_KIND_CLIENT',
  'SPAN_KIND_PRODUCER',
  'SPAN_KIND_CONSUMER',
];
export const STATUS_CODE_PROTO_NAMES: readonly string[] = [
  'STATUS_CODE_UNSET',
  'STATUS_CODE_OK',
  'STATUS_CODE_ERROR',
];

export const spanKindName = (kind: number): string => SPAN_KIND_NAMES[kind] ?? '';
export const statusCodeName = (code: number): string => STATUS_CODE_NAMES[code] ?? '';

/** Deepest array/kvlist nesting accepted in an attribute value. */
export const MAX_VALUE_DEPTH = 32;

const HEX_BYTE: string[] = [];
for (let index = 0; index < 256; index++) HEX_BYTE.push(index.toString(16).padStart(2, '0'));

/** Is every byte of `bytes[start, end)` zero (an id the exporter writes as `''`)? */
export function allZero(bytes: Uint8Array, start: number, end: number): boolean {
  for (let index = start; index < end; index++) {
    if (bytes[index] !== 0) return false;
  }
  return true;
}

/** Lower-case hex of `bytes[start, end)`; `''` when every byte is zero (the exporter's rule). */
export function hexOf(bytes: Uint8Array, start: number, end: number): string {
  let zero = true;
  let text = '';
  for (let index = start; index < end; index++) {
    const byte = bytes[index]!;
    if (byte !== 0) zero = false;
    text += HEX_BYTE[byte]!;
  }
  return zero ? '' : text;
}

/** `pcommon.Value.AsString()` for a double: ES6 number formatting, Go's text for NaN and infinities. */
export function formatDouble(value: number): string {
  if (Number.isFinite(value)) return Object.is(value, -0) ? '-0' : String(value);
  if (Number.isNaN(value)) return 'json: unsupported value: NaN';
  return value > 0 ? 'json: unsupported value: +Inf' : 'json: unsupported value: -Inf';
}

/** Thrown inside JSON rendering of arrays/maps when Go's `json.Marshal` would fail (NaN, ±Inf). */
export class UnsupportedJsonValue extends Error {
  override readonly name = 'UnsupportedJsonValue';
}

/** A double as Go's `encoding/json` writes it inside an array or map. */
export function jsonDouble(value: number): string {
  if (!Number.isFinite(value)) throw new UnsupportedJsonValue('unsupported float');
  return Object.is(value, -0) ? '-0' : String(value);
}

const GO_JSON_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};
const GO_JSON_ESCAPED = /[<>&\u2028\u2029]/g;

/** A JSON string literal as Go's `encoding/json` writes it (HTML-safe). */
export function jsonQuote(text: string): string {
  const quoted = JSON.stringify(text);
  return GO_JSON_ESCAPED.test(quoted)
    ? quoted.replace(GO_JSON_ESCAPED, (character) => GO_JSON_ESCAPES[character]!)
    : quoted;
}

/** Go's `json.Marshal(map[string]any)`: keys sorted bytewise, the last duplicate wins. */
export function jsonObject(entries: [key: string, json: string][]): string {
  const byKey = new Map<string, string>();
  for (const [key, json] of entries) byKey.set(key, json);
  const keys = [...byKey.keys()].sort(compareUtf8);
  let text = '{';
  for (let index = 0; index < keys.length; index++) {
    if (index > 0) text += ',';
    const key = keys[index]!;
    text += jsonQuote(key) + ':' + byKey.get(key)!;
  }
  return text + '}';
}

function compareUtf8(left: string, right: string): number {
  // Go sorts map keys by bytes; for UTF-16 this equals code-point order.
  if (left === right) return 0;
  const a = Buffer.from(left, 'utf8');
  const b = Buffer.from(right, 'utf8');
  return Buffer.compare(a, b);
}

export const base64Of = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

/**
 * Decimal text of the unsigned 64-bit integer `high * 2^32 + low` without BigInt
 * and without float rounding (long division in base 2^16).
 */
export function u64ToDecimal(high: number, low: number): string {
  if (high < 0x200000) return String(high * 4294967296 + low);
  const d3 = high >>> 16;
  const d2 = high & 0xffff;
  const d1 = low >>> 16;
  const d0 = low & 0xffff;
  let remainder = d3;
  const q3 = Math.floor(remainder / 1e9);
  remainder = (remainder % 1e9) * 65536 + d2;
  const q2 = Math.floor(remainder / 1e9);
  remainder = (remainder % 1e9) * 65536 + d1;
  const q1 = Math.floor(remainder / 1e9);
  remainder = (remainder % 1e9) * 65536 + d0;
  const q0 = Math.floor(remainder / 1e9);
  remainder %= 1e9;
  const quotient = ((q3 * 65536 + q2) * 65536 + q1) * 65536 + q0;
  const tail = String(remainder);
  return quotient === 0 ? tail : String(quotient) + '000000000'.slice(tail.length) + tail;
}

/** `end - start` for unsigned 64-bit values given as 32-bit halves; `undefined` when negative. */
export function u64Difference(
  startHigh: number,
  startLow: number,
  endHigh: number,
  endLow: number,
): string | undefined {
  if (endHigh < startHigh || (endHigh === startHigh && endLow < startLow)) return undefined;
  let high = endHigh - startHigh;
  let low = endLow - startLow;
  if (low < 0) {
    low += 4294967296;
    high -= 1;
  }
  return u64ToDecimal(high, low);
}

/** ClickHouse `DateTime64(9)` holds Int64 nanoseconds: up to 2262-04-11. */
export const MAX_TIMESTAMP_HIGH = 0x7fffffff;

/**
 * Why a span cannot be stored, or `undefined` when it can. Same rules for both encodings.
 * `traceIdZero` / `spanIdZero`: the id is all zeros (its hex is `''`).
 */
export function spanProblem(
  traceIdLength: number,
  traceIdZero: boolean,
  spanIdLength: number,
  spanIdZero: boolean,
  parentSpanIdLength: number,
  startHigh: number,
  startLow: number,
  endHigh: number,
  endLow: number,
): string | undefined {
  if (traceIdLength !== 16) return `traceId must be 16 bytes (32 hex digits), got ${traceIdLength}`;
  if (traceIdZero) return 'traceId must not be all zeros';
  if (spanIdLength !== 8) return `spanId must be 8 bytes (16 hex digits), got ${spanIdLength}`;
  if (spanIdZero) return 'spanId must not be all zeros';
  if (parentSpanIdLength !== 0 && parentSpanIdLength !== 8) {
    return `parentSpanId must be empty or 8 bytes, got ${parentSpanIdLength}`;
  }
  if (startHigh === 0 && startLow === 0) return 'startTimeUnixNano is required';
  if (startHigh > MAX_TIMESTAMP_HIGH || endHigh > MAX_TIMESTAMP_HIGH) {
    return 'timestamps must be before 2262-04-11 (Int64 nanoseconds)';
  }
  if (endHigh < startHigh || (endHigh === startHigh && endLow < startLow)) {
    return 'endTimeUnixNano is before startTimeUnixNano';
  }
  return undefined;
}

/** Sets `record[key] = value`, also for the key `__proto__`. */
export function setAttribute(record: Record<string, string>, key: string, value: string): void {
  if (key === '__proto__') {
    Object.defineProperty(record, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    record[key] = value;
  }
}

/** Spans rejected, and why the first few were rejected. */
export interface Rejections {
  rejectedSpans: number;
  /** Distinct reasons, at most a handful, for `partialSuccess.errorMessage`. */
  problems: string[];
}

/** Spans kept (as rows), spans rejected, and why the first few were rejected. */
export interface DecodedTraces extends Rejections {
  rows: SpanRow[];
}

/** Spans kept (as one Native block of `spans` rows, see `SpanColumns`), spans rejected, and why. */
export interface EncodedTraces extends Rejections {
  block: Buffer;
  spans: number;
}

export const MAX_PROBLEMS = 5;

export function addProblem(result: Rejections, problem: string): void {
  result.rejectedSpans += 1;
  if (result.problems.length < MAX_PROBLEMS && !result.problems.includes(problem)) {
    result.problems.push(problem);
  }
}

/** `partialSuccess.errorMessage` for rejected spans. */
export function rejectionMessage(result: Rejections): string {
  return `${result.rejectedSpans} span(s) rejected: ${result.problems.join('; ')}`;
}
