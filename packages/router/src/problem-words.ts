/**
 * The words of a math word problem the featurizer counts (`scanText`): conjunctions that join
 * the steps of a problem, number words, and the words of the operations between quantities
 * (comparisons, multiples, parts, what remains, rates). A word is a whole run of `\w` and
 * non-ASCII characters (the featurizer's n-gram words), compared ASCII-case-insensitively.
 */
/** Joins two steps: and, but, then, while, if, after, before (each counts as a clause). */
export const CONJUNCTION = 1;
/** Names a quantity (a sentence holding one counts as a numeric sentence). */
export const NUMBER_WORD = 2;
/** An operation between quantities. */
export const OPERATION = 4;

const KINDS: Readonly<Record<number, readonly string[]>> = {
  [CONJUNCTION]: ['and', 'but', 'then', 'while', 'if', 'after', 'before'],
  [NUMBER_WORD]: [
    'one',
    'two',
    'three',
    'four',
    'five',
    'six',
    'seven',
    'eight',
    'nine',
    'ten',
    'eleven',
    'twelve',
    'fifteen',
    'twenty',
    'thirty',
    'forty',
    'fifty',
    'hundred',
    'thousand',
    'million',
    'dozen',
  ],
  [NUMBER_WORD | OPERATION]: [
    'half',
    'third',
    'quarter',
    'twice',
    'thrice',
    'double',
    'doubles',
    'triple',
    'triples',
  ],
  [OPERATION]: [
    // comparisons
    'more',
    'less',
    'fewer',
    'than',
    'older',
    'younger',
    'longer',
    'shorter',
    // multiples, parts, what remains, rates
    'times',
    'halves',
    'thirds',
    'quarters',
    'fourth',
    'fifth',
    'fraction',
    'remaining',
    'remainder',
    'rest',
    'left',
    'leftover',
    'each',
    'every',
    'per',
    'apiece',
  ],
};

/** Every counted word and its kinds (bits). */
export const PROBLEM_WORDS: ReadonlyMap<string, number> = new Map(
  Object.entries(KINDS).flatMap(([kind, words]) => words.map((word) => [word, Number(kind)])),
);

/** Lengths of the counted words: a run outside them is no counted word. */
const MIN_LENGTH = 2;
const MAX_LENGTH = 9;

/** Open addressing over the words' FNV-1a hashes (as `scanText` computes them, int32). */
const TABLE_MASK = 255;
const tableHash = new Int32Array(TABLE_MASK + 1);
const tableKind = new Uint8Array(TABLE_MASK + 1);
const tableWord: string[] = Array.from({ length: TABLE_MASK + 1 }, () => '');

const slotOf = (hash: number) => (hash ^ (hash >>> 11)) & TABLE_MASK;

/**
 * A quick filter: `WORD_FILTER[hash & WORD_FILTER_MASK]` is 0 for every word whose hash is not
 * a counted word's (most words: the scan looks up only the rest, `problemWordKind`).
 */
export const WORD_FILTER_MASK = 1023;
export const WORD_FILTER = new Uint8Array(WORD_FILTER_MASK + 1);

for (const [word, kind] of PROBLEM_WORDS) {
  let hash = 0x811c9dc5;
  for (let at = 0; at < word.length; at += 1) {
    hash = Math.imul(hash ^ word.charCodeAt(at), 0x01000193);
  }
  let slot = slotOf(hash);
  while (tableKind[slot] !== 0) slot = (slot + 1) & TABLE_MASK;
  tableHash[slot] = hash;
  tableKind[slot] = kind;
  tableWord[slot] = word;
  WORD_FILTER[hash & WORD_FILTER_MASK] = 1;
}

/** `word` (lower-case ASCII) is c[start..end), case-insensitively. */
function sameWord(c: Uint16Array, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let at = start; at < end; at += 1) {
    const code = c[at]!;
    if ((code >= 65 && code <= 90 ? code + 32 : code) !== word.charCodeAt(at - start)) return false;
  }
  return true;
}

/**
 * The kinds (bits; 0 for none) of the word c[start..end) whose FNV-1a hash over its
 * ASCII-lower-cased code units is `hash` (int32).
 */
export function problemWordKind(c: Uint16Array, start: number, end: number, hash: number): number {
  const length = end - start;
  if (length < MIN_LENGTH || length > MAX_LENGTH) return 0;
  for (let slot = slotOf(hash); tableKind[slot] !== 0; slot = (slot + 1) & TABLE_MASK) {
    if (tableHash[slot] === hash && sameWord(c, start, end, tableWord[slot]!)) {
      return tableKind[slot]!;
    }
  }
  return 0;
}

/**
 * What a scan saw of a word problem, in order, 3 numbers each: a word that may be counted (its
 * start, end and hash), a clause end (`CLAUSE_MARK`) or a sentence end (`SENTENCE_MARK`, with
 * the digits scanned so far). Noted during the scan, read after it (`countProblem`), so the
 * scan's loop stays small.
 */
let events = new Int32Array(3 * 1024);
let noted = 0;
const CLAUSE_MARK = -1;
const SENTENCE_MARK = -2;

/** Forgets the events of the previous scan. */
export function startEvents(): void {
  noted = 0;
}

function room(): void {
  if (noted + 3 > events.length) {
    const grown = new Int32Array(events.length * 2);
    grown.set(events);
    events = grown;
  }
}

/** Notes the word c[start..end) (its FNV-1a `hash`, int32, passed `WORD_FILTER`). */
export function noteWord(start: number, end: number, hash: number): void {
  room();
  events[noted] = start;
  events[noted + 1] = end;
  events[noted + 2] = hash;
  noted += 3;
}

/** Notes the end of a clause, or of a `sentence`, after `digits` digits of the scan. */
export function noteClauseEnd(sentence: boolean, digits: number): void {
  room();
  events[noted] = sentence ? SENTENCE_MARK : CLAUSE_MARK;
  events[noted + 1] = digits;
  noted += 3;
}

/** A word problem's counts (`countProblem`). */
export interface ProblemCounts {
  clauses: number;
  numericSentences: number;
  operations: number;
}

/**
 * Counts the noted events of a scan of the code units `c` that found `digits` digits into
 * `counts`: clauses (clause ends and conjunctions), numeric sentences (holding a digit or a
 * number word) and operation words.
 */
export function countProblem(c: Uint16Array, digits: number, counts: ProblemCounts): void {
  let clauses = 0;
  let numeric = 0;
  let operations = 0;
  // the sentence holds a number word; the digits before it
  let numberWord = false;
  let digitsBefore = 0;
  for (let at = 0; at < noted; at += 3) {
    const start = events[at]!;
    if (start >= 0) {
      const kind = problemWordKind(c, start, events[at + 1]!, events[at + 2]!);
      if ((kind & CONJUNCTION) !== 0) clauses += 1;
      if ((kind & NUMBER_WORD) !== 0) numberWord = true;
      if ((kind & OPERATION) !== 0) operations += 1;
      continue;
    }
    clauses += 1;
    if (start !== SENTENCE_MARK) continue;
    if (numberWord || events[at + 1]! > digitsBefore) numeric += 1;
    numberWord = false;
    digitsBefore = events[at + 1]!;
  }
  counts.clauses = clauses;
  counts.numericSentences = numeric + (numberWord || digits > digitsBefore ? 1 : 0);
  counts.operations = operations;
}
