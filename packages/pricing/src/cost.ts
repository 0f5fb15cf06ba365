import { PriceCatalog } from './catalog.js';
import type { CostResult, TokenUsage } from './types.js';

const MILLION = 1_000_000;

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

const USAGE_FIELDS = [
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheWriteTokens',
  'reasoningTokens',
] as const;

function invalidUsage(usage: TokenUsage): string {
  const field = USAGE_FIELDS.find((name) => usage[name] !== undefined && !isCount(usage[name]));
  return `usage.${field ?? 'inputTokens'} must be a finite non-negative number, got ${String(field && usage[field])}`;
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
  input: { provider?: string | undefined; model: string; usage: TokenUsage },
  options?: { catalog?: PriceCatalog | undefined },
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
  const inputTokens = usage.inputTokens ?? 0;
  const outputTokens = usage.outputTokens ?? 0;
  const cacheReadTokens = usage.cacheReadTokens ?? 0;
  const cacheWriteTokens = usage.cacheWriteTokens ?? 0;
  const reasoningTokens = usage.reasoningTokens ?? 0;
  if (
    !isCount(inputTokens) ||
    !isCount(outputTokens) ||
    !isCount(cacheReadTokens) ||
    !isCount(cacheWriteTokens) ||
    !isCount(reasoningTokens)
  ) {
    return { known: false, reason: invalidUsage(usage) };
  }
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
