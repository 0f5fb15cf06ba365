/**
 * A minimal protobuf writer for hand-made OTLP payloads (cases the SDK
 * serializers cannot produce: repeated keys, odd bytes, fields out of order).
 */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  private varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    const bytes: number[] = [];
    while (v > 0x7fn) {
      bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    bytes.push(Number(v));
    this.parts.push(Buffer.from(bytes));
  }

  private tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  uint(field: number, value: number | bigint): this {
    this.tag(field, 0);
    this.varint(value);
    return this;
  }

  fixed64(field: number, value: bigint): this {
    this.tag(field, 1);
    const buffer = Buffer.alloc(8);
    buffer.writeBigUInt64LE(value);
    this.parts.push(buffer);
    return this;
  }

  double(field: number, value: number): this {
    this.tag(field, 1);
    const buffer = Buffer.alloc(8);
    buffer.writeDoubleLE(value);
    this.parts.push(buffer);
    return this;
  }

  bytes(field: number, value: Uint8Array | string): this {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    this.tag(field, 2);
    this.varint(bytes.length);
    this.parts.push(bytes);
    return this;
  }

  message(field: number, build: (writer: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export type Value =
  | string
  | Uint8Array
  | { int: number | bigint }
  | { double: number }
  /** A `string_value` of these bytes (need not be UTF-8). */
  | { utf8: Uint8Array }
  | boolean
  | Value[]
  | { kv: [string, Value][] };

/** An `AnyValue` (strings, booleans, `{int}`, `{double}`, `{utf8}`, bytes, arrays, `{kv}` lists). */
export function anyValue(writer: ProtoWriter, value: Value): void {
  if (typeof value === 'string') writer.bytes(1, value);
  else if (typeof value === 'boolean') writer.uint(2, value ? 1 : 0);
  else if (value instanceof Uint8Array) writer.bytes(7, value);
  else if (Array.isArray(value))
    writer.message(5, (array) => {
      for (const item of value) array.message(1, (inner) => anyValue(inner, item));
    });
  else if ('int' in value) writer.uint(3, value.int);
  else if ('double' in value) writer.double(4, value.double);
  else if ('utf8' in value) writer.bytes(1, value.utf8);
  else
    writer.message(6, (list) => {
      for (const [key, item] of value.kv) list.message(1, (entry) => keyValue(entry, key, item));
    });
}

/** A `KeyValue`; `key` as bytes allows invalid UTF-8. */
export function keyValue(writer: ProtoWriter, key: string | Uint8Array, value: Value): void {
  writer.bytes(1, key).message(2, (any) => anyValue(any, value));
}

export function attributes(
  writer: ProtoWriter,
  field: number,
  entries: [string | Uint8Array, Value][],
): void {
  for (const [key, value] of entries) writer.message(field, (kv) => keyValue(kv, key, value));
}
