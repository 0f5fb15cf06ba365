import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { costOf, loadCatalog, parsePriceOverrides, PriceCatalog } from '@modelmaxx/pricing';

const dir = mkdtempSync(join(tmpdir(), 'mm-pricing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeJson(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('parsePriceOverrides', () => {
  it('reads our format with flat or nested prices and defaults', () => {
    const { entries, errors } = parsePriceOverrides(
      {
        prices: [
          {
            provider: 'openai',
            model: 'gpt-4o',
            input: 2,
            output: 8,
            cacheRead: 1,
            source: 'contract',
            date: '2025-07-01',
          },
          {
            provider: 'Together_AI',
            model: 'my-llama',
            aliases: ['acme/llama'],
            prices: { input: 0.1, output: 0.2 },
          },
        ],
      },
      { date: '2025-08-01' },
    );
    expect(errors).toEqual([]);
    expect(entries).toEqual([
      {
        provider: 'openai',
        model: 'gpt-4o',
        prices: { input: 2, output: 8, cacheRead: 1 },
        source: 'contract',
        date: '2025-07-01',
      },
      {
        provider: 'together',
        model: 'my-llama',
        aliases: ['acme/llama'],
        prices: { input: 0.1, output: 0.2 },
        source: 'MODELMAXX_PRICES override',
        date: '2025-08-01',
      },
    ]);
  });

  it('accepts a bare array', () => {
    const { entries, errors } = parsePriceOverrides([
      { provider: 'x', model: 'y', input: 1, output: 1, date: '2025-01-01' },
    ]);
    expect(errors).toEqual([]);
    expect(entries.map((entry) => entry.model)).toEqual(['y']);
  });

  it('describes each wrong shape and keeps the good entries', () => {
    const { entries, errors } = parsePriceOverrides({
      prices: [
        { provider: 'openai', model: 'ok', input: 1, output: 2, date: '2025-01-01' },
        'not an entry',
        { model: 'no-provider', input: 1, output: 2 },
        { provider: 'openai', model: 'neg', input: -1, output: '2' },
        { provider: 'openai', model: 'missing-output', input: 1 },
        { provider: 'openai', model: 'bad-date', input: 1, output: 1, date: '2025-02-30' },
        { provider: 'openai', model: 'bad-aliases', input: 1, output: 1, aliases: 'x' },
        { provider: 'openai', model: 'OK', input: 3, output: 4 },
      ],
    });
    expect(entries.map((entry) => entry.model)).toEqual(['ok']);
    expect(errors).toEqual([
      'prices[1]: expected an object, got "not an entry"',
      'prices[2].provider: expected a non-empty string, got undefined',
      'prices[3].input: expected a non-negative number (USD per million tokens), got -1',
      'prices[3].output: expected a non-negative number (USD per million tokens), got "2"',
      'prices[4].output: required (USD per million tokens)',
      'prices[5].date: expected a YYYY-MM-DD date, got "2025-02-30"',
      'prices[6].aliases: expected an array of non-empty strings, got "x"',
      'prices[7]: duplicate of an earlier entry for openai OK',
    ]);
  });

  it.each([
    [null, 'expected {"prices": [...]}, an array of entries or a LiteLLM price file, got null'],
    [42, 'expected {"prices": [...]}, an array of entries or a LiteLLM price file, got 42'],
    [{ prices: {} }, 'prices: expected an array of entries, got an object'],
  ])('rejects the document %j without throwing', (json, message) => {
    expect(parsePriceOverrides(json)).toEqual({ entries: [], errors: [message] });
  });

  it('recognises a LiteLLM file', () => {
    const { entries, errors } = parsePriceOverrides(
      {
        sample_spec: { litellm_provider: 'one of …' },
        'groq/llama-3.1-8b-instant': {
          input_cost_per_token: 5e-8,
          output_cost_per_token: 8e-8,
          litellm_provider: 'groq',
          mode: 'chat',
        },
        'tts-1': {
          litellm_provider: 'openai',
          mode: 'audio_speech',
          input_cost_per_character: 1.5e-5,
        },
      },
      { date: '2025-06-01' },
    );
    expect(errors).toEqual([]);
    expect(entries).toEqual([
      {
        provider: 'groq',
        model: 'llama-3.1-8b-instant',
        prices: { input: 0.05, output: 0.08 },
        source: 'LiteLLM model_prices_and_context_window.json#groq/llama-3.1-8b-instant',
        date: '2025-06-01',
        mode: 'chat',
      },
    ]);
  });
});

describe('loadCatalog', () => {
  it('returns the built-in catalog when MODELMAXX_PRICES is not set', () => {
    expect(loadCatalog({ env: {} })).toEqual({ catalog: PriceCatalog.default(), errors: [] });
  });

  it('applies an overrides file: the override wins, everything else stays', () => {
    const path = writeJson(
      'good.json',
      JSON.stringify({
        prices: [
          {
            provider: 'openai',
            model: 'gpt-4o',
            input: 1,
            output: 4,
            source: 'enterprise contract',
            date: '2026-01-15',
          },
          { provider: 'acme', model: 'acme-large', input: 7, output: 9, date: '2026-01-15' },
        ],
      }),
    );
    const { catalog, errors } = loadCatalog({ env: { MODELMAXX_PRICES: path } });
    expect(errors).toEqual([]);
    expect(catalog.version).toBe(`${PriceCatalog.default().version}+2026-01-15`);
    const dated = costOf(
      {
        provider: 'openai',
        model: 'gpt-4o-2024-08-06',
        usage: { inputTokens: 1e6, outputTokens: 1e6 },
      },
      { catalog },
    );
    expect(dated.known && [dated.amount, dated.entry.source]).toEqual([5, 'enterprise contract']);
    // The override replaces the whole entry: no cache read price now, so cached input costs the input price.
    expect(catalog.lookup('openai', 'gpt-4o')?.prices).toEqual({ input: 1, output: 4 });
    expect(catalog.lookup(undefined, 'acme-large')?.provider).toBe('acme');
    expect(catalog.lookup('openai', 'gpt-4o-mini')).toEqual(
      PriceCatalog.default().lookup('openai', 'gpt-4o-mini'),
    );
    expect(catalog.entries().length).toBe(PriceCatalog.default().entries().length + 1);
  });

  it('falls back to the built-in catalog on a missing file', () => {
    const path = join(dir, 'does-not-exist.json');
    const { catalog, errors } = loadCatalog({ env: { MODELMAXX_PRICES: path } });
    expect(catalog).toBe(PriceCatalog.default());
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^MODELMAXX_PRICES: cannot read ${path}: ENOENT`));
  });

  it('falls back to the built-in catalog on malformed JSON', () => {
    const path = writeJson('bad.json', '{"prices": [ { "provider": "openai", ');
    const { catalog, errors } = loadCatalog({ env: { MODELMAXX_PRICES: path } });
    expect(catalog).toBe(PriceCatalog.default());
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^MODELMAXX_PRICES: ${path} is not valid JSON: `));
  });

  it('keeps the valid entries of a file with wrong shapes and reports the rest', () => {
    const path = writeJson(
      'mixed.json',
      JSON.stringify({
        prices: [
          { provider: 'acme', model: 'a', input: 1, output: 1, date: '2025-01-01' },
          { provider: 'acme' },
        ],
      }),
    );
    const { catalog, errors } = loadCatalog({ env: { MODELMAXX_PRICES: path } });
    expect(catalog.lookup('acme', 'a')?.source).toBe(`MODELMAXX_PRICES ${path}`);
    expect(errors).toEqual([
      `MODELMAXX_PRICES ${path}: prices[1].model: expected a non-empty string, got undefined`,
      `MODELMAXX_PRICES ${path}: prices[1].input: required (USD per million tokens)`,
      `MODELMAXX_PRICES ${path}: prices[1].output: required (USD per million tokens)`,
    ]);
  });

  it('uses the injected readFile and never lets it throw through', () => {
    const { catalog, errors } = loadCatalog({
      env: { MODELMAXX_PRICES: '/virtual/prices.json' },
      readFile: () => {
        throw new Error('boom');
      },
    });
    expect(catalog).toBe(PriceCatalog.default());
    expect(errors).toEqual(['MODELMAXX_PRICES: cannot read /virtual/prices.json: boom']);
  });
});
