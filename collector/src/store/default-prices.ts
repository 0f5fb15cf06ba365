/**
 * The default `llm_prices` rows: `@modelmaxx/pricing`'s catalog
 * (`PriceCatalog.default().entries()`), read through a narrow structural type
 * so that the store depends only on the entry shape.
 */
import * as pricing from '@modelmaxx/pricing';
import type { PriceEntry, PriceRow } from './prices.js';
import { priceRowsFromEntries } from './prices.js';

interface CatalogModule {
  PriceCatalog?: { default(): { entries(): Iterable<PriceEntry> } };
}

export async function defaultPriceRows(): Promise<PriceRow[]> {
  const catalog = (pricing as unknown as CatalogModule).PriceCatalog;
  if (catalog === undefined) return [];
  return priceRowsFromEntries([...catalog.default().entries()]);
}
