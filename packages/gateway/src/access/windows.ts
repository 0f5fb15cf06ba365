/** UTC calendar windows of budgets: a day runs 00:00–24:00 UTC, a month from the 1st 00:00 UTC. */

export type BudgetPeriod = 'day' | 'month';

export interface PeriodWindow {
  /** ms since the epoch, inclusive. */
  readonly start: number;
  /** ms since the epoch, exclusive: when the budget resets. */
  readonly end: number;
}

export function windowOf(period: BudgetPeriod, at: number): PeriodWindow {
  const date = new Date(at);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  if (period === 'day') {
    const start = Date.UTC(year, month, date.getUTCDate());
    return { start, end: start + 86_400_000 };
  }
  return { start: Date.UTC(year, month, 1), end: Date.UTC(year, month + 1, 1) };
}

/** Share of the window elapsed at `at`, in [0, 1]. */
export function elapsedShare(window: PeriodWindow, at: number): number {
  return Math.min(1, Math.max(0, (at - window.start) / (window.end - window.start)));
}

export function formatUsd(value: number): string {
  return value >= 1 ? `$${value.toFixed(2)}` : `$${value.toPrecision(3)}`;
}
