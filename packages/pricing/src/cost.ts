import { PriceCatalog } from './catalog.js';
import type { CostResult, TokenUsage } from './types.js';

const MILLION = 1_000_000;

function count(usage: TokenUsage, field: keyof TokenUsage): number | string {
  const value = usage[field];
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    return `usage.${field} must be a finite non-negative number, got ${String(value)}`;
  }
  return value;
}

/**
 * The cost of one call in USD.
 *
 * Usage is read in OTel GenAI semantics: `inputTokens` includes the cache read and cache
 * write tokens, `outputTokens` includes the reasoning tokens. So:
 *
 * - uncached input = `inputTokens − cacheReadTokens − cacheWriteTokens` (at least 0) at `input`
 * - `cacheReadTokens` at `cacheRead` (or `input` when the entry has no cache read price)
 * - `cacheWriteTokens` at `cacheWrite` (or `input`)
 * - non-reasoning output = `outputTokens − reasoningTokens` (at least 0) at `output`
 * - `reasoningTokens` at `reasoning` (or `output`)
 *
 * Missing counts are 0. A model that is not in the catalog, or a count that is negative,
 * NaN or infinite, gives `{ known: false, reason }`: a cost is never guessed, and never 0
 * for lack of a price. The amount is the plain double sum of the breakdown, unrounded.
 */
export function costOf(
  input: { provider?: string; model: string; usage: TokenUsage },
  options?: { catalog?: PriceCatalog },
): CostResult {
  const catalog = options?.catalog ?? PriceCatalog.default();
  if (typeof input.model !== 'string' || input.model.trim() === '') {
    return { known: false, reason: 'no model name' };
  }
  const entry = catalog.lookup(input.provider, input.model);
  if (entry === undefined) {
    const provider = input.provider === undefined ? '' : ` (provider ${input.provider})`;
    return {
      known: false,
      reason: `no price for model ${input.model}${provider} in catalog ${catalog.version}`,
    };
  }
  const usage = input.usage;
  const counts = {
    inputTokens: count(usage, 'inputTokens'),
    outputTokens: count(usage, 'outputTokens'),
    cacheReadTokens: count(usage, 'cacheReadTokens'),
    cacheWriteTokens: count(usage, 'cacheWriteTokens'),
    reasoningTokens: count(usage, 'reasoningTokens'),
  };
  for (const value of Object.values(counts)) {
    if (typeof value === 'string') return { known: false, reason: value };
  }
  const { inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens, reasoningTokens } =
    counts as Record<keyof typeof counts, number>;
  const prices = entry.prices;
  const uncachedInput = Math.max(0, inputTokens - cacheReadTokens - cacheWriteTokens);
  const plainOutput = Math.max(0, outputTokens - reasoningTokens);
  const breakdown = {
    input: (uncachedInput * prices.input) / MILLION,
    cacheRead: (cacheReadTokens * (prices.cacheRead ?? prices.input)) / MILLION,
    cacheWrite: (cacheWriteTokens * (prices.cacheWrite ?? prices.input)) / MILLION,
    output: (plainOutput * prices.output) / MILLION,
    reasoning: (reasoningTokens * (prices.reasoning ?? prices.output)) / MILLION,
  };
  const amount =
    breakdown.input +
    breakdown.cacheRead +
    breakdown.cacheWrite +
    breakdown.output +
    breakdown.reasoning;
  return {
    known: true,
    amount,
    currency: 'USD',
    breakdown,
    provider: entry.provider,
    model: entry.model,
    version: catalog.version,
    entry,
  };
}
