/**
 * Rows of `llm_prices`, built from a `@modelmaxx/pricing` catalog so that the
 * `llm_calls` view finds the same entry `PriceCatalog.lookup` finds:
 *
 * - one `exact` row per entry and lower-cased id or alias;
 * - one `normalized` row per entry and `normalizeModelName` of such a key, unless
 *   another entry of the same provider has that name as its own key (the
 *   catalog's rule: `gpt-4o-2024-05-13` normalises to `gpt-4o`, but `gpt-4o` wins);
 * - `Rank` is the entry's position in the catalog, the order in which `lookup`
 *   considers entries when no provider decides.
 */
import { normalizeModelName, PriceCatalog } from '@modelmaxx/pricing';
import type { PriceEntry } from '@modelmaxx/pricing';

export interface PriceRow {
  Provider: string;
  /** `exact` (an id or alias, lower-cased) or `normalized` (its `normalizeModelName` form). */
  KeyKind: 'exact' | 'normalized';
  Model: string;
  InputPerMTok: number;
  OutputPerMTok: number;
  CacheReadPerMTok: number;
  CacheWritePerMTok: number;
  ReasoningPerMTok: number;
  CatalogModel: string;
  Source: string;
  /** Date the price was valid at its source, `YYYY-MM-DD`. */
  PriceDate: string;
  /** Catalog version (normally a date): the newest version of a key wins. */
  Version: string;
  Rank: number;
}

const exactKeys = (entry: PriceEntry) => [
  ...new Set([entry.model, ...(entry.aliases ?? [])].map((name) => name.trim().toLowerCase())),
];

export function catalogPriceRows(catalog: PriceCatalog = PriceCatalog.default()): PriceRow[] {
  const entries = catalog.entries();
  const exactOwners = new Map<string, PriceEntry[]>();
  for (const entry of entries) {
    for (const key of exactKeys(entry)) {
      const owners = exactOwners.get(key) ?? [];
      if (!owners.includes(entry)) owners.push(entry);
      exactOwners.set(key, owners);
    }
  }
  const rows: PriceRow[] = [];
  const seen = new Set<string>();
  const add = (entry: PriceEntry, rank: number, kind: PriceRow['KeyKind'], model: string) => {
    const identity = `${kind}\u0000${model}\u0000${rank}`;
    if (seen.has(identity)) return;
    seen.add(identity);
    const prices = entry.prices;
    rows.push({
      Provider: entry.provider,
      KeyKind: kind,
      Model: model,
      InputPerMTok: prices.input,
      OutputPerMTok: prices.output,
      CacheReadPerMTok: prices.cacheRead ?? prices.input,
      CacheWritePerMTok: prices.cacheWrite ?? prices.input,
      ReasoningPerMTok: prices.reasoning ?? prices.output,
      CatalogModel: entry.model,
      Source: entry.source,
      PriceDate: entry.date,
      Version: catalog.version,
      Rank: rank,
    });
  };
  entries.forEach((entry, rank) => {
    for (const key of exactKeys(entry)) add(entry, rank, 'exact', key);
  });
  entries.forEach((entry, rank) => {
    for (const key of exactKeys(entry)) {
      const normalized = normalizeModelName(key);
      const owners = (exactOwners.get(normalized) ?? []).filter((other) => other !== entry);
      if (!owners.some((other) => other.provider === entry.provider))
        add(entry, rank, 'normalized', normalized);
    }
  });
  return rows;
}
