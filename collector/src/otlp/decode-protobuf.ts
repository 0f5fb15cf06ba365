/**
 * A hand-written decoder of OTLP `ExportTraceServiceRequest` protobuf bytes
 * straight into the Native columns of `otel_traces` (`SpanColumns`): no message
 * objects and no row objects; ids written as hex from the bytes, ASCII strings
 * copied as they are, nanosecond timestamps as 64-bit halves, attribute maps
 * entry by entry into the map columns. It is the hot path of ingest; see the
 * README for the comparison with protobufjs that chose a hand-written decoder.
 *
 * Field numbers: opentelemetry-proto `collector/trace/v1/trace_service.proto`,
 * `trace/v1/trace.proto`, `common/v1/common.proto`, `resource/v1/resource.proto`.
 * Unknown fields are skipped; a broken wire format (truncation, a bad wire type,
 * a length past the end) throws `MalformedPayloadError` (400); a well-formed span
 * that cannot be stored (bad id length, end before start, …) is rejected on its
 * own and counted for `partialSuccess`. The wire reader is `protobuf-reader.ts`,
 * a span `decode-protobuf-span.ts`, attribute values `decode-protobuf-values.ts`.
 */
import { MalformedPayloadError } from '../errors.js';
import { nativeToSpanRows, spanColumns, type SpanColumns } from '../store/span-row-native.js';
import {
  decodeKeyValue,
  decodeSpan,
  SpanFields,
  type ScopeContext,
} from './decode-protobuf-span.js';
import { Reader } from './protobuf-reader.js';
import {
  addProblem,
  DEFAULT_DECODE_LIMITS,
  MAX_PROBLEMS,
  tooManySpans,
  type DecodeLimits,
  type DecodedTraces,
  type EncodedTraces,
  type Rejections,
} from './to-span-rows.js';

/** Decodes an `ExportTraceServiceRequest` into rows; throws `MalformedPayloadError` on broken bytes. */
export function decodeTraceRequestProtobuf(
  bytes: Uint8Array,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): DecodedTraces {
  const { block, rejectedSpans, problems, truncatedValues } = decodeTraceRequestProtobufToNative(
    bytes,
    limits,
  );
  return { rows: nativeToSpanRows(block), rejectedSpans, problems, truncatedValues };
}

/**
 * Decodes an `ExportTraceServiceRequest` straight into one Native block of
 * `otel_traces` rows (no row objects); throws `MalformedPayloadError` on broken
 * bytes and `PayloadTooLargeError` as soon as it counts more than `limits.maxSpans`
 * spans; cuts names and values to the limits (`truncatedValues`).
 */
export function decodeTraceRequestProtobufToNative(
  bytes: Uint8Array,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): EncodedTraces {
  const reader = new Reader(bytes, limits);
  const columns = spanColumns();
  const rejections: Rejections = { rejectedSpans: 0, problems: [] };
  const end = bytes.byteLength;
  let resourceIndex = 0;
  try {
    while (reader.pos < end) {
      const tag = reader.tag(end);
      if (tag >>> 3 === 1) {
        const fieldEnd = reader.message(tag, end, 'ExportTraceServiceRequest');
        decodeResourceSpans(reader, fieldEnd, columns, rejections, resourceIndex++);
        reader.pos = fieldEnd;
      } else reader.skip(tag & 7, end);
    }
  } catch (error) {
    if (error instanceof RangeError) {
      throw new MalformedPayloadError('invalid protobuf: message nested too deeply', {
        cause: error,
      });
    }
    throw error;
  }
  const spans = columns.rows;
  return {
    block: columns.finish(),
    spans,
    ...rejections,
    truncatedValues: reader.truncation.count,
  };
}

/** `service.name` as a key record (length byte + UTF-8). */
const SERVICE_NAME_KEY = Buffer.from('\u000cservice.name', 'latin1');

function decodeResourceSpans(
  reader: Reader,
  end: number,
  columns: SpanColumns,
  rejections: Rejections,
  resourceIndex: number,
): void {
  // The resource's attributes, written once to a one-row map, are copied for each span.
  const stage = columns.resourceStage;
  stage.reset();
  stage.begin();
  let scopeSpans: number[] | undefined;
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 1) {
      const resourceEnd = reader.message(tag, end, 'ResourceSpans');
      // A repeated `resource` replaces the earlier one.
      stage.reset();
      stage.begin();
      while (reader.pos < resourceEnd) {
        const resourceTag = reader.tag(resourceEnd);
        if (resourceTag >>> 3 === 1) {
          decodeKeyValue(reader, reader.message(resourceTag, resourceEnd, 'Resource'), stage, true);
        } else reader.skip(resourceTag & 7, resourceEnd);
      }
    } else if (field === 2) {
      (scopeSpans ??= []).push(reader.bytes(tag, end, 'ResourceSpans'), reader.pos);
    } else reader.skip(tag & 7, end);
  }
  stage.end();
  if (scopeSpans === undefined) return;
  const serviceStart = stage.findValue(SERVICE_NAME_KEY);
  const resourceEnd = reader.pos;
  for (let index = 0; index < scopeSpans.length; index += 2) {
    reader.pos = scopeSpans[index]!;
    const scope: ScopeContext = {
      serviceStart,
      serviceEnd: stage.foundValueEnd,
      nameStart: 0,
      nameEnd: 0,
      versionStart: 0,
      versionEnd: 0,
    };
    const at = { resourceIndex, scopeIndex: index / 2 };
    decodeScopeSpans(reader, scopeSpans[index + 1]!, columns, rejections, scope, at);
  }
  reader.pos = resourceEnd;
}

/** The `InstrumentationScope`'s name and version, into `scope`. */
function decodeScope(reader: Reader, end: number, scope: ScopeContext): void {
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 1) {
      scope.nameStart = reader.bytes(tag, end, 'InstrumentationScope');
      scope.nameEnd = reader.pos;
    } else if (field === 2) {
      scope.versionStart = reader.bytes(tag, end, 'InstrumentationScope');
      scope.versionEnd = reader.pos;
    } else reader.skip(tag & 7, end);
  }
}

function decodeScopeSpans(
  reader: Reader,
  end: number,
  columns: SpanColumns,
  rejections: Rejections,
  scope: ScopeContext,
  at: { resourceIndex: number; scopeIndex: number },
): void {
  let spans: number[] | undefined;
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 1) {
      decodeScope(reader, reader.message(tag, end, 'ScopeSpans'), scope);
    } else if (field === 2) {
      const start = reader.bytes(tag, end, 'ScopeSpans');
      // Counted before any span of the scope is decoded: a request of a million
      // empty spans stops here, at the limit.
      if (++reader.spans > reader.maxSpans) throw tooManySpans(reader.maxSpans);
      (spans ??= []).push(start, reader.pos);
    } else reader.skip(tag & 7, end);
  }
  if (spans === undefined) return;
  const fields = new SpanFields();
  for (let index = 0; index < spans.length; index += 2) {
    reader.pos = spans[index]!;
    const problem = decodeSpan(reader, spans[index + 1]!, columns, scope, fields);
    if (problem !== undefined && rejections.problems.length >= MAX_PROBLEMS) {
      rejections.rejectedSpans += 1; // no further reason is reported: no message to build
    } else if (problem !== undefined) {
      addProblem(
        rejections,
        `resourceSpans[${at.resourceIndex}].scopeSpans[${at.scopeIndex}].spans[${index / 2}]: ${problem}`,
      );
    }
  }
}
