import { diag } from '@opentelemetry/api';
import type { Attributes } from '@opentelemetry/api';
import { catalogFromEnv, costOf, resetCatalogFromEnv } from '@modelmaxx/pricing';
import type { PriceCatalog } from '@modelmaxx/pricing';
import { setCatalogCostAttributes } from '@modelmaxx/semconv';
import type { TokenUsage } from './types.js';

let reported = false;

/** The built-in catalog plus the `MODELMAXX_PRICES` overrides (`catalogFromEnv`); errors cost only telemetry. */
function envCatalog(): PriceCatalog {
  const { catalog, errors } = catalogFromEnv();
  if (!reported) {
    reported = true;
    for (const error of errors) diag.warn(`modelmaxx: price catalog: ${error}`);
  }
  return catalog;
}

/** Test hook: reload `MODELMAXX_PRICES` on the next call. */
export function resetDefaultCatalog(): void {
  resetCatalogFromEnv();
  reported = false;
}

/**
 * Adds the cost attributes of one call to `target`, or nothing when the price (or the usage) is
 * unknown: an unknown price never becomes a cost of 0. The response model is priced first, then
 * the request model.
 */
export function addCostAttributes(
  target: Attributes,
  provider: string,
  responseModel: string | undefined,
  requestModel: string | undefined,
  usage: TokenUsage | undefined,
  catalog: PriceCatalog | undefined,
): void {
  if (usage?.inputTokens === undefined) return;
  // costOf reads missing counts as 0, as we do.
  const options = costOptions(typeof catalog?.lookup === 'function' ? catalog : envCatalog());
  if (addCostOf(target, provider, responseModel, usage, options)) return;
  addCostOf(target, provider, requestModel, usage, options);
}

let lastOptions: { catalog: PriceCatalog } | undefined;

/** `costOf`'s options for `catalog`: the same object while the catalog stays the same. */
function costOptions(catalog: PriceCatalog): { catalog: PriceCatalog } {
  if (lastOptions?.catalog !== catalog) lastOptions = { catalog };
  return lastOptions;
}

function addCostOf(
  target: Attributes,
  provider: string,
  model: string | undefined,
  usage: TokenUsage,
  options: { catalog: PriceCatalog },
): boolean {
  if (model === undefined || model === '') return false;
  const result = costOf({ provider, model, usage }, options);
  if (!result.known) {
    diag.debug(`modelmaxx: no cost for ${model}: ${result.reason}`);
    return false;
  }
  setCatalogCostAttributes(target, result);
  return true;
}
