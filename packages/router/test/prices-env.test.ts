/**
 * The router prices with the same catalog as the spans and the gateway's budgets: the built-in
 * one plus the `MODELMAXX_PRICES` overrides (`catalogFromEnv`). Before, a routed call's cost (the
 * engine's cost statistics), the default reference model and the judge's cost (the shadow caps)
 * used list prices while the spans used a team's own.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resetCatalogFromEnv } from '@modelmaxx/pricing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '../src/policy.js';
import { pairwiseJudge, referenceModelOf } from '../src/shadow.js';
import { priceOf } from '../src/spend.js';
import { createRandom } from '../src/random.js';
import { useLlmSim } from './support/llm-sim-env.js';

const env = useLlmSim({ seed: 4, judge: { accuracy: 1 } });
let dir: string;

// gpt-4o-mini at a price far above gpt-4o's, so every use of the override shows.
const INPUT_PER_MILLION = 100;
const OUTPUT_PER_MILLION = 400;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'router-prices-'));
  const file = join(dir, 'prices.json');
  writeFileSync(
    file,
    JSON.stringify({
      prices: [
        {
          provider: 'openai',
          model: 'gpt-4o-mini',
          input: INPUT_PER_MILLION,
          output: OUTPUT_PER_MILLION,
        },
      ],
    }),
  );
  process.env['MODELMAXX_PRICES'] = file;
  resetCatalogFromEnv();
});

afterAll(() => {
  delete process.env['MODELMAXX_PRICES'];
  resetCatalogFromEnv();
  rmSync(dir, { recursive: true, force: true });
});

const policy = () =>
  parsePolicy({
    name: 'priced',
    candidates: [{ model: 'gpt-4o-mini' }, { model: 'gpt-4o' }],
  });

describe('MODELMAXX_PRICES in the router', () => {
  it("prices a completed call at the override (the engine's cost per call)", () => {
    const candidate = policy().candidates[0]!;
    const usage = { prompt_tokens: 1000, completion_tokens: 500 };
    const expected = (1000 * INPUT_PER_MILLION + 500 * OUTPUT_PER_MILLION) / 1e6;
    expect(priceOf(candidate, { usage })).toBeCloseTo(expected, 12);
  });

  it('takes the dearest candidate by the override as the default reference model', () => {
    expect(referenceModelOf(policy())).toBe('gpt-4o-mini');
  });

  it("prices the judge's call at the override (what the shadow caps count)", async () => {
    // The real SDK makes the call; this only keeps the usage llm-sim answered with.
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    const create = env.openai.chat.completions.create.bind(env.openai.chat.completions);
    const client = {
      chat: {
        completions: {
          create: async (...args: Parameters<typeof create>) => {
            const completion = (await create(...args)) as { usage?: typeof usage };
            usage = completion.usage;
            return completion;
          },
        },
      },
    };
    const judge = pairwiseJudge({
      client: client as unknown as typeof env.openai,
      model: 'gpt-4o-mini',
      random: createRandom(1),
    });
    const verdict = await judge({
      question: 'What is 2 + 2?',
      answer: '4',
      reference: 'Four.',
      model: 'gpt-4o-mini',
      referenceModel: 'gpt-4o',
      classKey: 'math',
      policy: 'priced',
    });
    expect(usage).toBeDefined();
    const expected =
      (usage!.prompt_tokens * INPUT_PER_MILLION + usage!.completion_tokens * OUTPUT_PER_MILLION) /
      1e6;
    expect(verdict?.costUsd).toBeCloseTo(expected, 12);
  });
});
