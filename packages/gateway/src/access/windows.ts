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

/** Dollars for people: cents from $1, else three significant digits, never in exponent form. */
export function formatUsd(value: number): string {
  if (value >= 1) return `$${value.toFixed(2)}`;
  if (value <= 0) return `$${(0).toPrecision(3)}`;
  // toPrecision writes 2.4e-7 below a micro-dollar; toFixed with the digits it would show does not.
  const digits = Math.min(100, 2 - Math.floor(Math.log10(value)));
  return `$${value.toFixed(digits)}`;
}

/**
 * A share (0.8) as a percentage for people ("80%"): three significant digits, trailing zeros
 * dropped, never rounded to 0% nor in exponent form (a 0.000001 threshold is "0.0001%").
 */
export function formatPercent(share: number): string {
  const percent = share * 100;
  if (!Number.isFinite(percent) || percent === 0 || Math.abs(percent) >= 100) {
    return `${Math.round(percent)}%`;
  }
  const digits = Math.min(100, 2 - Math.floor(Math.log10(Math.abs(percent))));
  return `${percent.toFixed(digits).replace(/\.?0+$/, '')}%`;
}
