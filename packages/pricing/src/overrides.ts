import { readFileSync } from 'node:fs';
import { PriceCatalog } from './catalog.js';
import { isLiteLLMPrices, parseLiteLLMPrices } from './litellm.js';
import { normalizeProviderName } from './normalize.js';
import type { PriceEntry } from './types.js';
import { describe, isIsoDate, isObject, readTokenPrices, todayUtc } from './validate.js';

const DEFAULT_SOURCE = 'MODELMAXX_PRICES override';

/**
 * Reads a price overrides document. Our format (USD per million tokens):
 *
 * ```json
 * { "prices": [
 *   { "provider": "openai", "model": "gpt-4o", "input": 2.5, "output": 10, "cacheRead": 1.25,
 *     "aliases": ["my-gpt"], "source": "contract 2025-07", "date": "2025-07-01" }
 * ] }
 * ```
 *
 * A bare array of entries is accepted too, and each entry may put the prices in a nested
 * `"prices": { "input": …, "output": … }` object (the `PriceEntry` shape). `provider`,
 * `model`, `input` and `output` are required; `cacheRead`, `cacheWrite`, `reasoning`,
 * `aliases`, `source` (default `MODELMAXX_PRICES override`), `date` (YYYY-MM-DD, default
 * today in UTC), `mode` (`chat` | `embedding`) and `notes` are optional. A document in
 * LiteLLM's `model_prices_and_context_window.json` format is recognised and read with
 * `parseLiteLLMPrices`. Bad entries are left out and described in `errors`; this never throws.
 */
export function parsePriceOverrides(
  json: unknown,
  options?: { source?: string; date?: string },
): { entries: PriceEntry[]; errors: string[] } {
  const errors: string[] = [];
  const defaultDate = options?.date ?? todayUtc();
  if (isLiteLLMPrices(json)) {
    const litellmOptions: { source?: string; date: string } = { date: defaultDate };
    if (options?.source !== undefined) litellmOptions.source = options.source;
    const { entries, skipped } = parseLiteLLMPrices(json, litellmOptions);
    // Skipped non-token modes (images, audio, …) are expected in a LiteLLM file; report only the odd ones.
    for (const skip of skipped) {
      if (skip.key === 'sample_spec' || skip.reason.startsWith('mode ')) continue;
      errors.push(`${skip.key}: ${skip.reason}`);
    }
    return { entries, errors };
  }
  let list: unknown;
  let base = '';
  if (Array.isArray(json)) list = json;
  else if (isObject(json) && 'prices' in json) {
    list = json['prices'];
    base = 'prices';
    if (!Array.isArray(list)) {
      errors.push(`prices: expected an array of entries, got ${describe(list)}`);
      return { entries: [], errors };
    }
  } else {
    errors.push(
      `expected {"prices": [...]}, an array of entries or a LiteLLM price file, got ${describe(json)}`,
    );
    return { entries: [], errors };
  }
  const entries: PriceEntry[] = [];
  const seen = new Set<string>();
  (list as unknown[]).forEach((item, index) => {
    const path = `${base}[${index}]`;
    const entry = readEntry(item, path, errors, options?.source ?? DEFAULT_SOURCE, defaultDate);
    if (entry === undefined) return;
    const identity = `${entry.provider}\u0000${entry.model.toLowerCase()}`;
    if (seen.has(identity)) {
      errors.push(`${path}: duplicate of an earlier entry for ${entry.provider} ${entry.model}`);
      return;
    }
    seen.add(identity);
    entries.push(entry);
  });
  return { entries, errors };
}

function readEntry(
  item: unknown,
  path: string,
  errors: string[],
  defaultSource: string,
  defaultDate: string,
): PriceEntry | undefined {
  if (!isObject(item)) {
    errors.push(`${path}: expected an object, got ${describe(item)}`);
    return undefined;
  }
  const before = errors.length;
  const provider = item['provider'];
  const model = item['model'];
  if (typeof provider !== 'string' || provider.trim() === '') {
    errors.push(`${path}.provider: expected a non-empty string, got ${describe(provider)}`);
  }
  if (typeof model !== 'string' || model.trim() === '') {
    errors.push(`${path}.model: expected a non-empty string, got ${describe(model)}`);
  }
  const nested = item['prices'];
  let prices;
  if (nested !== undefined) {
    if (isObject(nested)) prices = readTokenPrices(nested, `${path}.prices`, errors);
    else errors.push(`${path}.prices: expected an object, got ${describe(nested)}`);
  } else {
    prices = readTokenPrices(item, path, errors);
  }
  const aliases = item['aliases'];
  if (
    aliases !== undefined &&
    !(Array.isArray(aliases) && aliases.every((a) => typeof a === 'string' && a !== ''))
  ) {
    errors.push(
      `${path}.aliases: expected an array of non-empty strings, got ${describe(aliases)}`,
    );
  }
  const source = item['source'] ?? defaultSource;
  if (typeof source !== 'string' || source.trim() === '') {
    errors.push(`${path}.source: expected a non-empty string, got ${describe(source)}`);
  }
  const date = item['date'] ?? defaultDate;
  if (!isIsoDate(date))
    errors.push(`${path}.date: expected a YYYY-MM-DD date, got ${describe(date)}`);
  const mode = item['mode'];
  if (mode !== undefined && mode !== 'chat' && mode !== 'embedding') {
    errors.push(`${path}.mode: expected "chat" or "embedding", got ${describe(mode)}`);
  }
  const notes = item['notes'];
  if (notes !== undefined && typeof notes !== 'string') {
    errors.push(`${path}.notes: expected a string, got ${describe(notes)}`);
  }
  if (errors.length > before || prices === undefined) return undefined;
  const entry: PriceEntry = {
    provider: normalizeProviderName(provider as string),
    model: (model as string).trim(),
    prices,
    source: source as string,
    date: date as string,
  };
  if (aliases !== undefined) entry.aliases = aliases as string[];
  if (mode !== undefined) entry.mode = mode as 'chat' | 'embedding';
  if (notes !== undefined) entry.notes = notes as string;
  return entry;
}

/**
 * The built-in catalog plus the overrides named by `env.MODELMAXX_PRICES` (a path to a JSON
 * file in the format of `parsePriceOverrides`). Never throws: an unreadable or malformed
 * file yields the built-in catalog (plus whatever entries were valid) and messages in
 * `errors`, which the caller logs.
 */
export function loadCatalog(options?: {
  env?: Record<string, string | undefined>;
  readFile?: (path: string) => string;
}): { catalog: PriceCatalog; errors: string[] } {
  const base = PriceCatalog.default();
  const env = options?.env ?? process.env;
  const path = env['MODELMAXX_PRICES']?.trim();
  if (path === undefined || path === '') return { catalog: base, errors: [] };
  const readFile = options?.readFile ?? ((file: string) => readFileSync(file, 'utf8'));
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    return {
      catalog: base,
      errors: [`MODELMAXX_PRICES: cannot read ${path}: ${messageOf(error)}`],
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return {
      catalog: base,
      errors: [`MODELMAXX_PRICES: ${path} is not valid JSON: ${messageOf(error)}`],
    };
  }
  try {
    const { entries, errors } = parsePriceOverrides(json, { source: `MODELMAXX_PRICES ${path}` });
    const catalog = entries.length > 0 ? base.withOverrides(entries) : base;
    return { catalog, errors: errors.map((error) => `MODELMAXX_PRICES ${path}: ${error}`) };
  } catch (error) {
    return { catalog: base, errors: [`MODELMAXX_PRICES: ${path}: ${messageOf(error)}`] };
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

let fromEnv: { catalog: PriceCatalog; errors: string[] } | undefined;

/**
 * The catalog every modelmaxx package prices with: the built-in one plus `process.env`'s
 * `MODELMAXX_PRICES` overrides (`loadCatalog`), loaded once per process, so the spans, the budgets,
 * the router's cost statistics and the shadow caps all use the same prices. `errors` says what was
 * wrong with the overrides (the caller reports them).
 */
export function catalogFromEnv(): { catalog: PriceCatalog; errors: string[] } {
  fromEnv ??= loadCatalog({ env: process.env });
  return fromEnv;
}

/** Reads `MODELMAXX_PRICES` again on the next `catalogFromEnv()` (tests, a changed file). */
export function resetCatalogFromEnv(): void {
  fromEnv = undefined;
}
