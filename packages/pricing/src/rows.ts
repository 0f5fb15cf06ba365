/**
 * Rows of the collector's `llm_prices` table, built from a catalog so that the `llm_calls`
 * view finds the same entry `PriceCatalog.lookup` finds:
 *
 * - one `exact` row per entry and lower-cased id or alias (`exactKeys`);
 * - one `normalized` row per entry and `normalizeModelName` of such a key, unless another
 *   entry of the same provider has that name as its own key (the catalog's rule:
 *   `gpt-4o-2024-05-13` normalises to `gpt-4o`, but `gpt-4o` wins);
 * - `Rank` is the entry's position in the catalog, the order in which `lookup` considers
 *   entries when no provider decides.
 */
import { exactKeys, PriceCatalog } from './catalog.js';
import { normalizeModelName } from './normalize.js';
import type { PriceEntry } from './types.js';

/** One row of `llm_prices`, keys named like its columns. Prices in USD per million tokens. */
export interface PriceRow {
  Provider: string;
  /** `exact` (an id or alias, lower-cased) or `normalized` (its `normalizeModelName` form). */
  KeyKind: 'exact' | 'normalized';
  Model: string;
  InputPerMTok: number;
  OutputPerMTok: number;
  /** `prices.cacheRead ?? input` */
  CacheReadPerMTok: number;
  /** `prices.cacheWrite ?? input` */
  CacheWritePerMTok: number;
  /** `prices.reasoning ?? output` */
  ReasoningPerMTok: number;
  /** The catalog model the key resolves to (`entry.model`). */
  CatalogModel: string;
  Source: string;
  /** Date the price was valid at its source, `YYYY-MM-DD`. */
  PriceDate: string;
  /** Catalog version (normally a date): the newest version of a key wins. */
  Version: string;
  Rank: number;
}

/** The entries that have `key` among their own exact keys. */
function exactOwners(entries: readonly PriceEntry[]): Map<string, PriceEntry[]> {
  const owners = new Map<string, PriceEntry[]>();
  for (const entry of entries) {
    for (const key of exactKeys(entry)) {
      const list = owners.get(key) ?? [];
      if (!list.includes(entry)) list.push(entry);
      owners.set(key, list);
    }
  }
  return owners;
}

function priceRow(
  catalog: PriceCatalog,
  entry: PriceEntry,
  rank: number,
  kind: PriceRow['KeyKind'],
  model: string,
): PriceRow {
  const { prices } = entry;
  return {
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
  };
}

/** The `llm_prices` rows of `catalog` (default: the built-in one): exact keys first, then normalised. */
export function llmPriceRows(catalog: PriceCatalog = PriceCatalog.default()): PriceRow[] {
  const entries = catalog.entries();
  const owners = exactOwners(entries);
  const rows: PriceRow[] = [];
  const seen = new Set<string>();
  const add = (entry: PriceEntry, rank: number, kind: PriceRow['KeyKind'], model: string) => {
    const identity = `${kind}\u0000${model}\u0000${rank}`;
    if (seen.has(identity)) return;
    seen.add(identity);
    rows.push(priceRow(catalog, entry, rank, kind, model));
  };
  entries.forEach((entry, rank) => {
    for (const key of exactKeys(entry)) add(entry, rank, 'exact', key);
  });
  entries.forEach((entry, rank) => {
    for (const key of exactKeys(entry)) {
      const normalized = normalizeModelName(key);
      const others = (owners.get(normalized) ?? []).filter((other) => other !== entry);
      if (!others.some((other) => other.provider === entry.provider))
        add(entry, rank, 'normalized', normalized);
    }
  });
  return rows;
}
