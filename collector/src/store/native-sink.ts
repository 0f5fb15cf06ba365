/**
 * One column stream of a ClickHouse `Native` block: a growable byte buffer with
 * the encodings `span-row-native.ts` writes (varints, `String` values from JS
 * strings, UTF-8 bytes or bytes as hex, 64-bit little-endian integers).
 */
import { isAscii } from 'node:buffer';

/** A Buffer with V8's fast slicers (present on every Node Buffer). */
export interface ByteSource extends Buffer {
  utf8Slice(start: number, end: number): string;
}

/** A `SpanRow` that cannot be stored as it is (a timestamp that is not a count of nanoseconds, …). */
export class InvalidSpanRowError extends Error {
  override readonly name = 'InvalidSpanRowError';
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
