/**
 * Request featurizer: what a request asks, as a fixed-size sparse vector. Pure and fast.
 *
 * Dense slots (0..DENSE-1): bias, log length, code, math, JSON/tools, conversation depth,
 * non-ASCII share (language), digits, question marks, multiple choice, long. Then hashed word
 * uni/bigrams and character 4-grams (L2-normalized per family) into `HASH_BUCKETS` slots, and
 * one hashed slot for the routing class (so a predictor falls back to per-class bias).
 */
import { extractFeatures } from './classifier.js';
import type { ClassifiableRequest } from './classifier.js';

export const DENSE = 12;
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
] as const;

/** A sparse request vector: `index[i]` holds `value[i]`; indexes are distinct. */
export interface RequestVector {
  readonly index: Uint32Array;
  readonly value: Float64Array;
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

const CODE = /```|\bdef \w+\(|\bfunction\b|\bclass \w+|=>|#include|\bimport \w|[{};]\s*\n/;
const MATH =
  /\d\s*[-+*/^=]\s*\d|\b(solve|equation|integral|derivative|how many|calculate|sum of|probability|percent)\b/i;
const JSON_ASK = /\bjson\b|\byaml\b|\bschema\b/i;
const CHOICE = /(^|\n)\s*\(?[A-D][).]\s+\S/;

/** Characters of the request looked at for word n-grams (the tail holds the question). */
const MAX_CHARS = 800;
/** Characters looked at for character n-grams (every third position). */
const MAX_CHAR_GRAM_CHARS = 400;

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

// Scratch space reused by every call (featurize is synchronous): bucket values and the list of
// buckets touched, so a call allocates only its result.
const scratch = new Float64Array(VECTOR_SIZE);
const touched = new Uint32Array(VECTOR_SIZE);
let touchedCount = 0;
const grams = new Float64Array(VECTOR_SIZE);
const gramSlots = new Uint32Array(VECTOR_SIZE);
/** Bucket of a 32-bit hash: its low bits (`HASH_BUCKETS` is a power of two; no float modulo). */
const BUCKET_MASK = HASH_BUCKETS - 1;
/** What the word scan counted in the text it read. */
const counted = { words: 0, nonAscii: 0, digits: 0, questions: 0 };

function bump(slot: number, amount: number): void {
  if (scratch[slot] === 0) touched[touchedCount++] = slot;
  scratch[slot] = scratch[slot]! + amount;
}

/** ASCII lower case of a character code (other codes unchanged). */
const lowerCode = (code: number) => (code >= 65 && code <= 90 ? code + 32 : code);
/** Letters, digits, underscore, and anything beyond ASCII count as word characters. */
const isWordCode = (code: number) =>
  (code >= 97 && code <= 122) ||
  (code >= 48 && code <= 57) ||
  code === 95 ||
  (code >= 65 && code <= 90) ||
  code > 127;

/**
 * Reads `text` from `from` on: counts words, non-ASCII characters, digits and question marks
 * (into `counted`) and, with `withWords`, adds the hashed word unigrams and bigrams (FNV-1a over
 * lower-cased code units) to the scratch buckets.
 */
function scanWords(text: string, from: number, withWords: boolean): void {
  const length = text.length;
  let hash = 0x811c9dc5;
  let inWord = false;
  let previous = 0;
  let words = 0;
  let nonAscii = 0;
  let digits = 0;
  let questions = 0;
  for (let index = from; index <= length; index += 1) {
    const code = index < length ? text.charCodeAt(index) : 32;
    if (index < length) {
      const digit = code >= 48 && code <= 57;
      if (code > 127) nonAscii += 1;
      else if (digit) digits += 1;
      else if (code === 63) questions += 1;
    }
    if (isWordCode(code)) {
      if (!inWord) {
        hash = 0x811c9dc5;
        inWord = true;
      }
      hash = Math.imul(hash ^ lowerCode(code), 0x01000193);
    } else if (inWord) {
      inWord = false;
      words += 1;
      if (withWords) {
        const word = hash >>> 0;
        bump(DENSE + (word & BUCKET_MASK), 1);
        if (previous !== 0) {
          bump(DENSE + (Math.imul(previous ^ (word >>> 7), 0x9e3779b1) & BUCKET_MASK), 1);
        }
        previous = word | 1;
      }
    }
  }
  counted.words = words;
  counted.nonAscii = nonAscii;
  counted.digits = digits;
  counted.questions = questions;
}

/** Adds the character 4-grams (every third position from `from`), scaled to 0.5 × unit length. */
function addCharGrams(text: string, from: number): void {
  const length = text.length;
  let gramsTouched = 0;
  for (let index = from; index + 4 <= length; index += 3) {
    let gram = 0x1234567;
    for (let at = index; at < index + 4; at += 1) {
      gram = Math.imul(gram ^ lowerCode(text.charCodeAt(at)), 0x01000193);
    }
    const slot = DENSE + (gram & BUCKET_MASK);
    if (grams[slot] === 0) gramSlots[gramsTouched++] = slot;
    grams[slot] = grams[slot]! + 1;
  }
  let charNorm = 0;
  for (let entry = 0; entry < gramsTouched; entry += 1) charNorm += grams[gramSlots[entry]!]! ** 2;
  const charFactor = charNorm > 0 ? 0.5 / Math.sqrt(charNorm) : 0;
  for (let entry = 0; entry < gramsTouched; entry += 1) {
    const slot = gramSlots[entry]!;
    bump(slot, grams[slot]! * charFactor);
    grams[slot] = 0;
  }
}

/** The dense slots (`DENSE_NAMES`) of a request whose text was scanned from `from`. */
function denseSlots(input: FeaturizeInput, from: number, shape: number): number[] {
  const text = input.text;
  const length = text.length;
  const tail = from > 0 ? text.slice(from) : text;
  const dense = [
    1,
    counted.words === 0 ? 0 : Math.log1p(length) / 8,
    CODE.test(tail) ? 1 : 0,
    MATH.test(tail) ? 1 : 0,
    input.tools === true || input.json === true || JSON_ASK.test(tail) ? 1 : 0,
    Math.min((input.turns ?? 1) - 1, 5) / 2,
    Math.min((counted.nonAscii / Math.max(length - from, 1)) * 4, 1),
    Math.min(counted.digits / 20, 2),
    Math.min(counted.questions / 3, 2),
    CHOICE.test(tail) ? 1 : 0,
    length > 4000 ? 1 : 0,
    0,
  ];
  for (let slot = 1; slot < DENSE; slot += 1) dense[slot] = dense[slot]! * shape;
  return dense;
}

/** Writes the embedding folded into `EMBEDDING_SLOTS` dimensions, unit length, from `at` on. */
function foldEmbedding(
  embedding: Float32Array,
  index: Uint32Array,
  value: Float64Array,
  at: number,
): void {
  const folded = new Float64Array(EMBEDDING_SLOTS);
  for (let dim = 0; dim < embedding.length; dim += 1) {
    folded[dim % EMBEDDING_SLOTS] = folded[dim % EMBEDDING_SLOTS]! + embedding[dim]!;
  }
  let norm = 0;
  for (const entry of folded) norm += entry * entry;
  const factor = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let dim = 0; dim < EMBEDDING_SLOTS; dim += 1) {
    index[at + dim] = EMBEDDING_BASE + dim;
    value[at + dim] = folded[dim]! * factor;
  }
}

/**
 * The request vector. Word uni/bigrams come from the last `MAX_CHARS` characters, character
 * 4-grams from the last `MAX_CHAR_GRAM_CHARS`; counts add up per bucket, then each family is
 * scaled to unit length (character n-grams to 0.5).
 */
export function featurize(input: FeaturizeInput, embedding?: Float32Array): RequestVector {
  const families = input.families;
  const has = (family: FeatureFamily) => families === undefined || families.includes(family);
  const length = input.text.length;
  const from = Math.max(0, length - MAX_CHARS);
  touchedCount = 0;
  scanWords(input.text, from, has('words'));
  normalize(0, touchedCount, 1);
  if (has('chars')) addCharGrams(input.text, Math.max(0, length - MAX_CHAR_GRAM_CHARS));
  const dense = denseSlots(input, from, has('shape') ? 1 : 0);
  const folded = has('embedding') ? embedding : undefined;
  const withClass = input.classKey !== undefined && has('class');
  const size =
    touchedCount + DENSE + (withClass ? 1 : 0) + (folded === undefined ? 0 : EMBEDDING_SLOTS);
  const index = new Uint32Array(size);
  const value = new Float64Array(size);
  let at = 0;
  for (let slot = 0; slot < DENSE; slot += 1) {
    index[at] = slot;
    value[at] = dense[slot]!;
    at += 1;
  }
  for (let entry = 0; entry < touchedCount; entry += 1) {
    const slot = touched[entry]!;
    index[at] = slot;
    value[at] = scratch[slot]!;
    scratch[slot] = 0;
    at += 1;
  }
  if (withClass) {
    index[at] = DENSE + HASH_BUCKETS + (hashText(input.classKey!) % CLASS_SLOTS);
    value[at] = 1;
    at += 1;
  }
  if (folded === undefined) return { index, value };
  foldEmbedding(folded, index, value, at);
  value[DENSE - 1] = 1;
  return { index, value, embedding: folded };
}

/** Scales the scratch buckets listed in touched[start..end) to `scale` × unit length. */
function normalize(start: number, end: number, scale: number): void {
  let norm = 0;
  for (let entry = start; entry < end; entry += 1) norm += scratch[touched[entry]!]! ** 2;
  if (norm === 0) return;
  const factor = scale / Math.sqrt(norm);
  for (let entry = start; entry < end; entry += 1) {
    const slot = touched[entry]!;
    scratch[slot] = scratch[slot]! * factor;
  }
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
