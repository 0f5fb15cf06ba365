import { describe, expect, it } from 'vitest';
import { BUILTIN_PRICES, llmPriceRows, normalizeModelName, PriceCatalog } from '@modelmaxx/pricing';
import type { PriceRow } from '@modelmaxx/pricing';
import { ROUTERBENCH_MODELS } from './support/routerbench-models.js';

describe('built-in catalog integrity', () => {
  const entries = PriceCatalog.default().entries();

  it('has positive input and output prices (embeddings: output 0) and sane optional prices', () => {
    const problems: string[] = [];
    for (const entry of entries) {
      const { input, output, cacheRead, cacheWrite, reasoning } = entry.prices;
      if (!(input > 0)) problems.push(`${entry.model}: input ${input}`);
      if (entry.mode === 'embedding' ? output !== 0 : !(output > 0)) {
        problems.push(`${entry.model}: output ${output}`);
      }
      for (const [name, value] of Object.entries({ cacheRead, cacheWrite, reasoning })) {
        if (value !== undefined && !(value > 0)) problems.push(`${entry.model}: ${name} ${value}`);
      }
      if (cacheRead !== undefined && cacheRead >= input)
        problems.push(`${entry.model}: cacheRead >= input`);
    }
    expect(problems).toEqual([]);
  });

  it('gives every entry a source and a real YYYY-MM-DD date', () => {
    for (const entry of entries) {
      expect(entry.source.length, entry.model).toBeGreaterThan(5);
      expect(entry.date, entry.model).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(new Date(`${entry.date}T00:00:00Z`).toISOString().slice(0, 10), entry.model).toBe(
        entry.date,
      );
    }
  });

  it('has no duplicate (provider, model or alias) keys', () => {
    const seen = new Map<string, string>();
    const duplicates: string[] = [];
    for (const entry of entries) {
      for (const key of [entry.model, ...(entry.aliases ?? [])]) {
        const identity = `${entry.provider}/${key.toLowerCase()}`;
        const earlier = seen.get(identity);
        if (earlier !== undefined) duplicates.push(`${identity} (${earlier} and ${entry.model})`);
        seen.set(identity, entry.model);
      }
    }
    expect(duplicates).toEqual([]);
  });

  it('has no two entries of one provider whose names normalise alike unless one is the base model', () => {
    const byKey = new Map<string, string[]>();
    for (const entry of entries) {
      const key = `${entry.provider}/${normalizeModelName(entry.model)}`;
      byKey.set(key, [...(byKey.get(key) ?? []), entry.model]);
    }
    const clashes = [...byKey.entries()]
      .filter(
        ([key, models]) => models.length > 1 && !models.includes(key.slice(key.indexOf('/') + 1)),
      )
      .map(([key, models]) => `${key}: ${models.join(', ')}`);
    expect(clashes).toEqual([]);
  });

  it('covers the 11 RouterBench models under their RouterBench names', () => {
    const catalog = PriceCatalog.default();
    const found = ROUTERBENCH_MODELS.map((model) => catalog.lookup(undefined, model)?.model);
    expect(found).toEqual(ROUTERBENCH_MODELS);
  });

  it('covers the current models of each provider family', () => {
    const catalog = PriceCatalog.default();
    const expected: [string, string, string][] = [
      ['openai', 'gpt-5', 'openai'],
      ['openai', 'gpt-4o-mini', 'openai'],
      ['anthropic', 'claude-sonnet-4-5', 'anthropic'],
      ['gcp.gemini', 'gemini-2.5-pro', 'google'],
      ['mistral_ai', 'mistral-large-2411', 'mistral'],
      ['deepseek', 'deepseek-chat', 'deepseek'],
      ['x_ai', 'grok-4', 'xai'],
      ['groq', 'llama-3.3-70b-versatile', 'groq'],
      ['together_ai', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', 'together'],
    ];
    expect(expected.map(([provider, model]) => catalog.lookup(provider, model)?.provider)).toEqual(
      expected.map(([, , provider]) => provider),
    );
  });

  it('uses the latest entry date as its version', () => {
    const latest = BUILTIN_PRICES.map((entry) => entry.date)
      .sort()
      .at(-1);
    expect(PriceCatalog.default().version).toBe(latest);
    expect(PriceCatalog.default()).toBe(PriceCatalog.default());
  });

  it('keeps Anthropic cache writes at 1.25x input and cache reads at 0.1x, except where listed otherwise', () => {
    // Anthropic's own table: Haiku 3 writes at 1.2x and reads at 0.12x; some 5.x models read at 0.05x or 0.025x.
    const writeExceptions: Record<string, number> = { 'claude-3-haiku': 1.2 };
    const readExceptions: Record<string, number> = {
      'claude-opus-5-5': 0.05,
      'claude-sonnet-5-5': 0.05,
      'claude-fable-5-1': 0.025,
      'claude-3-haiku': 0.12,
    };
    // The RouterBench-era models (claude-v1, …) predate prompt caching and list no cache prices.
    const current = entries.filter(
      (e) => e.provider === 'anthropic' && e.prices.cacheRead !== undefined,
    );
    expect(current.length).toBeGreaterThan(15);
    for (const entry of current) {
      const { input, cacheWrite, cacheRead } = entry.prices;
      expect(cacheWrite, entry.model).toBeCloseTo(
        input * (writeExceptions[entry.model] ?? 1.25),
        10,
      );
      expect(cacheRead, entry.model).toBeCloseTo(input * (readExceptions[entry.model] ?? 0.1), 10);
    }
  });
});

describe('llmPriceRows', () => {
  it('prices each key like lookup: the first-ranked row of a (provider, kind, key)', () => {
    const catalog = PriceCatalog.default();
    const rows = llmPriceRows(catalog);
    const first = new Map<string, PriceRow>();
    for (const row of rows) {
      const identity = `${row.Provider}/${row.KeyKind}/${row.Model}`;
      const seen = first.get(identity);
      if (seen === undefined || row.Rank < seen.Rank) first.set(identity, row);
    }
    for (const row of first.values()) {
      const entry = catalog.lookup(row.Provider, row.Model);
      expect(entry?.model, row.Model).toBe(row.CatalogModel);
      expect(row.InputPerMTok).toBe(entry?.prices.input);
      expect(row.CacheReadPerMTok).toBe(entry?.prices.cacheRead ?? entry?.prices.input);
      expect(row.Version).toBe(catalog.version);
    }
  });

  it('has normalised keys for the dated-snapshot join and exact keys for odd snapshots', () => {
    const rows = llmPriceRows();
    const find = (provider: string, kind: PriceRow['KeyKind'], model: string) =>
      rows.find((row) => row.Provider === provider && row.KeyKind === kind && row.Model === model);
    expect(find('openai', 'normalized', 'gpt-4o')).toMatchObject({
      CatalogModel: 'gpt-4o',
      InputPerMTok: 2.5,
      CacheReadPerMTok: 1.25,
    });
    // `gpt-4o-2024-05-13` has a price of its own; its normalised name is `gpt-4o`'s.
    expect(find('openai', 'exact', 'gpt-4o-2024-05-13')).toMatchObject({
      CatalogModel: 'gpt-4o-2024-05-13',
      InputPerMTok: 5,
    });
    expect(
      rows.filter((row) => row.Model === 'gpt-4o' && row.CatalogModel === 'gpt-4o-2024-05-13'),
    ).toEqual([]);
    expect(find('together', 'normalized', 'llama-3.3-70b-instruct-turbo')).toMatchObject({
      CatalogModel: 'meta-llama/Llama-3.3-70B-Instruct-Turbo',
    });
    expect(find('together', 'exact', 'meta-llama/llama-3.3-70b-instruct-turbo')).toBeDefined();
    expect(find('anthropic', 'exact', 'claude-v2')).toMatchObject({
      InputPerMTok: 8,
      OutputPerMTok: 24,
      CacheWritePerMTok: 8,
      ReasoningPerMTok: 24,
    });
  });
});
