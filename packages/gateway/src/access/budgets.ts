/**
 * Budgets per key, user, team and feature over UTC days and months: spend settled so far plus
 * the estimated cost reserved by requests in flight. A request is refused by a hard (or steer)
 * budget when spent + reserved + its estimate would pass the limit, so concurrent requests can
 * overspend only by what their actual cost exceeds their estimates. With a budget sync
 * (./budget-sync.ts), each window also holds what the other gateway replicas spent in it, as the
 * collector last reported (`others`), and that counts as spent too.
 */
import type { BudgetConfig } from './config.js';
import type { Principal } from './types.js';
import { rateSubject } from './rate-limit.js';
import { elapsedShare, windowOf } from './windows.js';
import type { PeriodWindow } from './windows.js';
import type { WindowState } from './state-file.js';

/** One budget as it applies to one request: the budget and whose spend it counts. */
export interface AppliedBudget {
  readonly budget: BudgetConfig;
  readonly subject: string;
}

export interface BudgetWindowStatus {
  readonly budget: string;
  readonly scope: BudgetConfig['scope'];
  readonly subject: string;
  readonly mode: BudgetConfig['mode'];
  readonly period: BudgetConfig['period'];
  readonly limitUsd: number;
  /** Spent in the window: this gateway's own and the other replicas' (`othersUsd`). */
  readonly spentUsd: number;
  /** The other replicas' spend as last synced (0 without a budget sync). */
  readonly othersUsd: number;
  readonly reservedUsd: number;
  readonly start: string;
  readonly resetsAt: string;
}

interface WindowEntry {
  readonly budget: string;
  readonly subject: string;
  readonly start: number;
  readonly end: number;
  /** This gateway's own spend (what the state file keeps). */
  spent: number;
  /** The other replicas' spend, as the last budget sync read it (replaced at each sync). */
  others: number;
  reserved: number;
}

/** Spend that counts against a window's limit: own, the other replicas', reserved in flight. */
export function usedUsd(entry: { spent: number; others: number; reserved: number }): number {
  return entry.spent + entry.others + entry.reserved;
}

export function budgetSubject(
  budget: BudgetConfig,
  principal: Principal,
  feature: string | undefined,
  endUser: string | undefined,
): string | undefined {
  // A feature is the request's; every other scope is whom it is from, as for rate limits.
  if (budget.scope === 'feature') return feature;
  return rateSubject(budget.scope, principal, endUser);
}

/** `budget "team-daily" (team support, UTC day)`. */
export function describeBudget(applied: AppliedBudget): string {
  const { budget, subject } = applied;
  const who = budget.scope === 'global' ? 'all traffic' : `${budget.scope} ${subject}`;
  return `budget "${budget.name}" (${who}, UTC ${budget.period})`;
}

/** The key of a budget and subject in `replaceOthers`' figures. */
export function othersKey(budget: string, subject: string): string {
  return JSON.stringify([budget, subject]);
}

export class BudgetLedger {
  private readonly windows = new Map<string, WindowEntry>();
  /**
   * Saved windows of budgets not configured now, kept as they were until their window ends: a
   * budget taken out for one restart keeps its spend when it comes back.
   */
  private carried: WindowState[] = [];

  readonly budgets: readonly BudgetConfig[];

  constructor(budgets: readonly BudgetConfig[]) {
    this.budgets = budgets;
  }

  applicable(
    principal: Principal,
    feature: string | undefined,
    endUser: string | undefined,
  ): AppliedBudget[] {
    const result: AppliedBudget[] = [];
    for (const budget of this.budgets) {
      const subject = budgetSubject(budget, principal, feature, endUser);
      if (subject === undefined) continue;
      if (budget.match !== undefined && budget.match !== subject) continue;
      result.push({ budget, subject });
    }
    return result;
  }

  /** The window entry of a budget and subject at a time (created empty). */
  entry(applied: AppliedBudget, at: number): WindowEntry & PeriodWindow {
    const window = windowOf(applied.budget.period, at);
    const id = JSON.stringify([applied.budget.name, applied.subject, window.start]);
    let entry = this.windows.get(id);
    if (entry === undefined) {
      entry = {
        budget: applied.budget.name,
        subject: applied.subject,
        start: window.start,
        end: window.end,
        spent: 0,
        others: 0,
        reserved: 0,
      };
      this.windows.set(id, entry);
    }
    return entry;
  }

  /** Releases a reservation made at `reservedAt` (its window, even if a new one began since). */
  release(applied: AppliedBudget, reservedAt: number, amount: number): void {
    const entry = this.entry(applied, reservedAt);
    const left = entry.reserved - amount;
    // Float sums drift: below a pico-dollar is nothing reserved.
    entry.reserved = left < 1e-12 ? 0 : left;
  }

  /** Burn rate: spend (with reservations) ÷ the plan's share for the time elapsed. */
  burnRate(applied: AppliedBudget, at: number): number {
    const entry = this.entry(applied, at);
    const share = elapsedShare(entry, at);
    const used = usedUsd(entry);
    if (share <= 0) return used > 0 ? Infinity : 0;
    return used / (applied.budget.limitUsd * share);
  }

  /**
   * The other replicas' spend in the windows open at `at`, replacing the last figures: every
   * current window not in `figures` had none. `figures` maps a budget's name and subject
   * (`othersKey`) to USD.
   */
  replaceOthers(figures: ReadonlyMap<string, number>, at: number): void {
    for (const budget of this.budgets) {
      const start = windowOf(budget.period, at).start;
      for (const entry of this.windows.values()) {
        if (entry.budget === budget.name && entry.start === start) entry.others = 0;
      }
    }
    for (const [key, usd] of figures) {
      const [name, subject] = JSON.parse(key) as [string, string];
      const budget = this.budgets.find((candidate) => candidate.name === name);
      if (budget === undefined || !(usd > 0)) continue;
      this.entry({ budget, subject }, at).others = usd;
    }
  }

  /**
   * Windows still open at `now`, for the state file: the configured budgets' spend, and the
   * carried windows of budgets not configured now.
   */
  snapshot(now: number): WindowState[] {
    const names = new Set(this.budgets.map((budget) => budget.name));
    this.carried = this.carried.filter((window) => window.end > now);
    const result: WindowState[] = [...this.carried];
    for (const [id, entry] of this.windows) {
      if (entry.end <= now || !names.has(entry.budget)) {
        if (entry.reserved === 0) this.windows.delete(id);
        continue;
      }
      if (entry.spent > 0) {
        result.push({
          budget: entry.budget,
          subject: entry.subject,
          start: entry.start,
          end: entry.end,
          spentUsd: entry.spent,
        });
      }
    }
    return result;
  }

  /**
   * Loads saved spend; windows already over are dropped, those of budgets not configured now are
   * carried (written back unchanged until they end).
   */
  restore(saved: readonly WindowState[], now: number): number {
    let restored = 0;
    for (const window of saved) {
      if (window.end <= now) continue;
      const budget = this.budgets.find((candidate) => candidate.name === window.budget);
      if (budget === undefined) {
        this.carried.push(window);
        continue;
      }
      const current = windowOf(budget.period, now);
      if (current.start !== window.start) continue;
      const entry = this.entry({ budget, subject: window.subject }, now);
      entry.spent += window.spentUsd;
      restored += 1;
    }
    return restored;
  }

  status(now: number): BudgetWindowStatus[] {
    const result: BudgetWindowStatus[] = [];
    for (const entry of this.windows.values()) {
      if (entry.end <= now) continue;
      const budget = this.budgets.find((candidate) => candidate.name === entry.budget);
      if (budget !== undefined) result.push(statusOf(budget, entry));
    }
    return result;
  }

  /** Where each of these budgets stands in its current window (an empty window: nothing spent). */
  standing(applied: readonly AppliedBudget[], now: number): BudgetWindowStatus[] {
    return applied.map((one) => statusOf(one.budget, this.entry(one, now)));
  }
}

function statusOf(budget: BudgetConfig, entry: WindowEntry): BudgetWindowStatus {
  return {
    budget: budget.name,
    scope: budget.scope,
    subject: entry.subject,
    mode: budget.mode,
    period: budget.period,
    limitUsd: budget.limitUsd,
    spentUsd: entry.spent + entry.others,
    othersUsd: entry.others,
    reservedUsd: entry.reserved,
    start: new Date(entry.start).toISOString(),
    resetsAt: new Date(entry.end).toISOString(),
  };
}
