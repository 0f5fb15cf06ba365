/**
 * OTLP `AnyValue` protobuf rendered the way pdata's `Value.AsString()` does: bool,
 * int and bytes values as text, arrays and maps as JSON as Go's `json.Marshal`
 * writes it. The string and double cases (and the attribute entry around them)
 * are in `decode-protobuf-span.ts`, on the hot path.
 */
import type { Reader } from './protobuf-reader.js';
import {
  base64Of,
  jsonDouble,
  jsonObject,
  jsonQuote,
  MAX_VALUE_DEPTH,
  u64ToDecimal,
} from './to-span-rows.js';

/**
 * The `bool_value` (2), `int_value` (3) or `bytes_value` (7) field of an `AnyValue`
 * as `AsString()` renders it (bytes as base64; in JSON, a quoted string).
 */
export function scalarText(reader: Reader, tag: number, end: number): string {
  if (tag >>> 3 === 7) {
    const fieldEnd = reader.message(tag, end, 'AnyValue');
    const text = base64Of(reader.buffer.subarray(reader.pos, fieldEnd));
    reader.pos = fieldEnd;
    return text;
  }
  reader.uint64Field(tag, end, 'AnyValue');
  if (tag >>> 3 === 2) return reader.low !== 0 || reader.high !== 0 ? 'true' : 'false';
  return int64ToDecimal(reader.high, reader.low);
}

/** An `array_value` (5) or `kvlist_value` (6) as JSON. */
export function listJson(
  reader: Reader,
  tag: number,
  end: number,
  depth: number,
  lenient: boolean,
) {
  return tag >>> 3 === 5
    ? decodeArrayJson(reader, end, depth, lenient)
    : decodeKeyValueListJson(reader, end, depth, lenient);
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
function decodeValueJson(reader: Reader, end: number, depth: number, lenient: boolean): string {
  let value = 'null';
  while (reader.pos < end) {
    const tag = reader.tag(end);
    switch (tag >>> 3) {
      case 1:
        value = jsonQuote(reader.stringField(tag, end, 'AnyValue'));
        break;
      case 2:
      case 3:
        value = scalarText(reader, tag, end);
        break;
      case 7:
        value = jsonQuote(scalarText(reader, tag, end));
        break;
      case 4: {
        const double = reader.doubleField(tag, end, 'AnyValue');
        value = lenient && !Number.isFinite(double) ? 'null' : jsonDouble(double);
        break;
      }
      case 5:
      case 6: {
        const fieldEnd = reader.message(tag, end, 'AnyValue');
        value = listJson(reader, tag, fieldEnd, depth + 1, lenient);
        reader.pos = fieldEnd;
        break;
      }
      default:
        reader.skip(tag & 7, end);
    }
  }
  return value;
}

function decodeArrayJson(reader: Reader, end: number, depth: number, lenient: boolean): string {
  if (depth > MAX_VALUE_DEPTH) reader.fail(`attribute value nested deeper than ${MAX_VALUE_DEPTH}`);
  let text = '[';
  let first = true;
  while (reader.pos < end) {
    const tag = reader.tag(end);
    if (tag >>> 3 === 1) {
      const fieldEnd = reader.message(tag, end, 'ArrayValue');
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
  lenient: boolean,
): string {
  if (depth > MAX_VALUE_DEPTH) reader.fail(`attribute value nested deeper than ${MAX_VALUE_DEPTH}`);
  const entries: [string, string][] = [];
  while (reader.pos < end) {
    const tag = reader.tag(end);
    if (tag >>> 3 === 1) {
      const entryEnd = reader.message(tag, end, 'KeyValueList');
      let key = '';
      let value = 'null';
      while (reader.pos < entryEnd) {
        const entryTag = reader.tag(entryEnd);
        const field = entryTag >>> 3;
        if (field === 1) {
          key = reader.stringField(entryTag, entryEnd, 'KeyValue');
        } else if (field === 2) {
          const valueEnd = reader.message(entryTag, entryEnd, 'KeyValue');
          value = decodeValueJson(reader, valueEnd, depth, lenient);
        } else reader.skip(entryTag & 7, entryEnd);
      }
      entries.push([key, value]);
    } else reader.skip(tag & 7, end);
  }
  return jsonObject(entries);
}
