/** A source of uniform numbers in [0, 1), e.g. `Math.random` or `createRandom(seed)`. */
export type RandomSource = () => number;

/** A seeded, fast pseudo-random source (mulberry32), so decisions are reproducible in tests. */
export function createRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}
