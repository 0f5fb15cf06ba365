/**
 * The protobuf wire format as the OTLP decoder reads it (`decode-protobuf.ts`):
 * varints (32-bit and 64-bit by halves), fixed64, doubles, length-delimited
 * fields checked against the end of their message, skipping unknown fields, and
 * strings through a small cache (attribute keys and values repeat from span to
 * span). A broken wire format throws `MalformedPayloadError` (400). Fields are read
 * with their wire type checked (`uint32Field`, `bytes`, `message`, …): the decoders
 * never name a wire type themselves.
 */
import { MalformedPayloadError } from '../errors.js';
import type { ByteSource, Sink } from '../store/native-sink.js';
import { truncatedUtf8, Truncation, type DecodeLimits } from './to-span-rows.js';

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

export class Reader {
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

  /** A varint field of `message` (checked to be one), its low 32 bits. */
  uint32Field(tag: number, end: number, message: string): number {
    if ((tag & 7) !== VARINT) this.wrongWireType(tag, VARINT, message);
    return this.uint32(end);
  }

  /** A varint field of `message` (checked to be one) into `low`/`high`. */
  uint64Field(tag: number, end: number, message: string): void {
    if ((tag & 7) !== VARINT) this.wrongWireType(tag, VARINT, message);
    this.uint64(end);
  }

  /** A fixed64 field of `message` (checked to be one) into `low`/`high`. */
  fixed64Field(tag: number, end: number, message: string): void {
    if ((tag & 7) !== I64) this.wrongWireType(tag, I64, message);
    this.fixed64(end);
  }

  /** A double field of `message` (checked to be one). */
  doubleField(tag: number, end: number, message: string): number {
    if ((tag & 7) !== I64) this.wrongWireType(tag, I64, message);
    return this.double(end);
  }

  /** A string field of `message` (checked to be one), decoded. */
  stringField(tag: number, end: number, message: string): string {
    if ((tag & 7) !== LEN) this.wrongWireType(tag, LEN, message);
    return this.string(end);
  }

  /** A length-delimited field of `message` (checked to be one): returns where it ends. */
  message(tag: number, end: number, message: string): number {
    if ((tag & 7) !== LEN) this.wrongWireType(tag, LEN, message);
    return this.lengthEnd(end);
  }

  /**
   * A length-delimited field of `message` whose bytes are kept where they are: returns
   * where they start and moves past them (they end at `pos`).
   */
  bytes(tag: number, end: number, message: string): number {
    if ((tag & 7) !== LEN) this.wrongWireType(tag, LEN, message);
    const fieldEnd = this.lengthEnd(end);
    const start = this.pos;
    this.pos = fieldEnd;
    return start;
  }

  /** Fails: field `tag` of `message` has another wire type than `wireType`. */
  private wrongWireType(tag: number, wireType: number, message: string): never {
    return this.fail(
      `${message} field ${tag >>> 3} has wire type ${WIRE_TYPE_NAMES[tag & 7]}, expected ${WIRE_TYPE_NAMES[wireType]}`,
    );
  }
}
