import { exactKeys, PriceCatalog } from './catalog.js';
import { normalizeModelName } from './normalize.js';

/** One row of the collector's `llm_prices` table. Prices in USD per million tokens, defaults filled in. */
export interface PriceRow {
  /** Normalised provider (`normalizeProviderName`). */
  provider: string;
  /** A lower-cased key that matches this price: an exact id or alias, or its `normalizeModelName` form. */
  model: string;
  /** The catalog model the key resolves to (`entry.model`). */
  catalogModel: string;
  input: number;
  output: number;
  /** `prices.cacheRead ?? input` */
  cacheRead: number;
  /** `prices.cacheWrite ?? input` */
  cacheWrite: number;
  /** `prices.reasoning ?? output` */
  reasoning: number;
  source: string;
  date: string;
  /** Catalog version. */
  version: string;
}

/**
 * A flat list of (provider, model key) → prices for SQL joins, one row per key under which
 * `catalog.lookup(provider, key)` finds an entry of that provider: every entry's lower-cased
 * id and aliases and their `normalizeModelName` forms, each (provider, model) once. A SQL
 * join that first tries `lower(model)` and then the normalised name (and prefers a row of the
 * span's provider) prices exactly like `costOf`.
 */
export function llmPriceRows(catalog: PriceCatalog = PriceCatalog.default()): PriceRow[] {
  const rows: PriceRow[] = [];
  const seen = new Set<string>();
  for (const owner of catalog.entries()) {
    const keys = exactKeys(owner);
    for (const key of [...keys, ...keys.map(normalizeModelName)]) {
      const identity = `${owner.provider}\u0000${key}`;
      if (seen.has(identity)) continue;
      const entry = catalog.lookup(owner.provider, key);
      if (entry === undefined || entry.provider !== owner.provider) continue;
      seen.add(identity);
      const { prices } = entry;
      rows.push({
        provider: entry.provider,
        model: key,
        catalogModel: entry.model,
        input: prices.input,
        output: prices.output,
        cacheRead: prices.cacheRead ?? prices.input,
        cacheWrite: prices.cacheWrite ?? prices.input,
        reasoning: prices.reasoning ?? prices.output,
        source: entry.source,
        date: entry.date,
        version: catalog.version,
      });
    }
  }
  return rows;
}
