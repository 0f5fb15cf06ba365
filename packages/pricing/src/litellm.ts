import { normalizeProviderName } from './normalize.js';
import type { PriceEntry, TokenPrices } from './types.js';
import { describe, isObject, isPrice, todayUtc } from './validate.js';

const DEFAULT_SOURCE = 'LiteLLM model_prices_and_context_window.json';
const MODES: Readonly<Record<string, 'chat' | 'embedding'>> = {
  chat: 'chat',
  completion: 'chat',
  responses: 'chat',
  embedding: 'embedding',
};

/** Per-token USD → per-million USD, cleaned of binary noise (2.5e-6 → 2.5, not 2.4999999999999996). */
export function perMillion(perToken: number): number {
  return Number((perToken * 1_000_000).toPrecision(12));
}

/** True when `json` looks like LiteLLM's `model_prices_and_context_window.json`. */
export function isLiteLLMPrices(json: unknown): boolean {
  if (!isObject(json) || 'prices' in json) return false;
  if ('sample_spec' in json) return true;
  return Object.values(json).some(
    (value) =>
      isObject(value) &&
      ('litellm_provider' in value ||
        'input_cost_per_token' in value ||
        'output_cost_per_token' in value),
  );
}

/**
 * Reads a file in LiteLLM's `model_prices_and_context_window.json` format: an object from
 * model key to spec, with per-token USD prices `input_cost_per_token`,
 * `output_cost_per_token`, `cache_read_input_token_cost`, `cache_creation_input_token_cost`,
 * `output_cost_per_reasoning_token`, plus `litellm_provider` and `mode`.
 *
 * Prices become USD per million tokens. The provider is `normalizeProviderName(litellm_provider)`;
 * the model is the key without its leading `<provider>/` segment (`groq/llama-3.3-70b-versatile`
 * → `llama-3.3-70b-versatile`; `together_ai/meta-llama/X` → `meta-llama/X`). Only `chat`,
 * `completion`, `responses` and `embedding` modes are read (a missing mode counts as chat).
 * Skipped, with a reason each: `sample_spec`, other modes, entries without both an input and
 * an output price (an embedding needs only the input price), malformed prices, and keys that
 * repeat an earlier (provider, model) pair (e.g. `azure/gpt-4o` after `gpt-4o`, since Azure
 * OpenAI normalises to `openai`). Tiered prices (`…_above_200k_tokens`) are not read: the base
 * tier is used and noted in `notes`.
 */
export function parseLiteLLMPrices(
  json: unknown,
  options?: { source?: string; date?: string },
): { entries: PriceEntry[]; skipped: { key: string; reason: string }[] } {
  const entries: PriceEntry[] = [];
  const skipped: { key: string; reason: string }[] = [];
  if (!isObject(json)) {
    skipped.push({ key: '', reason: `expected an object of model specs, got ${describe(json)}` });
    return { entries, skipped };
  }
  const source = options?.source ?? DEFAULT_SOURCE;
  const date = options?.date ?? todayUtc();
  const seen = new Map<string, string>();
  for (const [key, spec] of Object.entries(json)) {
    const parsed = readSpec(key, spec);
    if (typeof parsed === 'string') {
      skipped.push({ key, reason: parsed });
      continue;
    }
    const { provider, model, prices, mode, notes } = parsed;
    const identity = `${provider}\u0000${model.toLowerCase()}`;
    const earlier = seen.get(identity);
    if (earlier !== undefined) {
      skipped.push({ key, reason: `same provider and model as ${earlier}` });
      continue;
    }
    seen.set(identity, key);
    const entry: PriceEntry = { provider, model, prices, source: `${source}#${key}`, date, mode };
    if (notes !== undefined) entry.notes = notes;
    entries.push(entry);
  }
  return { entries, skipped };
}

/** One LiteLLM spec read as a price entry's parts. */
interface ReadSpec {
  provider: string;
  model: string;
  mode: 'chat' | 'embedding';
  prices: TokenPrices;
  notes: string | undefined;
}

/** One spec of the file, or the reason it is skipped. */
function readSpec(key: string, spec: unknown): ReadSpec | string {
  if (key === 'sample_spec') return 'sample_spec documents the format; it is not a model';
  if (!isObject(spec)) return `expected an object, got ${describe(spec)}`;
  const modeValue = spec['mode'] ?? 'chat';
  const mode = typeof modeValue === 'string' ? MODES[modeValue] : undefined;
  if (mode === undefined) return `mode ${describe(modeValue)} is not priced per token here`;
  const rawProvider = spec['litellm_provider'];
  if (typeof rawProvider !== 'string' || rawProvider.trim() === '') {
    return `litellm_provider: expected a string, got ${describe(rawProvider)}`;
  }
  // Tiered entries (`tiered_pricing: [{ range: [0, N], input_cost_per_token, … }, …]`) have no
  // top-level price: read the first tier, like the base tier of `…_above_200k_tokens` prices.
  const firstTier = readFirstTier(spec['tiered_pricing']);
  const priced =
    spec['input_cost_per_token'] === undefined && firstTier !== undefined ? firstTier.tier : spec;
  const prices = readPrices(priced, mode);
  if (typeof prices === 'string') return prices;
  const provider = normalizeProviderName(rawProvider);
  const model = stripProviderSegment(key, rawProvider, provider);
  const tiers = Object.keys(spec).filter((field) => /_above_\d+k?_tokens$/.test(field));
  let notes: string | undefined;
  if (priced !== spec && firstTier !== undefined) {
    notes = `first tier of tiered_pricing (prompts up to ${firstTier.upTo} tokens)`;
  } else if (tiers.length > 0) notes = `base tier; not read: ${tiers.join(', ')}`;
  return { provider, model, mode, prices, notes };
}

const OPTIONAL_PRICES = [
  ['cache_read_input_token_cost', 'cacheRead'],
  ['cache_creation_input_token_cost', 'cacheWrite'],
  ['output_cost_per_reasoning_token', 'reasoning'],
] as const;

/** The per-million prices of a spec (or its first tier), or the reason they are malformed. */
function readPrices(
  priced: Record<string, unknown>,
  mode: 'chat' | 'embedding',
): TokenPrices | string {
  const inputCost = priced['input_cost_per_token'];
  const outputCost = priced['output_cost_per_token'] ?? (mode === 'embedding' ? 0 : undefined);
  if (!isPrice(inputCost)) {
    return `input_cost_per_token: expected a non-negative number, got ${describe(inputCost)}`;
  }
  if (!isPrice(outputCost)) {
    return `output_cost_per_token: expected a non-negative number, got ${describe(outputCost)}`;
  }
  const prices: TokenPrices = { input: perMillion(inputCost), output: perMillion(outputCost) };
  for (const [field, target] of OPTIONAL_PRICES) {
    const value = priced[field];
    if (value === undefined || value === null) continue;
    if (!isPrice(value)) return `${field}: expected a non-negative number, got ${describe(value)}`;
    prices[target] = perMillion(value);
  }
  return prices;
}

function readFirstTier(
  value: unknown,
): { tier: Record<string, unknown>; upTo: string } | undefined {
  if (!Array.isArray(value)) return undefined;
  const tier: unknown = value[0];
  if (!isObject(tier)) return undefined;
  const range = tier['range'];
  if (!Array.isArray(range) || range[0] !== 0 || typeof range[1] !== 'number') return undefined;
  return { tier, upTo: String(range[1]) };
}

function stripProviderSegment(key: string, rawProvider: string, provider: string): string {
  const slash = key.indexOf('/');
  if (slash <= 0) return key;
  const first = key.slice(0, slash);
  const lower = first.toLowerCase();
  if (lower === rawProvider.toLowerCase() || normalizeProviderName(lower) === provider) {
    return key.slice(slash + 1);
  }
  return key;
}
