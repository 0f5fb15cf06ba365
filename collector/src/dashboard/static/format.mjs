/**
 * How the dashboard writes figures: dollars, counts, durations, percentages and
 * chart bucket labels.
 */

/**
 * Dollars: whole dollars from $1,000, cents from $1, three significant digits below
 * ($0.0462, $0.00000825), so small amounts keep their digits.
 */
export const usd = (value) => {
  if (value === 0) return '$0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return `$${Math.round(value).toLocaleString('en-US')}`;
  if (magnitude >= 1) {
    return `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  }
  const decimals = Math.min(20, 2 - Math.floor(Math.log10(magnitude)));
  return `$${value.toFixed(decimals).replace(/0+$/, '').replace(/\.$/, '')}`;
};
/** A cost that is unknown (no call of it has a price) says so instead of $0. */
export const spend = (costUsd, pricedCalls, calls) =>
  calls > 0 && pricedCalls === 0 ? 'unpriced' : usd(costUsd);
/** Axis ticks: three significant digits. */
export const usdTick = (value) => (value === 0 ? '$0' : `$${Number(value.toPrecision(3))}`);
export const count = (value) => Math.round(value).toLocaleString('en-US');
export const ms = (value) => {
  if (value === null || value === undefined) return '–';
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10_000 ? 1 : 2)} s`;
  return `${Math.round(value).toLocaleString('en-US')} ms`;
};
export const percent = (value) => `${(value * 100).toFixed(value < 0.1 ? 1 : 0)}%`;

export function bucketLabel(seconds, stepSeconds) {
  const date = new Date(seconds * 1000);
  const time = date.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
  if (stepSeconds < 3600) return time;
  return `${date.toLocaleDateString('en-GB', { weekday: 'short' })} ${time}`;
}
