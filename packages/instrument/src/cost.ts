import { diag } from '@opentelemetry/api';
import type { Attributes } from '@opentelemetry/api';
import { PriceCatalog, costOf, loadCatalog } from '@modelmaxx/pricing';
import {
  ATTR_GEN_AI_USAGE_COST_AMOUNT,
  ATTR_GEN_AI_USAGE_COST_CURRENCY,
  ATTR_GEN_AI_USAGE_COST_SOURCE,
  ATTR_MODELMAXX_COST_CACHE_READ_USD,
  ATTR_MODELMAXX_COST_CACHE_WRITE_USD,
  ATTR_MODELMAXX_COST_INPUT_USD,
  ATTR_MODELMAXX_COST_OUTPUT_USD,
  ATTR_MODELMAXX_COST_REASONING_USD,
  ATTR_MODELMAXX_COST_USD,
  ATTR_MODELMAXX_PRICING_MODEL,
  ATTR_MODELMAXX_PRICING_VERSION,
  GEN_AI_COST_CURRENCY_VALUE_USD,
  GEN_AI_COST_SOURCE_VALUE_LOCAL,
} from '@modelmaxx/semconv';
import type { TokenUsage } from './types.js';

let defaultCatalog: PriceCatalog | undefined;

/** The built-in catalog plus the `MODELMAXX_PRICES` overrides, loaded once; errors cost only telemetry. */
function catalogFromEnv(): PriceCatalog {
  if (defaultCatalog === undefined) {
    try {
      const { catalog, errors } = loadCatalog({ env: process.env });
      for (const error of errors) diag.warn(`modelmaxx: price catalog: ${error}`);
      defaultCatalog = catalog;
    } catch (error) {
      diag.error('modelmaxx: could not load the price catalog; using the built-in one', error);
      defaultCatalog = PriceCatalog.default();
    }
  }
  return defaultCatalog;
}

/** Test hook: reload `MODELMAXX_PRICES` on the next call. */
export function resetDefaultCatalog(): void {
  defaultCatalog = undefined;
}

/**
 * Cost attributes for one call, or `{}` when the price (or the usage) is unknown: an unknown
 * price never becomes a cost of 0.
 */
export function costAttributes(
  provider: string,
  models: readonly (string | undefined)[],
  usage: TokenUsage | undefined,
  catalog: PriceCatalog | undefined,
): Attributes {
  if (usage?.inputTokens === undefined) return {};
  const options = { catalog: typeof catalog?.lookup === 'function' ? catalog : catalogFromEnv() };
  for (const model of models) {
    if (model === undefined || model === '') continue;
    const result = costOf(
      {
        provider,
        model,
        usage: {
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens ?? 0,
          cacheReadTokens: usage.cacheReadTokens ?? 0,
          cacheWriteTokens: usage.cacheWriteTokens ?? 0,
          reasoningTokens: usage.reasoningTokens ?? 0,
        },
      },
      options,
    );
    if (!result.known) {
      diag.debug(`modelmaxx: no cost for ${model}: ${result.reason}`);
      continue;
    }
    return {
      [ATTR_GEN_AI_USAGE_COST_AMOUNT]: result.amount,
      [ATTR_GEN_AI_USAGE_COST_CURRENCY]: GEN_AI_COST_CURRENCY_VALUE_USD,
      [ATTR_GEN_AI_USAGE_COST_SOURCE]: GEN_AI_COST_SOURCE_VALUE_LOCAL,
      [ATTR_MODELMAXX_COST_USD]: result.amount,
      [ATTR_MODELMAXX_COST_INPUT_USD]: result.breakdown.input,
      [ATTR_MODELMAXX_COST_CACHE_READ_USD]: result.breakdown.cacheRead,
      [ATTR_MODELMAXX_COST_CACHE_WRITE_USD]: result.breakdown.cacheWrite,
      [ATTR_MODELMAXX_COST_OUTPUT_USD]: result.breakdown.output,
      [ATTR_MODELMAXX_COST_REASONING_USD]: result.breakdown.reasoning,
      [ATTR_MODELMAXX_PRICING_MODEL]: result.model,
      [ATTR_MODELMAXX_PRICING_VERSION]: result.version,
    };
  }
  return {};
}
