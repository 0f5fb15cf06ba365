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
import { PayloadTooLargeError } from '../errors.js';
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
  // Go sorts map keys by bytes. Up to the first differing UTF-16 unit the bytes are
  // equal; when neither unit there is a surrogate, code-unit order is UTF-8 byte order.
  // Otherwise (astral characters, lone surrogates) compare the UTF-8 bytes themselves.
  if (left === right) return 0;
  const length = Math.min(left.length, right.length);
  for (let index = 0; index < length; index++) {
    const a = left.charCodeAt(index);
    const b = right.charCodeAt(index);
    if (a === b) continue;
    if ((a & 0xf800) !== 0xd800 && (b & 0xf800) !== 0xd800) return a - b;
    return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'));
  }
  // One is a prefix of the other.
  return left.length - right.length;
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

/**
 * What one export request may hold. Beyond `maxSpans` the request is refused
 * (413) as soon as the count is passed, before the rest is decoded; longer names
 * and values are kept in part and marked (`truncateText`).
 */
export interface DecodeLimits {
  /** Spans in one request, rejected ones included. */
  maxSpans: number;
  /** UTF-8 bytes of a name: service, span, scope name and version, event, attribute key. */
  maxNameBytes: number;
  /** UTF-8 bytes of an attribute value, a status message, a trace state. */
  maxValueBytes: number;
  /** UTF-8 bytes of a message-content attribute value (`isContentKey`). */
  maxContentBytes: number;
}

/**
 * Far above what exporters send: the OTel SDKs' BatchSpanProcessor exports at
 * most 512 spans a request, the OpenTelemetry Collector's batch processor 8192.
 */
export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({
  maxSpans: 50_000,
  maxNameBytes: 1024,
  maxValueBytes: 64 * 1024,
  maxContentBytes: 1024 * 1024,
});

/** Message-content attributes (GenAI semantic conventions, current and legacy names): long by nature. */
const CONTENT_KEYS = new Set([
  'gen_ai.input.messages',
  'gen_ai.output.messages',
  'gen_ai.system_instructions',
  'gen_ai.tool.definitions',
]);

export function isContentKey(key: string): boolean {
  return (
    CONTENT_KEYS.has(key) || key.startsWith('gen_ai.prompt') || key.startsWith('gen_ai.completion')
  );
}

/** The byte limit of an attribute's value: `service.name` of a resource is a name. */
export function valueLimitOf(key: string, resource: boolean, limits: DecodeLimits): number {
  if (resource && key === 'service.name') return limits.maxNameBytes;
  return isContentKey(key) ? limits.maxContentBytes : limits.maxValueBytes;
}

/** What replaces the cut-off end of a value: `…[truncated 1234 bytes]`. */
export function truncationMarker(removedBytes: number): string {
  return `\u2026[truncated ${removedBytes} bytes]`;
}

/**
 * Where to cut the UTF-8 bytes `[start, end)` to keep at most `limit` bytes
 * without splitting a character (back over at most three continuation bytes).
 */
export function utf8Cut(bytes: Uint8Array, start: number, end: number, limit: number): number {
  let cut = start + limit;
  if (cut >= end) return end;
  for (let steps = 0; steps < 3 && cut > start && (bytes[cut]! & 0xc0) === 0x80; steps++) cut--;
  return cut;
}

/** The bytes `[start, end)` as text, cut to `limit` bytes on a character boundary, with the marker. */
export function truncatedUtf8(bytes: Buffer, start: number, end: number, limit: number): string {
  const cut = utf8Cut(bytes, start, end, limit);
  return bytes.toString('utf8', start, cut) + truncationMarker(end - cut);
}

/**
 * `text` when its UTF-8 form fits in `limit` bytes; otherwise its first bytes
 * up to `limit` (whole characters) followed by `truncationMarker`.
 */
export function truncateText(text: string, limit: number): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes: most strings are settled without encoding.
  if (text.length <= limit / 3) return text;
  if (Buffer.byteLength(text, 'utf8') <= limit) return text;
  const bytes = Buffer.from(text, 'utf8');
  return truncatedUtf8(bytes, 0, bytes.length, limit);
}

/** Applies `DecodeLimits` to a request's strings and counts what it cut. */
export class Truncation {
  readonly limits: DecodeLimits;
  /** Values cut so far. */
  count = 0;
  /** Values up to this many UTF-8 bytes fit every limit. */
  readonly fitsAll: number;

  constructor(limits: DecodeLimits) {
    this.limits = limits;
    this.fitsAll = Math.min(limits.maxNameBytes, limits.maxValueBytes, limits.maxContentBytes);
  }

  cut(text: string, limit: number): string {
    const result = truncateText(text, limit);
    if (result !== text) this.count += 1;
    return result;
  }

  name(text: string): string {
    return text.length <= this.fitsAll / 3 ? text : this.cut(text, this.limits.maxNameBytes);
  }

  value(text: string): string {
    return text.length <= this.fitsAll / 3 ? text : this.cut(text, this.limits.maxValueBytes);
  }

  attribute(key: string, text: string, resource: boolean): string {
    if (text.length <= this.fitsAll / 3) return text;
    return this.cut(text, valueLimitOf(key, resource, this.limits));
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
  /** Names and values cut to the `DecodeLimits`. */
  truncatedValues: number;
}

/** Spans kept (as one Native block of `spans` rows, see `SpanColumns`), spans rejected, and why. */
export interface EncodedTraces extends Rejections {
  block: Buffer;
  spans: number;
  /** Names and values cut to the `DecodeLimits`. */
  truncatedValues: number;
}

/** Thrown when a request holds more than `DecodeLimits.maxSpans` spans: 413 with this message. */
export function tooManySpans(limit: number): PayloadTooLargeError {
  return new PayloadTooLargeError(
    `the request holds more than ${limit} spans, the limit of one export request; send fewer spans a request`,
    limit,
  );
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
