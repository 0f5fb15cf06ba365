/**
 * One pass over a request's text (its code units, no regular expressions, no allocation): the
 * hashed word uni/bigrams go into caller-owned buckets, and the counts and yes/no signals the
 * featurizer's dense slots need land in `scanned`.
 *
 * The signals are exactly what these regular expressions find in the scanned text (the scanned
 * text's start counts as the input's start; `\b`, `\w`, `\d` and `\s` as in JavaScript without
 * the `u` flag):
 * - code: /```|\bdef \w+\(|\bfunction\b|\bclass \w+|=>|#include|\bimport \w|[{};]\s*\n/
 * - math: /\d\s*[-+*\/^=]\s*\d|\b(solve|equation|integral|derivative|how many|calculate|sum of|
 *   probability|percent)\b/i
 * - json: /\bjson\b|\byaml\b|\bschema\b/i
 * - choice: /(^|\n)\s*\(?[A-D][).]\s+\S/
 *
 * It also counts what makes a math word problem long (`problem-words.ts`; a word is a whole run
 * of `\w` and non-ASCII characters, compared ASCII-case-insensitively):
 * - clauses: /[.!?,;](?=\s|$)/g, plus the conjunction words;
 * - numeric sentences: the pieces between sentence ends (/[.!?](?=\s|$)/) holding a digit or a
 *   number word;
 * - operation words: comparisons, multiples, parts, what remains, rates ("than", "twice",
 *   "half", "left", "each"…).
 */

import { Buffer } from 'node:buffer';
import { WORD_FILTER, WORD_FILTER_MASK } from './problem-words.js';
import { countProblem, noteClauseEnd, noteWord, startEvents } from './problem-words.js';

export const CODE = 1;
export const MATH = 2;
export const JSON_ASK = 4;
export const CHOICE = 8;
const ALL_SIGNALS = CODE | MATH | JSON_ASK | CHOICE;

/** UTF-16 code units of the text being scanned (`codeUnitsOf`). */
type Codes = Uint16Array;

/**
 * The code units are copied once into a reused buffer (one native copy): reading a typed array
 * costs a fraction of `charCodeAt`, which checks the string's representation on every call.
 */
let unitBuffer = Buffer.allocUnsafeSlow(2 * 1024);
let units = new Uint16Array(unitBuffer.buffer, unitBuffer.byteOffset, 1024);
/** `utf16le` bytes read as a `Uint16Array` are the code units only on a little-endian machine. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** text[from..] as code units, at 0.. of the returned (reused) array. */
export function codeUnitsOf(text: string, from: number): Uint16Array {
  const count = text.length - from;
  if (count > units.length) {
    unitBuffer = Buffer.allocUnsafeSlow(2 * count);
    units = new Uint16Array(unitBuffer.buffer, unitBuffer.byteOffset, count);
  }
  if (LITTLE_ENDIAN) unitBuffer.write(from === 0 ? text : text.slice(from), 0, 'utf16le');
  else for (let index = 0; index < count; index += 1) units[index] = text.charCodeAt(from + index);
  return units;
}

/**
 * `WORD_FILTER`, copied into this module and checked in the scan's loop: 1.5% fewer instructions
 * per featurize than the check on the imported table inside `noteWord` (callgrind, the decision
 * bench's prompt).
 */
const FILTER = Uint8Array.from(WORD_FILTER);

/** Where the word n-grams go: `addOne(slot)` counts one in slots `base..base + mask`. */
export interface Buckets {
  addOne(slot: number): void;
}

/** What the last `scanText` found (reused by every call). */
export const scanned = {
  words: 0,
  nonAscii: 0,
  digits: 0,
  questions: 0,
  signals: 0,
  clauses: 0,
  numericSentences: 0,
  operations: 0,
};

/** `\w` without the `u` flag: ASCII letters, digits, underscore. */
export const isAsciiWord = (code: number) =>
  (code >= 97 && code <= 122) ||
  (code >= 48 && code <= 57) ||
  code === 95 ||
  (code >= 65 && code <= 90);

const isDigit = (code: number) => code >= 48 && code <= 57;

/** `\s`: ASCII white space, no-break space and the Unicode space separators and line ends. */
function isSpace(code: number): boolean {
  if (code <= 32) return code === 32 || (code >= 9 && code <= 13);
  if (code < 160) return false;
  return (
    code === 160 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

/** ASCII lower case of a character code (other codes unchanged). */
export const lowerCode = (code: number) => (code >= 65 && code <= 90 ? code + 32 : code);

/** `word` (lower-case ASCII) at `at`, case-insensitively when `fold`. */
function wordAt(c: Codes, size: number, at: number, word: string, fold: boolean): boolean {
  if (at + word.length > size) return false;
  for (let offset = 0; offset < word.length; offset += 1) {
    const code = c[at + offset]!;
    if ((fold ? lowerCode(code) : code) !== word.charCodeAt(offset)) return false;
  }
  return true;
}

/** `word` at `at`, followed by a word boundary (`\b` after a word character). */
function keywordAt(c: Codes, size: number, at: number, word: string, fold: boolean): boolean {
  const end = at + word.length;
  return wordAt(c, size, at, word, fold) && (end === size || !isAsciiWord(c[end]!));
}

/** Index of the first character from `at` on that is not `\s`. */
function skipSpaces(c: Codes, size: number, at: number): number {
  let index = at;
  while (index < size && isSpace(c[index]!)) index += 1;
  return index;
}

/** `\s*\n` from `at`: the white space there holds a line feed. */
function lineEndAhead(c: Codes, size: number, at: number): boolean {
  for (let index = at; index < size; index += 1) {
    const code = c[index]!;
    if (code === 10) return true;
    if (!isSpace(code)) return false;
  }
  return false;
}

/** `\w+\(` from `at`. */
function callAhead(c: Codes, size: number, at: number): boolean {
  let index = at;
  while (index < size && isAsciiWord(c[index]!)) index += 1;
  return index > at && index < size && c[index]! === 40;
}

/** The character at `at` is `expected`. */
const codeAt = (c: Codes, size: number, at: number, expected: number) =>
  at < size && c[at]! === expected;

/** A `\w` character at `at`. */
const asciiWordAt = (c: Codes, size: number, at: number) => at < size && isAsciiWord(c[at]!);

/** `word` (lower-case) and a word boundary right after the space at `at`. */
const thenWord = (c: Codes, size: number, at: number, word: string) =>
  codeAt(c, size, at, 32) && keywordAt(c, size, at + 1, word, true);

/**
 * The code signals of the whole `\w` run text[start..end) (case-sensitive): `function`;
 * `def` + space + `\w+(`; `class` or `import` + space + `\w`.
 */
function codeWord(c: Codes, size: number, start: number, end: number): boolean {
  switch (end - start) {
    case 3:
      return (
        wordAt(c, size, start, 'def', false) &&
        codeAt(c, size, end, 32) &&
        callAhead(c, size, end + 1)
      );
    case 5:
      return (
        wordAt(c, size, start, 'class', false) &&
        codeAt(c, size, end, 32) &&
        asciiWordAt(c, size, end + 1)
      );
    case 6:
      return (
        wordAt(c, size, start, 'import', false) &&
        codeAt(c, size, end, 32) &&
        asciiWordAt(c, size, end + 1)
      );
    case 8:
      return wordAt(c, size, start, 'function', false);
    default:
      return false;
  }
}

/** The math keywords (case-insensitive) as the whole `\w` run text[start..end). */
function mathWord(c: Codes, size: number, start: number, end: number): boolean {
  switch (end - start) {
    case 3:
      return (
        (wordAt(c, size, start, 'how', true) && thenWord(c, size, end, 'many')) ||
        (wordAt(c, size, start, 'sum', true) && thenWord(c, size, end, 'of'))
      );
    case 5:
      return wordAt(c, size, start, 'solve', true);
    case 7:
      return wordAt(c, size, start, 'percent', true);
    case 8:
      return wordAt(c, size, start, 'equation', true) || wordAt(c, size, start, 'integral', true);
    case 9:
      return wordAt(c, size, start, 'calculate', true);
    case 10:
      return wordAt(c, size, start, 'derivative', true);
    case 11:
      return wordAt(c, size, start, 'probability', true);
    default:
      return false;
  }
}

/** The JSON keywords (case-insensitive) as the whole `\w` run text[start..end). */
function jsonWord(c: Codes, size: number, start: number, end: number): boolean {
  const length = end - start;
  if (length === 4)
    return wordAt(c, size, start, 'json', true) || wordAt(c, size, start, 'yaml', true);
  return length === 6 && wordAt(c, size, start, 'schema', true);
}

/** The signals a keyword gives, by keyword. */
const KEYWORDS: Readonly<Record<string, number>> = {
  def: CODE,
  class: CODE,
  import: CODE,
  function: CODE,
  how: MATH,
  sum: MATH,
  solve: MATH,
  percent: MATH,
  equation: MATH,
  integral: MATH,
  calculate: MATH,
  derivative: MATH,
  probability: MATH,
  json: JSON_ASK,
  yaml: JSON_ASK,
  schema: JSON_ASK,
};
/** The signals keywords give. */
const WORD_SIGNALS = CODE | MATH | JSON_ASK;

/**
 * Per set of word signals still missing (0..7) and word length (0..11): the first letters
 * (bit `letter - a`) of the keywords that could give one of them.
 */
const KEYWORD_FIRSTS = new Int32Array(8 * 12);
for (let missing = 0; missing <= WORD_SIGNALS; missing += 1) {
  for (const [keyword, signal] of Object.entries(KEYWORDS)) {
    if ((missing & signal) === 0) continue;
    const at = missing * 12 + keyword.length;
    KEYWORD_FIRSTS[at] = KEYWORD_FIRSTS[at]! | (1 << (keyword.charCodeAt(0) - 97));
  }
}

/**
 * Whether the whole `\w` run c[start..end) may be a keyword giving a signal not `found` yet: a
 * look at its length and first letter rules out most words (and every word once the keyword
 * signals are found), so the scan calls `wordSignals` only for the rest.
 */
function mayGiveSignal(c: Codes, start: number, end: number, found: number): boolean {
  const length = end - start;
  if (length < 3 || length > 11) return false;
  const first = c[start]! | 32;
  if (first < 97 || first > 122) return false;
  return ((KEYWORD_FIRSTS[(~found & WORD_SIGNALS) * 12 + length]! >> (first - 97)) & 1) !== 0;
}

/** The keyword signals (not found yet) of the whole `\w` run c[start..end). */
function wordSignals(c: Codes, size: number, start: number, end: number, found: number): number {
  let signals = 0;
  if ((found & CODE) === 0 && codeWord(c, size, start, end)) signals |= CODE;
  if ((found & MATH) === 0 && mathWord(c, size, start, end)) signals |= MATH;
  if ((found & JSON_ASK) === 0 && jsonWord(c, size, start, end)) signals |= JSON_ASK;
  return signals;
}

/** `\d\s*[-+*\/^=]\s*\d` from the digit at `at`. */
function arithmeticAhead(c: Codes, size: number, at: number): boolean {
  let index = skipSpaces(c, size, at + 1);
  if (index >= size) return false;
  const code = c[index]!;
  // - + * / ^ =
  if (code !== 45 && code !== 43 && code !== 42 && code !== 47 && code !== 94 && code !== 61) {
    return false;
  }
  index = skipSpaces(c, size, index + 1);
  return index < size && isDigit(c[index]!);
}

/** `\(?[A-D][).]\s+\S` at `at` (after the line start's white space). */
function choiceAt(c: Codes, size: number, at: number): boolean {
  let index = at;
  if (index < size && c[index]! === 40) index += 1;
  if (index + 1 >= size) return false;
  const letter = c[index]!;
  const mark = c[index + 1]!;
  if (letter < 65 || letter > 68 || (mark !== 41 && mark !== 46)) return false;
  const after = skipSpaces(c, size, index + 2);
  return after > index + 2 && after < size;
}

/** The signals (not found yet) a symbol or digit at `index` starts: code or arithmetic. */
function symbolSignals(c: Codes, size: number, index: number, code: number, found: number): number {
  if (isDigit(code)) return (found & MATH) === 0 && arithmeticAhead(c, size, index) ? MATH : 0;
  if ((found & CODE) !== 0) return 0;
  const next = index + 1;
  const code1 =
    (code === 96 && codeAt(c, size, next, 96) && codeAt(c, size, next + 1, 96)) ||
    (code === 61 && codeAt(c, size, next, 62)) ||
    (code === 35 && wordAt(c, size, next, 'include', false)) ||
    ((code === 123 || code === 125 || code === 59) && lineEndAhead(c, size, next));
  return code1 ? CODE : 0;
}

/**
 * Character classes of the ASCII codes (one table lookup per character instead of ranges), with
 * the lower-case code in the high byte.
 */
const ASCII_WORD = 1;
const DIGIT = 2;
const LETTER = 4;
/** May start a code or arithmetic signal anywhere: ` = # { } ; and the digits. */
const SYMBOL_START = 8;
/** Ends a clause when `\s` or the end follows: . ! ? , ; (the first three a sentence). */
const CLAUSE_END = 16;
const SENTENCE_END = 32;
const CLASSES = new Uint16Array(128);
for (let code = 0; code < 128; code += 1) {
  const char = String.fromCharCode(code);
  let kind = lowerCode(code) << 8;
  if (/\w/.test(char)) kind |= ASCII_WORD;
  if (/\d/.test(char)) kind |= DIGIT | SYMBOL_START;
  if (/[a-z]/i.test(char)) kind |= LETTER;
  if ('`=#{};'.includes(char)) kind |= SYMBOL_START;
  if ('.!?,;'.includes(char)) kind |= CLAUSE_END;
  if ('.!?'.includes(char)) kind |= SENTENCE_END;
  CLASSES[code] = kind;
}

/**
 * Adds the buckets of a word (its hash) and of the bigram with the word before it (`previous`,
 * 0 for none); returns what `previous` is for the next word.
 */
export function addWord(
  buckets: Buckets,
  base: number,
  mask: number,
  hash: number,
  previous: number,
) {
  const word = hash >>> 0;
  buckets.addOne(base + (word & mask));
  if (previous !== 0) {
    buckets.addOne(base + (Math.imul(previous ^ (word >>> 7), 0x9e3779b1) & mask));
  }
  return word | 1;
}

/**
 * Reads the code units c[0..size) (`codeUnitsOf`): counts words, non-ASCII characters, digits,
 * question marks and a word problem's clauses, numeric sentences and operation words, finds the
 * signals (into `scanned`) and, with `buckets`, adds the hashed word unigrams and bigrams
 * (FNV-1a over lower-cased code units) to slot `base + (hash & mask)`. Most characters are
 * letters inside a word (no count, no signal starts there): the next ones are hashed in a loop
 * of their own (few live values: 16% faster). The white space after a line start ends at
 * `choiceSeenUntil`: later line starts in it read the same. Words for the n-grams: runs of `\w`
 * and anything beyond ASCII.
 */
export function scanText(
  c: Codes,
  size: number,
  buckets: Buckets | null,
  base: number,
  mask: number,
): void {
  startEvents();
  let inWord = false;
  let hash = 0;
  let previous = 0;
  let words = 0;
  let nonAscii = 0;
  let digits = 0;
  let questions = 0;
  let signals = 0;
  let asciiWord = false;
  let runStart = 0;
  let wordStart = 0;
  let lineStart = true;
  let choiceSeenUntil = -1;
  // one step past the end, reading a space there: it ends the last word
  for (let index = 0; index <= size; index += 1) {
    const code = index < size ? c[index]! : 32;
    let kind = 0;
    if (code < 128) {
      kind = CLASSES[code]!;
      if ((kind & LETTER) !== 0 && asciiWord) {
        hash = Math.imul(hash ^ (kind >> 8), 0x01000193);
        while (index + 1 < size) {
          const next = c[index + 1]!;
          if (next >= 128) break;
          const nextKind = CLASSES[next]!;
          if ((nextKind & LETTER) === 0) break;
          hash = Math.imul(hash ^ (nextKind >> 8), 0x01000193);
          index += 1;
        }
        continue;
      }
      if ((kind & DIGIT) !== 0) digits += 1;
      else if (code === 63) questions += 1;
    } else nonAscii += 1;
    if (signals !== ALL_SIGNALS) {
      if ((kind & SYMBOL_START) !== 0) signals |= symbolSignals(c, size, index, code, signals);
      if (lineStart && (signals & CHOICE) === 0 && index > choiceSeenUntil) {
        choiceSeenUntil = skipSpaces(c, size, index);
        if (choiceAt(c, size, choiceSeenUntil)) signals |= CHOICE;
      }
    }
    lineStart = code === 10;
    if (((kind & ASCII_WORD) !== 0) !== asciiWord) {
      asciiWord = !asciiWord;
      if (asciiWord) runStart = index;
      else if (signals !== ALL_SIGNALS && mayGiveSignal(c, runStart, index, signals)) {
        signals |= wordSignals(c, size, runStart, index, signals);
      }
    }
    if (asciiWord || code > 127) {
      if (!inWord) {
        hash = 0x811c9dc5;
        inWord = true;
        wordStart = index;
      }
      hash = Math.imul(hash ^ lowerCode(code), 0x01000193);
    } else if (inWord) {
      inWord = false;
      words += 1;
      if (buckets !== null) previous = addWord(buckets, base, mask, hash, previous);
      if (FILTER[hash & WORD_FILTER_MASK] !== 0) noteWord(wordStart, index, hash);
    }
    if ((kind & CLAUSE_END) !== 0 && (index + 1 === size || isSpace(c[index + 1]!))) {
      noteClauseEnd((kind & SENTENCE_END) !== 0, digits);
    }
  }
  countProblem(c, digits, scanned);
  record(words, nonAscii, digits, questions, signals);
}

/** Stores what a scan found in `scanned`. */
function record(
  words: number,
  nonAscii: number,
  digits: number,
  questions: number,
  signals: number,
) {
  scanned.words = words;
  scanned.nonAscii = nonAscii;
  scanned.digits = digits;
  scanned.questions = questions;
  scanned.signals = signals;
}
