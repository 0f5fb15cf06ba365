/**
 * Price rows for `llm_prices`: one row per provider × normalised model name
 * (aliases included) × catalog version date. The `llm_calls` view joins spans
 * to the newest version of each.
 */
import { normalizeModelNameForSql, normalizeProviderNameForSql } from '../schema/model-name.js';

/** One catalog entry, prices in USD per million tokens (the shape of `@modelmaxx/pricing`'s entries). */
export interface PriceEntry {
  provider: string;
  model: string;
  aliases?: readonly string[];
  prices: {
    input: number;
    output: number;
    cacheRead?: number;
    cacheWrite?: number;
    reasoning?: number;
  };
  source: string;
  /** Catalog version, `YYYY-MM-DD`. */
  date: string;
}

export interface PriceRow {
  Provider: string;
  Model: string;
  InputPerMTok: number;
  OutputPerMTok: number;
  CacheReadPerMTok: number | null;
  CacheWritePerMTok: number | null;
  ReasoningPerMTok: number | null;
  CatalogModel: string;
  Source: string;
  Version: string;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

export function priceRowsFromEntries(entries: readonly PriceEntry[]): PriceRow[] {
  const rows = new Map<string, PriceRow>();
  for (const entry of entries) {
    if (!DATE.test(entry.date))
      throw new Error(`price entry ${entry.model}: date must be YYYY-MM-DD`);
    const provider = normalizeProviderNameForSql(entry.provider);
    for (const name of [entry.model, ...(entry.aliases ?? [])]) {
      const model = normalizeModelNameForSql(name);
      const key = `${provider}\u0000${model}\u0000${entry.date}`;
      // The catalog's own model wins over another entry's alias of the same name.
      if (rows.has(key) && name !== entry.model) continue;
      rows.set(key, {
        Provider: provider,
        Model: model,
        InputPerMTok: entry.prices.input,
        OutputPerMTok: entry.prices.output,
        CacheReadPerMTok: entry.prices.cacheRead ?? null,
        CacheWritePerMTok: entry.prices.cacheWrite ?? null,
        ReasoningPerMTok: entry.prices.reasoning ?? null,
        CatalogModel: entry.model,
        Source: entry.source,
        Version: entry.date,
      });
    }
  }
  return [...rows.values()];
}
