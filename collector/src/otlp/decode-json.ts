/**
 * OTLP/JSON `ExportTraceServiceRequest` → `otel_traces` rows, through the zod
 * schemas in `otlp-json-schema.ts` and the same value rules and span checks as
 * the protobuf decoder (`to-span-rows.ts`).
 */
import type { z } from 'zod';
import { MalformedPayloadError } from '../errors.js';
import type { SpanRow } from '../store/span-store.js';
import {
  AnyValueJsonSchema,
  KeyValueJsonSchema,
  SpanJsonSchema,
  TraceRequestJsonSchema,
  type AnyValueJson,
  type KeyValueJson,
  type SpanJson,
} from './otlp-json-schema.js';
import {
  addProblem,
  base64Of,
  DEFAULT_DECODE_LIMITS,
  formatDouble,
  jsonDouble,
  jsonObject,
  jsonQuote,
  MAX_PROBLEMS,
  MAX_TIMESTAMP_HIGH,
  MAX_VALUE_DEPTH,
  setAttribute,
  spanKindName,
  spanProblem,
  statusCodeName,
  tooManySpans,
  Truncation,
  u64Difference,
  u64ToDecimal,
  UnsupportedJsonValue,
  type DecodedTraces,
  type DecodeLimits,
} from './to-span-rows.js';
import { formatIssues } from '@modelmaxx/semconv';

/** Turns zod issues into one line: `resourceSpans.0.scopeSpans: expected array, received string`. */
export function describeIssues(error: z.ZodError, prefix = ''): string {
  return formatIssues(error.issues, { root: '', prefix, limit: 5 });
}

/**
 * Decodes OTLP/JSON bytes; throws `MalformedPayloadError` when the envelope is
 * not OTLP and `PayloadTooLargeError` when it holds more than `limits.maxSpans`
 * spans (counted before any span is checked); cuts names and values to the limits.
 */
export function decodeTraceRequestJson(
  bytes: Uint8Array,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): DecodedTraces {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString());
  } catch (error) {
    throw new MalformedPayloadError(`invalid JSON: ${(error as Error).message}`, { cause: error });
  }
  countSpans(body, limits.maxSpans);
  try {
    return decodeParsed(body, new Truncation(limits));
  } catch (error) {
    if (error instanceof RangeError) {
      throw new MalformedPayloadError('invalid OTLP/JSON: nested too deeply', { cause: error });
    }
    throw error;
  }
}

/** Throws `tooManySpans` when the `spans` arrays hold more than `limit` items together. */
function countSpans(body: unknown, limit: number): void {
  const resourceSpans = (body as { resourceSpans?: unknown } | null)?.resourceSpans;
  if (!Array.isArray(resourceSpans)) return;
  let count = 0;
  for (const resource of resourceSpans as unknown[]) {
    const scopes = (resource as { scopeSpans?: unknown } | null)?.scopeSpans;
    if (!Array.isArray(scopes)) continue;
    for (const scope of scopes as unknown[]) {
      const spans = (scope as { spans?: unknown } | null)?.spans;
      if (!Array.isArray(spans)) continue;
      count += spans.length;
      if (count > limit) throw tooManySpans(limit);
    }
  }
}

function decodeParsed(body: unknown, truncation: Truncation): DecodedTraces {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new MalformedPayloadError(
      'invalid OTLP/JSON: the body must be an ExportTraceServiceRequest object ({"resourceSpans": [...]})',
    );
  }
  const parsed = TraceRequestJsonSchema.safeParse(body);
  if (!parsed.success) {
    throw new MalformedPayloadError(`invalid OTLP/JSON: ${describeIssues(parsed.error)}`);
  }
  const result: DecodedTraces = { rows: [], rejectedSpans: 0, problems: [], truncatedValues: 0 };
  const resourceSpans = parsed.data.resourceSpans ?? [];
  for (let resourceIndex = 0; resourceIndex < resourceSpans.length; resourceIndex++) {
    const resource = resourceSpans[resourceIndex]!;
    const resourceAttributes: Record<string, string> = {};
    try {
      addAttributes(
        resourceAttributes,
        resource.resource?.attributes,
        `resourceSpans.${resourceIndex}.resource.attributes`,
        truncation,
        true,
      );
    } catch (error) {
      if (!(error instanceof InvalidValueError)) throw error;
      throw new MalformedPayloadError(`invalid OTLP/JSON: ${error.message}`, { cause: error });
    }
    const serviceName = resourceAttributes['service.name'] ?? '';
    const scopes = resource.scopeSpans ?? [];
    for (let scopeIndex = 0; scopeIndex < scopes.length; scopeIndex++) {
      const scope = scopes[scopeIndex]!;
      const spans = scope.spans ?? [];
      for (let spanIndex = 0; spanIndex < spans.length; spanIndex++) {
        if (result.problems.length >= MAX_PROBLEMS && !plausibleSpan(spans[spanIndex])) {
          // Certain to be rejected, and no further reason would be reported: count it
          // without zod, whose failures cost ~25 µs a span (50,000 empty spans: seconds).
          result.rejectedSpans += 1;
          continue;
        }
        const where = `resourceSpans[${resourceIndex}].scopeSpans[${scopeIndex}].spans[${spanIndex}]`;
        const span = SpanJsonSchema.safeParse(spans[spanIndex]);
        if (!span.success) {
          addProblem(result, `${where}: ${describeIssues(span.error)}`);
          continue;
        }
        let row: SpanRow | string;
        try {
          row = toSpanRow(
            span.data,
            resourceAttributes,
            serviceName,
            scope.scope?.name ?? '',
            scope.scope?.version ?? '',
            truncation,
          );
        } catch (error) {
          if (!(error instanceof InvalidValueError)) throw error;
          row = error.message;
        }
        if (typeof row === 'string') addProblem(result, `${where}: ${row}`);
        else result.rows.push(row);
      }
    }
  }
  result.truncatedValues = truncation.count;
  return result;
}

/** False only for a span `SpanJsonSchema` is sure to refuse: not an object, ids of the wrong length, no times. */
function plausibleSpan(span: unknown): boolean {
  if (typeof span !== 'object' || span === null) return false;
  const { traceId, spanId, startTimeUnixNano, endTimeUnixNano } = span as Record<string, unknown>;
  return (
    typeof traceId === 'string' &&
    traceId.length === 32 &&
    typeof spanId === 'string' &&
    spanId.length === 16 &&
    startTimeUnixNano !== undefined &&
    endTimeUnixNano !== undefined
  );
}

const TWO_32 = BigInt(4294967296);

/** A non-negative JSON integer as 32-bit halves; `undefined` past 2^64. */
function toHalves(
  value: string | number | null | undefined,
): [high: number, low: number] | undefined {
  if (value === undefined || value === null) return [0, 0];
  const big = BigInt(value);
  if (big < BigInt(0) || big >= TWO_32 * TWO_32) return undefined;
  return [Number(big / TWO_32), Number(big % TWO_32)];
}

function toSpanRow(
  span: SpanJson,
  resourceAttributes: Record<string, string>,
  serviceName: string,
  scopeName: string,
  scopeVersion: string,
  truncation: Truncation,
): SpanRow | string {
  const start = toHalves(span.startTimeUnixNano);
  const end = toHalves(span.endTimeUnixNano);
  if (start === undefined || end === undefined) return 'timestamps must fit in 64 bits';
  const row: SpanRow = {
    Timestamp: '',
    TraceId: idHex(span.traceId),
    SpanId: idHex(span.spanId),
    ParentSpanId: idHex(span.parentSpanId ?? ''),
    TraceState: truncation.value(span.traceState ?? ''),
    SpanName: truncation.name(span.name ?? ''),
    SpanKind: spanKindName(span.kind ?? 0),
    ServiceName: serviceName,
    ResourceAttributes: resourceAttributes,
    ScopeName: truncation.name(scopeName),
    ScopeVersion: truncation.name(scopeVersion),
    SpanAttributes: Object.create(null) as Record<string, string>,
    Duration: '',
    StatusCode: statusCodeName(span.status?.code ?? 0),
    StatusMessage: truncation.value(span.status?.message ?? ''),
    Events: { Timestamp: [], Name: [], Attributes: [] },
    Links: { TraceId: [], SpanId: [], TraceState: [], Attributes: [] },
  };
  addAttributes(row.SpanAttributes, span.attributes, 'attributes', truncation);
  const problem = spanProblem(
    span.traceId.length / 2,
    row.TraceId === '',
    span.spanId.length / 2,
    row.SpanId === '',
    (span.parentSpanId ?? '').length / 2,
    start[0],
    start[1],
    end[0],
    end[1],
  );
  if (problem !== undefined) return problem;
  const events = span.events ?? [];
  for (let index = 0; index < events.length; index++) {
    const event = events[index]!;
    const time = toHalves(event.timeUnixNano);
    if (time === undefined || time[0] > MAX_TIMESTAMP_HIGH) return 'event timestamp out of range';
    const attributes: Record<string, string> = {};
    addAttributes(attributes, event.attributes, `events.${index}.attributes`, truncation);
    row.Events.Timestamp.push(u64ToDecimal(time[0], time[1]));
    row.Events.Name.push(truncation.name(event.name ?? ''));
    row.Events.Attributes.push(attributes);
  }
  const links = span.links ?? [];
  for (let index = 0; index < links.length; index++) {
    const link = links[index]!;
    const attributes: Record<string, string> = {};
    addAttributes(attributes, link.attributes, `links.${index}.attributes`, truncation);
    row.Links.TraceId.push(idHex(link.traceId ?? ''));
    row.Links.SpanId.push(idHex(link.spanId ?? ''));
    row.Links.TraceState.push(truncation.value(link.traceState ?? ''));
    row.Links.Attributes.push(attributes);
  }
  row.Timestamp = u64ToDecimal(start[0], start[1]);
  row.Duration = u64Difference(start[0], start[1], end[0], end[1])!;
  return row;
}

/** Lower-case hex; `''` when all zeros (as the exporter writes empty ids). */
function idHex(hex: string): string {
  const lower = hex.toLowerCase();
  return /^0*$/.test(lower) ? '' : lower;
}

/** An attribute value that cannot be stored; rejects its span (or, in a resource, the request). */
class InvalidValueError extends Error {
  override readonly name = 'InvalidValueError';
}

/** Attributes into `target`, keys and values cut to their limits (`resource`: resource attributes). */
function addAttributes(
  target: Record<string, string>,
  attributes: KeyValueJson[] | null | undefined,
  where: string,
  truncation: Truncation,
  resource = false,
): void {
  if (attributes === undefined || attributes === null) return;
  for (let index = 0; index < attributes.length; index++) {
    const attribute = attributes[index]!;
    const key = attribute.key;
    const value = valueAsString(attribute.value, `${where}.${index}.value`);
    setAttribute(target, truncation.name(key), truncation.attribute(key, value, resource));
  }
}

function valueAsString(value: AnyValueJson | undefined, where: string): string {
  if (value === undefined) return '';
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue ? 'true' : 'false';
  if (value.intValue !== undefined) {
    return int64Text(value.intValue, where) ?? formatDouble(Number(value.intValue));
  }
  if (value.doubleValue !== undefined) return formatDouble(Number(value.doubleValue));
  if (value.bytesValue !== undefined) return base64Of(Buffer.from(value.bytesValue, 'base64'));
  if (value.arrayValue !== undefined || value.kvlistValue !== undefined) {
    try {
      return valueJson(value, where, 1);
    } catch (error) {
      if (error instanceof UnsupportedJsonValue) return '';
      throw error;
    }
  }
  return '';
}

const INT64_MIN = -(BigInt(2) ** BigInt(63));
const INT64_MAX = BigInt(2) ** BigInt(63) - BigInt(1);

/**
 * Decimal text of an int64. A JSON number past the int64 range (the OTel JS JSON
 * serializer sends `intValue: 1e21` for a large integral double; its protobuf
 * serializer sends a double) gives `undefined`, to be rendered as a double.
 */
function int64Text(value: string | number, where: string): string | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  const big = BigInt(value);
  if (big < INT64_MIN || big > INT64_MAX) {
    if (typeof value === 'number') return undefined;
    throw new InvalidValueError(`${where}.intValue: out of the int64 range`);
  }
  return big.toString();
}

/** Checks one nested item with the one-level zod schema. */
function nested<T>(
  schema: { safeParse(value: unknown): z.ZodSafeParseResult<T> },
  item: unknown,
  where: string,
): T {
  const parsed = schema.safeParse(item);
  if (!parsed.success) throw new InvalidValueError(describeIssues(parsed.error, where));
  return parsed.data;
}

function valueJson(value: AnyValueJson | undefined, where: string, depth: number): string {
  if (value === undefined) return 'null';
  if (value.stringValue !== undefined) return jsonQuote(value.stringValue);
  if (value.boolValue !== undefined) return value.boolValue ? 'true' : 'false';
  if (value.intValue !== undefined) {
    return int64Text(value.intValue, where) ?? jsonDouble(Number(value.intValue));
  }
  if (value.doubleValue !== undefined) return jsonDouble(Number(value.doubleValue));
  if (value.bytesValue !== undefined) {
    return jsonQuote(base64Of(Buffer.from(value.bytesValue, 'base64')));
  }
  if (
    (value.arrayValue !== undefined || value.kvlistValue !== undefined) &&
    depth > MAX_VALUE_DEPTH
  ) {
    throw new InvalidValueError(`${where}: attribute value nested deeper than ${MAX_VALUE_DEPTH}`);
  }
  if (value.arrayValue !== undefined) {
    const items = value.arrayValue.values ?? [];
    let text = '[';
    for (let index = 0; index < items.length; index++) {
      const path = `${where}.arrayValue.values.${index}`;
      if (index > 0) text += ',';
      text += valueJson(nested(AnyValueJsonSchema, items[index], path), path, depth + 1);
    }
    return text + ']';
  }
  if (value.kvlistValue !== undefined) {
    const entries = value.kvlistValue.values ?? [];
    return jsonObject(
      entries.map((item, index) => {
        const path = `${where}.kvlistValue.values.${index}`;
        const entry = nested(KeyValueJsonSchema, item, path);
        return [entry.key, valueJson(entry.value, `${path}.value`, depth + 1)];
      }),
    );
  }
  return 'null';
}
