/**
 * One pass over a request's text (`charCodeAt`, no regular expressions, no allocation): the
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
 */

export const CODE = 1;
export const MATH = 2;
export const JSON_ASK = 4;
export const CHOICE = 8;
const ALL_SIGNALS = CODE | MATH | JSON_ASK | CHOICE;

/** Where the word n-grams go: `add(slot, amount)` for slots `base..base + mask`. */
export interface Buckets {
  add(slot: number, amount: number): void;
}

/** What the last `scanText` found (reused by every call). */
export const scanned = { words: 0, nonAscii: 0, digits: 0, questions: 0, signals: 0 };

/** `\w` without the `u` flag: ASCII letters, digits, underscore. */
const isAsciiWord = (code: number) =>
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
function wordAt(text: string, at: number, word: string, fold: boolean): boolean {
  if (at + word.length > text.length) return false;
  for (let offset = 0; offset < word.length; offset += 1) {
    const code = text.charCodeAt(at + offset);
    if ((fold ? lowerCode(code) : code) !== word.charCodeAt(offset)) return false;
  }
  return true;
}

/** `word` at `at`, followed by a word boundary (`\b` after a word character). */
function keywordAt(text: string, at: number, word: string, fold: boolean): boolean {
  const end = at + word.length;
  return (
    wordAt(text, at, word, fold) && (end === text.length || !isAsciiWord(text.charCodeAt(end)))
  );
}

/** Index of the first character from `at` on that is not `\s`. */
function skipSpaces(text: string, at: number): number {
  let index = at;
  while (index < text.length && isSpace(text.charCodeAt(index))) index += 1;
  return index;
}

/** `\s*\n` from `at`: the white space there holds a line feed. */
function lineEndAhead(text: string, at: number): boolean {
  for (let index = at; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 10) return true;
    if (!isSpace(code)) return false;
  }
  return false;
}

/** `\w+\(` from `at`. */
function callAhead(text: string, at: number): boolean {
  let index = at;
  while (index < text.length && isAsciiWord(text.charCodeAt(index))) index += 1;
  return index > at && index < text.length && text.charCodeAt(index) === 40;
}

/** The character at `at` is `expected`. */
const codeAt = (text: string, at: number, expected: number) =>
  at < text.length && text.charCodeAt(at) === expected;

/** A `\w` character at `at`. */
const asciiWordAt = (text: string, at: number) =>
  at < text.length && isAsciiWord(text.charCodeAt(at));

/** `word` (lower-case) and a word boundary right after the space at `at`. */
const thenWord = (text: string, at: number, word: string) =>
  codeAt(text, at, 32) && keywordAt(text, at + 1, word, true);

/**
 * The code signals of the whole `\w` run text[start..end) (case-sensitive): `function`;
 * `def` + space + `\w+(`; `class` or `import` + space + `\w`.
 */
function codeWord(text: string, start: number, end: number): boolean {
  switch (end - start) {
    case 3:
      return wordAt(text, start, 'def', false) && codeAt(text, end, 32) && callAhead(text, end + 1);
    case 5:
      return (
        wordAt(text, start, 'class', false) && codeAt(text, end, 32) && asciiWordAt(text, end + 1)
      );
    case 6:
      return (
        wordAt(text, start, 'import', false) && codeAt(text, end, 32) && asciiWordAt(text, end + 1)
      );
    case 8:
      return wordAt(text, start, 'function', false);
    default:
      return false;
  }
}

/** The math keywords (case-insensitive) as the whole `\w` run text[start..end). */
function mathWord(text: string, start: number, end: number): boolean {
  switch (end - start) {
    case 3:
      return (
        (wordAt(text, start, 'how', true) && thenWord(text, end, 'many')) ||
        (wordAt(text, start, 'sum', true) && thenWord(text, end, 'of'))
      );
    case 5:
      return wordAt(text, start, 'solve', true);
    case 7:
      return wordAt(text, start, 'percent', true);
    case 8:
      return wordAt(text, start, 'equation', true) || wordAt(text, start, 'integral', true);
    case 9:
      return wordAt(text, start, 'calculate', true);
    case 10:
      return wordAt(text, start, 'derivative', true);
    case 11:
      return wordAt(text, start, 'probability', true);
    default:
      return false;
  }
}

/** The JSON keywords (case-insensitive) as the whole `\w` run text[start..end). */
function jsonWord(text: string, start: number, end: number): boolean {
  const length = end - start;
  if (length === 4) return wordAt(text, start, 'json', true) || wordAt(text, start, 'yaml', true);
  return length === 6 && wordAt(text, start, 'schema', true);
}

/** Per word length (3..11), the first letters (bit `letter - a`) a keyword of that length has. */
const KEYWORD_FIRSTS = new Int32Array(12);
for (const keyword of [
  'def',
  'class',
  'import',
  'function',
  'how',
  'sum',
  'solve',
  'percent',
  'equation',
  'integral',
  'calculate',
  'derivative',
  'probability',
  'json',
  'yaml',
  'schema',
]) {
  KEYWORD_FIRSTS[keyword.length] =
    KEYWORD_FIRSTS[keyword.length]! | (1 << (keyword.charCodeAt(0) - 97));
}

/**
 * The keyword signals (not found yet) of the whole `\w` run text[start..end); a look at its
 * length and first letter rules out most words.
 */
function wordSignals(text: string, start: number, end: number, found: number): number {
  const length = end - start;
  if (length < 3 || length > 11) return 0;
  const first = text.charCodeAt(start) | 32;
  if (first < 97 || first > 122 || ((KEYWORD_FIRSTS[length]! >> (first - 97)) & 1) === 0) return 0;
  let signals = 0;
  if ((found & CODE) === 0 && codeWord(text, start, end)) signals |= CODE;
  if ((found & MATH) === 0 && mathWord(text, start, end)) signals |= MATH;
  if ((found & JSON_ASK) === 0 && jsonWord(text, start, end)) signals |= JSON_ASK;
  return signals;
}

/** `\d\s*[-+*\/^=]\s*\d` from the digit at `at`. */
function arithmeticAhead(text: string, at: number): boolean {
  let index = skipSpaces(text, at + 1);
  if (index >= text.length) return false;
  const code = text.charCodeAt(index);
  // - + * / ^ =
  if (code !== 45 && code !== 43 && code !== 42 && code !== 47 && code !== 94 && code !== 61) {
    return false;
  }
  index = skipSpaces(text, index + 1);
  return index < text.length && isDigit(text.charCodeAt(index));
}

/** `\(?[A-D][).]\s+\S` at `at` (after the line start's white space). */
function choiceAt(text: string, at: number): boolean {
  let index = at;
  if (index < text.length && text.charCodeAt(index) === 40) index += 1;
  if (index + 1 >= text.length) return false;
  const letter = text.charCodeAt(index);
  const mark = text.charCodeAt(index + 1);
  if (letter < 65 || letter > 68 || (mark !== 41 && mark !== 46)) return false;
  const after = skipSpaces(text, index + 2);
  return after > index + 2 && after < text.length;
}

/** The signals (not found yet) a symbol or digit at `index` starts: code or arithmetic. */
function symbolSignals(text: string, index: number, code: number, found: number): number {
  if (isDigit(code)) return (found & MATH) === 0 && arithmeticAhead(text, index) ? MATH : 0;
  if ((found & CODE) !== 0) return 0;
  const next = index + 1;
  const code1 =
    (code === 96 && codeAt(text, next, 96) && codeAt(text, next + 1, 96)) ||
    (code === 61 && codeAt(text, next, 62)) ||
    (code === 35 && wordAt(text, next, 'include', false)) ||
    ((code === 123 || code === 125 || code === 59) && lineEndAhead(text, next));
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
const CLASSES = new Uint16Array(128);
for (let code = 0; code < 128; code += 1) {
  const char = String.fromCharCode(code);
  let kind = lowerCode(code) << 8;
  if (/\w/.test(char)) kind |= ASCII_WORD;
  if (/\d/.test(char)) kind |= DIGIT | SYMBOL_START;
  if (/[a-z]/i.test(char)) kind |= LETTER;
  if ('`=#{};'.includes(char)) kind |= SYMBOL_START;
  CLASSES[code] = kind;
}

/**
 * Adds the buckets of a word (its hash) and of the bigram with the word before it (`previous`,
 * 0 for none); returns what `previous` is for the next word.
 */
function addWord(buckets: Buckets, base: number, mask: number, hash: number, previous: number) {
  const word = hash >>> 0;
  buckets.add(base + (word & mask), 1);
  if (previous !== 0) {
    buckets.add(base + (Math.imul(previous ^ (word >>> 7), 0x9e3779b1) & mask), 1);
  }
  return word | 1;
}

/**
 * Reads `text` from `from` on: counts words, non-ASCII characters, digits and question marks,
 * finds the signals (into `scanned`) and, with `buckets`, adds the hashed word unigrams and
 * bigrams (FNV-1a over lower-cased code units) to slot `base + (hash & mask)`.
 */
export function scanText(
  text: string,
  from: number,
  buckets: Buckets | null,
  base: number,
  mask: number,
): void {
  const length = text.length;
  let inWord = false;
  let hash = 0;
  let previous = 0;
  let words = 0;
  let nonAscii = 0;
  let digits = 0;
  let questions = 0;
  let signals = 0;
  let asciiWord = false;
  let runStart = from;
  let lineStart = true;
  // the white space after a line start ends here: later line starts in it read the same
  let choiceSeenUntil = -1;
  for (let index = from; index < length; index += 1) {
    const code = text.charCodeAt(index);
    let kind = 0;
    if (code < 128) {
      kind = CLASSES[code]!;
      // most characters: a letter inside a word (no count, no signal starts there)
      if ((kind & LETTER) !== 0 && asciiWord) {
        hash = Math.imul(hash ^ (kind >> 8), 0x01000193);
        continue;
      }
      if ((kind & DIGIT) !== 0) digits += 1;
      else if (code === 63) questions += 1;
    } else nonAscii += 1;
    if (signals !== ALL_SIGNALS) {
      if ((kind & SYMBOL_START) !== 0) signals |= symbolSignals(text, index, code, signals);
      if (lineStart && (signals & CHOICE) === 0 && index > choiceSeenUntil) {
        choiceSeenUntil = skipSpaces(text, index);
        if (choiceAt(text, choiceSeenUntil)) signals |= CHOICE;
      }
    }
    lineStart = code === 10;
    if (((kind & ASCII_WORD) !== 0) !== asciiWord) {
      asciiWord = !asciiWord;
      if (asciiWord) runStart = index;
      else if (signals !== ALL_SIGNALS) signals |= wordSignals(text, runStart, index, signals);
    }
    // n-gram words: \w and anything beyond ASCII
    if (asciiWord || code > 127) {
      if (!inWord) {
        hash = 0x811c9dc5;
        inWord = true;
      }
      hash = Math.imul(hash ^ lowerCode(code), 0x01000193);
    } else if (inWord) {
      inWord = false;
      words += 1;
      if (buckets !== null) previous = addWord(buckets, base, mask, hash, previous);
    }
  }
  if (asciiWord) signals |= wordSignals(text, runStart, length, signals);
  if (inWord) {
    words += 1;
    if (buckets !== null) addWord(buckets, base, mask, hash, previous);
  }
  scanned.words = words;
  scanned.nonAscii = nonAscii;
  scanned.digits = digits;
  scanned.questions = questions;
  scanned.signals = signals;
}
