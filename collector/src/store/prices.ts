/**
 * Rows of `llm_prices`: `@modelmaxx/pricing`'s `llmPriceRows` (one row per
 * provider × model key, defaults filled in), plus the row's rank in catalog
 * order, which the `llm_calls` view uses as `PriceCatalog.lookup` does when no
 * provider decides ("the first entry found").
 */
import { llmPriceRows, PriceCatalog } from '@modelmaxx/pricing';
import type { PriceRow as CatalogPriceRow } from '@modelmaxx/pricing';

export interface PriceRow {
  Provider: string;
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

export function priceRowsFromCatalog(rows: readonly CatalogPriceRow[]): PriceRow[] {
  return rows.map((row, index) => ({
    Provider: row.provider,
    Model: row.model,
    InputPerMTok: row.input,
    OutputPerMTok: row.output,
    CacheReadPerMTok: row.cacheRead,
    CacheWritePerMTok: row.cacheWrite,
    ReasoningPerMTok: row.reasoning,
    CatalogModel: row.catalogModel,
    Source: row.source,
    PriceDate: row.date,
    Version: row.version,
    Rank: index,
  }));
}

/** The built-in catalog's rows (or another catalog's). */
export function catalogPriceRows(catalog: PriceCatalog = PriceCatalog.default()): PriceRow[] {
  return priceRowsFromCatalog(llmPriceRows(catalog));
}
