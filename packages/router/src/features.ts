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
/** Total vector size: dense slots, hashed n-grams, hashed class slots. */
export const VECTOR_SIZE = DENSE + HASH_BUCKETS + 64;

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

/** Characters of the request looked at for n-grams (the tail holds the question). */
const MAX_CHARS = 1200;

export interface FeaturizeInput {
  /** The request text (the user turns, joined). */
  readonly text: string;
  /** Conversation depth (user turns). */
  readonly turns?: number;
  readonly tools?: boolean;
  readonly json?: boolean;
  readonly classKey?: string;
}

/**
 * The request vector. Word and character n-grams come from the last `MAX_CHARS` characters;
 * counts add up per bucket, then each family is scaled to unit length.
 */
export function featurize(input: FeaturizeInput, embedding?: Float32Array): RequestVector {
  const full = input.text;
  const text = full.length > MAX_CHARS ? full.slice(full.length - MAX_CHARS) : full;
  const buckets = new Map<number, number>();
  // word unigrams and bigrams
  const lower = text.toLowerCase();
  let previous = 0;
  let words = 0;
  const wordRe = /[\p{L}\p{N}_]+/gu;
  for (let match = wordRe.exec(lower); match !== null; match = wordRe.exec(lower)) {
    const hash = hashText(match[0]);
    const slot = DENSE + (hash % HASH_BUCKETS);
    buckets.set(slot, (buckets.get(slot) ?? 0) + 1);
    if (previous !== 0) {
      const pair = DENSE + ((Math.imul(previous ^ (hash >>> 7), 0x9e3779b1) >>> 0) % HASH_BUCKETS);
      buckets.set(pair, (buckets.get(pair) ?? 0) + 1);
    }
    previous = hash | 1;
    words += 1;
  }
  normalizeFamily(buckets);
  // character 4-grams
  const chars = new Map<number, number>();
  for (let index = 0; index + 4 <= lower.length; index += 2) {
    const slot = DENSE + (hashText(lower, index, index + 4, 0x1234567) % HASH_BUCKETS);
    chars.set(slot, (chars.get(slot) ?? 0) + 1);
  }
  normalizeFamily(chars, 0.5);
  for (const [slot, value] of chars) buckets.set(slot, (buckets.get(slot) ?? 0) + value);
  let nonAscii = 0;
  let digits = 0;
  let questions = 0;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code > 127) nonAscii += 1;
    else if (code >= 48 && code <= 57) digits += 1;
    else if (code === 63) questions += 1;
  }
  const length = Math.max(full.length, 1);
  const dense = [
    1,
    Math.log1p(full.length) / 8,
    CODE.test(text) ? 1 : 0,
    MATH.test(text) ? 1 : 0,
    input.tools === true || input.json === true || JSON_ASK.test(text) ? 1 : 0,
    Math.min((input.turns ?? 1) - 1, 5) / 2,
    Math.min((nonAscii / Math.max(text.length, 1)) * 4, 1),
    Math.min(digits / 20, 2),
    Math.min(questions / 3, 2),
    CHOICE.test(text) ? 1 : 0,
    length > 4000 ? 1 : 0,
    0,
  ];
  if (words === 0) dense[1] = 0;
  const size = buckets.size + DENSE + (input.classKey === undefined ? 0 : 1);
  const index = new Uint32Array(size);
  const value = new Float64Array(size);
  let at = 0;
  for (let slot = 0; slot < DENSE; slot += 1) {
    index[at] = slot;
    value[at] = dense[slot]!;
    at += 1;
  }
  for (const [slot, count] of buckets) {
    index[at] = slot;
    value[at] = count;
    at += 1;
  }
  if (input.classKey !== undefined) {
    index[at] = DENSE + HASH_BUCKETS + (hashText(input.classKey) % 64);
    value[at] = 1;
  }
  return embedding === undefined ? { index, value } : { index, value, embedding };
}

function normalizeFamily(family: Map<number, number>, scale = 1): void {
  let norm = 0;
  for (const count of family.values()) norm += count * count;
  if (norm === 0) return;
  const factor = scale / Math.sqrt(norm);
  for (const [slot, count] of family) family.set(slot, count * factor);
}

/** The text and shape of a chat request, as the featurizer takes it. */
export function featurizeInputOf(request: ClassifiableRequest, classKey: string): FeaturizeInput {
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
