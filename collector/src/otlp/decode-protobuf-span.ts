/**
 * One OTLP `Span` (with its events, links, status and attributes) from protobuf
 * bytes to a row of the Native columns of `otel_traces`: the inner loop of
 * `decode-protobuf.ts`, kept in one module (with the attribute decoder it calls
 * for every attribute) so that nothing on it goes through another module's bindings.
 */
import type { MapColumn } from '../store/native-map-column.js';
import type { ByteSource, Sink } from '../store/native-sink.js';
import type { SpanColumns } from '../store/span-row-native.js';
import { listJson, scalarText } from './decode-protobuf-values.js';
import type { Reader } from './protobuf-reader.js';
import {
  allZero,
  formatDouble,
  MAX_TIMESTAMP_HIGH,
  spanKindName,
  spanProblem,
  statusCodeName,
  truncatedUtf8,
  UnsupportedJsonValue,
  valueLimitOf,
} from './to-span-rows.js';

/** What the spans of one scope share: where its resource's service name and its scope's strings are. */
export interface ScopeContext {
  /** `ServiceName` record in `columns.resourceStage.values`, or `-1` (empty). */
  serviceStart: number;
  serviceEnd: number;
  nameStart: number;
  nameEnd: number;
  versionStart: number;
  versionEnd: number;
}

/**
 * Where the fields of the span being decoded are in the request, and what it counted.
 * Attributes, events and links go to their columns as they come; the rest is written
 * from these positions once the span is known to be valid. One per scope, reset span
 * to span.
 */
export class SpanFields {
  traceIdStart = 0;
  traceIdEnd = 0;
  spanIdStart = 0;
  spanIdEnd = 0;
  parentStart = 0;
  parentEnd = 0;
  stateStart = 0;
  stateEnd = 0;
  nameStart = 0;
  nameEnd = 0;
  messageStart = 0;
  messageEnd = 0;
  kind = 0;
  statusCode = 0;
  startHigh = 0;
  startLow = 0;
  endHigh = 0;
  endLow = 0;
  events = 0;
  links = 0;
  /** The first problem of an event or link (the span is rejected for it). */
  linkProblem: string | undefined = undefined;

  reset(): void {
    this.traceIdStart = this.traceIdEnd = this.spanIdStart = this.spanIdEnd = 0;
    this.parentStart = this.parentEnd = this.stateStart = this.stateEnd = 0;
    this.nameStart = this.nameEnd = this.messageStart = this.messageEnd = 0;
    this.kind = this.statusCode = 0;
    this.startHigh = this.startLow = this.endHigh = this.endLow = 0;
    this.events = this.links = 0;
    this.linkProblem = undefined;
  }
}

/** Writes one span as a row of `columns`, or returns why it is rejected (nothing written). */
export function decodeSpan(
  reader: Reader,
  end: number,
  columns: SpanColumns,
  scope: ScopeContext,
  fields: SpanFields,
): string | undefined {
  columns.beginRow();
  fields.reset();
  while (reader.pos < end) decodeSpanField(reader, reader.tag(end), end, columns, fields);
  const buffer = reader.buffer;
  const problem =
    spanProblem(
      fields.traceIdEnd - fields.traceIdStart,
      allZero(buffer, fields.traceIdStart, fields.traceIdEnd),
      fields.spanIdEnd - fields.spanIdStart,
      allZero(buffer, fields.spanIdStart, fields.spanIdEnd),
      fields.parentEnd - fields.parentStart,
      fields.startHigh,
      fields.startLow,
      fields.endHigh,
      fields.endLow,
    ) ?? fields.linkProblem;
  if (problem !== undefined) {
    columns.dropRow();
    return problem;
  }
  writeSpanRow(reader, columns, scope, fields);
  return undefined;
}

/** One field of a `Span`: its position or value into `fields`, attributes, events and links into `columns`. */
function decodeSpanField(
  reader: Reader,
  tag: number,
  end: number,
  columns: SpanColumns,
  fields: SpanFields,
): void {
  switch (tag >>> 3) {
    case 1:
      fields.traceIdStart = reader.bytes(tag, end, 'Span');
      fields.traceIdEnd = reader.pos;
      return;
    case 2:
      fields.spanIdStart = reader.bytes(tag, end, 'Span');
      fields.spanIdEnd = reader.pos;
      return;
    case 3:
      fields.stateStart = reader.bytes(tag, end, 'Span');
      fields.stateEnd = reader.pos;
      return;
    case 4:
      fields.parentStart = reader.bytes(tag, end, 'Span');
      fields.parentEnd = reader.pos;
      return;
    case 5:
      fields.nameStart = reader.bytes(tag, end, 'Span');
      fields.nameEnd = reader.pos;
      return;
    case 6:
      fields.kind = reader.uint32Field(tag, end, 'Span');
      return;
    case 7:
      reader.fixed64Field(tag, end, 'Span');
      fields.startLow = reader.low;
      fields.startHigh = reader.high;
      return;
    case 8:
      reader.fixed64Field(tag, end, 'Span');
      fields.endLow = reader.low;
      fields.endHigh = reader.high;
      return;
    case 9:
      decodeKeyValue(reader, reader.message(tag, end, 'Span'), columns.attributes, false);
      return;
    case 11:
      fields.events += 1;
      fields.linkProblem ??= decodeEvent(reader, reader.message(tag, end, 'Span'), columns);
      return;
    case 13:
      fields.links += 1;
      fields.linkProblem ??= decodeLink(reader, reader.message(tag, end, 'Span'), columns);
      return;
    case 15:
      decodeStatus(reader, reader.message(tag, end, 'Span'), fields);
      return;
    default:
      reader.skip(tag & 7, end);
  }
}

function decodeStatus(reader: Reader, end: number, fields: SpanFields): void {
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 2) {
      fields.messageStart = reader.bytes(tag, end, 'Status');
      fields.messageEnd = reader.pos;
    } else if (field === 3) {
      fields.statusCode = reader.uint32Field(tag, end, 'Status');
    } else reader.skip(tag & 7, end);
  }
}

/** The row of a valid span: its fields, its scope's and resource's, its duration. */
function writeSpanRow(
  reader: Reader,
  columns: SpanColumns,
  scope: ScopeContext,
  fields: SpanFields,
): void {
  const buffer = reader.buffer;
  columns.attributes.end();
  columns.timestamps.u64(fields.startHigh, fields.startLow);
  columns.traceIds.hex(buffer, fields.traceIdStart, fields.traceIdEnd);
  columns.spanIds.hex(buffer, fields.spanIdStart, fields.spanIdEnd);
  putId(columns.parentSpanIds, buffer, fields.parentStart, fields.parentEnd);
  reader.put(columns.traceStates, fields.stateStart, fields.stateEnd, reader.maxValue);
  reader.put(columns.spanNames, fields.nameStart, fields.nameEnd, reader.maxName);
  columns.spanKinds.string(spanKindName(fields.kind));
  const stage = columns.resourceStage;
  if (scope.serviceStart < 0) columns.serviceNames.varint(0);
  else columns.serviceNames.append(stage.values.buffer, scope.serviceStart, scope.serviceEnd);
  columns.resource.appendRow(stage);
  reader.put(columns.scopeNames, scope.nameStart, scope.nameEnd, reader.maxName);
  reader.put(columns.scopeVersions, scope.versionStart, scope.versionEnd, reader.maxName);
  // end >= start (checked by spanProblem): the difference of the 64-bit values by halves.
  let durationLow = fields.endLow - fields.startLow;
  let durationHigh = fields.endHigh - fields.startHigh;
  if (durationLow < 0) {
    durationLow += 4294967296;
    durationHigh -= 1;
  }
  columns.durations.u64(durationHigh, durationLow);
  columns.statusCodes.string(statusCodeName(fields.statusCode));
  reader.put(columns.statusMessages, fields.messageStart, fields.messageEnd, reader.maxValue);
  columns.eventTotal += fields.events;
  columns.eventOffsets.uint64(columns.eventTotal);
  columns.linkTotal += fields.links;
  columns.linkOffsets.uint64(columns.linkTotal);
  columns.rows += 1;
}

/** An id as hex, or the empty string when it is missing or all zeros. */
function putId(sink: Sink, buffer: ByteSource, start: number, end: number): void {
  if (allZero(buffer, start, end)) sink.varint(0);
  else sink.hex(buffer, start, end);
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
      reader.fixed64Field(tag, end, 'Event');
      if (reader.high > MAX_TIMESTAMP_HIGH) problem = 'event timestamp after 2262-04-11';
      timeHigh = reader.high;
      timeLow = reader.low;
    } else if (field === 2) {
      nameStart = reader.bytes(tag, end, 'Event');
      nameEnd = reader.pos;
    } else if (field === 3) {
      decodeKeyValue(reader, reader.message(tag, end, 'Event'), attributes, false);
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
      const start = reader.bytes(tag, end, 'Link');
      const length = reader.pos - start;
      const expected = field === 1 ? 16 : 8;
      if (length !== 0 && length !== expected) {
        problem = `link ${field === 1 ? 'traceId' : 'spanId'} must be ${expected} bytes, got ${length}`;
      }
      if (field === 1) {
        traceIdStart = start;
        traceIdEnd = reader.pos;
      } else {
        spanIdStart = start;
        spanIdEnd = reader.pos;
      }
    } else if (field === 3) {
      stateStart = reader.bytes(tag, end, 'Link');
      stateEnd = reader.pos;
    } else if (field === 4) {
      decodeKeyValue(reader, reader.message(tag, end, 'Link'), attributes, false);
    } else reader.skip(tag & 7, end);
  }
  attributes.end();
  const buffer = reader.buffer;
  putId(columns.linkTraceIds, buffer, traceIdStart, traceIdEnd);
  putId(columns.linkSpanIds, buffer, spanIdStart, spanIdEnd);
  reader.put(columns.linkTraceStates, stateStart, stateEnd, reader.maxValue);
  return problem;
}

/**
 * One `KeyValue` as an entry of the open map of `target`, the value flattened to
 * a string; key and value cut to their limits (`resource`: a resource attribute).
 */
export function decodeKeyValue(
  reader: Reader,
  end: number,
  target: MapColumn,
  resource: boolean,
): void {
  let keyStart = 0;
  let keyEnd = 0;
  let value: string | undefined = '';
  let valueStart = 0;
  let valueEnd = 0;
  while (reader.pos < end) {
    const tag = reader.tag(end);
    const field = tag >>> 3;
    if (field === 1) {
      keyStart = reader.bytes(tag, end, 'KeyValue');
      keyEnd = reader.pos;
    } else if (field === 2) {
      value = decodeValueAsString(reader, reader.message(tag, end, 'KeyValue'));
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
      case 1:
        reader.valueStart = reader.bytes(tag, end, 'AnyValue');
        reader.valueEnd = reader.pos;
        value = undefined;
        break;
      case 2:
      case 3:
      case 7:
        value = scalarText(reader, tag, end);
        break;
      case 4:
        value = formatDouble(reader.doubleField(tag, end, 'AnyValue'));
        break;
      case 5:
      case 6: {
        const fieldEnd = reader.message(tag, end, 'AnyValue');
        const valueStart = reader.pos;
        try {
          value = listJson(reader, tag, fieldEnd, 1, false);
        } catch (error) {
          if (!(error instanceof UnsupportedJsonValue)) throw error;
          // Go's json.Marshal fails on NaN/Inf and AsString() then returns "".
          // The rest of the value's wire format is still checked (lenient: NaN renders as null).
          value = '';
          reader.pos = valueStart;
          listJson(reader, tag, fieldEnd, 1, true);
        }
        reader.pos = fieldEnd;
        break;
      }
      default:
        reader.skip(tag & 7, end);
    }
  }
  return value;
}
