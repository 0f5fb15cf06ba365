import { describe, expect, it } from 'vitest';
import { RoutingEngine } from '../src/engine.js';
import { featureNames } from '../src/feature-names.js';
import { DENSE, HASH_BUCKETS, featurize, hashText } from '../src/features.js';
import type { FeatureFamily } from '../src/features.js';
import { parsePolicy } from '../src/policy.js';
import { createRandom } from '../src/random.js';
import type { RandomSource } from '../src/random.js';
import { teachMathVsStory } from './support/math-vs-story.js';

const MASK = HASH_BUCKETS - 1;

/** The alternatives of a name: words, `a b` bigrams, JSON-quoted character 4-grams. */
function tokensOf(name: string): string[] {
  const tokens: string[] = [];
  let at = 0;
  while (at < name.length) {
    let end: number;
    if (name[at] === '"') {
      end = at + 1;
      while (name[end] !== '"') end += name[end] === '\\' ? 2 : 1;
      end += 1;
    } else {
      end = name.indexOf(' | ', at);
      if (end < 0) end = name.length;
    }
    tokens.push(name.slice(at, end));
    at = end;
    if (at < name.length) {
      if (name.slice(at, at + 3) !== ' | ') return [];
      at += 3;
    }
  }
  return tokens;
}

/** What the featurizer hashes as a word: ASCII lower case, no ASCII punctuation or space. */
const WORD = /^(?:[a-z0-9_]|[^\0-\x7f])+$/u;

/** The slot a token hashes to, from the featurizer's formulas (-1: not a valid token). */
function slotOf(token: string): number {
  if (token.startsWith('"')) {
    const gram = JSON.parse(token) as string;
    if (gram.length !== 4) return -1;
    return DENSE + (hashText(gram, 0, 4, 0x1234567) & MASK);
  }
  const words = token.split(' ');
  if (words.length > 2 || !words.every((word) => WORD.test(word))) return -1;
  if (words.length === 1) return DENSE + (hashText(token) & MASK);
  const previous = hashText(words[0]!) | 1;
  return DENSE + (Math.imul(previous ^ (hashText(words[1]!) >>> 7), 0x9e3779b1) & MASK);
}

const PIECES = [
  'Refund',
  'POLICY',
  'policy',
  'how',
  'MANY',
  'x_1',
  'abc123',
  'Def',
  'the',
  'JSON',
  'a',
  '42',
  '3.14',
  '1,000',
  '2026-12-07',
  ',',
  '.',
  ';',
  ':',
  '!',
  '?',
  '(',
  ')',
  '{',
  '}',
  '"',
  "'",
  '-',
  '/',
  '=>',
  '#',
  '`',
  '|',
  ' ',
  ' ',
  ' ',
  '  ',
  '\n',
  '\n\n',
  '\t',
  'café',
  'Ünïcode',
  'straße',
  'ΣΊΣΥΦΟΣ',
  '日本語の質問',
  '😀',
  '\u00a0',
  '\u3000',
  'naïve',
  'É',
  '—',
  '\u200b',
];

/** A random text of mixed words, digits, punctuation, white space and non-ASCII. */
function randomText(random: RandomSource): string {
  const target = Math.floor(random() * random() * 3000);
  let text = '';
  while (text.length < target) {
    text += PIECES[Math.floor(random() * PIECES.length)]!;
    if (random() < 0.6) text += ' ';
  }
  return text;
}

const hashedSlots = (text: string, families?: readonly FeatureFamily[]) =>
  featurize({ text, ...(families === undefined ? {} : { families }) })
    .index.filter((slot) => slot >= DENSE && slot < DENSE + HASH_BUCKETS)
    .sort((a, b) => a - b);

describe('featureNames', () => {
  it('names every hashed slot of featurize, and each name hashes back to its slot', () => {
    const random = createRandom(7);
    let texts = 0;
    let slots = 0;
    let collisions = 0;
    let long = 0;
    const wrong: string[] = [];
    for (let round = 0; round < 600; round += 1) {
      const text = randomText(random);
      texts += 1;
      if (text.length > 800) long += 1;
      for (const families of [undefined, ['words'], ['chars']] as const) {
        const names = featureNames(text, families);
        const expected = hashedSlots(text, families);
        expect([...names.keys()].sort((a, b) => a - b)).toEqual(expected);
        for (const [slot, name] of names) {
          const tokens = tokensOf(name);
          if (tokens.length > 1) collisions += 1;
          if (tokens.length === 0) wrong.push(name);
          for (const token of tokens) if (slotOf(token) !== slot) wrong.push(`${token} in ${name}`);
        }
        slots += expected.length;
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(texts).toBe(600);
    expect(long).toBeGreaterThan(100);
    expect(collisions).toBeGreaterThan(0);
    expect(slots).toBeGreaterThan(100_000);
  });

  it('reads words, bigrams and character grams as the featurizer does', () => {
    const names = [...featureNames('Where is my Refund POLICY, café?').values()];
    expect(names).toEqual(expect.arrayContaining(['refund', 'refund policy', 'policy café']));
    expect(names).toContain('"wher"');
    expect(names.join('\n')).not.toMatch(/Refund|POLICY/);
    // only the tail the featurizer reads: the first words of a long text have no slot
    const long = `Opening ${'filler '.repeat(200)}closing question`;
    const tail = [...featureNames(long).values()].join('\n');
    expect(tail).not.toContain('opening');
    expect(tail).toContain('closing question');
  });
});

describe('explain with the request', () => {
  const policy = parsePolicy({
    candidates: [{ model: 'strong' }, { model: 'cheap' }],
    goal: { costPenalty: 0.2 },
    predictor: { enabled: true, warmup: 0, features: ['words'] },
    exploration: 0,
  });
  const features = policy.predictor.features;

  it('names the hashed features of a real decision by their words', () => {
    const engine = new RoutingEngine({ policy, random: createRandom(1) });
    teachMathVsStory(
      engine,
      (math, index) =>
        math ? `Solve the equation for x, case ${index}` : `Tell me a story, ${index}`,
      features,
    );
    const text = 'Solve the equation for y';
    const vector = featurize({ text, classKey: 'chat', families: features });
    const decision = engine.decide({ classKey: 'chat', at: 300_000, vector });
    expect(decision.first).toEqual(['strong']);

    const cheap = (explained: ReturnType<RoutingEngine['explain']>) =>
      explained.find((entry) => entry.model === 'cheap')!.features!;
    const bare = cheap(engine.explain(decision));
    expect(bare.filter((feature) => /^#\d+:/.test(feature)).length).toBeGreaterThan(0);

    const named = cheap(engine.explain(decision, text));
    expect(named).toHaveLength(bare.length);
    expect(named.filter((feature) => /^#\d+:/.test(feature))).toEqual([]);
    const words = named.map((feature) => feature.slice(0, feature.lastIndexOf(':')));
    expect(words.some((word) => /solve|equation/.test(word))).toBe(true);
    // the same names from the chat params the routed client was called with
    const params = { model: 'auto', messages: [{ role: 'user', content: text }] };
    expect(cheap(engine.explain(decision, params))).toEqual(named);
  });
});
