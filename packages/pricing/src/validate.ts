import type { TokenPrices } from './types.js';

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** `YYYY-MM-DD` that is a real calendar date. */
export function isIsoDate(value: unknown): value is string {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const parsed = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === value;
}

export function todayUtc(): string {
  return new Date().toISOString().slice(0, 10);
}

export function isPrice(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

const PRICE_FIELDS = ['input', 'output', 'cacheRead', 'cacheWrite', 'reasoning'] as const;
const REQUIRED_PRICE_FIELDS: ReadonlySet<string> = new Set(['input', 'output']);

/** Reads `input`, `output` (required) and the optional cache/reasoning prices from `source`. */
export function readTokenPrices(
  source: Json,
  path: string,
  errors: string[],
): TokenPrices | undefined {
  const prices: Partial<Record<(typeof PRICE_FIELDS)[number], number>> = {};
  let ok = true;
  for (const field of PRICE_FIELDS) {
    const value = source[field];
    if (value === undefined || (value === null && !REQUIRED_PRICE_FIELDS.has(field))) {
      if (REQUIRED_PRICE_FIELDS.has(field)) {
        errors.push(`${path}.${field}: required (USD per million tokens)`);
        ok = false;
      }
      continue;
    }
    if (!isPrice(value)) {
      errors.push(
        `${path}.${field}: expected a non-negative number (USD per million tokens), got ${describe(value)}`,
      );
      ok = false;
      continue;
    }
    prices[field] = value;
  }
  if (!ok || prices.input === undefined || prices.output === undefined) return undefined;
  const result: TokenPrices = { input: prices.input, output: prices.output };
  if (prices.cacheRead !== undefined) result.cacheRead = prices.cacheRead;
  if (prices.cacheWrite !== undefined) result.cacheWrite = prices.cacheWrite;
  if (prices.reasoning !== undefined) result.reasoning = prices.reasoning;
  return result;
}
