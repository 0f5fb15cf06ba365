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
 * own and counted for `partialSuccess`.
 */
import { MalformedPayloadError } from '../errors.js';
import {
  nativeToSpanRows,
  spanColumns,
  type ByteSource,
  type MapColumn,
  type Sink,
  type SpanColumns,
} from '../store/span-row-native.js';
import {
  addProblem,
  DEFAULT_DECODE_LIMITS,
  allZero,
  base64Of,
  formatDouble,
  jsonDouble,
  jsonObject,
  jsonQuote,
  MAX_PROBLEMS,
  MAX_TIMESTAMP_HIGH,
  MAX_VALUE_DEPTH,
  spanKindName,
  spanProblem,
  statusCodeName,
  tooManySpans,
  truncatedUtf8,
  Truncation,
  u64ToDecimal,
  UnsupportedJsonValue,
  valueLimitOf,
  type DecodeLimits,
  type DecodedTraces,
  type EncodedTraces,
  type Rejections,
} from './to-span-rows.js';

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
const WIRE_TYPE_NAMES = ['VARINT', 'I64', 'LEN', 'SGROUP', 'EGROUP', 'I32', '6', '7'];

/** Strings up to this many UTF-8 bytes go through the cache below. */
const CACHED_STRING_MAX_BYTES = 64;
const STRING_CACHE_SIZE = 4096;
const STRING_CACHE_MASK = STRING_CACHE_SIZE - 1;
const STRING_CACHE: (string | undefined)[] = new Array<string | undefined>(STRING_CACHE_SIZE).fill(
  undefined,
);
const STRING_CACHE_LENGTHS = new Int32Array(STRING_CACHE_SIZE);
const STRING_CACHE_BYTES = new Uint8Array(STRING_CACHE_SIZE * CACHED_STRING_MAX_BYTES);

class Reader {
  readonly buffer: ByteSource;
  readonly view: DataView;
  pos = 0;
  /** Low and high 32 bits of the last 64-bit value read. */
  low = 0;
  high = 0;
  /** Where the last string value was (`decodeValueAsString`). */
  valueStart = 0;
  valueEnd = 0;
  /** Spans seen so far (valid or not), against `limits.maxSpans`. */
  spans = 0;
  readonly maxSpans: number;
  readonly maxName: number;
  readonly maxValue: number;
  /** Values of at most this many bytes (or UTF-16 units) fit every limit. */
  readonly fitsAll: number;
  readonly fitsAllChars: number;
  readonly truncation: Truncation;

  constructor(bytes: Uint8Array, limits: DecodeLimits) {
    this.buffer = (
      Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    ) as ByteSource;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.maxSpans = limits.maxSpans;
    this.maxName = limits.maxNameBytes;
    this.maxValue = limits.maxValueBytes;
    this.truncation = new Truncation(limits);
    this.fitsAll = this.truncation.fitsAll;
    this.fitsAllChars = Math.floor(this.fitsAll / 3);
  }

  /** Writes the UTF-8 bytes `[start, end)` as a `String` on `sink`, cut to `limit` bytes. */
  put(sink: Sink, start: number, end: number, limit: number): void {
    if (end - start <= limit) sink.utf8(this.buffer, start, end);
    else this.putCut(sink, start, end, limit);
  }

  putCut(sink: Sink, start: number, end: number, limit: number): void {
    sink.string(truncatedUtf8(this.buffer, start, end, limit));
    this.truncation.count += 1;
  }

  fail(message: string): never {
    throw new MalformedPayloadError(`invalid protobuf: ${message} (at byte ${this.pos})`);
  }

  /** A varint of up to 64 bits, keeping the low 32 bits (tags, lengths, enums, bools). */
  uint32(end: number): number {
    const buffer = this.buffer;
    let pos = this.pos;
    if (pos >= end) this.fail('truncated varint');
    let byte = buffer[pos++]!;
    let value = byte & 0x7f;
    if (byte < 0x80) {
      this.pos = pos;
      return value;
    }
    for (let shift = 7; shift < 35; shift += 7) {
      if (pos >= end) this.fail('truncated varint');
      byte = buffer[pos++]!;
      value |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    // Bytes 6 to 10 only carry bits above 32.
    for (let index = 5; index < 10; index++) {
      if (pos >= end) this.fail('truncated varint');
      if (buffer[pos++]! < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** A varint into `low`/`high`. */
  uint64(end: number): void {
    const buffer = this.buffer;
    let low = 0;
    let high = 0;
    let pos = this.pos;
    for (let index = 0; index < 10; index++) {
      if (pos >= end) this.fail('truncated varint');
      const byte = buffer[pos++]!;
      if (index < 4) low |= (byte & 0x7f) << (index * 7);
      else if (index === 4) {
        low |= (byte & 0x0f) << 28;
        high |= (byte & 0x7f) >> 4;
      } else high |= (byte & 0x7f) << (index * 7 - 32);
      if (byte < 0x80) {
        this.pos = pos;
        this.low = low >>> 0;
        this.high = high >>> 0;
        return;
      }
    }
    this.fail('varint longer than 10 bytes');
  }

  fixed64(end: number): void {
    const pos = this.pos;
    if (pos + 8 > end) this.fail('truncated fixed64');
    this.low = this.view.getUint32(pos, true);
    this.high = this.view.getUint32(pos + 4, true);
    this.pos = pos + 8;
  }

  double(end: number): number {
    const pos = this.pos;
    if (pos + 8 > end) this.fail('truncated double');
    this.pos = pos + 8;
    return this.view.getFloat64(pos, true);
  }

  /** Reads a length prefix and returns where the field ends. */
  lengthEnd(end: number): number {
    const start = this.pos;
    const length = this.uint32(end);
    // A length needs at most 5 varint bytes; longer ones would lose their high bits above.
    if (this.pos - start > 5 || (this.pos - start === 5 && this.buffer[start + 4]! > 0x0f)) {
      this.fail('length does not fit in 32 bits');
    }
    const fieldEnd = this.pos + length;
    if (fieldEnd > end) this.fail(`length ${length} runs past the end of its message`);
    return fieldEnd;
  }

  string(end: number): string {
    const fieldEnd = this.lengthEnd(end);
    const start = this.pos;
    this.pos = fieldEnd;
    return this.text(start, fieldEnd);
  }

  text(start: number, end: number): string {
    const length = end - start;
    if (length === 0) return '';
    if (length > CACHED_STRING_MAX_BYTES) return this.buffer.utf8Slice(start, end);
    // Attribute keys and most values repeat from span to span: look them up by
    // their bytes instead of building (and internalizing) a new string each time.
    const buffer = this.buffer;
    // A hash of a few sampled bytes; the full comparison below settles equality.
    const last = end - 1;
    let hash = Math.imul(length ^ buffer[start]!, 0x9e3779b1);
    hash = Math.imul(hash ^ buffer[last]!, 0x85ebca6b);
    hash = Math.imul(hash ^ buffer[start + (length >> 1)]!, 0xc2b2ae35);
    hash = Math.imul(hash ^ buffer[start + (length >> 2)]!, 0x27d4eb2f);
    hash = Math.imul(hash ^ buffer[last - (length >> 2)]!, 0x165667b1);
    const slot = (hash ^ (hash >>> 15)) & STRING_CACHE_MASK;
    const cached = STRING_CACHE[slot];
    if (cached !== undefined && STRING_CACHE_LENGTHS[slot] === length) {
      const base = slot * CACHED_STRING_MAX_BYTES;
      let same = true;
      for (let index = 0; index < length; index++) {
        if (STRING_CACHE_BYTES[base + index] !== buffer[start + index]) {
          same = false;
          break;
        }
      }
      if (same) return cached;
    }
    const text = buffer.utf8Slice(start, end);
    STRING_CACHE[slot] = text;
    STRING_CACHE_LENGTHS[slot] = length;
    STRING_CACHE_BYTES.set(buffer.subarray(start, end), slot * CACHED_STRING_MAX_BYTES);
    return text;
  }

  skip(wireType: number, end: number): void {
    switch (wireType) {
      case VARINT:
        this.uint32(end);
        return;
      case I64:
        if (this.pos + 8 > end) this.fail('truncated fixed64');
        this.pos += 8;
        return;
      case LEN:
        this.pos = this.lengthEnd(end);
        return;
      case I32:
        if (this.pos + 4 > end) this.fail('truncated fixed32');
        this.pos += 4;
        return;
      default:
        this.fail(`unsupported wire type ${WIRE_TYPE_NAMES[wireType]}`);
    }
  }

  tag(end: number): number {
    const tag = this.uint32(end);
    if (tag >>> 3 === 0) this.fail('field number 0');
    return tag;
  }

  expect(tag: number, wireType: number, message: string): void {
    if ((tag & 7) !== wireType) {
      this.fail(
        `${message} field ${tag >>> 3} has wire type ${WIRE_TYPE_NAMES[tag & 7]}, expected ${WIRE_TYPE_NAMES[wireType]}`,
      );
    }
  }
}

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
        reader.expect(tag, LEN, 'ExportTraceServiceRequest');
        const fieldEnd = reader.lengthEnd(end);
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

/** What the spans of one scope share: where its resource's service name and its scope's strings are. */
interface ScopeContext {
  /** `ServiceName` record in `columns.resourceStage.values`, or `-1` (empty). */
  serviceStart: number;
  serviceEnd: number;
  nameStart: number;
  nameEnd: number;
  versionStart: number;
  versionEnd: number;
}

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
      reader.expect(tag, LEN, 'ResourceSpans');
      const resourceEnd = reader.lengthEnd(end);
      // A repeated `resource` replaces the earlier one.
      stage.reset();
      stage.begin();
      while (reader.pos < resourceEnd) {
        const resourceTag = reader.tag(resourceEnd);
        if (resourceTag >>> 3 === 1) {
          reader.expect(resourceTag, LEN, 'Resource');
          decodeKeyValue(reader, reader.lengthEnd(resourceEnd), stage, true);
        } else reader.skip(resourceTag & 7, resourceEnd);
      }
    } else if (field === 2) {
      reader.expect(tag, LEN, 'ResourceSpans');
      const fieldEnd = reader.lengthEnd(end);
      (scopeSpans ??= []).push(reader.pos, fieldEnd);
      reader.pos = fieldEnd;
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
    decodeScopeSpans(
      reader,
      scopeSpans[index + 1]!,
      columns,
      rejections,
      scope,
      resourceIndex,
      index / 2,
    );
  }
  reader.pos = resourceEnd;
}

function decodeScopeSpans(
  reader: Reader,
  end: number,
  columns: SpanColumns,
  rejections: Rejections,
  scope: ScopeContext,
  resourceIndex: number,
  scopeIndex: number,
): void {
  let spans: number[] | undefined;
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 1) {
      reader.expect(tag, LEN, 'ScopeSpans');
      const scopeEnd = reader.lengthEnd(end);
      while (reader.pos < scopeEnd) {
        const scopeTag = reader.tag(scopeEnd);
        const scopeField = scopeTag >>> 3;
        if (scopeField === 1) {
          reader.expect(scopeTag, LEN, 'InstrumentationScope');
          const fieldEnd = reader.lengthEnd(scopeEnd);
          scope.nameStart = reader.pos;
          scope.nameEnd = reader.pos = fieldEnd;
        } else if (scopeField === 2) {
          reader.expect(scopeTag, LEN, 'InstrumentationScope');
          const fieldEnd = reader.lengthEnd(scopeEnd);
          scope.versionStart = reader.pos;
          scope.versionEnd = reader.pos = fieldEnd;
        } else reader.skip(scopeTag & 7, scopeEnd);
      }
    } else if (field === 2) {
      reader.expect(tag, LEN, 'ScopeSpans');
      const fieldEnd = reader.lengthEnd(end);
      // Counted before any span of the scope is decoded: a request of a million
      // empty spans stops here, at the limit.
      if (++reader.spans > reader.maxSpans) throw tooManySpans(reader.maxSpans);
      (spans ??= []).push(reader.pos, fieldEnd);
      reader.pos = fieldEnd;
    } else reader.skip(tag & 7, end);
  }
  if (spans === undefined) return;
  for (let index = 0; index < spans.length; index += 2) {
    reader.pos = spans[index]!;
    const problem = decodeSpan(reader, spans[index + 1]!, columns, scope);
    if (problem !== undefined && rejections.problems.length >= MAX_PROBLEMS) {
      rejections.rejectedSpans += 1; // no further reason is reported: no message to build
    } else if (problem !== undefined) {
      addProblem(
        rejections,
        `resourceSpans[${resourceIndex}].scopeSpans[${scopeIndex}].spans[${index / 2}]: ${problem}`,
      );
    }
  }
}

/** Writes one span as a row of `columns`, or returns why it is rejected (nothing written). */
function decodeSpan(
  reader: Reader,
  end: number,
  columns: SpanColumns,
  scope: ScopeContext,
): string | undefined {
  const buffer = reader.buffer;
  // Attributes, events and links go to their columns as they come; the rest is
  // written from these positions once the span is known to be valid.
  columns.beginRow();
  let traceIdStart = 0;
  let traceIdEnd = 0;
  let spanIdStart = 0;
  let spanIdEnd = 0;
  let parentStart = 0;
  let parentEnd = 0;
  let stateStart = 0;
  let stateEnd = 0;
  let nameStart = 0;
  let nameEnd = 0;
  let messageStart = 0;
  let messageEnd = 0;
  let kind = 0;
  let statusCode = 0;
  let startHigh = 0;
  let startLow = 0;
  let endHigh = 0;
  let endLow = 0;
  let events = 0;
  let links = 0;
  let linkProblem: string | undefined;
  while (reader.pos < end) {
    const tag = reader.tag(end);
    switch (tag >>> 3) {
      case 1: {
        reader.expect(tag, LEN, 'Span');
        const fieldEnd = reader.lengthEnd(end);
        traceIdStart = reader.pos;
        traceIdEnd = reader.pos = fieldEnd;
        break;
      }
      case 2: {
        reader.expect(tag, LEN, 'Span');
        const fieldEnd = reader.lengthEnd(end);
        spanIdStart = reader.pos;
        spanIdEnd = reader.pos = fieldEnd;
        break;
      }
      case 3: {
        reader.expect(tag, LEN, 'Span');
        const fieldEnd = reader.lengthEnd(end);
        stateStart = reader.pos;
        stateEnd = reader.pos = fieldEnd;
        break;
      }
      case 4: {
        reader.expect(tag, LEN, 'Span');
        const fieldEnd = reader.lengthEnd(end);
        parentStart = reader.pos;
        parentEnd = reader.pos = fieldEnd;
        break;
      }
      case 5: {
        reader.expect(tag, LEN, 'Span');
        const fieldEnd = reader.lengthEnd(end);
        nameStart = reader.pos;
        nameEnd = reader.pos = fieldEnd;
        break;
      }
      case 6:
        reader.expect(tag, VARINT, 'Span');
        kind = reader.uint32(end);
        break;
      case 7:
        reader.expect(tag, I64, 'Span');
        reader.fixed64(end);
        startLow = reader.low;
        startHigh = reader.high;
        break;
      case 8:
        reader.expect(tag, I64, 'Span');
        reader.fixed64(end);
        endLow = reader.low;
        endHigh = reader.high;
        break;
      case 9:
        reader.expect(tag, LEN, 'Span');
        decodeKeyValue(reader, reader.lengthEnd(end), columns.attributes, false);
        break;
      case 11: {
        reader.expect(tag, LEN, 'Span');
        const problem = decodeEvent(reader, reader.lengthEnd(end), columns);
        events += 1;
        linkProblem ??= problem;
        break;
      }
      case 13: {
        reader.expect(tag, LEN, 'Span');
        const problem = decodeLink(reader, reader.lengthEnd(end), columns);
        links += 1;
        linkProblem ??= problem;
        break;
      }
      case 15: {
        reader.expect(tag, LEN, 'Span');
        const statusEnd = reader.lengthEnd(end);
        while (reader.pos < statusEnd) {
          const statusTag = reader.tag(statusEnd);
          const statusField = statusTag >>> 3;
          if (statusField === 2) {
            reader.expect(statusTag, LEN, 'Status');
            const fieldEnd = reader.lengthEnd(statusEnd);
            messageStart = reader.pos;
            messageEnd = reader.pos = fieldEnd;
          } else if (statusField === 3) {
            reader.expect(statusTag, VARINT, 'Status');
            statusCode = reader.uint32(statusEnd);
          } else reader.skip(statusTag & 7, statusEnd);
        }
        break;
      }
      default:
        reader.skip(tag & 7, end);
    }
  }
  const traceIdZero = allZero(buffer, traceIdStart, traceIdEnd);
  const spanIdZero = allZero(buffer, spanIdStart, spanIdEnd);
  const problem =
    spanProblem(
      traceIdEnd - traceIdStart,
      traceIdZero,
      spanIdEnd - spanIdStart,
      spanIdZero,
      parentEnd - parentStart,
      startHigh,
      startLow,
      endHigh,
      endLow,
    ) ?? linkProblem;
  if (problem !== undefined) {
    columns.dropRow();
    return problem;
  }
  columns.attributes.end();
  columns.timestamps.u64(startHigh, startLow);
  columns.traceIds.hex(buffer, traceIdStart, traceIdEnd);
  columns.spanIds.hex(buffer, spanIdStart, spanIdEnd);
  if (allZero(buffer, parentStart, parentEnd)) columns.parentSpanIds.varint(0);
  else columns.parentSpanIds.hex(buffer, parentStart, parentEnd);
  reader.put(columns.traceStates, stateStart, stateEnd, reader.maxValue);
  reader.put(columns.spanNames, nameStart, nameEnd, reader.maxName);
  columns.spanKinds.string(spanKindName(kind));
  const stage = columns.resourceStage;
  if (scope.serviceStart < 0) columns.serviceNames.varint(0);
  else columns.serviceNames.append(stage.values.buffer, scope.serviceStart, scope.serviceEnd);
  columns.resource.appendRow(stage);
  reader.put(columns.scopeNames, scope.nameStart, scope.nameEnd, reader.maxName);
  reader.put(columns.scopeVersions, scope.versionStart, scope.versionEnd, reader.maxName);
  // end >= start (checked above): the difference of the 64-bit values by halves.
  let durationLow = endLow - startLow;
  let durationHigh = endHigh - startHigh;
  if (durationLow < 0) {
    durationLow += 4294967296;
    durationHigh -= 1;
  }
  columns.durations.u64(durationHigh, durationLow);
  columns.statusCodes.string(statusCodeName(statusCode));
  reader.put(columns.statusMessages, messageStart, messageEnd, reader.maxValue);
  columns.eventTotal += events;
  columns.eventOffsets.uint64(columns.eventTotal);
  columns.linkTotal += links;
  columns.linkOffsets.uint64(columns.linkTotal);
  columns.rows += 1;
  return undefined;
}

function decodeEvent(reader: Reader, end: number, columns: SpanColumns): string | undefined {
  let timeHigh = 0;
  let timeLow = 0;
  let nameStart = 0;
  let nameEnd = 0;
  let problem: string | undefined;
  const attributes = columns.eventMaps;
  attributes.begin();
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 1) {
      reader.expect(tag, I64, 'Event');
      reader.fixed64(end);
      if (reader.high > MAX_TIMESTAMP_HIGH) problem = 'event timestamp after 2262-04-11';
      timeHigh = reader.high;
      timeLow = reader.low;
    } else if (field === 2) {
      reader.expect(tag, LEN, 'Event');
      const fieldEnd = reader.lengthEnd(end);
      nameStart = reader.pos;
      nameEnd = reader.pos = fieldEnd;
    } else if (field === 3) {
      reader.expect(tag, LEN, 'Event');
      decodeKeyValue(reader, reader.lengthEnd(end), attributes, false);
    } else reader.skip(tag & 7, end);
  }
  attributes.end();
  columns.eventTimestamps.u64(timeHigh, timeLow);
  reader.put(columns.eventNames, nameStart, nameEnd, reader.maxName);
  return problem;
}

function decodeLink(reader: Reader, end: number, columns: SpanColumns): string | undefined {
  let traceIdStart = 0;
  let traceIdEnd = 0;
  let spanIdStart = 0;
  let spanIdEnd = 0;
  let stateStart = 0;
  let stateEnd = 0;
  let problem: string | undefined;
  const attributes = columns.linkMaps;
  attributes.begin();
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 1 || field === 2) {
      reader.expect(tag, LEN, 'Link');
      const fieldEnd = reader.lengthEnd(end);
      const length = fieldEnd - reader.pos;
      const expected = field === 1 ? 16 : 8;
      if (length !== 0 && length !== expected) {
        problem = `link ${field === 1 ? 'traceId' : 'spanId'} must be ${expected} bytes, got ${length}`;
      }
      if (field === 1) {
        traceIdStart = reader.pos;
        traceIdEnd = fieldEnd;
      } else {
        spanIdStart = reader.pos;
        spanIdEnd = fieldEnd;
      }
      reader.pos = fieldEnd;
    } else if (field === 3) {
      reader.expect(tag, LEN, 'Link');
      const fieldEnd = reader.lengthEnd(end);
      stateStart = reader.pos;
      stateEnd = reader.pos = fieldEnd;
    } else if (field === 4) {
      reader.expect(tag, LEN, 'Link');
      decodeKeyValue(reader, reader.lengthEnd(end), attributes, false);
    } else reader.skip(tag & 7, end);
  }
  attributes.end();
  const buffer = reader.buffer;
  if (allZero(buffer, traceIdStart, traceIdEnd)) columns.linkTraceIds.varint(0);
  else columns.linkTraceIds.hex(buffer, traceIdStart, traceIdEnd);
  if (allZero(buffer, spanIdStart, spanIdEnd)) columns.linkSpanIds.varint(0);
  else columns.linkSpanIds.hex(buffer, spanIdStart, spanIdEnd);
  reader.put(columns.linkTraceStates, stateStart, stateEnd, reader.maxValue);
  return problem;
}

/**
 * One `KeyValue` as an entry of the open map of `target`, the value flattened to
 * a string; key and value cut to their limits (`resource`: a resource attribute).
 */
function decodeKeyValue(reader: Reader, end: number, target: MapColumn, resource: boolean): void {
  let keyStart = 0;
  let keyEnd = 0;
  let value: string | undefined = '';
  let valueStart = 0;
  let valueEnd = 0;
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 1) {
      reader.expect(tag, LEN, 'KeyValue');
      const fieldEnd = reader.lengthEnd(end);
      keyStart = reader.pos;
      keyEnd = reader.pos = fieldEnd;
    } else if (field === 2) {
      reader.expect(tag, LEN, 'KeyValue');
      value = decodeValueAsString(reader, reader.lengthEnd(end));
      valueStart = reader.valueStart;
      valueEnd = reader.valueEnd;
    } else reader.skip(tag & 7, end);
  }
  const buffer = reader.buffer;
  if (keyEnd - keyStart <= reader.maxName) target.key(buffer, keyStart, keyEnd);
  else cutKey(reader, target, keyStart, keyEnd);
  // Most values fit every limit; longer ones are looked at with their key (off the hot path).
  if (value === undefined) {
    if (valueEnd - valueStart <= reader.fitsAll) target.values.utf8(buffer, valueStart, valueEnd);
    else putLongValue(reader, target, keyStart, keyEnd, resource, valueStart, valueEnd, undefined);
  } else if (value.length <= reader.fitsAllChars) target.values.string(value);
  else putLongValue(reader, target, keyStart, keyEnd, resource, 0, 0, value);
}

function cutKey(reader: Reader, target: MapColumn, keyStart: number, keyEnd: number): void {
  target.keyText(truncatedUtf8(reader.buffer, keyStart, keyEnd, reader.maxName));
  reader.truncation.count += 1;
}

/** A value longer than the smallest limit: its bytes (`text` undefined) or its text, within its key's limit. */
function putLongValue(
  reader: Reader,
  target: MapColumn,
  keyStart: number,
  keyEnd: number,
  resource: boolean,
  valueStart: number,
  valueEnd: number,
  text: string | undefined,
): void {
  const key = reader.buffer.utf8Slice(keyStart, keyEnd);
  const truncation = reader.truncation;
  if (text === undefined) {
    reader.put(target.values, valueStart, valueEnd, valueLimitOf(key, resource, truncation.limits));
  } else target.values.string(truncation.attribute(key, text, resource));
}

/**
 * `AnyValue` as pdata's `Value.AsString()` renders it. A string value is not
 * decoded: `undefined`, its bytes at `reader.valueStart … valueEnd`.
 */
function decodeValueAsString(reader: Reader, end: number): string | undefined {
  let value: string | undefined = '';
  while (reader.pos < end) {
    const tag = reader.tag(end);
    switch (tag >>> 3) {
      case 1: {
        reader.expect(tag, LEN, 'AnyValue');
        const fieldEnd = reader.lengthEnd(end);
        reader.valueStart = reader.pos;
        reader.valueEnd = reader.pos = fieldEnd;
        value = undefined;
        break;
      }
      case 2:
        reader.expect(tag, VARINT, 'AnyValue');
        reader.uint64(end);
        value = reader.low !== 0 || reader.high !== 0 ? 'true' : 'false';
        break;
      case 3:
        reader.expect(tag, VARINT, 'AnyValue');
        reader.uint64(end);
        value = int64ToDecimal(reader.high, reader.low);
        break;
      case 4:
        reader.expect(tag, I64, 'AnyValue');
        value = formatDouble(reader.double(end));
        break;
      case 5:
      case 6: {
        reader.expect(tag, LEN, 'AnyValue');
        const fieldEnd = reader.lengthEnd(end);
        const valueStart = reader.pos;
        try {
          value =
            tag >>> 3 === 5
              ? decodeArrayJson(reader, fieldEnd, 1)
              : decodeKeyValueListJson(reader, fieldEnd, 1);
        } catch (error) {
          if (!(error instanceof UnsupportedJsonValue)) throw error;
          // Go's json.Marshal fails on NaN/Inf and AsString() then returns "".
          // The rest of the value's wire format is still checked (lenient: NaN renders as null).
          value = '';
          reader.pos = valueStart;
          if (tag >>> 3 === 5) decodeArrayJson(reader, fieldEnd, 1, true);
          else decodeKeyValueListJson(reader, fieldEnd, 1, true);
        }
        reader.pos = fieldEnd;
        break;
      }
      case 7: {
        reader.expect(tag, LEN, 'AnyValue');
        const fieldEnd = reader.lengthEnd(end);
        value = base64Of(reader.buffer.subarray(reader.pos, fieldEnd));
        reader.pos = fieldEnd;
        break;
      }
      default:
        reader.skip(tag & 7, end);
    }
  }
  return value;
}

function int64ToDecimal(high: number, low: number): string {
  if (high >= 0x80000000) {
    // Two's complement negative.
    const negatedLow = (~low + 1) >>> 0;
    const negatedHigh = (~high + (negatedLow === 0 ? 1 : 0)) >>> 0;
    return '-' + u64ToDecimal(negatedHigh, negatedLow);
  }
  return u64ToDecimal(high, low);
}

/** `AnyValue` as a JSON fragment (Go `json.Marshal` of `Value.AsRaw()`). */
function decodeValueJson(reader: Reader, end: number, depth: number, lenient = false): string {
  let value = 'null';
  while (reader.pos < end) {
    const tag = reader.tag(end);
    switch (tag >>> 3) {
      case 1:
        reader.expect(tag, LEN, 'AnyValue');
        value = jsonQuote(reader.string(end));
        break;
      case 2:
        reader.expect(tag, VARINT, 'AnyValue');
        reader.uint64(end);
        value = reader.low !== 0 || reader.high !== 0 ? 'true' : 'false';
        break;
      case 3:
        reader.expect(tag, VARINT, 'AnyValue');
        reader.uint64(end);
        value = int64ToDecimal(reader.high, reader.low);
        break;
      case 4: {
        reader.expect(tag, I64, 'AnyValue');
        const double = reader.double(end);
        value = lenient && !Number.isFinite(double) ? 'null' : jsonDouble(double);
        break;
      }
      case 5:
      case 6: {
        reader.expect(tag, LEN, 'AnyValue');
        const fieldEnd = reader.lengthEnd(end);
        value =
          tag >>> 3 === 5
            ? decodeArrayJson(reader, fieldEnd, depth + 1, lenient)
            : decodeKeyValueListJson(reader, fieldEnd, depth + 1, lenient);
        reader.pos = fieldEnd;
        break;
      }
      case 7: {
        reader.expect(tag, LEN, 'AnyValue');
        const fieldEnd = reader.lengthEnd(end);
        value = jsonQuote(base64Of(reader.buffer.subarray(reader.pos, fieldEnd)));
        reader.pos = fieldEnd;
        break;
      }
      default:
        reader.skip(tag & 7, end);
    }
  }
  return value;
}

function decodeArrayJson(reader: Reader, end: number, depth: number, lenient = false): string {
  if (depth > MAX_VALUE_DEPTH) reader.fail(`attribute value nested deeper than ${MAX_VALUE_DEPTH}`);
  let text = '[';
  let first = true;
  while (reader.pos < end) {
    const tag = reader.tag(end);
    if (tag >>> 3 === 1) {
      reader.expect(tag, LEN, 'ArrayValue');
      const fieldEnd = reader.lengthEnd(end);
      const item = decodeValueJson(reader, fieldEnd, depth, lenient);
      text += first ? item : ',' + item;
      first = false;
    } else reader.skip(tag & 7, end);
  }
  return text + ']';
}

function decodeKeyValueListJson(
  reader: Reader,
  end: number,
  depth: number,
  lenient = false,
): string {
  if (depth > MAX_VALUE_DEPTH) reader.fail(`attribute value nested deeper than ${MAX_VALUE_DEPTH}`);
  const entries: [string, string][] = [];
  while (reader.pos < end) {
    const tag = reader.tag(end);
    if (tag >>> 3 === 1) {
      reader.expect(tag, LEN, 'KeyValueList');
      const entryEnd = reader.lengthEnd(end);
      let key = '';
      let value = 'null';
      while (reader.pos < entryEnd) {
        const entryTag = reader.tag(entryEnd);
        const field = entryTag >>> 3;
        if (field === 1) {
          reader.expect(entryTag, LEN, 'KeyValue');
          key = reader.string(entryEnd);
        } else if (field === 2) {
          reader.expect(entryTag, LEN, 'KeyValue');
          const valueEnd = reader.lengthEnd(entryEnd);
          value = decodeValueJson(reader, valueEnd, depth, lenient);
        } else reader.skip(entryTag & 7, entryEnd);
      }
      entries.push([key, value]);
    } else reader.skip(tag & 7, end);
  }
  return jsonObject(entries);
}
