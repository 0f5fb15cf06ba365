import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DENSE, featurize } from '../src/features.js';
import type { FeaturizeInput, RequestVector } from '../src/features.js';
import { CONJUNCTION, NUMBER_WORD, OPERATION, PROBLEM_WORDS } from '../src/problem-words.js';
import { createRandom } from '../src/random.js';

/** A short digest of a vector's exact bytes (indexes as uint32, then values as float64). */
function digest(vector: RequestVector): string {
  const hash = createHash('sha256');
  hash.update(Uint32Array.from(vector.index));
  hash.update(Float64Array.from(vector.value));
  return hash.digest('hex').slice(0, 16);
}

/** 100,000 characters: prose, figures, code and accented words, with line breaks. */
function longText(): string {
  const parts = [
    'Summarize the report below.',
    'Revenue grew 12% to $4.1M; costs fell.',
    'The team shipped 3 releases {\n',
    'and fixed 41 bugs in the parser?',
    'Zürich office: naïve café résumé —',
    'def run(x):\n  return x * 2',
  ];
  let text = '';
  for (let index = 0; text.length < 100_000; index += 1) {
    text += parts[index % parts.length]! + (index % 7 === 0 ? '\n' : ' ') + index + ' ';
  }
  return text.slice(0, 100_000);
}

interface PinnedCase {
  readonly input: FeaturizeInput;
  readonly embedding?: readonly number[];
  readonly size: number;
  readonly dense: readonly number[];
  readonly digest: string;
}

/**
 * Vectors of fixed prompts, recorded from the featurizer before the single-pass rewrite (the
 * regular-expression version), then again when the word problem's dense slots (12-14:
 * clauses, numeric sentences, operation words) were added (every other value unchanged, the
 * hashed and class slots 3 higher): any change to what a request's vector is shows up here.
 */
const PINNED: Record<string, PinnedCase> = {
  empty: {
    input: { text: '' },
    size: 15,
    dense: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    digest: 'bdd5d3ae750499d5',
  },
  question: {
    input: {
      text: 'How many apples are left if I eat 3 of 7? Solve it step by step.',
      classKey: 'math',
    },
    size: 67,
    dense: [
      1, 0.5217984087369546, 0, 1, 0, 0, 0, 0.1, 0.3333333333333333, 0, 0, 0, 0.375, 0.25, 0.0625,
    ],
    digest: 'bbea6977cc39bf4d',
  },
  nonAscii: {
    input: {
      text: 'Wie viele Äpfel? 日本語のテキストを翻訳してください。 Привет, мир! 🎉 ¿Qué tal? naïve café',
      classKey: 'chat',
      turns: 3,
    },
    size: 60,
    dense: [1, 0.5363074301435489, 0, 0, 0, 1, 1, 0, 0.6666666666666666, 0, 0, 0, 0.5, 0, 0],
    digest: '8be93751e9baabf3',
  },
  code: {
    input: {
      text: '```python\ndef add(a, b):\n    return a + b\n```\nWhy does `import os` fail here;\n  {\n}\nconst f = (x) => x;',
      classKey: 'code',
    },
    size: 80,
    dense: [1, 0.5805488623926716, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.375, 0, 0],
    digest: 'a74a7505db18ee20',
  },
  json: {
    input: {
      text: 'Return JSON matching this schema: {"type": "object", "properties": {"a": {"type": "number"}}}\n(A) yes\n  B. no\nC) maybe',
      classKey: 'json',
      tools: true,
    },
    size: 83,
    dense: [1, 0.5973904366389412, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0.25, 0, 0],
    digest: 'a6e7fddd8ad78aa1',
  },
  long: {
    input: { text: longText(), classKey: 'long' },
    size: 268,
    dense: [1, 1.4391169331150286, 1, 0, 0, 0, 0.095, 2, 1, 0, 1, 0, 2, 2, 0],
    digest: 'a53b7a42a9c7ef08',
  },
  chars: {
    input: {
      text: 'Translate to French: the quick brown fox jumps over the lazy dog. 2 + 2 = 4',
      classKey: 'chat',
      families: ['shape', 'words', 'chars', 'class'],
    },
    size: 67,
    dense: [1, 0.5413416675357914, 0, 1, 0, 0, 0, 0.15, 0, 0, 0, 0, 0.125, 0.25, 0],
    digest: '1b4a0185de3321b2',
  },
  shapeOnly: {
    input: {
      text: 'Calculate the integral of x^2 from 0 to 1 in YAML',
      classKey: 'math',
      families: ['shape'],
    },
    size: 15,
    dense: [1, 0.48900287567851825, 0, 1, 1, 0, 0, 0.15, 0, 0, 0, 0, 0, 0.25, 0],
    digest: '146b8c0bf8fb964c',
  },
  embedded: {
    input: { text: 'hello there, general Kenobi', classKey: 'chat' },
    embedding: [0.6, 0.8, -0.1, 0.25, 0.3],
    size: 159,
    dense: [1, 0.4165255637719005, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0.125, 0, 0],
    digest: 'fb88b8713a685dd3',
  },
};

const vectorOf = (pinned: PinnedCase) =>
  pinned.embedding === undefined
    ? featurize(pinned.input)
    : featurize(pinned.input, Float32Array.from(pinned.embedding));

describe('featurize keeps the vector it had', () => {
  for (const [name, pinned] of Object.entries(PINNED)) {
    it(`pins the vector of the ${name} prompt`, () => {
      const vector = vectorOf(pinned);
      expect(vector.index.length).toBe(pinned.size);
      expect(vector.value.slice(0, DENSE)).toEqual(pinned.dense);
      expect(digest(vector)).toBe(pinned.digest);
    });
  }

  it('gives the same vector however calls interleave, and earlier vectors stay intact', () => {
    const first = featurize(PINNED.code!.input);
    const copy = { index: Uint32Array.from(first.index), value: Float64Array.from(first.value) };
    // many calls reuse the scratch buckets: none may leak into a returned vector
    for (let round = 0; round < 300; round += 1) {
      for (const pinned of Object.values(PINNED)) {
        expect(digest(vectorOf(pinned))).toBe(pinned.digest);
      }
    }
    expect(Array.from(first.index)).toEqual(Array.from(copy.index));
    expect(Array.from(first.value)).toEqual(Array.from(copy.value));
  });
});

/** What the featurizer's dense yes/no slots meant when they were regular expressions. */
const REFERENCE = {
  code: /```|\bdef \w+\(|\bfunction\b|\bclass \w+|=>|#include|\bimport \w|[{};]\s*\n/,
  math: /\d\s*[-+*/^=]\s*\d|\b(solve|equation|integral|derivative|how many|calculate|sum of|probability|percent)\b/i,
  json: /\bjson\b|\byaml\b|\bschema\b/i,
  choice: /(^|\n)\s*\(?[A-D][).]\s+\S/,
};

/** Pieces that start, complete or nearly complete each signal, and break them. */
const PIECES = [
  'def ',
  'def',
  'add(',
  'x',
  '(',
  ')',
  'function',
  'Function',
  'functions',
  'class ',
  'class',
  'import ',
  'import',
  '#include',
  '#',
  '=>',
  '=',
  '>',
  '```',
  '``',
  '`',
  '{',
  '}',
  ';',
  ' ',
  '  ',
  '\n',
  '\r\n',
  '\t',
  '\u00a0',
  '\u2028',
  '\u3000',
  '\u200b',
  'json',
  'JSON',
  'jsonl',
  'yaml',
  'Schema',
  'solve',
  'SOLVE',
  'how many',
  'how  many',
  'How many',
  'sum of',
  'sum',
  'of',
  'percent',
  'probability',
  'derivative',
  'calculate',
  'equation',
  'integral',
  '1',
  '42',
  '+',
  '-',
  '*',
  '/',
  '^',
  'A',
  'B',
  'C',
  'D',
  'E',
  'a',
  '.',
  '_',
  'é',
  'ſ',
  '\u212a',
  '日',
  '?',
  'word',
  '0',
  '9',
];
/** Pieces of multiple-choice lines (a rarer signal, so mixed on their own too). */
const CHOICE_PIECES = [
  '\n',
  '\n(',
  '(',
  'A',
  'B)',
  'C.',
  'D',
  'E)',
  ')',
  '.',
  ' ',
  '\t',
  '\u00a0',
  '\u2029',
  'x',
  'a)',
  '((A)',
  '\r',
];

describe('the single-pass signals match the regular expressions they replace', () => {
  it('on random mixes of the pieces, with and without a long lead-in', () => {
    const random = createRandom(7);
    const mismatches: string[] = [];
    const seen: Record<string, number> = {};
    for (let sample = 0; sample < 20_000; sample += 1) {
      let text = '';
      const count = 1 + Math.floor(random() * 30);
      const pieces = sample % 3 === 2 ? CHOICE_PIECES : PIECES;
      for (let piece = 0; piece < count; piece += 1) {
        text += pieces[Math.floor(random() * pieces.length)]!;
      }
      // every few samples, a lead-in puts the 800-character window's edge inside the pieces
      if (sample % 4 === 0)
        text = 'lead '.repeat(160).slice(0, 800 - Math.floor(random() * 12)) + text;
      const tail = text.slice(Math.max(0, text.length - 800));
      const { value } = featurize({ text, families: ['shape'] });
      const found = { code: value[2], math: value[3], json: value[4], choice: value[9] };
      for (const [signal, pattern] of Object.entries(REFERENCE)) {
        const expected = pattern.test(tail) ? 1 : 0;
        seen[`${signal} ${expected}`] = (seen[`${signal} ${expected}`] ?? 0) + 1;
        if (found[signal as keyof typeof found] !== expected) {
          mismatches.push(`${signal} ${expected}: ${JSON.stringify(tail)}`);
        }
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    // the samples found and missed each signal many times
    for (const signal of Object.keys(REFERENCE)) {
      expect(seen[`${signal} 1`], signal).toBeGreaterThan(500);
      expect(seen[`${signal} 0`], signal).toBeGreaterThan(500);
    }
  });
});

/** The word problem's counts as regular expressions (a word: a run of `\w` and non-ASCII). */
function referenceProblemSlots(tail: string): number[] {
  const kinds = (piece: string) =>
    (piece.match(/[0-9A-Za-z_\u0080-\uffff]+/g) ?? []).map(
      (word) => PROBLEM_WORDS.get(word.replace(/[A-Z]/g, (letter) => letter.toLowerCase())) ?? 0,
    );
  const having = (piece: string, kind: number) =>
    kinds(piece).filter((bits) => (bits & kind) !== 0).length;
  const clauses = (tail.match(/[.!?,;](?=\s|$)/g) ?? []).length + having(tail, CONJUNCTION);
  const numeric = tail
    .split(/[.!?](?=\s|$)/)
    .filter((piece) => /\d/.test(piece) || having(piece, NUMBER_WORD) > 0).length;
  return [
    Math.min(clauses / 8, 2),
    Math.min(numeric / 4, 2),
    Math.min(having(tail, OPERATION) / 16, 1),
  ];
}

/** Pieces of word problems: counted words, near misses, numbers, ends of clauses. */
const PROBLEM_PIECES = [
  'and',
  'AND',
  'And',
  'andy',
  'band',
  'but',
  'then',
  'than',
  'while',
  'if',
  'after',
  'before',
  'three',
  'Twelve',
  'dozen',
  'dozens',
  'half',
  'halves',
  'twice',
  'Triples',
  'one',
  'ones',
  'left',
  'rest',
  'per',
  'each',
  'every',
  'remaining',
  'remainder',
  'apiece',
  'fewer',
  'more',
  '3',
  '4.5',
  '1,000',
  '$12',
  '7th',
  'x',
  '_',
  'é',
  'ſ',
  '\u212a',
  '日',
  '\u00e9and',
  ' ',
  '  ',
  '\n',
  '\t',
  '\u00a0',
  '\u3000',
  '.',
  '. ',
  '!',
  '?',
  '? ',
  ',',
  ', ',
  ';',
  '...',
  '.\n',
  '-',
  "'",
];

describe("the word problem's slots match their regular-expression definitions", () => {
  it('on random mixes of the pieces, with and without a long lead-in and the words family', () => {
    const random = createRandom(11);
    const mismatches: string[] = [];
    const nonZero = [0, 0, 0];
    for (let sample = 0; sample < 10_000; sample += 1) {
      let text = '';
      const count = 1 + Math.floor(random() * 40);
      for (let piece = 0; piece < count; piece += 1) {
        text += PROBLEM_PIECES[Math.floor(random() * PROBLEM_PIECES.length)]!;
      }
      if (sample % 4 === 0)
        text = 'lead and 1. '.repeat(70).slice(0, 800 - Math.floor(random() * 12)) + text;
      const tail = text.slice(Math.max(0, text.length - 800));
      const families = sample % 2 === 0 ? undefined : (['shape'] as const);
      const { value } = featurize({ text, ...(families === undefined ? {} : { families }) });
      const found = value.slice(12, 15);
      const expected = referenceProblemSlots(tail);
      expected.forEach((slot, at) => (nonZero[at]! += slot > 0 ? 1 : 0));
      if (found.some((slot, at) => slot !== expected[at])) {
        mismatches.push(
          `${JSON.stringify(found)} != ${JSON.stringify(expected)}: ${JSON.stringify(tail)}`,
        );
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    for (const count of nonZero) expect(count).toBeGreaterThan(2000);
  });

  it('reads a GSM8K problem: its clauses, numeric sentences and operation words', () => {
    const text =
      "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes " +
      'muffins for her friends every day with four. She sells the remainder at the market daily ' +
      'for $2 per fresh duck egg. How much in dollars does she make every day at the market?';
    const { value } = featurize({ text });
    // clauses: 3 sentence ends + "and" + the final "?"; numeric sentences: the first three;
    // operation words: per, every, every, remainder, per, every
    expect(value.slice(12, 15)).toEqual([5 / 8, 3 / 4, 6 / 16]);
    expect(featurize({ text: 'Write a poem about the sea' }).value.slice(12, 15)).toEqual([
      0, 0, 0,
    ]);
  });
});
