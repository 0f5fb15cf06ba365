import { describe, expect, it } from 'vitest';
import { DotMatrix } from '../src/dot-kernel.js';
import { NeighbourMemory } from '../src/neighbours.js';
import { createRandom } from '../src/random.js';

const random = createRandom(7);
const vectorOf = (length: number) => Float32Array.from({ length }, () => random() * 2 - 1);

/** The dot product in float64 over the first `length` numbers of both. */
function reference(a: Float32Array, b: Float32Array, length: number): number {
  let dot = 0;
  for (let dim = 0; dim < Math.min(length, a.length, b.length); dim += 1) dot += a[dim]! * b[dim]!;
  return dot;
}

describe('DotMatrix', () => {
  it('uses the WebAssembly SIMD kernel on this runtime, and the JavaScript loop when told', () => {
    expect(new DotMatrix(8, 4).simd).toBe(true);
    expect(new DotMatrix(8, 4, 'js').simd).toBe(false);
  });

  it('computes every row·query product as the float64 sum does, both kernels, while rows grow past a page', () => {
    // 37 dimensions: padded to 48; 3,000 rows of 48 floats outgrow the first 64 KiB many times
    const dimensions = 37;
    const rows = Array.from({ length: 3000 }, () => vectorOf(dimensions));
    const query = vectorOf(dimensions);
    for (const kernel of ['wasm', 'js'] as const) {
      const matrix = new DotMatrix(dimensions, rows.length, kernel);
      expect(matrix.stride).toBe(48);
      rows.forEach((row, at) => matrix.setRow(at, row, 0.5));
      const products = matrix.products(query, 2, rows.length);
      expect(products.length).toBe(rows.length);
      for (const [at, row] of rows.entries()) {
        expect(products[at]).toBeCloseTo(reference(row, query, dimensions), 4);
      }
      // a row written again replaces the old one
      matrix.setRow(5, query, 1);
      expect(matrix.products(query, 1, 6)[5]).toBeCloseTo(reference(query, query, dimensions), 4);
    }
  });

  it("cuts longer vectors to the first one's dimensions and zero-pads shorter ones", () => {
    for (const kernel of ['wasm', 'js'] as const) {
      const matrix = new DotMatrix(20, 3, kernel); // stride 32
      const long = vectorOf(40);
      const short = vectorOf(5);
      matrix.setRow(0, long, 1);
      matrix.setRow(1, short, 1);
      const query = vectorOf(40);
      const products = matrix.products(query, 1, 2);
      expect(products[0]).toBeCloseTo(reference(long, query, 32), 4);
      expect(products[1]).toBeCloseTo(reference(short, query, 5), 4);
    }
  });
});

describe('NeighbourMemory kernels', () => {
  it('read the same neighbours with the WebAssembly kernel as with the JavaScript loop', () => {
    const candidates = 2;
    const memories = (['wasm', 'js'] as const).map(
      (kernel) => new NeighbourMemory(candidates, 500, kernel),
    );
    expect(memories[0]!.simd).toBe(false); // nothing held yet
    // clustered embeddings (so similarities are far apart, not ties at float precision)
    const centres = Array.from({ length: 8 }, () => vectorOf(64));
    const near = (centre: Float32Array) =>
      Float32Array.from(centre, (value) => value + (random() - 0.5) * 0.6);
    for (let at = 0; at < 700; at += 1) {
      const embedding = near(centres[at % 8]!);
      const candidate = at % 3 === 0 ? 1 : 0;
      const score = (at % 8) / 8 + random() * 0.1;
      for (const memory of memories) memory.add(embedding, candidate, score);
    }
    expect(memories[0]!.simd).toBe(true);
    expect(memories[0]!.size).toBe(500);
    const ks = [5, 25, 125];
    for (let query = 0; query < 20; query += 1) {
      const embedding = near(centres[query % 8]!);
      const [wasm, js] = memories.map((memory) => {
        const means = new Float64Array(ks.length * candidates);
        const found = new Float64Array(ks.length * candidates);
        memory.predict(embedding, ks, means, found);
        return { means: [...means], found: [...found] };
      });
      expect(wasm).toEqual(js);
    }
  });
});
