/**
 * Walks a stream of ClickHouse `Native` blocks (a spool segment) without
 * decoding it: how many rows the complete blocks hold and where the last
 * complete block ends, so that a damaged segment (torn by a crash in the middle
 * of a write, or holding a malformed block or zeros) can be cut back to what was
 * written whole.
 *
 * The writer never writes an empty block (no columns or no rows), and every
 * block of a segment has the same columns: a block that breaks either rule is
 * `malformed` (zeros read as empty blocks, which ClickHouse would take, or as a
 * block that ClickHouse refuses with `Empty query`).
 *
 * Knows the types `span-row-native.ts` writes: `String`, `UInt64`, `Int64`,
 * `DateTime64(p)`, `Array(T)`, `Map(K, V)`.
 */

export interface NativeWalk {
  /** Rows in the complete blocks. */
  rows: number;
  /** Bytes of the complete blocks (the length to keep). */
  length: number;
  /** Blocks found complete. */
  blocks: number;
  /** Why the walk stopped before the end: `torn` (ran out of bytes) or `malformed`. */
  stopped?: 'torn' | 'malformed';
}

class OutOfBytes extends Error {}
class Malformed extends Error {}

class Reader {
  position = 0;
  private readonly buffer: Uint8Array;
  constructor(buffer: Uint8Array) {
    this.buffer = buffer;
  }

  need(bytes: number): void {
    if (this.position + bytes > this.buffer.length) throw new OutOfBytes();
  }

  varint(): number {
    let result = 0;
    let multiplier = 1;
    for (let shift = 0; shift < 63; shift += 7) {
      this.need(1);
      const byte = this.buffer[this.position++]!;
      result += (byte & 0x7f) * multiplier;
      if (byte < 0x80) return result;
      multiplier *= 128;
    }
    throw new Malformed();
  }

  string(): string {
    const length = this.varint();
    this.need(length);
    const text = Buffer.from(
      this.buffer.buffer,
      this.buffer.byteOffset + this.position,
      length,
    ).toString('utf8');
    this.position += length;
    return text;
  }

  skip(bytes: number): void {
    this.need(bytes);
    this.position += bytes;
  }

  /** The last of `count` UInt64 offsets (the element count of an array column). */
  lastOffset(count: number): number {
    if (count === 0) return 0;
    this.need(count * 8);
    const at = this.position + (count - 1) * 8;
    const low =
      this.buffer[at]! |
      (this.buffer[at + 1]! << 8) |
      (this.buffer[at + 2]! << 16) |
      (this.buffer[at + 3]! << 24);
    const high =
      this.buffer[at + 4]! |
      (this.buffer[at + 5]! << 8) |
      (this.buffer[at + 6]! << 16) |
      (this.buffer[at + 7]! << 24);
    if (high !== 0) throw new Malformed();
    this.position += count * 8;
    return low >>> 0;
  }
}

/** Splits `Map(K, V)`'s arguments at the top-level comma. */
function typeArguments(inner: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let index = 0; index < inner.length; index++) {
    const character = inner[index];
    if (character === '(') depth++;
    else if (character === ')') depth--;
    else if (character === ',' && depth === 0) {
      parts.push(inner.slice(start, index).trim());
      start = index + 1;
    }
  }
  parts.push(inner.slice(start).trim());
  return parts;
}

function skipColumn(reader: Reader, type: string, rows: number): void {
  if (type === 'String') {
    for (let index = 0; index < rows; index++) reader.skip(reader.varint());
    return;
  }
  if (type === 'UInt64' || type === 'Int64' || /^DateTime64\(\d+\)$/.test(type)) {
    reader.skip(rows * 8);
    return;
  }
  if (type.startsWith('Array(') && type.endsWith(')')) {
    const elements = reader.lastOffset(rows);
    skipColumn(reader, type.slice(6, -1), elements);
    return;
  }
  if (type.startsWith('Map(') && type.endsWith(')')) {
    const [key, value, ...rest] = typeArguments(type.slice(4, -1));
    if (key === undefined || value === undefined || rest.length > 0) throw new Malformed();
    const entries = reader.lastOffset(rows);
    skipColumn(reader, key, entries);
    skipColumn(reader, value, entries);
    return;
  }
  throw new Malformed();
}

export function walkNativeBlocks(buffer: Uint8Array): NativeWalk {
  const reader = new Reader(buffer);
  const walk: NativeWalk = { rows: 0, length: 0, blocks: 0 };
  let firstHeader: string | undefined;
  while (reader.position < buffer.length) {
    try {
      const columns = reader.varint();
      const rows = reader.varint();
      if (columns === 0 || rows === 0 || columns > 10_000) throw new Malformed();
      let header = '';
      for (let index = 0; index < columns; index++) {
        const name = reader.string();
        const type = reader.string();
        header += `${name}\u0000${type}\u0000`;
        skipColumn(reader, type, rows);
      }
      firstHeader ??= header;
      if (header !== firstHeader) throw new Malformed();
      walk.rows += rows;
      walk.length = reader.position;
      walk.blocks += 1;
    } catch (error) {
      if (error instanceof OutOfBytes) walk.stopped = 'torn';
      else if (error instanceof Malformed) walk.stopped = 'malformed';
      else throw error;
      break;
    }
  }
  return walk;
}
