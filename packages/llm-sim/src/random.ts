/** Deterministic hashing and pseudo-random numbers. Nothing here reads the clock or Math.random. */

/** 32-bit FNV-1a over a string, finished with a murmur3-style avalanche. */
export function hashString(text: string, seed = 0): number {
  let hash = (0x811c9dc5 ^ seed) >>> 0;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return avalanche(hash);
}

/** Mixes a 32-bit value so that nearby inputs give unrelated outputs. */
export function avalanche(value: number): number {
  let hash = value >>> 0;
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** Hashes several parts (joined unambiguously) to a 32-bit value. */
export function hashParts(...parts: readonly (string | number)[]): number {
  let hash = 0x9e3779b9;
  for (const part of parts) {
    hash = hashString(typeof part === 'number' ? `#${part}` : part, hash);
  }
  return hash;
}

/** A uniform number in [0, 1) derived from the parts. */
export function uniformOf(...parts: readonly (string | number)[]): number {
  return hashParts(...parts) / 4294967296;
}

/** A small fast PRNG (mulberry32). */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let value = this.state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [min, max] inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new RangeError('pick() from an empty list');
    return item;
  }

  /** Standard normal variate (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/** Hex id of the given length, deterministic in the parts. */
export function hexId(length: number, ...parts: readonly (string | number)[]): string {
  let out = '';
  let round = 0;
  while (out.length < length) {
    out += hashParts(round++, ...parts)
      .toString(16)
      .padStart(8, '0');
  }
  return out.slice(0, length);
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Base-62 id of the given length, deterministic in the parts (looks like provider ids). */
export function alphaId(length: number, ...parts: readonly (string | number)[]): string {
  const random = new Random(hashParts(...parts));
  let out = '';
  for (let index = 0; index < length; index++) {
    out += ALPHANUMERIC[Math.floor(random.next() * 62)];
  }
  return out;
}
