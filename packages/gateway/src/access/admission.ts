/**
 * The budget steps of an admission, in order: hard and steer budgets keep only the candidates
 * whose estimate still fits (refusing when none does), steer budgets running ahead of plan put
 * the cheapest candidates first, and every budget the request would bring near or past its limit
 * adds a warning. Nothing here changes the ledger: the caller reserves once all steps passed.
 * "Spent" is this gateway's own spend plus the other replicas' (a budget sync's `others`).
 */
import type { AppliedBudget, BudgetLedger } from './budgets.js';
import { describeBudget, usedUsd } from './budgets.js';
import type { Admission } from './types.js';
import { elapsedShare, formatPercent, formatUsd } from './windows.js';

/** Sums of float dollars drift: a nano-dollar either way is no overspend. */
const EPSILON_USD = 1e-9;

export type Refusal = Extract<Admission, { ok: false }>;

/** A 429 naming the budget or limit and when it resets. */
export function refuse(
  type: 'budget_exceeded' | 'rate_limited',
  message: string,
  retryAfterMs: number,
  budget?: string,
  resetsAt?: number,
  fields?: Record<string, unknown>,
): Refusal {
  return {
    ok: false,
    status: 429,
    error: {
      type,
      message,
      ...(budget === undefined ? {} : { budget }),
      ...(resetsAt === undefined ? {} : { resetsAt: new Date(resetsAt).toISOString() }),
      ...(fields === undefined ? {} : { fields }),
    },
    retryAfterSeconds: retryAfterSeconds(retryAfterMs),
  };
}

/** Whole seconds, at least 1 (what `retry-after` says). */
function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** Dollars rounded to a pico-dollar: sums of float costs read 0.00046875, not 0.00046874999999999993. */
function usd(value: number): number {
  return Math.round(value * 1e12) / 1e12;
}

/** The exhausted budget as the 429 body's `budget` object. */
function budgetFields(
  budget: AppliedBudget,
  entry: { spent: number; others: number; reserved: number; end: number },
  estimateUsd: number,
  now: number,
): Record<string, unknown> {
  const { name, scope, period, limitUsd } = budget.budget;
  return {
    budget: {
      name,
      scope,
      // The key id / user / team / feature the budget counts (`*` for a global one).
      id: scope === 'global' ? '*' : budget.subject,
      period,
      limit_usd: limitUsd,
      spent_usd: usd(entry.spent + entry.others),
      others_usd: usd(entry.others),
      reserved_usd: usd(entry.reserved),
      request_estimate_usd: usd(estimateUsd),
      resets_at: new Date(entry.end).toISOString(),
      retry_after_seconds: retryAfterSeconds(entry.end - now),
    },
  };
}

/** The candidates of one admission as the budget steps narrow and reorder them. */
export interface BudgetPass {
  readonly ledger: BudgetLedger;
  readonly applied: readonly AppliedBudget[];
  readonly now: number;
  /** Upper-bound cost of a candidate (USD, ≥ 0). */
  readonly estimate: (model: string) => number;
  candidates: string[];
  /** Why the candidates were narrowed or reordered. */
  readonly steeredBecause: string[];
}

/** Money a hard or steer budget has left for new requests now. */
function leftIn(pass: BudgetPass, budget: AppliedBudget): number {
  const entry = pass.ledger.entry(budget, pass.now);
  return budget.budget.limitUsd - usedUsd(entry);
}

/**
 * The budget a refusal names: of the one no candidate fits and every other hard or steer budget
 * that by itself leaves none of the request's candidates, the one that resets last, since a retry
 * cannot pass before it resets (a spent daily budget's midnight is no use while the month's is
 * spent too).
 */
function blockingBudget(
  pass: BudgetPass,
  refusing: AppliedBudget,
  candidates: readonly string[],
): AppliedBudget {
  let latest = refusing;
  for (const budget of pass.applied) {
    if (budget.budget.mode === 'soft' || budget === refusing) continue;
    const left = leftIn(pass, budget);
    if (candidates.some((model) => pass.estimate(model) <= left + EPSILON_USD)) continue;
    if (pass.ledger.entry(budget, pass.now).end > pass.ledger.entry(latest, pass.now).end) {
      latest = budget;
    }
  }
  return latest;
}

/** The 429 of a budget that leaves none of `candidates`. */
function refuseBudget(
  pass: BudgetPass,
  budget: AppliedBudget,
  candidates: readonly string[],
): Refusal {
  const { now, estimate } = pass;
  const entry = pass.ledger.entry(budget, now);
  const left = leftIn(pass, budget);
  const spent = entry.spent + entry.others;
  const inFlight =
    entry.reserved > 0 ? ` and ${formatUsd(entry.reserved)} reserved by requests in flight` : '';
  const cheapest = Math.min(...candidates.map(estimate));
  const limit = formatUsd(budget.budget.limitUsd);
  // Money left, but less than this request's upper bound: say so rather than "exhausted"
  // (a request without max_tokens is estimated at 4096 output tokens).
  const state =
    left > EPSILON_USD
      ? `has ${formatUsd(left)} left of ${limit} (${formatUsd(spent)} spent${inFlight}), less than this request may cost: up to ${formatUsd(cheapest)} (input from the body's size, output from max_tokens, 4096 tokens when absent)`
      : `is exhausted: ${formatUsd(spent)} spent${inFlight} of ${limit}; this request may cost up to ${formatUsd(cheapest)}`;
  return refuse(
    'budget_exceeded',
    `${describeBudget(budget)} ${state}; resets at ${new Date(entry.end).toISOString()}`,
    entry.end - now,
    budget.budget.name,
    entry.end,
    budgetFields(budget, entry, cheapest, now),
  );
}

/** Hard and steer budgets: only candidates whose estimate still fits, in every budget. */
export function fitCandidates(pass: BudgetPass): Refusal | undefined {
  const requested = [...pass.candidates];
  for (const budget of pass.applied) {
    if (budget.budget.mode === 'soft') continue;
    const left = leftIn(pass, budget);
    const fitting = pass.candidates.filter((model) => pass.estimate(model) <= left + EPSILON_USD);
    if (fitting.length === 0) {
      const blocking = blockingBudget(pass, budget, requested);
      return refuseBudget(pass, blocking, blocking === budget ? pass.candidates : requested);
    }
    if (fitting.length < pass.candidates.length) {
      const dropped = pass.candidates.filter((model) => !fitting.includes(model));
      pass.steeredBecause.push(
        `${dropped.join(', ')} left out: estimate over the ${formatUsd(left)} left in ${describeBudget(budget)}`,
      );
      pass.candidates = fitting;
    }
  }
  return undefined;
}

/** Steer budgets running ahead of plan: cheapest candidates first. */
export function steerCandidates(pass: BudgetPass): void {
  const { ledger, now, estimate } = pass;
  for (const budget of pass.applied) {
    if (budget.budget.mode !== 'steer' || pass.candidates.length < 2) continue;
    const entry = ledger.entry(budget, now);
    const used = usedUsd(entry);
    if (used < budget.budget.steerMinSpend * budget.budget.limitUsd) continue;
    const burn = ledger.burnRate(budget, now);
    if (burn <= 1) continue;
    const reordered = [...pass.candidates].sort((a, b) => estimate(a) - estimate(b));
    if (reordered.every((model, index) => model === pass.candidates[index])) continue;
    pass.candidates = reordered;
    pass.steeredBecause.push(
      `${describeBudget(budget)} runs ahead of plan: ${formatUsd(used)} of ${formatUsd(budget.budget.limitUsd)} used with ${(elapsedShare(entry, now) * 100).toFixed(1)}% of the period gone (burn rate ${burn.toFixed(2)}x): cheapest candidates first`,
    );
  }
}

/** Soft budgets past their limit, and any budget past its `warnAt` share, once `reservedUsd` is added. */
export function budgetWarnings(pass: BudgetPass, reservedUsd: number): string[] {
  const warnings: string[] = [];
  for (const budget of pass.applied) {
    const entry = pass.ledger.entry(budget, pass.now);
    const limit = budget.budget.limitUsd;
    const spent = entry.spent + entry.others;
    const after = usedUsd(entry) + reservedUsd;
    const resets = new Date(entry.end).toISOString();
    if (budget.budget.mode === 'soft' && after > limit) {
      // Spent alone may still be under the limit: then it is the requests in flight that pass it.
      const state =
        spent > limit ? 'is over its limit' : 'passes its limit with the requests in flight';
      warnings.push(
        `${describeBudget(budget)} ${state}: ${formatUsd(spent)} spent, ${formatUsd(entry.reserved + reservedUsd)} in flight, of ${formatUsd(limit)}; resets at ${resets}`,
      );
    } else if (after >= budget.budget.warnAt * limit) {
      warnings.push(
        `${describeBudget(budget)} is at ${formatPercent(after / limit)} of ${formatUsd(limit)} (${formatUsd(spent)} spent, ${formatUsd(entry.reserved + reservedUsd)} in flight); resets at ${resets}`,
      );
    }
  }
  return warnings;
}
