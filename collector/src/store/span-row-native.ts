/**
 * The columns of `otel_traces` as one block of ClickHouse's `Native` format
 * (columns in `OTEL_TRACES_INSERT_COLUMNS` order). This is the ingest hot path:
 * ClickHouse reads Native column by column without parsing text, about five
 * times cheaper than TabSeparated with `Map` columns, and the encoding here is
 * cheaper too (no escaping, no per-row string).
 *
 * `SpanColumns` is the one place that knows the columns. Two writers fill it:
 * `addRow` takes a `SpanRow` (the JSON decoder, the store's `write(rows)`), and
 * the protobuf decoder (`../otlp/decode-protobuf.ts`) writes straight from the
 * request's bytes (ids as hex from the bytes, ASCII strings copied as they are,
 * timestamps as 64-bit halves) without building rows. Both give the same bytes
 * for the same spans: attribute maps have the entry order and the last-wins
 * rule of the JS object a `SpanRow` holds (`MapColumn.end`).
 *
 * The block uses plain types (`String` for the `LowCardinality(String)`
 * columns, `Map(String, String)`): the insert converts them to the table's
 * types. Blocks can be concatenated: a Native stream is a sequence of blocks,
 * which is what a spool segment is (one block per request).
 *
 * Layout of a block (ClickHouse `NativeWriter`, no block info, as the `Native`
 * input/output format writes it): varint column count, varint row count, then
 * per column its name and type (varint-length strings) and its data:
 * `String` = varint length + bytes per row; `UInt64` / `DateTime64(9)` =
 * 8 bytes little-endian per row; `Array(T)` = the end offset of the row's
 * elements (cumulative, UInt64) per row, then the elements as a column of `T`;
 * `Map(K, V)` = an `Array(Tuple(K, V))`: offsets, then all keys, then all values.
 */
import { isAscii } from 'node:buffer';
import { setAttribute } from '../otlp/to-span-rows.js';
import { InvalidSpanRowError } from './span-row-tsv.js';
import type { SpanRow } from './span-store.js';

const DIGITS = /^\d{1,20}$/;
const MAX_UINT64 = (1n << 64n) - 1n;
/** DateTime64 is a signed 64-bit count of nanoseconds. */
const MAX_INT64 = (1n << 63n) - 1n;

/** A Buffer with V8's fast slicers (present on every Node Buffer). */
export interface ByteSource extends Buffer {
  utf8Slice(start: number, end: number): string;
}

/** Strings shorter than this are copied by a JS loop when ASCII (one-byte length); others by `Buffer.write`. */
const SHORT_STRING = 128;

/** Lower-case hex digits by nibble. */
const HEX_DIGITS = Uint8Array.from(Buffer.from('0123456789abcdef', 'latin1'));

/** A growable byte buffer: one column stream. */
export class Sink {
  buffer: ByteSource;
  length = 0;

  constructor(initial: number) {
    this.buffer = Buffer.allocUnsafe(initial) as ByteSource;
  }

  ensure(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2)) as ByteSource;
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  varint(value: number): void {
    this.ensure(10);
    let v = value;
    while (v >= 0x80) {
      this.buffer[this.length++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buffer[this.length++] = v;
  }

  /** A `String` value from a JS string. */
  string(value: string): void {
    const count = value.length;
    if (count < SHORT_STRING) {
      // Short and ASCII (nearly every key and value): a JS loop beats a call into C++.
      this.ensure(1 + count * 3);
      const buffer = this.buffer;
      let at = this.length + 1;
      let index = 0;
      for (; index < count; index++) {
        const code = value.charCodeAt(index);
        if (code >= 0x80) break;
        buffer[at++] = code;
      }
      if (index === count) {
        buffer[this.length] = count;
        this.length = at;
        return;
      }
    }
    if (count < 42) {
      // Short but not ASCII: at most 126 bytes, so a one-byte length, written after the bytes.
      this.ensure(1 + count * 3);
      const written = this.buffer.write(value, this.length + 1, 'utf8');
      this.buffer[this.length] = written;
      this.length += 1 + written;
      return;
    }
    // Reserve the varint for the worst case, then move the bytes if it was shorter.
    const max = count * 3;
    const reserve = varintSize(max);
    this.ensure(reserve + max);
    const written = this.buffer.write(value, this.length + reserve, 'utf8');
    const size = varintSize(written);
    if (size !== reserve) {
      this.buffer.copyWithin(
        this.length + size,
        this.length + reserve,
        this.length + reserve + written,
      );
    }
    this.varint(written);
    this.length += written;
  }

  /**
   * A `String` value from UTF-8 bytes, exactly as `string(source.utf8Slice(start, end))`
   * would write it: ASCII is copied as it is; anything else goes through a JS string
   * (invalid sequences become U+FFFD, as in the decoded string).
   */
  utf8(source: ByteSource, start: number, end: number): void {
    const count = end - start;
    if (count < SHORT_STRING) {
      this.ensure(1 + count);
      const buffer = this.buffer;
      let at = this.length + 1;
      let index = start;
      for (; index < end; index++) {
        const byte = source[index]!;
        if (byte >= 0x80) break;
        buffer[at++] = byte;
      }
      if (index === end) {
        buffer[this.length] = count;
        this.length = at;
        return;
      }
    } else if (isAscii(source.subarray(start, end))) {
      this.varint(count);
      this.ensure(count);
      source.copy(this.buffer, this.length, start, end);
      this.length += count;
      return;
    }
    this.string(source.utf8Slice(start, end));
  }

  /** A `String` value: lower-case hex of `source[start, end)`. */
  hex(source: Uint8Array, start: number, end: number): void {
    const count = (end - start) * 2;
    this.varint(count);
    this.ensure(count);
    const buffer = this.buffer;
    let at = this.length;
    for (let index = start; index < end; index++) {
      const byte = source[index]!;
      buffer[at++] = HEX_DIGITS[byte >>> 4]!;
      buffer[at++] = HEX_DIGITS[byte & 15]!;
    }
    this.length = at;
  }

  /** Bytes `source[start, end)` as they are (already encoded values). */
  append(source: Uint8Array, start: number, end: number): void {
    const count = end - start;
    this.ensure(count);
    const buffer = this.buffer;
    if (count < 64) {
      let at = this.length;
      for (let index = start; index < end; index++) buffer[at++] = source[index]!;
    } else {
      buffer.set(source.subarray(start, end), this.length);
    }
    this.length += count;
  }

  /** The unsigned 64-bit integer `high * 2^32 + low` (32-bit halves), little-endian. */
  u64(high: number, low: number): void {
    this.ensure(8);
    const buffer = this.buffer;
    const at = this.length;
    buffer[at] = low;
    buffer[at + 1] = low >>> 8;
    buffer[at + 2] = low >>> 16;
    buffer[at + 3] = low >>> 24;
    buffer[at + 4] = high;
    buffer[at + 5] = high >>> 8;
    buffer[at + 6] = high >>> 16;
    buffer[at + 7] = high >>> 24;
    this.length = at + 8;
  }

  /** A non-negative integer as UInt64 little-endian. */
  uint64(value: number): void {
    this.u64(Math.floor(value / 0x1_0000_0000), value >>> 0);
  }

  /** A decimal string of digits (checked by the caller), at most `max`, as 64-bit little-endian. */
  decimal64(digits: string, max: bigint): void {
    this.ensure(8);
    if (digits.length <= 15) {
      this.uint64(Number(digits));
      return;
    }
    const value = BigInt(digits);
    if (value > max) throw new InvalidSpanRowError(`out of range: ${JSON.stringify(digits)}`);
    this.buffer.writeBigUInt64LE(value, this.length);
    this.length += 8;
  }

  view(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

function varintSize(value: number): number {
  let size = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 128)) size++;
  return size;
}

/** Reads the varint at `buffer[at]`: its value in `varintValue`, returns where it ends. */
let varintValue = 0;
function readVarint(buffer: Uint8Array, at: number): number {
  let value = 0;
  let multiplier = 1;
  let position = at;
  for (;;) {
    const byte = buffer[position++]!;
    value += (byte & 0x7f) * multiplier;
    if (byte < 0x80) break;
    multiplier *= 128;
  }
  varintValue = value;
  return position;
}

/** Slots of the duplicate-key table of an open map; maps with more entries than half of it are rebuilt. */
const KEY_SLOTS = 256;
const KEY_SLOT_MASK = KEY_SLOTS - 1;

/**
 * A `Map(String, String)` column's three streams. A row's map is written either
 * from a JS object (`addRecord`) or entry by entry (`begin`, `key` + a value on
 * `values`, …, `end`). Entry by entry must end up as the object would have been:
 * a repeated key keeps its first position and its last value, and keys that are
 * array indices (`"0"`, `"42"`) come first in ascending order (JS property
 * order). Such maps (rare) are rebuilt through an object at `end`; the common
 * case is found out with a small hash table of the open map's keys.
 */
export class MapColumn {
  readonly offsets: Sink;
  total = 0;
  readonly keys: Sink;
  readonly values: Sink;
  /** The last record written and where its keys and values were, to copy them for the next row that shares it. */
  private last: Record<string, string> | undefined;
  private lastSize = 0;
  private lastKeys: [number, number] = [0, 0];
  private lastValues: [number, number] = [0, 0];
  /** The open map (entry by entry). */
  private keysAt = 0;
  private valuesAt = 0;
  private size = 0;
  private rebuild = false;
  private generation = 0;
  private readonly slotGeneration = new Int32Array(KEY_SLOTS);
  private readonly slotKey = new Int32Array(KEY_SLOTS);
  /** `mark()`ed state. */
  private markOffsets = 0;
  private markKeys = 0;
  private markValues = 0;
  private markTotal = 0;

  constructor(rows: number, bytesPerRow: number) {
    this.offsets = new Sink(rows * 8);
    this.keys = new Sink(rows * bytesPerRow);
    this.values = new Sink(rows * bytesPerRow);
  }

  reset(): void {
    this.offsets.length = 0;
    this.keys.length = 0;
    this.values.length = 0;
    this.total = 0;
    this.last = undefined;
  }

  /** Remembers where the column is, for `rollback()`. */
  mark(): void {
    this.markOffsets = this.offsets.length;
    this.markKeys = this.keys.length;
    this.markValues = this.values.length;
    this.markTotal = this.total;
  }

  rollback(): void {
    this.offsets.length = this.markOffsets;
    this.keys.length = this.markKeys;
    this.values.length = this.markValues;
    this.total = this.markTotal;
    this.last = undefined;
  }

  /** A row's map from a JS object (its own enumerable string keys, in property order). */
  addRecord(map: Record<string, string>): void {
    if (map === this.last) {
      // The same object as the previous row (resource attributes of one resource): copy bytes.
      this.total += this.lastSize;
      this.offsets.uint64(this.total);
      const [keyStart, keyEnd] = this.lastKeys;
      const [valueStart, valueEnd] = this.lastValues;
      this.keys.ensure(keyEnd - keyStart);
      this.keys.buffer.copy(this.keys.buffer, this.keys.length, keyStart, keyEnd);
      this.lastKeys = [this.keys.length, this.keys.length + keyEnd - keyStart];
      this.keys.length += keyEnd - keyStart;
      this.values.ensure(valueEnd - valueStart);
      this.values.buffer.copy(this.values.buffer, this.values.length, valueStart, valueEnd);
      this.lastValues = [this.values.length, this.values.length + valueEnd - valueStart];
      this.values.length += valueEnd - valueStart;
      return;
    }
    const keyStart = this.keys.length;
    const valueStart = this.values.length;
    const size = this.writeEntries(map);
    this.total += size;
    this.offsets.uint64(this.total);
    this.last = map;
    this.lastSize = size;
    this.lastKeys = [keyStart, this.keys.length];
    this.lastValues = [valueStart, this.values.length];
  }

  private writeEntries(map: Record<string, string>): number {
    let size = 0;
    for (const key in map) {
      const value = map[key];
      if (value === undefined) continue;
      this.keys.string(key);
      this.values.string(value);
      size++;
    }
    return size;
  }

  /** Opens a row's map for `key()` calls. */
  begin(): void {
    this.keysAt = this.keys.length;
    this.valuesAt = this.values.length;
    this.size = 0;
    this.rebuild = false;
    this.generation += 1;
    if (this.generation === 0x7fffffff) {
      this.generation = 1;
      this.slotGeneration.fill(0);
    }
  }

  /** Appends a key from UTF-8 bytes; the caller then writes its value on `values`. */
  key(source: ByteSource, start: number, end: number): void {
    const at = this.keys.length;
    this.keys.utf8(source, start, end);
    this.size += 1;
    if (!this.rebuild) this.checkKey(at);
  }

  /** Appends a key from a JS string (e.g. a cut one); the caller then writes its value on `values`. */
  keyText(key: string): void {
    const at = this.keys.length;
    this.keys.string(key);
    this.size += 1;
    if (!this.rebuild) this.checkKey(at);
  }

  /** Is the key just written at `keys[at…]` a repeat or an array index? Then `end()` rebuilds the map. */
  private checkKey(at: number): void {
    const buffer = this.keys.buffer;
    const end = this.keys.length;
    const length = end - at;
    if (buffer[at]! >= 0x80 || this.size > KEY_SLOTS / 2) {
      this.rebuild = true; // a key of 128 bytes or more (no one-byte length), or a large map
      return;
    }
    const first = length > 1 ? buffer[at + 1]! : 0;
    if (first >= 0x30 && first <= 0x39) {
      this.rebuild = true; // maybe an array index: JS would list it first
      return;
    }
    let hash = Math.imul(length ^ first, 0x9e3779b1);
    hash = Math.imul(hash ^ buffer[end - 1]!, 0x85ebca6b);
    hash = Math.imul(hash ^ buffer[at + (length >> 1)]!, 0xc2b2ae35);
    hash = Math.imul(hash ^ buffer[end - 1 - (length >> 2)]!, 0x27d4eb2f);
    let slot = (hash ^ (hash >>> 15)) & KEY_SLOT_MASK;
    const generation = this.generation;
    const slotGeneration = this.slotGeneration;
    while (slotGeneration[slot] === generation) {
      const other = this.slotKey[slot]!;
      if (sameRecord(buffer, other, at, length)) {
        this.rebuild = true;
        return;
      }
      slot = (slot + 1) & KEY_SLOT_MASK;
    }
    slotGeneration[slot] = generation;
    this.slotKey[slot] = at;
  }

  /** Closes the open map: the row's entry count. */
  end(): void {
    if (this.rebuild) this.rebuildOpenMap();
    this.total += this.size;
    this.offsets.uint64(this.total);
  }

  /** Reads the open map's entries back into an object and writes that object instead. */
  private rebuildOpenMap(): void {
    const map = Object.create(null) as Record<string, string>;
    const keys = this.keys.buffer;
    const values = this.values.buffer;
    let keyAt = this.keysAt;
    let valueAt = this.valuesAt;
    for (let index = 0; index < this.size; index++) {
      keyAt = readVarint(keys, keyAt);
      const key = keys.utf8Slice(keyAt, keyAt + varintValue);
      keyAt += varintValue;
      valueAt = readVarint(values, valueAt);
      const value = values.utf8Slice(valueAt, valueAt + varintValue);
      valueAt += varintValue;
      setAttribute(map, key, value);
    }
    this.keys.length = this.keysAt;
    this.values.length = this.valuesAt;
    this.size = this.writeEntries(map);
  }

  /** Appends `other`'s whole content (a one-row staging map) as one row. */
  appendRow(other: MapColumn): void {
    this.keys.append(other.keys.buffer, 0, other.keys.length);
    this.values.append(other.values.buffer, 0, other.values.length);
    this.total += other.total;
    this.offsets.uint64(this.total);
  }

  /** Where `findValue` found the value's record end. */
  foundValueEnd = 0;

  /** Where the value of `key` (a `String` record) starts in `values` (`foundValueEnd`: its end), or -1. */
  findValue(key: Uint8Array): number {
    const keys = this.keys.buffer;
    const values = this.values.buffer;
    let keyAt = 0;
    let valueAt = 0;
    while (keyAt < this.keys.length) {
      const keyStart = keyAt;
      keyAt = readVarint(keys, keyAt) + varintValue;
      const valueStart = valueAt;
      valueAt = readVarint(values, valueAt) + varintValue;
      if (keyAt - keyStart === key.length && sameBytes(keys, keyStart, key)) {
        this.foundValueEnd = valueAt;
        return valueStart;
      }
    }
    return -1;
  }
}

/** Are the `String` records at `a` and `b` (`length` bytes at `b`) equal? */
function sameRecord(buffer: Uint8Array, a: number, b: number, length: number): boolean {
  for (let index = 0; index < length; index++) {
    if (buffer[a + index] !== buffer[b + index]) return false;
  }
  return true;
}

function sameBytes(buffer: Uint8Array, at: number, bytes: Uint8Array): boolean {
  for (let index = 0; index < bytes.length; index++) {
    if (buffer[at + index] !== bytes[index]) return false;
  }
  return true;
}

const MAP_TYPE = 'Map(String, String)';

/**
 * The column streams of one block, reused by every block (the encoding is
 * synchronous): one allocation per block (the result) instead of one per stream
 * keeps the garbage collector out of the hot path.
 */
export class SpanColumns {
  rows = 0;
  readonly timestamps = new Sink(64 * 1024);
  readonly traceIds = new Sink(64 * 1024);
  readonly spanIds = new Sink(32 * 1024);
  readonly parentSpanIds = new Sink(32 * 1024);
  readonly traceStates = new Sink(4 * 1024);
  readonly spanNames = new Sink(32 * 1024);
  readonly spanKinds = new Sink(16 * 1024);
  readonly serviceNames = new Sink(16 * 1024);
  readonly resource = new MapColumn(8192, 64);
  readonly scopeNames = new Sink(64 * 1024);
  readonly scopeVersions = new Sink(16 * 1024);
  readonly attributes = new MapColumn(8192, 256);
  readonly durations = new Sink(64 * 1024);
  readonly statusCodes = new Sink(16 * 1024);
  readonly statusMessages = new Sink(16 * 1024);
  readonly eventOffsets = new Sink(64 * 1024);
  eventTotal = 0;
  readonly eventTimestamps = new Sink(16 * 1024);
  readonly eventNames = new Sink(16 * 1024);
  readonly eventMaps = new MapColumn(2048, 64);
  readonly linkOffsets = new Sink(64 * 1024);
  linkTotal = 0;
  readonly linkTraceIds = new Sink(1024);
  readonly linkSpanIds = new Sink(1024);
  readonly linkTraceStates = new Sink(1024);
  readonly linkMaps = new MapColumn(64, 64);
  /** A one-row map for the resource attributes while a resource's spans are written. */
  readonly resourceStage = new MapColumn(1, 1024);
  private readonly head = new Sink(4096);
  /** Where the streams a row writes to before it is complete were (`beginRow`). */
  private markEventTimestamps = 0;
  private markEventNames = 0;
  private markLinkTraceIds = 0;
  private markLinkSpanIds = 0;
  private markLinkTraceStates = 0;

  reset(): void {
    this.rows = 0;
    this.eventTotal = 0;
    this.linkTotal = 0;
    for (const value of Object.values(this)) {
      if (value instanceof Sink) value.length = 0;
      else if (value instanceof MapColumn) value.reset();
    }
  }

  /**
   * Starts a row written in pieces (the protobuf decoder: attributes, events and
   * links as they come, the rest once the span is known to be valid): opens its
   * attribute map; `dropRow()` takes everything back.
   */
  beginRow(): void {
    this.attributes.mark();
    this.eventMaps.mark();
    this.linkMaps.mark();
    this.markEventTimestamps = this.eventTimestamps.length;
    this.markEventNames = this.eventNames.length;
    this.markLinkTraceIds = this.linkTraceIds.length;
    this.markLinkSpanIds = this.linkSpanIds.length;
    this.markLinkTraceStates = this.linkTraceStates.length;
    this.attributes.begin();
  }

  dropRow(): void {
    this.attributes.rollback();
    this.eventMaps.rollback();
    this.linkMaps.rollback();
    this.eventTimestamps.length = this.markEventTimestamps;
    this.eventNames.length = this.markEventNames;
    this.linkTraceIds.length = this.markLinkTraceIds;
    this.linkSpanIds.length = this.markLinkSpanIds;
    this.linkTraceStates.length = this.markLinkTraceStates;
  }

  /** One `SpanRow`. Throws `InvalidSpanRowError` on a timestamp or duration that is not a 64-bit count. */
  addRow(row: SpanRow): void {
    if (!DIGITS.test(row.Timestamp)) {
      throw new InvalidSpanRowError(`not a nanosecond timestamp: ${JSON.stringify(row.Timestamp)}`);
    }
    if (!DIGITS.test(row.Duration)) {
      throw new InvalidSpanRowError(`not a nanosecond duration: ${JSON.stringify(row.Duration)}`);
    }
    const events = row.Events;
    const eventCount = events.Name.length;
    if (events.Timestamp.length !== eventCount || events.Attributes.length !== eventCount) {
      throw new InvalidSpanRowError('Events arrays differ in length');
    }
    for (const timestamp of events.Timestamp) {
      if (!DIGITS.test(timestamp)) {
        throw new InvalidSpanRowError(`not a nanosecond timestamp: ${JSON.stringify(timestamp)}`);
      }
    }
    const links = row.Links;
    const linkCount = links.TraceId.length;
    if (
      links.SpanId.length !== linkCount ||
      links.TraceState.length !== linkCount ||
      links.Attributes.length !== linkCount
    ) {
      throw new InvalidSpanRowError('Links arrays differ in length');
    }
    this.timestamps.decimal64(row.Timestamp, MAX_INT64);
    this.traceIds.string(row.TraceId);
    this.spanIds.string(row.SpanId);
    this.parentSpanIds.string(row.ParentSpanId);
    this.traceStates.string(row.TraceState);
    this.spanNames.string(row.SpanName);
    this.spanKinds.string(row.SpanKind);
    this.serviceNames.string(row.ServiceName);
    this.resource.addRecord(row.ResourceAttributes);
    this.scopeNames.string(row.ScopeName);
    this.scopeVersions.string(row.ScopeVersion);
    this.attributes.addRecord(row.SpanAttributes);
    this.durations.decimal64(row.Duration, MAX_UINT64);
    this.statusCodes.string(row.StatusCode);
    this.statusMessages.string(row.StatusMessage);
    this.eventTotal += eventCount;
    this.eventOffsets.uint64(this.eventTotal);
    for (let index = 0; index < eventCount; index++) {
      this.eventTimestamps.decimal64(events.Timestamp[index]!, MAX_INT64);
      this.eventNames.string(events.Name[index]!);
      this.eventMaps.addRecord(events.Attributes[index]!);
    }
    this.linkTotal += linkCount;
    this.linkOffsets.uint64(this.linkTotal);
    for (let index = 0; index < linkCount; index++) {
      this.linkTraceIds.string(links.TraceId[index]!);
      this.linkSpanIds.string(links.SpanId[index]!);
      this.linkTraceStates.string(links.TraceState[index]!);
      this.linkMaps.addRecord(links.Attributes[index]!);
    }
    this.rows += 1;
  }

  /** The block of every row written since `reset()`. */
  finish(): Buffer {
    const out = this.head;
    out.length = 0;
    out.varint(22);
    out.varint(this.rows);
    const parts: Buffer[] = [];
    let headStart = 0;
    const column = (name: string, type: string, ...data: Sink[]) => {
      out.string(name);
      out.string(type);
      parts.push(out.buffer.subarray(headStart, out.length));
      headStart = out.length;
      for (const sink of data) parts.push(sink.view());
    };
    const map = (name: string, type: string, column_: MapColumn, ...outer: Sink[]) =>
      column(name, type, ...outer, column_.offsets, column_.keys, column_.values);
    column('Timestamp', 'DateTime64(9)', this.timestamps);
    column('TraceId', 'String', this.traceIds);
    column('SpanId', 'String', this.spanIds);
    column('ParentSpanId', 'String', this.parentSpanIds);
    column('TraceState', 'String', this.traceStates);
    column('SpanName', 'String', this.spanNames);
    column('SpanKind', 'String', this.spanKinds);
    column('ServiceName', 'String', this.serviceNames);
    map('ResourceAttributes', MAP_TYPE, this.resource);
    column('ScopeName', 'String', this.scopeNames);
    column('ScopeVersion', 'String', this.scopeVersions);
    map('SpanAttributes', MAP_TYPE, this.attributes);
    column('Duration', 'UInt64', this.durations);
    column('StatusCode', 'String', this.statusCodes);
    column('StatusMessage', 'String', this.statusMessages);
    column('Events.Timestamp', 'Array(DateTime64(9))', this.eventOffsets, this.eventTimestamps);
    column('Events.Name', 'Array(String)', this.eventOffsets, this.eventNames);
    map('Events.Attributes', `Array(${MAP_TYPE})`, this.eventMaps, this.eventOffsets);
    column('Links.TraceId', 'Array(String)', this.linkOffsets, this.linkTraceIds);
    column('Links.SpanId', 'Array(String)', this.linkOffsets, this.linkSpanIds);
    column('Links.TraceState', 'Array(String)', this.linkOffsets, this.linkTraceStates);
    map('Links.Attributes', `Array(${MAP_TYPE})`, this.linkMaps, this.linkOffsets);
    return Buffer.concat(parts);
  }
}

let scratch: SpanColumns | undefined;

/** The shared column streams, emptied. Use synchronously: the next call empties them again. */
export function spanColumns(): SpanColumns {
  const columns = (scratch ??= new SpanColumns());
  columns.reset();
  return columns;
}

/** All rows of one request as one Native block. Throws `InvalidSpanRowError` before anything is written. */
export function spanRowsToNative(rows: readonly SpanRow[]): Buffer {
  const columns = spanColumns();
  for (const row of rows) columns.addRow(row);
  return columns.finish();
}

type ColumnValues = (string | Record<string, string> | ColumnValues)[];

/**
 * Reads blocks written by `SpanColumns` back into `SpanRow`s (tests, tools; not
 * the hot path). Strict: a map with a repeated key, or a column other than the
 * ones written here, throws.
 */
export function nativeToSpanRows(block: Uint8Array): SpanRow[] {
  const buffer = Buffer.from(block.buffer, block.byteOffset, block.byteLength) as ByteSource;
  let at = 0;
  const varint = (): number => {
    if (at >= buffer.length) throw new InvalidSpanRowError('truncated Native block');
    at = readVarint(buffer, at);
    return varintValue;
  };
  const string = (): string => {
    const length = varint();
    if (at + length > buffer.length) throw new InvalidSpanRowError('truncated Native block');
    const text = buffer.utf8Slice(at, at + length);
    at += length;
    return text;
  };
  const u64s = (count: number): string[] => {
    if (at + count * 8 > buffer.length) throw new InvalidSpanRowError('truncated Native block');
    const values: string[] = [];
    for (let index = 0; index < count; index++) {
      values.push(buffer.readBigUInt64LE(at).toString());
      at += 8;
    }
    return values;
  };
  const offsets = (count: number): number[] => u64s(count).map(Number);
  const read = (type: string, count: number, nullPrototype: boolean): ColumnValues => {
    if (type === 'String') return Array.from({ length: count }, string);
    if (type === 'UInt64' || type === 'DateTime64(9)') return u64s(count);
    if (type === MAP_TYPE) {
      const ends = offsets(count);
      const total = ends.at(-1) ?? 0;
      const keys = read('String', total, false) as string[];
      const values = read('String', total, false) as string[];
      let start = 0;
      return ends.map((end) => {
        const map = (nullPrototype ? Object.create(null) : {}) as Record<string, string>;
        for (let index = start; index < end; index++) {
          if (Object.hasOwn(map, keys[index]!)) {
            throw new InvalidSpanRowError(`repeated map key ${JSON.stringify(keys[index])}`);
          }
          setAttribute(map, keys[index]!, values[index]!);
        }
        start = end;
        return map;
      });
    }
    if (type.startsWith('Array(') && type.endsWith(')')) {
      const ends = offsets(count);
      const items = read(type.slice(6, -1), ends.at(-1) ?? 0, false);
      let start = 0;
      return ends.map((end) => {
        const row = items.slice(start, end);
        start = end;
        return row;
      });
    }
    throw new InvalidSpanRowError(`unexpected column type ${type}`);
  };
  const rows: SpanRow[] = [];
  while (at < buffer.length) {
    const columnCount = varint();
    const count = varint();
    const columns = new Map<string, ColumnValues>();
    for (let index = 0; index < columnCount; index++) {
      const name = string();
      columns.set(name, read(string(), count, name === 'SpanAttributes'));
    }
    const column = <T>(name: string): T[] => {
      const values = columns.get(name);
      if (values === undefined) throw new InvalidSpanRowError(`no column ${name}`);
      return values as T[];
    };
    for (let index = 0; index < count; index++) {
      const value = <T>(name: string): T => column<T>(name)[index]!;
      rows.push({
        Timestamp: value('Timestamp'),
        TraceId: value('TraceId'),
        SpanId: value('SpanId'),
        ParentSpanId: value('ParentSpanId'),
        TraceState: value('TraceState'),
        SpanName: value('SpanName'),
        SpanKind: value('SpanKind'),
        ServiceName: value('ServiceName'),
        ResourceAttributes: value('ResourceAttributes'),
        ScopeName: value('ScopeName'),
        ScopeVersion: value('ScopeVersion'),
        SpanAttributes: value('SpanAttributes'),
        Duration: value('Duration'),
        StatusCode: value('StatusCode'),
        StatusMessage: value('StatusMessage'),
        Events: {
          Timestamp: value('Events.Timestamp'),
          Name: value('Events.Name'),
          Attributes: value('Events.Attributes'),
        },
        Links: {
          TraceId: value('Links.TraceId'),
          SpanId: value('Links.SpanId'),
          TraceState: value('Links.TraceState'),
          Attributes: value('Links.Attributes'),
        },
      });
    }
  }
  return rows;
}
