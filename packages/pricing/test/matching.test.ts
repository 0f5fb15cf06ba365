import { describe, expect, it } from 'vitest';
import {
  MODEL_NAME_REWRITES,
  normalizeModelName,
  normalizeProviderName,
  PriceCatalog,
} from '@modelmaxx/pricing';

const catalog = PriceCatalog.default();

describe('normalizeModelName', () => {
  it.each([
    ['gpt-4o-2024-08-06', 'gpt-4o'],
    ['GPT-4o', 'gpt-4o'],
    ['openai/gpt-4o', 'gpt-4o'],
    ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini'],
    ['claude-3-5-sonnet-20241022', 'claude-3-5-sonnet'],
    ['claude-sonnet-4-5-20250929', 'claude-sonnet-4-5'],
    ['claude-3-5-sonnet-latest', 'claude-3-5-sonnet'],
    ['claude-3-5-sonnet@20240620', 'claude-3-5-sonnet'],
    ['anthropic.claude-3-5-sonnet-20241022-v2:0', 'claude-3-5-sonnet'],
    ['us.anthropic.claude-3-7-sonnet-20250219-v1:0', 'claude-3-7-sonnet'],
    ['anthropic.claude-v2:1', 'claude-v2'],
    ['anthropic.claude-instant-v1', 'claude-instant-v1'],
    ['together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo', 'llama-3.3-70b-instruct-turbo'],
    ['models/gemini-2.0-flash-001', 'gemini-2.0-flash'],
    ['gpt-4-0613', 'gpt-4-0613'],
    ['gpt-3.5-turbo-1106', 'gpt-3.5-turbo-1106'],
    ['mistral-large-2411', 'mistral-large-2411'],
    ['WizardLM/WizardLM-13B-V1.2', 'wizardlm-13b-v1.2'],
    ['  o1-mini  ', 'o1-mini'],
  ])('%s → %s', (model, expected) => {
    expect(normalizeModelName(model)).toBe(expected);
  });

  it('publishes rewrites whose SQL form has the same meaning as the JavaScript form', () => {
    for (const rewrite of MODEL_NAME_REWRITES) {
      expect(rewrite.sqlReplacement).toBe(rewrite.replacement.replace(/\$(\d)/g, '\\$1'));
      expect(() => new RegExp(rewrite.pattern)).not.toThrow();
      // RE2 has no lookaround or backreferences in patterns.
      expect(rewrite.pattern).not.toMatch(/\(\?[=!<]|\\[1-9]/);
    }
  });
});

describe('normalizeProviderName', () => {
  it.each([
    ['openai', 'openai'],
    ['azure.ai.openai', 'openai'],
    ['az.ai.openai', 'openai'],
    ['Azure', 'openai'],
    ['anthropic', 'anthropic'],
    ['aws.bedrock', 'bedrock'],
    ['gcp.vertex_ai', 'vertex_ai'],
    ['gcp.gemini', 'google'],
    ['gemini', 'google'],
    ['mistral_ai', 'mistral'],
    ['x_ai', 'xai'],
    ['together_ai', 'together'],
    [' Groq ', 'groq'],
    ['deepseek', 'deepseek'],
    ['some.new.provider', 'some.new.provider'],
    // Vercel AI SDK `ai.model.provider` ids and OpenInference `llm.provider` values.
    ['openai.chat', 'openai'],
    ['openai.responses', 'openai'],
    ['anthropic.messages', 'anthropic'],
    ['google.vertex.chat', 'vertex_ai'],
    ['google.generative-ai', 'google'],
    ['azure.chat', 'openai'],
    ['amazon-bedrock', 'bedrock'],
    ['aws', 'bedrock'],
    ['mistralai', 'mistral'],
    ['groq.chat', 'groq'],
    ['unknown.chat', 'unknown.chat'],
  ])('%s → %s', (provider, expected) => {
    expect(normalizeProviderName(provider)).toBe(expected);
  });
});

describe('PriceCatalog.lookup', () => {
  it.each<[string | undefined, string, string, string]>([
    // exact
    ['openai', 'gpt-4o', 'openai', 'gpt-4o'],
    ['openai', 'o1', 'openai', 'o1'],
    ['openai', 'o1-mini', 'openai', 'o1-mini'],
    // dated snapshots and version suffixes
    ['openai', 'gpt-4o-2024-08-06', 'openai', 'gpt-4o'],
    ['openai', 'gpt-4o-2024-05-13', 'openai', 'gpt-4o-2024-05-13'],
    ['openai', 'gpt-4o-mini-2024-07-18', 'openai', 'gpt-4o-mini'],
    ['openai', 'o1-2024-12-17', 'openai', 'o1'],
    ['openai', 'o1-mini-2024-09-12', 'openai', 'o1-mini'],
    ['openai', 'gpt-4-0613', 'openai', 'gpt-4'],
    ['openai', 'gpt-3.5-turbo-1106', 'openai', 'gpt-3.5-turbo-1106'],
    ['openai', 'gpt-3.5-turbo-0125', 'openai', 'gpt-3.5-turbo'],
    ['openai', 'gpt-4-turbo-2024-04-09', 'openai', 'gpt-4-turbo'],
    ['anthropic', 'claude-3-5-sonnet-20241022', 'anthropic', 'claude-3-5-sonnet'],
    ['anthropic', 'claude-sonnet-4-5-20250929', 'anthropic', 'claude-sonnet-4-5'],
    ['anthropic', 'claude-opus-4-1-20250805', 'anthropic', 'claude-opus-4-1'],
    ['anthropic', 'claude-opus-4-20250514', 'anthropic', 'claude-opus-4'],
    ['anthropic', 'claude-3-5-haiku-latest', 'anthropic', 'claude-3-5-haiku'],
    ['gcp.vertex_ai', 'claude-3-5-sonnet@20240620', 'anthropic', 'claude-3-5-sonnet'],
    ['aws.bedrock', 'anthropic.claude-3-5-sonnet-20241022-v2:0', 'anthropic', 'claude-3-5-sonnet'],
    [
      'aws.bedrock',
      'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      'anthropic',
      'claude-sonnet-4-5',
    ],
    ['gcp.gemini', 'gemini-2.0-flash-001', 'google', 'gemini-2.0-flash'],
    ['mistral_ai', 'mistral-large-2407', 'mistral', 'mistral-large-2411'],
    ['mistral_ai', 'mistral-small-2506', 'mistral', 'mistral-small-2506'],
    ['gcp.gemini', 'models/gemini-2.5-flash-lite', 'google', 'gemini-2.5-flash-lite'],
    ['openai', 'gpt-5.5-2026-04-23', 'openai', 'gpt-5.5'],
    ['openai', 'gpt-5.6-sol', 'openai', 'gpt-5.6'],
    ['anthropic', 'claude-haiku-5-5', 'anthropic', 'claude-haiku-5-5'],
    ['x_ai', 'grok-4.7', 'xai', 'grok-4.7'],
    // provider prefixes in the model id
    [undefined, 'openai/gpt-4o', 'openai', 'gpt-4o'],
    [undefined, 'anthropic/claude-3-haiku-20240307', 'anthropic', 'claude-3-haiku'],
    [undefined, 'anthropic/claude-sonnet-4.5', 'anthropic', 'claude-sonnet-4-5'],
    [undefined, 'groq/llama-3.3-70b-versatile', 'groq', 'llama-3.3-70b-versatile'],
    [
      undefined,
      'together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo',
      'together',
      'meta-llama/Llama-3.3-70B-Instruct-Turbo',
    ],
    [undefined, 'gemini/gemini-2.5-pro', 'google', 'gemini-2.5-pro'],
    // provider missing or spelt differently
    [undefined, 'gpt-4o', 'openai', 'gpt-4o'],
    ['azure.ai.openai', 'gpt-4o', 'openai', 'gpt-4o'],
    ['OpenAI', 'GPT-4O', 'openai', 'gpt-4o'],
    ['some-proxy', 'claude-3-haiku', 'anthropic', 'claude-3-haiku'],
    // the same open model at two hosts: the provider decides
    ['groq', 'openai/gpt-oss-20b', 'groq', 'openai/gpt-oss-20b'],
    ['together_ai', 'openai/gpt-oss-20b', 'together', 'openai/gpt-oss-20b'],
    [
      'together',
      'meta-llama/Llama-4-Scout-17B-16E-Instruct',
      'together',
      'meta-llama/Llama-4-Scout-17B-16E-Instruct',
    ],
    [
      'groq',
      'meta-llama/llama-4-scout-17b-16e-instruct',
      'groq',
      'meta-llama/llama-4-scout-17b-16e-instruct',
    ],
    [undefined, 'together_ai/openai/gpt-oss-20b', 'together', 'openai/gpt-oss-20b'],
    // RouterBench names
    [undefined, 'meta/llama-2-70b-chat', 'together', 'meta/llama-2-70b-chat'],
    [undefined, 'claude-instant-v1', 'anthropic', 'claude-instant-v1'],
  ])('(%s, %s) → %s %s', (provider, model, expectedProvider, expectedModel) => {
    const entry = catalog.lookup(provider, model);
    expect(entry === undefined ? undefined : [entry.provider, entry.model]).toEqual([
      expectedProvider,
      expectedModel,
    ]);
  });

  it.each<[string | undefined, string]>([
    ['openai', 'gpt-7'],
    ['openai', 'gpt-4o-mini-tts'],
    ['openai', 'gpt-4o-realtime-preview'],
    ['openai', 'o1-mini-high'],
    ['openai', 'gpt-4'.concat('o-ultra')],
    ['anthropic', 'claude-sonnet-6'],
    ['anthropic', 'claude'],
    [undefined, 'llama-3.3-70b'],
    [undefined, 'my-finetune'],
    ['openai', 'ft:gpt-4o-mini-2024-07-18:acme::abc123'],
    [undefined, ''],
    // `-latest` aliases whose price moves between versions are not guessed.
    ['mistral_ai', 'mistral-large-latest'],
    ['openai', 'gpt-5.5-mini'],
    ['anthropic', 'claude-opus-5-5-mini'],
  ])('does not over-match (%s, %s)', (provider, model) => {
    expect(catalog.lookup(provider, model)).toBeUndefined();
  });

  it('never turns gpt-4o-mini into gpt-4o or o1-mini into o1', () => {
    expect(catalog.lookup('openai', 'gpt-4o-mini')?.prices.input).toBe(0.15);
    expect(catalog.lookup('openai', 'gpt-4o')?.prices.input).toBe(2.5);
    expect(catalog.lookup('openai', 'o1-mini')?.prices.input).toBe(1.1);
    expect(catalog.lookup('openai', 'o1')?.prices.input).toBe(15);
  });

  it('answers repeated lookups the same (memoised) and keeps answering after many distinct names', () => {
    const fresh = new PriceCatalog([...PriceCatalog.default().entries()]);
    const first = fresh.lookup('openai', 'gpt-4o-2024-08-06');
    expect(fresh.lookup('openai', 'gpt-4o-2024-08-06')).toBe(first);
    for (let i = 0; i < 5000; i++) expect(fresh.lookup('openai', `made-up-${i}`)).toBeUndefined();
    expect(fresh.lookup('openai', 'gpt-4o-2024-08-06')).toBe(first);
    expect(first?.model).toBe('gpt-4o');
    // An override catalog has its own answers.
    const overridden = fresh.withOverrides([
      {
        provider: 'openai',
        model: 'gpt-4o',
        prices: { input: 1, output: 1 },
        source: 't',
        date: '2026-01-01',
      },
    ]);
    expect(overridden.lookup('openai', 'gpt-4o-2024-08-06')?.prices).toEqual({
      input: 1,
      output: 1,
    });
    expect(fresh.lookup('openai', 'gpt-4o-2024-08-06')).toBe(first);
  });
});
