import { PrefixCache } from './prefix-cache.js';
import type { SimModel, SimModelConfig, SimModelPatch } from './models.js';
import { applyPatch, cloneModel } from './models.js';
import { Random, hashParts } from './random.js';

/** Per-model counters. */
export interface SimModelStats {
  requests: number;
  errors: number;
  /** Answers to recognised tasks that were right / wrong. */
  correct: number;
  wrong: number;
}

/** One simulated model and what the server keeps for it between requests. */
export interface ModelState {
  config: SimModelConfig;
  /** Failure rates were set with setModel: they apply as given, whatever `failureScale` says. */
  failureExplicit: boolean;
  /** Latency was set with setModel: it applies as given (scale 1), whatever `latencyScale` says. */
  latencyExplicit: boolean;
  random: Random;
  cache: PrefixCache;
  stats: SimModelStats;
}

/** The simulated models by name, and by the name they answer with (`responseModel`). */
export class ModelRegistry {
  private readonly models = new Map<string, ModelState>();
  private readonly aliases = new Map<string, string>();

  private readonly seed: number;

  constructor(seed: number) {
    this.seed = seed;
  }

  /** Adds (or replaces) a model. */
  add(config: SimModelConfig): void {
    const copy = cloneModel(config);
    this.models.set(copy.name, {
      config: copy,
      failureExplicit: false,
      latencyExplicit: false,
      random: new Random(hashParts('model', this.seed, copy.name)),
      cache: new PrefixCache(),
      stats: { requests: 0, errors: 0, correct: 0, wrong: 0 },
    });
    this.noteAlias(copy);
  }

  /** The model called `name` or answering as `name`. */
  lookup(name: string): ModelState | undefined {
    const direct = this.models.get(name);
    if (direct) return direct;
    const alias = this.aliases.get(name);
    return alias === undefined ? undefined : this.models.get(alias);
  }

  /** Changes a model; failure rates and latency set here apply as given from then on. */
  patch(name: string, patch: SimModelPatch): void {
    const state = this.lookup(name);
    if (!state) throw new RangeError(`llm-sim: unknown model ${name}`);
    state.config = applyPatch(state.config, patch);
    if (patch.failure) state.failureExplicit = true;
    if (patch.latency) state.latencyExplicit = true;
    this.noteAlias(state.config);
  }

  configs(): SimModelConfig[] {
    return [...this.models.values()].map((state) => state.config);
  }

  /** Copies of the models, safe to hand out. */
  snapshot(): SimModel[] {
    return this.configs().map(cloneModel);
  }

  stats(): Record<string, SimModelStats> {
    const out: Record<string, SimModelStats> = {};
    for (const [name, state] of this.models) out[name] = { ...state.stats };
    return out;
  }

  private noteAlias(config: SimModelConfig): void {
    if (config.responseModel && config.responseModel !== config.name)
      this.aliases.set(config.responseModel, config.name);
  }
}
