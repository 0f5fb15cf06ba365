/**
 * A hand-written decoder of OTLP `ExportTraceServiceRequest` protobuf bytes
 * straight into `otel_traces` rows: no intermediate message objects, ids to hex
 * and nanosecond timestamps to decimal text without BigInt. It is the hot path
 * of ingest; see the README for the comparison with protobufjs that chose it.
 *
 * Field numbers: opentelemetry-proto `collector/trace/v1/trace_service.proto`,
 * `trace/v1/trace.proto`, `common/v1/common.proto`, `resource/v1/resource.proto`.
 * Unknown fields are skipped; a broken wire format (truncation, a bad wire type,
 * a length past the end) throws `MalformedPayloadError` (400); a well-formed span
 * that cannot be stored (bad id length, end before start, …) is rejected on its
 * own and counted for `partialSuccess`.
 */
import { MalformedPayloadError } from '../errors.js';
import type { SpanRow } from '../store/span-store.js';
import {
  addProblem,
  base64Of,
  formatDouble,
  jsonDouble,
  jsonObject,
  jsonQuote,
  MAX_TIMESTAMP_HIGH,
  MAX_VALUE_DEPTH,
  setAttribute,
  spanKindName,
  spanProblem,
  statusCodeName,
  u64Difference,
  u64ToDecimal,
  UnsupportedJsonValue,
  type DecodedTraces,
} from './to-span-rows.js';

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
const WIRE_TYPE_NAMES = ['VARINT', 'I64', 'LEN', 'SGROUP', 'EGROUP', 'I32', '6', '7'];

interface Utf8Buffer extends Buffer {
  utf8Slice(start: number, end: number): string;
  hexSlice(start: number, end: number): string;
}

/** Lower-case hex of an id; `''` when all zeros (the exporter's rule). */
function idHex(buffer: Utf8Buffer, start: number, end: number): string {
  for (let index = start; index < end; index++) {
    if (buffer[index] !== 0) return buffer.hexSlice(start, end);
  }
  return '';
}

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
  readonly buffer: Utf8Buffer;
  readonly view: DataView;
  pos = 0;
  /** Low and high 32 bits of the last 64-bit value read. */
  low = 0;
  high = 0;

  constructor(bytes: Uint8Array) {
    this.buffer = (
      Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    ) as Utf8Buffer;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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

/** Decodes an `ExportTraceServiceRequest`; throws `MalformedPayloadError` on broken bytes. */
export function decodeTraceRequestProtobuf(bytes: Uint8Array): DecodedTraces {
  const reader = new Reader(bytes);
  const result: DecodedTraces = { rows: [], rejectedSpans: 0, problems: [] };
  const end = bytes.byteLength;
  let resourceIndex = 0;
  try {
    while (reader.pos < end) {
      const tag = reader.tag(end);
      if (tag >>> 3 === 1) {
        reader.expect(tag, LEN, 'ExportTraceServiceRequest');
        const fieldEnd = reader.lengthEnd(end);
        decodeResourceSpans(reader, fieldEnd, result, resourceIndex++);
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
  return result;
}

const NO_ATTRIBUTES: Record<string, string> = Object.freeze({}) as Record<string, string>;

function decodeResourceSpans(
  reader: Reader,
  end: number,
  result: DecodedTraces,
  resourceIndex: number,
): void {
  let resourceAttributes: Record<string, string> = NO_ATTRIBUTES;
  let scopeSpans: number[] | undefined;
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 1) {
      reader.expect(tag, LEN, 'ResourceSpans');
      const resourceEnd = reader.lengthEnd(end);
      resourceAttributes = {};
      while (reader.pos < resourceEnd) {
        const resourceTag = reader.tag(resourceEnd);
        if (resourceTag >>> 3 === 1) {
          reader.expect(resourceTag, LEN, 'Resource');
          decodeKeyValue(reader, reader.lengthEnd(resourceEnd), resourceAttributes);
        } else reader.skip(resourceTag & 7, resourceEnd);
      }
    } else if (field === 2) {
      reader.expect(tag, LEN, 'ResourceSpans');
      const fieldEnd = reader.lengthEnd(end);
      (scopeSpans ??= []).push(reader.pos, fieldEnd);
      reader.pos = fieldEnd;
    } else reader.skip(tag & 7, end);
  }
  if (scopeSpans === undefined) return;
  const serviceName = resourceAttributes['service.name'] ?? '';
  const resourceEnd = reader.pos;
  for (let index = 0; index < scopeSpans.length; index += 2) {
    reader.pos = scopeSpans[index]!;
    decodeScopeSpans(
      reader,
      scopeSpans[index + 1]!,
      result,
      resourceAttributes,
      serviceName,
      resourceIndex,
      index / 2,
    );
  }
  reader.pos = resourceEnd;
}

function decodeScopeSpans(
  reader: Reader,
  end: number,
  result: DecodedTraces,
  resourceAttributes: Record<string, string>,
  serviceName: string,
  resourceIndex: number,
  scopeIndex: number,
): void {
  let scopeName = '';
  let scopeVersion = '';
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
          scopeName = reader.string(scopeEnd);
        } else if (scopeField === 2) {
          reader.expect(scopeTag, LEN, 'InstrumentationScope');
          scopeVersion = reader.string(scopeEnd);
        } else reader.skip(scopeTag & 7, scopeEnd);
      }
    } else if (field === 2) {
      reader.expect(tag, LEN, 'ScopeSpans');
      const fieldEnd = reader.lengthEnd(end);
      (spans ??= []).push(reader.pos, fieldEnd);
      reader.pos = fieldEnd;
    } else reader.skip(tag & 7, end);
  }
  if (spans === undefined) return;
  for (let index = 0; index < spans.length; index += 2) {
    reader.pos = spans[index]!;
    const row = decodeSpan(
      reader,
      spans[index + 1]!,
      resourceAttributes,
      serviceName,
      scopeName,
      scopeVersion,
    );
    if (typeof row === 'string') {
      addProblem(
        result,
        `resourceSpans[${resourceIndex}].scopeSpans[${scopeIndex}].spans[${index / 2}]: ${row}`,
      );
    } else result.rows.push(row);
  }
}

const EMPTY_EVENTS: SpanRow['Events'] = Object.freeze({
  Timestamp: Object.freeze([]) as unknown as string[],
  Name: Object.freeze([]) as unknown as string[],
  Attributes: Object.freeze([]) as unknown as Record<string, string>[],
}) as SpanRow['Events'];
const EMPTY_LINKS: SpanRow['Links'] = Object.freeze({
  TraceId: Object.freeze([]) as unknown as string[],
  SpanId: Object.freeze([]) as unknown as string[],
  TraceState: Object.freeze([]) as unknown as string[],
  Attributes: Object.freeze([]) as unknown as Record<string, string>[],
}) as SpanRow['Links'];

/** Returns the row, or why the span is rejected. */
function decodeSpan(
  reader: Reader,
  end: number,
  resourceAttributes: Record<string, string>,
  serviceName: string,
  scopeName: string,
  scopeVersion: string,
): SpanRow | string {
  const row: SpanRow = {
    Timestamp: '',
    TraceId: '',
    SpanId: '',
    ParentSpanId: '',
    TraceState: '',
    SpanName: '',
    SpanKind: 'Unspecified',
    ServiceName: serviceName,
    ResourceAttributes: resourceAttributes,
    ScopeName: scopeName,
    ScopeVersion: scopeVersion,
    SpanAttributes: Object.create(null) as Record<string, string>,
    Duration: '',
    StatusCode: 'Unset',
    StatusMessage: '',
    Events: EMPTY_EVENTS,
    Links: EMPTY_LINKS,
  };
  let traceIdLength = 0;
  let spanIdLength = 0;
  let parentSpanIdLength = 0;
  let startHigh = 0;
  let startLow = 0;
  let endHigh = 0;
  let endLow = 0;
  let linkProblem: string | undefined;
  while (reader.pos < end) {
    const tag = reader.tag(end);
    switch (tag >>> 3) {
      case 1: {
        reader.expect(tag, LEN, 'Span');
        const fieldEnd = reader.lengthEnd(end);
        traceIdLength = fieldEnd - reader.pos;
        row.TraceId = idHex(reader.buffer, reader.pos, fieldEnd);
        reader.pos = fieldEnd;
        break;
      }
      case 2: {
        reader.expect(tag, LEN, 'Span');
        const fieldEnd = reader.lengthEnd(end);
        spanIdLength = fieldEnd - reader.pos;
        row.SpanId = idHex(reader.buffer, reader.pos, fieldEnd);
        reader.pos = fieldEnd;
        break;
      }
      case 3:
        reader.expect(tag, LEN, 'Span');
        row.TraceState = reader.string(end);
        break;
      case 4: {
        reader.expect(tag, LEN, 'Span');
        const fieldEnd = reader.lengthEnd(end);
        parentSpanIdLength = fieldEnd - reader.pos;
        row.ParentSpanId = idHex(reader.buffer, reader.pos, fieldEnd);
        reader.pos = fieldEnd;
        break;
      }
      case 5:
        reader.expect(tag, LEN, 'Span');
        row.SpanName = reader.string(end);
        break;
      case 6:
        reader.expect(tag, VARINT, 'Span');
        row.SpanKind = spanKindName(reader.uint32(end));
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
        decodeKeyValue(reader, reader.lengthEnd(end), row.SpanAttributes);
        break;
      case 11: {
        reader.expect(tag, LEN, 'Span');
        if (row.Events === EMPTY_EVENTS) row.Events = { Timestamp: [], Name: [], Attributes: [] };
        const problem = decodeEvent(reader, reader.lengthEnd(end), row.Events);
        linkProblem ??= problem;
        break;
      }
      case 13: {
        reader.expect(tag, LEN, 'Span');
        if (row.Links === EMPTY_LINKS) {
          row.Links = { TraceId: [], SpanId: [], TraceState: [], Attributes: [] };
        }
        const problem = decodeLink(reader, reader.lengthEnd(end), row.Links);
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
            row.StatusMessage = reader.string(statusEnd);
          } else if (statusField === 3) {
            reader.expect(statusTag, VARINT, 'Status');
            row.StatusCode = statusCodeName(reader.uint32(statusEnd));
          } else reader.skip(statusTag & 7, statusEnd);
        }
        break;
      }
      default:
        reader.skip(tag & 7, end);
    }
  }
  const problem =
    spanProblem(
      row,
      traceIdLength,
      spanIdLength,
      parentSpanIdLength,
      startHigh,
      startLow,
      endHigh,
      endLow,
    ) ?? linkProblem;
  if (problem !== undefined) return problem;
  row.Timestamp = u64ToDecimal(startHigh, startLow);
  row.Duration = u64Difference(startHigh, startLow, endHigh, endLow)!;
  return row;
}

function decodeEvent(reader: Reader, end: number, events: SpanRow['Events']): string | undefined {
  let timestamp = '0';
  let name = '';
  const attributes: Record<string, string> = {};
  let problem: string | undefined;
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 1) {
      reader.expect(tag, I64, 'Event');
      reader.fixed64(end);
      if (reader.high > MAX_TIMESTAMP_HIGH) problem = 'event timestamp after 2262-04-11';
      timestamp = u64ToDecimal(reader.high, reader.low);
    } else if (field === 2) {
      reader.expect(tag, LEN, 'Event');
      name = reader.string(end);
    } else if (field === 3) {
      reader.expect(tag, LEN, 'Event');
      decodeKeyValue(reader, reader.lengthEnd(end), attributes);
    } else reader.skip(tag & 7, end);
  }
  events.Timestamp.push(timestamp);
  events.Name.push(name);
  events.Attributes.push(attributes);
  return problem;
}

function decodeLink(reader: Reader, end: number, links: SpanRow['Links']): string | undefined {
  let traceId = '';
  let spanId = '';
  let traceState = '';
  const attributes: Record<string, string> = {};
  let problem: string | undefined;
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
      const hex = idHex(reader.buffer, reader.pos, fieldEnd);
      if (field === 1) traceId = hex;
      else spanId = hex;
      reader.pos = fieldEnd;
    } else if (field === 3) {
      reader.expect(tag, LEN, 'Link');
      traceState = reader.string(end);
    } else if (field === 4) {
      reader.expect(tag, LEN, 'Link');
      decodeKeyValue(reader, reader.lengthEnd(end), attributes);
    } else reader.skip(tag & 7, end);
  }
  links.TraceId.push(traceId);
  links.SpanId.push(spanId);
  links.TraceState.push(traceState);
  links.Attributes.push(attributes);
  return problem;
}

/** One `KeyValue` into `target` with the value flattened to a string. */
function decodeKeyValue(reader: Reader, end: number, target: Record<string, string>): void {
  let key = '';
  let value = '';
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 1) {
      reader.expect(tag, LEN, 'KeyValue');
      key = reader.string(end);
    } else if (field === 2) {
      reader.expect(tag, LEN, 'KeyValue');
      value = decodeValueAsString(reader, reader.lengthEnd(end));
    } else reader.skip(tag & 7, end);
  }
  setAttribute(target, key, value);
}

/** `AnyValue` as pdata's `Value.AsString()` renders it. */
function decodeValueAsString(reader: Reader, end: number): string {
  let value = '';
  while (reader.pos < end) {
    const tag = reader.tag(end);
    switch (tag >>> 3) {
      case 1:
        reader.expect(tag, LEN, 'AnyValue');
        value = reader.string(end);
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
