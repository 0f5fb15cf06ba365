/**
 * What routed calls cost: the price of a completed call from its usage, and the spend of the
 * current budget period (`goal.budget`), which turns routing to the cheapest eligible candidate
 * once spent.
 */
import { diag } from '@opentelemetry/api';
import type OpenAI from 'openai';
import { catalogFromEnv, costOf } from '@modelmaxx/pricing';
import type { Choice, WeightTable } from './decision.js';
import type { Candidate, Policy } from './policy.js';

/** USD of a completed call from its usage (the candidate's price, else the catalog). */
export function priceOf(candidate: Candidate, result: unknown): number | undefined {
  const usage = (result as { usage?: OpenAI.CompletionUsage | null } | undefined)?.usage;
  if (usage === undefined || usage === null) return undefined;
  if (candidate.price !== undefined) {
    return (
      (usage.prompt_tokens * candidate.price.inputPerMillion +
        usage.completion_tokens * candidate.price.outputPerMillion) /
      1e6
    );
  }
  return catalogPrice(
    candidate.provider,
    candidate.model,
    usage.prompt_tokens,
    usage.completion_tokens,
  );
}

/**
 * USD of `input` and `output` tokens of a model by the catalog every package prices with (the
 * built-in one plus `MODELMAXX_PRICES`); undefined when it has no price.
 */
export function catalogPrice(
  provider: string | undefined,
  model: string,
  inputTokens: number,
  outputTokens: number,
): number | undefined {
  const usage = { inputTokens, outputTokens };
  const cost = costOf({ provider, model, usage }, { catalog: catalogFromEnv().catalog });
  if (cost.known) return cost.amount;
  diag.debug(`modelmaxx router: no price for ${model}: ${cost.reason}`);
  return undefined;
}

/** The spend of the current budget period (a period starts at a multiple of `periodMs`). */
export class BudgetTracker {
  private readonly budget: Policy['goal']['budget'];
  private readonly now: () => number;
  private periodStart = 0;
  private spentUsd = 0;

  constructor(policy: Policy, now: () => number) {
    this.budget = policy.goal.budget;
    this.now = now;
  }

  private roll(): void {
    if (this.budget === undefined) return;
    const start = Math.floor(this.now() / this.budget.periodMs) * this.budget.periodMs;
    if (start !== this.periodStart) {
      this.periodStart = start;
      this.spentUsd = 0;
    }
  }

  /** Adds the cost of a completed call to the period's spend; returns it (0 when unknown). */
  record(candidate: Candidate, result: unknown): number {
    const cost = priceOf(candidate, result) ?? 0;
    if (cost === 0) return cost;
    this.roll();
    this.spentUsd += cost;
    return cost;
  }

  spend(): { readonly periodStart: number; readonly spentUsd: number } {
    this.roll();
    return { periodStart: this.periodStart, spentUsd: this.spentUsd };
  }

  /** Over budget: the cheapest eligible candidate by observed (or prior) cost per call. */
  choice(
    tableOf: () => WeightTable,
    classKey: string,
    exclude: ReadonlySet<string>,
  ): Choice | undefined {
    const budget = this.budget;
    if (budget === undefined) return undefined;
    this.roll();
    if (this.spentUsd < budget.usd) return undefined;
    const table = tableOf();
    const entry = table.classes.get(classKey) ?? table.fallbackClass;
    let cheapest: (typeof entry.weights)[number] | undefined;
    for (const weight of entry.weights) {
      if (!weight.eligible || exclude.has(weight.model)) continue;
      if (
        cheapest === undefined ||
        (weight.costPerCallUsd ?? Infinity) < (cheapest.costPerCallUsd ?? Infinity)
      ) {
        cheapest = weight;
      }
    }
    if (cheapest === undefined) return undefined;
    return {
      model: cheapest.model,
      weight: cheapest.weight,
      reason: `budget of $${budget.usd} spent ($${this.spentUsd.toFixed(4)} this period): cheapest eligible candidate`,
      classKey: entry.classKey,
    };
  }
}
