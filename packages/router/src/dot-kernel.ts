/**
 * The dot products of one query with every row of a matrix of float32 rows: the nearest
 * neighbours' similarity scan (`NeighbourMemory`). A WebAssembly SIMD kernel (four f32x4
 * accumulators, 16 floats a step) where the runtime has WebAssembly SIMD (Node.js ≥ 16.4),
 * else the same loop in JavaScript. At 2,048 rows × 512 dimensions: 140 µs of CPU against
 * 1,000 µs for a plain JavaScript loop (docs/routing-measurements.md, "Decision time").
 *
 * The kernel is assembled here, byte by byte, so nothing is compiled at build time:
 * `dots(rows, strideBytes, units, query, out)` writes `out[r] = Σ units[r][i] × query[i]`
 * as float32, over `strideBytes / 4` floats a row (a multiple of 16: rows are zero-padded).
 */

/** Floats a row is padded to a multiple of (the kernel reads 16 a step). */
export const STRIDE_STEP = 16;

const uleb = (value: number): number[] => {
  const out: number[] = [];
  let rest = value >>> 0;
  do {
    let byte = rest & 0x7f;
    rest >>>= 7;
    if (rest !== 0) byte |= 0x80;
    out.push(byte);
  } while (rest !== 0);
  return out;
};
const section = (id: number, bytes: readonly number[]) => [id, ...uleb(bytes.length), ...bytes];
const vector = (items: readonly (readonly number[])[]) => [...uleb(items.length), ...items.flat()];
const name = (text: string) => vector([...text].map((char) => [char.charCodeAt(0)])); // ASCII

const I32 = 0x7f;
const V128 = 0x7b;
const get = (local: number) => [0x20, ...uleb(local)];
const set = (local: number) => [0x21, ...uleb(local)];
const tee = (local: number) => [0x22, ...uleb(local)];
/** i32.const of a non-negative value: signed LEB128 (one more byte when bit 6 would read as a sign). */
const i32 = (value: number) => {
  const bytes = uleb(value);
  if ((bytes.at(-1)! & 0x40) !== 0) bytes.push(bytes.pop()! | 0x80, 0);
  return [0x41, ...bytes];
};
const simd = (op: number) => [0xfd, ...uleb(op)];
const v128Load = (offset: number) => [...simd(0x00), 0, ...uleb(offset)];
const F32X4_ADD = simd(0xe4);
const F32X4_MUL = simd(0xe6);
const lane = (index: number) => [...simd(0x1f), index];
const [BLOCK, LOOP, END, BR, BR_IF] = [[0x02, 0x40], [0x03, 0x40], [0x0b], [0x0c], [0x0d]];
const [I32_ADD, I32_SUB, I32_EQZ, I32_LT_U, F32_ADD] = [[0x6a], [0x6b], [0x45], [0x49], [0x92]];
const F32_STORE = [0x38, 2, 0];

/** The kernel's module bytes. */
function kernelBytes(): Uint8Array {
  // parameters 0-4, then the locals: end of the row, query pointer, four accumulators
  const [ROWS, STRIDE, UNITS, QUERY, OUT, ROW_END, AT_QUERY] = [0, 1, 2, 3, 4, 5, 6];
  const SUMS = [7, 8, 9, 10];
  const zero = [...simd(0x0c), ...new Array<number>(16).fill(0)];
  const step = SUMS.flatMap((sum, k) => [
    ...get(sum),
    ...get(UNITS),
    ...v128Load(16 * k),
    ...get(AT_QUERY),
    ...v128Load(16 * k),
    ...F32X4_MUL,
    ...F32X4_ADD,
    ...set(sum),
  ]);
  const [a, b, c, d] = SUMS as [number, number, number, number];
  const body = [
    ...BLOCK,
    ...LOOP, // per row
    ...get(ROWS),
    ...I32_EQZ,
    ...BR_IF,
    1,
    ...SUMS.flatMap((sum) => [...zero, ...set(sum)]),
    ...get(UNITS),
    ...get(STRIDE),
    ...I32_ADD,
    ...set(ROW_END),
    ...get(QUERY),
    ...set(AT_QUERY),
    ...LOOP, // 16 floats a step
    ...step,
    ...get(AT_QUERY),
    ...i32(64),
    ...I32_ADD,
    ...set(AT_QUERY),
    ...get(UNITS),
    ...i32(64),
    ...I32_ADD,
    ...tee(UNITS),
    ...get(ROW_END),
    ...I32_LT_U,
    ...BR_IF,
    0,
    ...END,
    ...get(OUT),
    ...[...get(a), ...get(b), ...F32X4_ADD, ...get(c), ...get(d), ...F32X4_ADD, ...F32X4_ADD],
    ...set(a),
    ...[...get(a), ...lane(0), ...get(a), ...lane(1), ...F32_ADD],
    ...[...get(a), ...lane(2), ...F32_ADD, ...get(a), ...lane(3), ...F32_ADD],
    ...F32_STORE,
    ...[...get(OUT), ...i32(4), ...I32_ADD, ...set(OUT)],
    ...[...get(ROWS), ...i32(1), ...I32_SUB, ...set(ROWS)],
    ...BR,
    0,
    ...END,
    ...END,
    ...END,
  ];
  return moduleOf([
    ...vector([
      [2, I32],
      [4, V128],
    ]),
    ...body,
  ]);
}

/** A module of one function `dots` (five i32 parameters; `code`: its locals and body) and its memory. */
function moduleOf(code: readonly number[]): Uint8Array {
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    ...section(1, vector([[0x60, ...vector([[I32], [I32], [I32], [I32], [I32]]), 0]])),
    ...section(3, vector([[0]])),
    ...section(5, vector([[0x00, 1]])),
    ...section(
      7,
      vector([
        [...name('memory'), 0x02, 0],
        [...name('dots'), 0x00, 0],
      ]),
    ),
    ...section(10, vector([[...uleb(code.length), ...code]])),
  ]);
}

/** The part of the WebAssembly JS API used here (the lib has no DOM or wasm types). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: Record<string, unknown> };
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type Kernel = (
  rows: number,
  strideBytes: number,
  units: number,
  query: number,
  out: number,
) => void;

let compiled: object | null | undefined;

/** The compiled kernel, or null where WebAssembly (or its SIMD) is missing. */
function kernelModule(): object | null {
  if (compiled === undefined) {
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    const bytes = kernelBytes();
    compiled = wasm !== undefined && wasm.validate(bytes) ? new wasm.Module(bytes) : null;
  }
  return compiled;
}

/**
 * A growable matrix of float32 rows (`stride` floats each, zero-padded) with a query row, and
 * the dot product of the query with every row. `kernel`: `js` forces the JavaScript loop.
 */
export class DotMatrix {
  readonly stride: number;
  /** Rows, query and dot products live in one buffer: the query, the products, then the rows. */
  private readonly memory: WasmMemory | undefined;
  private readonly dots: Kernel | undefined;
  private buffer: Float32Array;
  private readonly productsAt: number;
  private readonly rowsAt: number;
  private rowsHeld = 0;

  constructor(dimensions: number, capacity: number, kernel: 'wasm' | 'js' = 'wasm') {
    this.stride = Math.max(STRIDE_STEP, Math.ceil(dimensions / STRIDE_STEP) * STRIDE_STEP);
    this.productsAt = this.stride;
    this.rowsAt = this.stride + Math.ceil(capacity / STRIDE_STEP) * STRIDE_STEP;
    const module = kernel === 'wasm' ? kernelModule() : null;
    if (module !== null) {
      const { Instance } = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
      const instance = new Instance(module);
      this.memory = instance.exports['memory'] as WasmMemory;
      this.dots = instance.exports['dots'] as Kernel;
      this.buffer = new Float32Array(this.memory.buffer);
    } else {
      this.buffer = new Float32Array(this.rowsAt);
    }
    this.ensure(0);
  }

  /** Whether the WebAssembly kernel computes the products. */
  get simd(): boolean {
    return this.dots !== undefined;
  }

  /** Makes room for `rows` rows. */
  private ensure(rows: number): void {
    const floats = this.rowsAt + Math.max(rows, 1) * this.stride;
    if (floats <= this.buffer.length) return;
    const grown = Math.max(floats, Math.floor(this.buffer.length * 1.5));
    if (this.memory !== undefined) {
      this.memory.grow(Math.ceil((grown * 4 - this.memory.buffer.byteLength) / 65_536));
      this.buffer = new Float32Array(this.memory.buffer);
    } else {
      const buffer = new Float32Array(grown);
      buffer.set(this.buffer);
      this.buffer = buffer;
    }
  }

  /** Writes `values × scale` into row `row` (cut or zero-padded to the stride). */
  setRow(row: number, values: Float32Array, scale: number): void {
    if (row >= this.rowsHeld) {
      this.ensure(row + 1);
      this.rowsHeld = row + 1;
    }
    this.write(this.rowsAt + row * this.stride, values, scale);
  }

  private write(at: number, values: Float32Array, scale: number): void {
    const length = Math.min(values.length, this.stride);
    const buffer = this.buffer;
    for (let dim = 0; dim < length; dim += 1) buffer[at + dim] = values[dim]! * scale;
    buffer.fill(0, at + length, at + this.stride);
  }

  /**
   * The dot products of `query × scale` with rows 0..rows-1, as a view valid until the next
   * call (float32).
   */
  products(query: Float32Array, scale: number, rows: number): Float32Array {
    this.write(0, query, scale);
    const { stride, productsAt, rowsAt, buffer } = this;
    if (this.dots !== undefined) {
      this.dots(rows, stride * 4, rowsAt * 4, 0, productsAt * 4);
    } else {
      for (let row = 0; row < rows; row += 1) {
        let at = rowsAt + row * stride;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let dim = 0; dim < stride; dim += 4, at += 4) {
          s0 += buffer[at]! * buffer[dim]!;
          s1 += buffer[at + 1]! * buffer[dim + 1]!;
          s2 += buffer[at + 2]! * buffer[dim + 2]!;
          s3 += buffer[at + 3]! * buffer[dim + 3]!;
        }
        buffer[productsAt + row] = s0 + s1 + s2 + s3;
      }
    }
    return buffer.subarray(productsAt, productsAt + rows);
  }
}
