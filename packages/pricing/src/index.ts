export { PriceCatalog } from './catalog.js';
export { costOf } from './cost.js';
export {
  normalizeModelName,
  normalizeProviderName,
  MODEL_NAME_REWRITES,
  PROVIDER_ALIASES,
} from './normalize.js';
export type { ModelNameRewrite } from './normalize.js';
export { parseLiteLLMPrices, isLiteLLMPrices } from './litellm.js';
export {
  parsePriceOverrides,
  loadCatalog,
  catalogFromEnv,
  resetCatalogFromEnv,
} from './overrides.js';
export { llmPriceRows } from './rows.js';
export type { PriceRow } from './rows.js';
export { BUILTIN_PRICES } from './builtin-prices.js';
export type { TokenPrices, PriceEntry, TokenUsage, CostBreakdown, CostResult } from './types.js';
