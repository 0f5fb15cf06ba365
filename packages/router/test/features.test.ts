import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { featurize } from '../src/features.js';
import type { FeaturizeInput, RequestVector } from '../src/features.js';
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
 * regular-expression version): any change to what a request's vector is shows up here.
 */
const PINNED: Record<string, PinnedCase> = {
  empty: {
    input: { text: '' },
    size: 12,
    dense: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    digest: 'fb5e578b1455a648',
  },
  question: {
    input: {
      text: 'How many apples are left if I eat 3 of 7? Solve it step by step.',
      classKey: 'math',
    },
    size: 64,
    dense: [1, 0.5217984087369546, 0, 1, 0, 0, 0, 0.1, 0.3333333333333333, 0, 0, 0],
    digest: 'a7a85c21438b5c38',
  },
  nonAscii: {
    input: {
      text: 'Wie viele Äpfel? 日本語のテキストを翻訳してください。 Привет, мир! 🎉 ¿Qué tal? naïve café',
      classKey: 'chat',
      turns: 3,
    },
    size: 57,
    dense: [1, 0.5363074301435489, 0, 0, 0, 1, 1, 0, 0.6666666666666666, 0, 0, 0],
    digest: '722447d2c49034c1',
  },
  code: {
    input: {
      text: '```python\ndef add(a, b):\n    return a + b\n```\nWhy does `import os` fail here;\n  {\n}\nconst f = (x) => x;',
      classKey: 'code',
    },
    size: 77,
    dense: [1, 0.5805488623926716, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    digest: '3d6c401ade30a3c8',
  },
  json: {
    input: {
      text: 'Return JSON matching this schema: {"type": "object", "properties": {"a": {"type": "number"}}}\n(A) yes\n  B. no\nC) maybe',
      classKey: 'json',
      tools: true,
    },
    size: 80,
    dense: [1, 0.5973904366389412, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0],
    digest: '7df97492c1d61d8e',
  },
  long: {
    input: { text: longText(), classKey: 'long' },
    size: 265,
    dense: [1, 1.4391169331150286, 1, 0, 0, 0, 0.095, 2, 1, 0, 1, 0],
    digest: '08e88f0a116176cc',
  },
  chars: {
    input: {
      text: 'Translate to French: the quick brown fox jumps over the lazy dog. 2 + 2 = 4',
      classKey: 'chat',
      families: ['shape', 'words', 'chars', 'class'],
    },
    size: 64,
    dense: [1, 0.5413416675357914, 0, 1, 0, 0, 0, 0.15, 0, 0, 0, 0],
    digest: '6319530883dbd680',
  },
  shapeOnly: {
    input: {
      text: 'Calculate the integral of x^2 from 0 to 1 in YAML',
      classKey: 'math',
      families: ['shape'],
    },
    size: 12,
    dense: [1, 0.48900287567851825, 0, 1, 1, 0, 0, 0.15, 0, 0, 0, 0],
    digest: '890fedaa000e9ed4',
  },
  embedded: {
    input: { text: 'hello there, general Kenobi', classKey: 'chat' },
    embedding: [0.6, 0.8, -0.1, 0.25, 0.3],
    size: 156,
    dense: [1, 0.4165255637719005, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    digest: 'd630d7a56688be96',
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
      expect(vector.value.slice(0, 12)).toEqual(pinned.dense);
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
