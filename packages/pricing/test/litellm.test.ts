import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { costOf, parseLiteLLMPrices, PriceCatalog } from '@modelmaxx/pricing';

const sample: unknown = JSON.parse(
  readFileSync(new URL('./fixtures/litellm-sample.json', import.meta.url), 'utf8'),
);
const SOURCE = 'litellm-sample.json';

describe('parseLiteLLMPrices', () => {
  const { entries, skipped } = parseLiteLLMPrices(sample, { source: SOURCE, date: '2025-11-20' });

  it('converts per-token prices to per-million prices and keeps the provider', () => {
    expect(entries).toEqual([
      {
        provider: 'openai',
        model: 'gpt-4o',
        prices: { input: 2.5, output: 10, cacheRead: 1.25 },
        source: `${SOURCE}#gpt-4o`,
        date: '2025-11-20',
        mode: 'chat',
      },
      {
        provider: 'openai',
        model: 'o3-mini',
        prices: { input: 1.1, output: 4.4, cacheRead: 0.55 },
        source: `${SOURCE}#o3-mini`,
        date: '2025-11-20',
        mode: 'chat',
      },
      {
        provider: 'anthropic',
        model: 'claude-3-5-haiku-20241022',
        prices: { input: 0.8, output: 4, cacheRead: 0.08, cacheWrite: 1 },
        source: `${SOURCE}#claude-3-5-haiku-20241022`,
        date: '2025-11-20',
        mode: 'chat',
      },
      {
        provider: 'google',
        model: 'gemini-2.5-pro',
        prices: { input: 1.25, output: 10, cacheRead: 0.125, reasoning: 10 },
        source: `${SOURCE}#gemini/gemini-2.5-pro`,
        date: '2025-11-20',
        mode: 'chat',
        notes:
          'base tier; not read: input_cost_per_token_above_200k_tokens, output_cost_per_token_above_200k_tokens',
      },
      {
        provider: 'groq',
        model: 'llama-3.3-70b-versatile',
        prices: { input: 0.59, output: 0.79 },
        source: `${SOURCE}#groq/llama-3.3-70b-versatile`,
        date: '2025-11-20',
        mode: 'chat',
      },
      {
        provider: 'together',
        model: 'meta-llama/Llama-3.3-70B-Instruct-Turbo',
        prices: { input: 0.88, output: 0.88 },
        source: `${SOURCE}#together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo`,
        date: '2025-11-20',
        mode: 'chat',
      },
      {
        provider: 'openai',
        model: 'text-embedding-3-small',
        prices: { input: 0.02, output: 0 },
        source: `${SOURCE}#text-embedding-3-small`,
        date: '2025-11-20',
        mode: 'embedding',
      },
      {
        provider: 'dashscope',
        model: 'qwen-flash',
        prices: { input: 0.05, output: 0.4 },
        source: `${SOURCE}#dashscope/qwen-flash`,
        date: '2025-11-20',
        mode: 'chat',
        notes: 'first tier of tiered_pricing (prompts up to 256000 tokens)',
      },
    ]);
  });

  it('says why each other key was skipped', () => {
    expect(skipped).toEqual([
      { key: 'sample_spec', reason: 'sample_spec documents the format; it is not a model' },
      { key: 'azure/gpt-4o', reason: 'same provider and model as gpt-4o' },
      { key: 'dall-e-3', reason: 'mode "image_generation" is not priced per token here' },
      {
        key: 'some-provider/broken-model',
        reason: 'input_cost_per_token: expected a non-negative number, got "0.000001"',
      },
      {
        key: 'no-output-price',
        reason: 'output_cost_per_token: expected a non-negative number, got undefined',
      },
    ]);
  });

  it('gives a catalog that prices calls like LiteLLM does', () => {
    const catalog = new PriceCatalog(entries);
    const result = costOf(
      {
        provider: 'anthropic',
        model: 'claude-3-5-haiku-20241022',
        usage: {
          inputTokens: 3_000,
          cacheReadTokens: 1_000,
          cacheWriteTokens: 1_000,
          outputTokens: 200,
        },
      },
      { catalog },
    );
    // LiteLLM: 1000×8e-7 + 1000×8e-8 + 1000×1e-6 + 200×4e-6
    expect(result.known && result.amount).toBeCloseTo(
      1000 * 8e-7 + 1000 * 8e-8 + 1000 * 1e-6 + 200 * 4e-6,
      15,
    );
    expect(catalog.lookup('groq', 'groq/llama-3.3-70b-versatile')?.prices.output).toBe(0.79);
    expect(catalog.version).toBe('2025-11-20');
  });

  it('reports a document that is not an object', () => {
    expect(parseLiteLLMPrices([1, 2])).toEqual({
      entries: [],
      skipped: [{ key: '', reason: 'expected an object of model specs, got an array' }],
    });
  });
});
