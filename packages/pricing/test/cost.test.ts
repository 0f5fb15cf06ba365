import { describe, expect, it } from 'vitest';
import type { PriceEntry } from '@modelmaxx/pricing';
import { costOf, PriceCatalog } from '@modelmaxx/pricing';

const entry = (provider: string, model: string, prices: PriceEntry['prices']): PriceEntry => ({
  provider,
  model,
  prices,
  source: 'test',
  date: '2025-01-02',
});

// A catalog with round test prices, so the expected figures are worked out by hand.
const catalog = new PriceCatalog([
  entry('openai', 'reasoner', { input: 2, output: 8, cacheRead: 0.5 }),
  entry('anthropic', 'claude-test', { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 }),
  entry('xai', 'thinker', { input: 1, output: 4, reasoning: 2 }),
  entry('together', 'plain', { input: 0.6, output: 0.6 }),
]);

describe('costOf', () => {
  it('bills OpenAI cached input as a subset of input and reasoning as a subset of output', () => {
    // 10,000 input of which 4,000 cached; 3,000 output of which 2,000 reasoning.
    const result = costOf(
      {
        provider: 'openai',
        model: 'reasoner-2025-01-31',
        usage: {
          inputTokens: 10_000,
          cacheReadTokens: 4_000,
          outputTokens: 3_000,
          reasoningTokens: 2_000,
        },
      },
      { catalog },
    );
    expect(result).toEqual({
      known: true,
      amount: 0.012 + 0.002 + 0.008 + 0.016,
      currency: 'USD',
      breakdown: { input: 0.012, cacheRead: 0.002, cacheWrite: 0, output: 0.008, reasoning: 0.016 },
      provider: 'openai',
      model: 'reasoner',
      version: '2025-01-02',
      entry: catalog.lookup('openai', 'reasoner'),
    });
  });

  it('bills Anthropic cache reads and writes at their own prices', () => {
    // input_tokens 1,000 uncached + 20,000 cache read + 5,000 cache write = 26,000 in OTel semantics.
    const result = costOf(
      {
        provider: 'anthropic',
        model: 'claude-test',
        usage: {
          inputTokens: 26_000,
          cacheReadTokens: 20_000,
          cacheWriteTokens: 5_000,
          outputTokens: 400,
        },
      },
      { catalog },
    );
    if (!result.known) throw new Error(result.reason);
    expect(result.breakdown).toEqual({
      input: 0.003,
      cacheRead: 0.006,
      cacheWrite: 0.01875,
      output: 0.006,
      reasoning: 0,
    });
    expect(result.amount).toBeCloseTo(0.03375, 15);
  });

  it('bills reasoning at its own price when the model has one, else at the output price', () => {
    const thinker = costOf(
      { model: 'thinker', usage: { outputTokens: 1_000_000, reasoningTokens: 250_000 } },
      { catalog },
    );
    expect(thinker.known && thinker.breakdown).toEqual({
      input: 0,
      cacheRead: 0,
      cacheWrite: 0,
      output: 3,
      reasoning: 0.5,
    });
    const plain = costOf(
      { model: 'plain', usage: { outputTokens: 1_000_000, reasoningTokens: 250_000 } },
      { catalog },
    );
    expect(plain.known && plain.breakdown).toEqual({
      input: 0,
      cacheRead: 0,
      cacheWrite: 0,
      output: 0.45,
      reasoning: 0.15,
    });
  });

  it('bills cache tokens at the input price when the model lists no cache price', () => {
    const result = costOf(
      {
        model: 'plain',
        usage: { inputTokens: 1_000_000, cacheReadTokens: 500_000, cacheWriteTokens: 100_000 },
      },
      { catalog },
    );
    expect(result.known && result.breakdown).toEqual({
      input: 0.24,
      cacheRead: 0.3,
      cacheWrite: 0.06,
      output: 0,
      reasoning: 0,
    });
    expect(result.known && result.amount).toBeCloseTo(0.6, 15);
  });

  it('never bills negative parts when subsets exceed their totals', () => {
    const result = costOf(
      {
        model: 'reasoner',
        usage: { inputTokens: 100, cacheReadTokens: 400, outputTokens: 10, reasoningTokens: 30 },
      },
      { catalog },
    );
    expect(result.known && result.breakdown).toEqual({
      input: 0,
      cacheRead: 0.0002,
      cacheWrite: 0,
      output: 0,
      reasoning: 0.00024,
    });
  });

  it('reports an unknown model as unknown, never as zero', () => {
    const result = costOf({
      provider: 'openai',
      model: 'gpt-7',
      usage: { inputTokens: 10, outputTokens: 10 },
    });
    expect(result.known).toBe(false);
    expect(!result.known && result.reason).toMatch(/gpt-7/);
    expect(costOf({ model: '   ', usage: {} })).toEqual({ known: false, reason: 'no model name' });
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects a token count of %s', (bad) => {
    const result = costOf(
      { model: 'plain', usage: { inputTokens: 10, outputTokens: bad } },
      { catalog },
    );
    expect(result).toEqual({
      known: false,
      reason: `usage.outputTokens must be a finite non-negative number, got ${bad}`,
    });
  });

  it('prices a real call with the built-in catalog', () => {
    const result = costOf({
      provider: 'openai',
      model: 'gpt-4o-mini-2024-07-18',
      usage: { inputTokens: 1_200, cacheReadTokens: 1_024, outputTokens: 300 },
    });
    if (!result.known) throw new Error(result.reason);
    expect(result.model).toBe('gpt-4o-mini');
    expect(result.version).toBe(PriceCatalog.default().version);
    // 176 × 0.15 + 1,024 × 0.075 + 300 × 0.6, per million.
    expect(result.amount).toBeCloseTo((176 * 0.15 + 1_024 * 0.075 + 300 * 0.6) / 1e6, 15);
    expect(result.entry.prices.cacheRead).toBe(0.075);
  });

  it('prices a RouterBench call at RouterBench prices', () => {
    const result = costOf({
      model: 'gpt-4-1106-preview',
      usage: { inputTokens: 1_000, outputTokens: 100 },
    });
    expect(result.known && result.amount).toBeCloseTo((1_000 * 10 + 100 * 30) / 1e6, 15);
  });
});
