import { BUILTIN_PRICES } from './builtin-prices.js';
import { normalizeModelName, normalizeProviderName } from './normalize.js';
import type { PriceEntry } from './types.js';

type KeyIndex = Map<string, PriceEntry[]>;

function addToIndex(index: KeyIndex, key: string, entry: PriceEntry): void {
  const list = index.get(key);
  if (list === undefined) index.set(key, [entry]);
  else if (!list.includes(entry)) list.push(entry);
}

/** Lower-cased model id and aliases of an entry: the keys an exact lookup matches. */
export function exactKeys(entry: PriceEntry): string[] {
  const keys = [entry.model, ...(entry.aliases ?? [])].map((name) => name.trim().toLowerCase());
  return [...new Set(keys)];
}

/** The exact keys a model id can match: itself, then without each leading path segment. */
function exactCandidates(model: string): string[] {
  const lower = model.trim().toLowerCase();
  const candidates = [lower];
  let rest = lower;
  for (let slash = rest.indexOf('/'); slash >= 0; slash = rest.indexOf('/')) {
    rest = rest.slice(slash + 1);
    candidates.push(rest);
  }
  return candidates;
}

function latestDate(entries: readonly PriceEntry[]): string {
  let latest = '';
  for (const entry of entries) if (entry.date > latest) latest = entry.date;
  return latest === '' ? 'empty' : latest;
}

let defaultCatalog: PriceCatalog | undefined;

/** Distinct (provider, model) pairs remembered per catalog before the memo starts over. */
const MEMO_LIMIT = 4096;

/**
 * An immutable set of price entries with model matching. See `lookup` for the rules.
 */
export class PriceCatalog {
  /** The latest `date` among the entries unless given, e.g. `2025-11-24`. */
  readonly version: string;
  readonly #entries: readonly PriceEntry[];
  readonly #exact: KeyIndex = new Map();
  readonly #normalized: KeyIndex = new Map();
  readonly #providers: ReadonlySet<string>;
  /** Lookups by provider, then model id (no key string is built per lookup); `null` = not found. */
  readonly #memo = new Map<string, Map<string, PriceEntry | null>>();
  #memoSize = 0;

  constructor(entries: PriceEntry[], options?: { version?: string }) {
    this.#entries = Object.freeze([...entries]);
    this.version = options?.version ?? latestDate(entries);
    for (const entry of this.#entries) {
      for (const key of exactKeys(entry)) addToIndex(this.#exact, key, entry);
    }
    // An entry's normalised key never shadows another entry whose own name is that key
    // (`gpt-4o-2024-05-13` normalises to `gpt-4o`, but `gpt-4o` itself wins).
    for (const entry of this.#entries) {
      for (const key of exactKeys(entry)) {
        const normalized = normalizeModelName(key);
        const owners = this.#exact.get(normalized)?.filter((other) => other !== entry) ?? [];
        const sameProviderOwner = owners.some((other) => other.provider === entry.provider);
        if (!sameProviderOwner) addToIndex(this.#normalized, normalized, entry);
      }
    }
    this.#providers = new Set(this.#entries.map((entry) => entry.provider));
  }

  /** The built-in catalog (`BUILTIN_PRICES`), created once. */
  static default(): PriceCatalog {
    defaultCatalog ??= new PriceCatalog([...BUILTIN_PRICES]);
    return defaultCatalog;
  }

  entries(): readonly PriceEntry[] {
    return this.#entries;
  }

  /**
   * Finds the price entry for a model.
   *
   * Candidate keys, most specific first: the lower-cased id as given; the id without each
   * leading path segment (`together_ai/meta-llama/X` → `meta-llama/x` → `x`); then
   * `normalizeModelName(model)` against the normalised ids of the entries (dated snapshots,
   * `-latest`, `@version`, Bedrock prefixes and revisions). There is no prefix or fuzzy
   * matching, so `gpt-4o-mini` never matches `gpt-4o`, and an unknown model gives `undefined`.
   *
   * Provider: among the entries found under any candidate key, an entry of the requested
   * provider (`normalizeProviderName(provider)`) wins, then one of the provider named by
   * the model's first path segment (`groq/…`); otherwise the first entry found (the
   * catalog lists the model's own vendor first), so a missing, misspelt or reselling
   * provider (Azure, Bedrock, Vertex) still gets the list price of the model.
   */
  lookup(provider: string | undefined, model: string): PriceEntry | undefined {
    // Lookups are pure for an immutable catalog, and apps call few distinct models: memoise.
    const providerKey = provider ?? '';
    let byModel = this.#memo.get(providerKey);
    const memo = byModel?.get(model);
    if (memo !== undefined) return memo === null ? undefined : memo;
    const entry = this.#resolve(provider, model);
    if (this.#memoSize >= MEMO_LIMIT) {
      this.#memo.clear();
      this.#memoSize = 0;
      byModel = undefined;
    }
    if (byModel === undefined) {
      byModel = new Map();
      this.#memo.set(providerKey, byModel);
    }
    byModel.set(model, entry ?? null);
    this.#memoSize += 1;
    return entry;
  }

  #resolve(provider: string | undefined, model: string): PriceEntry | undefined {
    const found: PriceEntry[] = [];
    for (const key of exactCandidates(model)) {
      for (const entry of this.#exact.get(key) ?? []) if (!found.includes(entry)) found.push(entry);
    }
    for (const entry of this.#normalized.get(normalizeModelName(model)) ?? []) {
      if (!found.includes(entry)) found.push(entry);
    }
    if (found.length === 0) return undefined;
    const hints: string[] = [];
    if (provider !== undefined && provider.trim() !== '')
      hints.push(normalizeProviderName(provider));
    const slash = model.indexOf('/');
    if (slash > 0) hints.push(normalizeProviderName(model.slice(0, slash)));
    for (const hint of hints) {
      if (!this.#providers.has(hint)) continue;
      const match = found.find((entry) => entry.provider === hint);
      if (match !== undefined) return match;
    }
    return found[0];
  }

  /**
   * A new catalog in which `overrides` replace entries of the same provider and model id
   * (case-insensitive) and take precedence in every lookup. Its version is
   * `<this version>+<latest override date>` (e.g. `2026-10-07+2026-01-15`) unless given, so a
   * span priced with overrides says so in `modelmaxx.pricing.version`.
   */
  withOverrides(overrides: PriceEntry[], options?: { version?: string }): PriceCatalog {
    if (overrides.length === 0 && options?.version === undefined) return this;
    const identity = (entry: PriceEntry): string =>
      `${entry.provider}\u0000${entry.model.toLowerCase()}`;
    const replaced = new Set(overrides.map(identity));
    const kept = this.#entries.filter((entry) => !replaced.has(identity(entry)));
    const version = options?.version ?? `${this.version}+${latestDate(overrides)}`;
    return new PriceCatalog([...overrides, ...kept], { version });
  }
}
