/**
 * A `Map(String, String)` column of a ClickHouse `Native` block (offsets, keys,
 * values), written from JS objects or entry by entry with the entry order and
 * last-wins rule of a JS object.
 */
import { setAttribute } from '../otlp/to-span-rows.js';
import { Sink, type ByteSource } from './native-sink.js';

/** Reads the varint at `buffer[at]`: its value in `varintValue`, returns where it ends. */
let varintValue = 0;
export function readVarint(buffer: Uint8Array, at: number): number {
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

/** The varint at `buffer[at]` and where it ends (for readers off the hot path). */
export function varintAt(buffer: Uint8Array, at: number): { value: number; end: number } {
  const end = readVarint(buffer, at);
  return { value: varintValue, end };
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
