/**
 * Request featurizer: what a request asks, as a fixed-size sparse vector. Pure and fast.
 *
 * Dense slots (0..DENSE-1): bias, log length, code, math, JSON/tools, conversation depth,
 * non-ASCII share (language), digits, question marks, multiple choice, long, embedding (1 when
 * the vector carries one), and how long a math word problem is: clauses, numeric sentences,
 * operation words (`text-scan.ts`). Then hashed word
 * uni/bigrams and character 4-grams (L2-normalized per family) into `HASH_BUCKETS` slots, and
 * one hashed slot for the routing class (so a predictor falls back to per-class bias).
 */
import { extractFeatures } from './classifier.js';
import type { ClassifiableRequest } from './classifier.js';
import { CHOICE, CODE, JSON_ASK, MATH } from './text-scan.js';
import { codeUnitsOf, lowerCode, scanText, scanned } from './text-scan.js';
import type { Buckets } from './text-scan.js';

export const DENSE = 15;
/** The dense slot that says the vector carries an embedding. */
const EMBEDDING_FLAG = 11;
export const HASH_BUCKETS = 1 << 12;
/** Hashed slots for the routing class (the per-class bias). */
export const CLASS_SLOTS = 1024;
/** Slots an embedding (if any) is folded into. */
export const EMBEDDING_SLOTS = 128;
export const EMBEDDING_BASE = DENSE + HASH_BUCKETS + CLASS_SLOTS;
/** Total vector size: dense slots, hashed n-grams, hashed class slots, embedding slots. */
export const VECTOR_SIZE = EMBEDDING_BASE + EMBEDDING_SLOTS;

export const DENSE_NAMES = [
  'bias',
  'log-length',
  'code',
  'math',
  'json/tools',
  'turns',
  'non-ascii',
  'digits',
  'questions',
  'choice',
  'long',
  'embedding',
  'clauses',
  'numeric-sentences',
  'operation-words',
] as const;

/**
 * A sparse request vector: `index[i]` holds `value[i]`; indexes are distinct. Plain packed
 * arrays (small integers, doubles): allocated in the young generation, nothing off-heap.
 */
export interface RequestVector {
  readonly index: readonly number[];
  readonly value: readonly number[];
  /** Optional dense embedding (from `embed(texts)`), used by similarity-based predictors. */
  readonly embedding?: Float32Array;
}

/** FNV-1a 32-bit over a string's UTF-16 code units (from `start` to `end`). */
export function hashText(text: string, start = 0, end = text.length, seed = 0x811c9dc5): number {
  let hash = seed >>> 0;
  for (let index = start; index < end; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Characters of the request looked at for word n-grams (the tail holds the question). */
export const MAX_CHARS = 800;
/** Characters looked at for character n-grams (every third position). */
export const MAX_CHAR_GRAM_CHARS = 400;

export interface FeaturizeInput {
  /** The request text (the user turns, joined). */
  readonly text: string;
  /** Conversation depth (user turns). */
  readonly turns?: number;
  readonly tools?: boolean;
  readonly json?: boolean;
  readonly classKey?: string;
  /** Feature families to include (default: all). */
  readonly families?: readonly FeatureFamily[];
}

export type FeatureFamily = 'shape' | 'words' | 'chars' | 'class' | 'embedding';

export const FAMILY_BITS: Readonly<Record<FeatureFamily, number>> = {
  shape: 1,
  words: 2,
  chars: 4,
  class: 8,
  embedding: 16,
};

/** The families as bits (`FAMILY_BITS`); every family when none are named. */
export function familyBits(families: readonly FeatureFamily[] | undefined): number {
  if (families === undefined) return 31;
  let bits = 0;
  for (let at = 0; at < families.length; at += 1) bits |= FAMILY_BITS[families[at]!];
  return bits;
}

/** Bucket of a 32-bit hash: its low bits (`HASH_BUCKETS` is a power of two; no float modulo). */
const BUCKET_MASK = HASH_BUCKETS - 1;

/**
 * Scratch buckets reused by every call (featurize is synchronous): the values and the list of
 * slots touched, so a call resets only those.
 */
class ScratchBuckets implements Buckets {
  readonly values = new Float64Array(VECTOR_SIZE);
  readonly touched = new Uint32Array(VECTOR_SIZE);
  count = 0;
  /** The sum of the squared counts `addOne` made (exact: integers), so no pass sums them. */
  squares = 0;

  /** Empties the list of touched slots (their values were reset when read). */
  clear(): void {
    this.count = 0;
    this.squares = 0;
  }

  addOne(slot: number): void {
    const count = this.values[slot]!;
    if (count === 0) this.touched[this.count++] = slot;
    this.values[slot] = count + 1;
    this.squares += 2 * count + 1;
  }

  add(slot: number, amount: number): void {
    if (this.values[slot] === 0) this.touched[this.count++] = slot;
    this.values[slot] = this.values[slot]! + amount;
  }

  /** Scales the counts (`addOne`) to `scale` × unit length. */
  normalizeCounts(scale: number): void {
    if (this.squares === 0) return;
    const factor = scale / Math.sqrt(this.squares);
    for (let entry = 0; entry < this.count; entry += 1) {
      const slot = this.touched[entry]!;
      this.values[slot] = this.values[slot]! * factor;
    }
  }
}

const scratch = new ScratchBuckets();
const grams = new ScratchBuckets();
const dense = new Float64Array(DENSE);
const folded = new Float64Array(EMBEDDING_SLOTS);

/**
 * Templates of the result arrays: a vector is a `slice` of each (one copy, and the arrays are
 * born packed with the right element kind). Typed arrays cost more: two small ArrayBuffers per
 * call took longer than the whole scan, and shared buffers carved into views made every 34th
 * call 25 µs slower (a 64 KiB allocation) or pinned a whole buffer per surviving vector.
 */
const INDEX_TEMPLATE = Array.from({ length: VECTOR_SIZE }, () => 0);
const VALUE_TEMPLATE = ((): number[] => {
  // born holding a double, so V8 stores the elements unboxed (fill(0) would make them tagged)
  const zeros = [0.5];
  for (let at = 1; at < VECTOR_SIZE; at += 1) zeros.push(0);
  zeros[0] = 0;
  return zeros;
})();

/**
 * Adds the character 4-grams of the code units c[from..length) (every third position), scaled
 * to 0.5 × unit length.
 */
function addCharGrams(c: Uint16Array, from: number, length: number): void {
  grams.clear();
  for (let index = from; index + 4 <= length; index += 3) {
    // unrolled: the 4-step loop cost as much as its hashing
    let gram = Math.imul(0x1234567 ^ lowerCode(c[index]!), 0x01000193);
    gram = Math.imul(gram ^ lowerCode(c[index + 1]!), 0x01000193);
    gram = Math.imul(gram ^ lowerCode(c[index + 2]!), 0x01000193);
    gram = Math.imul(gram ^ lowerCode(c[index + 3]!), 0x01000193);
    grams.addOne(DENSE + (gram & BUCKET_MASK));
  }
  const charNorm = grams.squares;
  const charFactor = charNorm > 0 ? 0.5 / Math.sqrt(charNorm) : 0;
  for (let entry = 0; entry < grams.count; entry += 1) {
    const slot = grams.touched[entry]!;
    scratch.add(slot, grams.values[slot]! * charFactor);
    grams.values[slot] = 0;
  }
}

/** Fills `dense` (`DENSE_NAMES`) for a request whose text was scanned from `from`. */
function denseSlots(input: FeaturizeInput, from: number, shape: number): void {
  const length = input.text.length;
  const signals = scanned.signals;
  dense[0] = 1;
  dense[1] = scanned.words === 0 ? 0 : Math.log1p(length) / 8;
  dense[2] = (signals & CODE) !== 0 ? 1 : 0;
  dense[3] = (signals & MATH) !== 0 ? 1 : 0;
  dense[4] = input.tools === true || input.json === true || (signals & JSON_ASK) !== 0 ? 1 : 0;
  dense[5] = Math.min((input.turns ?? 1) - 1, 5) / 2;
  dense[6] = Math.min((scanned.nonAscii / Math.max(length - from, 1)) * 4, 1);
  dense[7] = Math.min(scanned.digits / 20, 2);
  dense[8] = Math.min(scanned.questions / 3, 2);
  dense[9] = (signals & CHOICE) !== 0 ? 1 : 0;
  dense[10] = length > 4000 ? 1 : 0;
  dense[EMBEDDING_FLAG] = 0;
  // a word problem's steps: chosen on inner splits of GSM8K's train splits (docs/routing-measurements.md);
  // small scales, as a dense slot's size also weighs its evidence in the predictor's blend
  dense[12] = Math.min(scanned.clauses / 8, 2);
  dense[13] = Math.min(scanned.numericSentences / 4, 2);
  dense[14] = Math.min(scanned.operations / 16, 1);
  for (let slot = 1; slot < DENSE; slot += 1) dense[slot] = dense[slot]! * shape;
}

/** Writes the embedding folded into `EMBEDDING_SLOTS` dimensions, unit length, from `at` on. */
function foldEmbedding(embedding: Float32Array, index: number[], value: number[], at: number) {
  folded.fill(0);
  for (let dim = 0; dim < embedding.length; dim += 1) {
    folded[dim % EMBEDDING_SLOTS] = folded[dim % EMBEDDING_SLOTS]! + embedding[dim]!;
  }
  let norm = 0;
  for (let dim = 0; dim < EMBEDDING_SLOTS; dim += 1) norm += folded[dim]! * folded[dim]!;
  const factor = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let dim = 0; dim < EMBEDDING_SLOTS; dim += 1) {
    index[at + dim] = EMBEDDING_BASE + dim;
    value[at + dim] = folded[dim]! * factor;
  }
}

/**
 * The request vector. Word uni/bigrams come from the last `MAX_CHARS` characters, character
 * 4-grams from the last `MAX_CHAR_GRAM_CHARS`; counts add up per bucket, then each family is
 * scaled to unit length (character n-grams to 0.5). One pass over the text (`scanText`); the
 * only allocation is the result.
 */
export function featurize(input: FeaturizeInput, embedding?: Float32Array): RequestVector {
  const bits = familyBits(input.families);
  const text = input.text;
  const from = Math.max(0, text.length - MAX_CHARS);
  const units = codeUnitsOf(text, from);
  const size = text.length - from;
  scratch.clear();
  scanText(units, size, (bits & FAMILY_BITS.words) !== 0 ? scratch : null, DENSE, BUCKET_MASK);
  scratch.normalizeCounts(1);
  if ((bits & FAMILY_BITS.chars) !== 0) {
    addCharGrams(units, Math.max(0, text.length - MAX_CHAR_GRAM_CHARS) - from, size);
  }
  denseSlots(input, from, (bits & FAMILY_BITS.shape) !== 0 ? 1 : 0);
  const fold = (bits & FAMILY_BITS.embedding) !== 0 ? embedding : undefined;
  const withClass = input.classKey !== undefined && (bits & FAMILY_BITS.class) !== 0;
  const touched = scratch.count;
  const slots = touched + DENSE + (withClass ? 1 : 0) + (fold === undefined ? 0 : EMBEDDING_SLOTS);
  const index = INDEX_TEMPLATE.slice(0, slots);
  const value = VALUE_TEMPLATE.slice(0, slots);
  for (let slot = 0; slot < DENSE; slot += 1) {
    index[slot] = slot;
    value[slot] = dense[slot]!;
  }
  let at = DENSE;
  for (let entry = 0; entry < touched; entry += 1) {
    const slot = scratch.touched[entry]!;
    index[at] = slot;
    value[at] = scratch.values[slot]!;
    scratch.values[slot] = 0;
    at += 1;
  }
  if (withClass) {
    // CLASS_SLOTS is a power of two: the same slot as `% CLASS_SLOTS`, as a small integer (a
    // double here would turn the whole index array into doubles, a copy per call)
    index[at] = DENSE + HASH_BUCKETS + (hashText(input.classKey!) & (CLASS_SLOTS - 1));
    value[at] = 1;
    at += 1;
  }
  if (fold === undefined) return { index, value };
  foldEmbedding(fold, index, value, at);
  value[EMBEDDING_FLAG] = 1;
  return { index, value, embedding: fold };
}

/** The text and shape of a chat request, as the featurizer takes it. */
export function featurizeInputOf(
  request: ClassifiableRequest,
  classKey: string,
  families?: readonly FeatureFamily[],
): FeaturizeInput {
  const features = extractFeatures(request);
  let text = '';
  for (const message of request.messages ?? []) {
    if (message.role !== 'user') continue;
    const content = message.content;
    if (typeof content === 'string') text += (text === '' ? '' : '\n\n') + content;
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (part !== null && typeof part === 'object' && 'text' in part) {
          const value = (part as { text?: unknown }).text;
          if (typeof value === 'string') text += (text === '' ? '' : '\n\n') + value;
        }
      }
    }
  }
  return {
    text,
    turns: Math.max(features.turns, 1),
    tools: features.hasTools,
    json: features.wantsJson,
    classKey,
    ...(families === undefined ? {} : { families }),
  };
}

/** An embedder: texts in, one vector per text out (e.g. an embeddings model). */
export type Embedder = (texts: readonly string[]) => Promise<readonly (readonly number[])[]>;

/**
 * Wraps an embedder with a cache keyed by a hash of the content (two 32-bit hashes and the
 * length), bounded to `maxEntries` (oldest dropped first).
 */
export function cachedEmbedder(
  embed: Embedder,
  maxEntries = 10_000,
): (text: string) => Promise<Float32Array> {
  const cache = new Map<string, Float32Array>();
  return async (text: string) => {
    const key = `${hashText(text)}:${hashText(text, 0, text.length, 0x9747b28c)}:${text.length}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const [vector] = await embed([text]);
    if (vector === undefined) throw new Error('the embedder returned no vector');
    let norm = 0;
    for (const value of vector) norm += value * value;
    const unit = Float32Array.from(vector, (value) => value / (Math.sqrt(norm) || 1));
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, unit);
    return unit;
  };
}
