/**
 * Readable names of a request vector's hashed slots, for explanations only (never on the
 * routing path): the request text is tokenized again exactly as `featurize` reads it (the same
 * tail, word boundaries, ASCII lower-casing, FNV-1a hashes and slots), so each hashed slot of
 * `featurize(text)` gets the tokens that landed in it.
 *
 * Notation: a word as it was hashed (`refund`, ASCII lower-cased, other characters as they are),
 * a bigram as its two words with one space (`refund policy`; words never hold an ASCII space),
 * a character 4-gram as a JSON string (`"efun"`, `" pol"`, `"\n\nwh"`). Tokens that share a slot
 * (hash collisions) are joined with ` | `: words and bigrams first, then character grams, each in
 * the order they first appear in the text.
 */
import { DENSE, FAMILY_BITS, HASH_BUCKETS, MAX_CHARS, MAX_CHAR_GRAM_CHARS } from './features.js';
import { familyBits, featurizeInputOf, hashText } from './features.js';
import type { ClassifiableRequest } from './classifier.js';
import type { FeatureFamily } from './features.js';
import { addWord, isAsciiWord, lowerCode } from './text-scan.js';

const MASK = HASH_BUCKETS - 1;

/** A word of the n-grams: a run of `\w` (ASCII letters, digits, `_`) and non-ASCII code units. */
const isWordUnit = (code: number) => code > 127 || isAsciiWord(code);

/** `text` with its ASCII letters lower-cased (what the featurizer hashes). */
function lowered(text: string): string {
  let out = '';
  for (let at = 0; at < text.length; at += 1)
    out += String.fromCharCode(lowerCode(text.charCodeAt(at)));
  return out;
}

/** Adds `token` to the names of `slot` (once). */
function addName(names: Map<number, string[]>, slot: number, token: string): void {
  const list = names.get(slot);
  if (list === undefined) names.set(slot, [token]);
  else if (!list.includes(token)) list.push(token);
}

/** The slots `addWord` counts for a word (`hash`) after `previous`: unigram, then bigram. */
function wordSlots(hash: number, previous: number): { slots: number[]; previous: number } {
  const slots: number[] = [];
  const next = addWord({ addOne: (slot) => slots.push(slot) }, DENSE, MASK, hash, previous);
  return { slots, previous: next };
}

/** The word unigrams and bigrams of text[from..], as `scanText` hashes them. */
function nameWords(text: string, from: number, names: Map<number, string[]>): void {
  let previous = 0;
  let before = '';
  let at = from;
  while (at < text.length) {
    if (!isWordUnit(text.charCodeAt(at))) {
      at += 1;
      continue;
    }
    const start = at;
    while (at < text.length && isWordUnit(text.charCodeAt(at))) at += 1;
    const word = lowered(text.slice(start, at));
    const { slots, previous: next } = wordSlots(hashText(word), previous);
    addName(names, slots[0]!, word);
    if (slots.length > 1) addName(names, slots[1]!, `${before} ${word}`);
    previous = next;
    before = word;
  }
}

/** The character 4-grams of text[start..] at every third position, as `featurize` hashes them. */
function nameCharGrams(text: string, start: number, names: Map<number, string[]>): void {
  for (let at = start; at + 4 <= text.length; at += 3) {
    const gram = lowered(text.slice(at, at + 4));
    addName(names, DENSE + (hashText(gram, 0, 4, 0x1234567) & MASK), JSON.stringify(gram));
  }
}

/**
 * Slot → readable name (see the notation above) for every hashed word/bigram/character-4-gram
 * slot that `featurize({ text, families })` fills. Allocates per token: explanations only.
 */
export function featureNames(
  text: string,
  families?: readonly FeatureFamily[],
): Map<number, string> {
  const bits = familyBits(families);
  const names = new Map<number, string[]>();
  if ((bits & FAMILY_BITS.words) !== 0) {
    nameWords(text, Math.max(0, text.length - MAX_CHARS), names);
  }
  if ((bits & FAMILY_BITS.chars) !== 0) {
    nameCharGrams(text, Math.max(0, text.length - MAX_CHAR_GRAM_CHARS), names);
  }
  const joined = new Map<number, string>();
  for (const [slot, tokens] of names) joined.set(slot, tokens.join(' | '));
  return joined;
}

/** The request `RoutingEngine.explain` names features from: its text, or the chat params. */
export type ExplainedRequest = string | ClassifiableRequest;

/** `featureNames` of a request's text as the featurizer reads it (`featurizeInputOf`). */
export function requestNames(
  request: ExplainedRequest | undefined,
  families: readonly FeatureFamily[],
): Map<number, string> | undefined {
  if (request === undefined) return undefined;
  const text = typeof request === 'string' ? request : featurizeInputOf(request, '').text;
  return featureNames(text, families);
}
