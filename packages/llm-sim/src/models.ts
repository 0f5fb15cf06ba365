import type { TaskDifficulty, TaskKind } from './tasks.js';

/** Latency profile: lognormal time to first token and per output token, in ms (medians). */
export interface SimLatency {
  /** Median time to first token (or to the whole response when not streaming, plus tokens). */
  ttftMs: number;
  /** Median time per output token. */
  perTokenMs: number;
  /** Lognormal sigma applied to both (0 = no jitter). */
  sigma: number;
}

/** Failure profile: probabilities per request (0..1), applied only when the sim's `failureScale` > 0. */
export interface SimFailure {
  rate429: number;
  rate500: number;
  rateTimeout: number;
  /** `retry-after` seconds sent with 429s. */
  retryAfterSeconds: number;
}

/** Probability of a correct answer per task kind and difficulty. */
export type SimQuality = Record<TaskKind, Record<TaskDifficulty, number>>;

export interface SimPrice {
  /** USD per million input tokens. */
  inputPerMTok: number;
  /** USD per million output tokens. */
  outputPerMTok: number;
  /** USD per million cached (cache-read) input tokens. */
  cachedInputPerMTok?: number;
  /** USD per million cache-write input tokens (Anthropic). */
  cacheWritePerMTok?: number;
}

export interface SimModelConfig {
  /** The model name clients request, e.g. `gpt-4o-mini`. */
  name: string;
  /** Provider as in `gen_ai.provider.name` (`openai`, `anthropic`, `groq`). */
  provider: string;
  /** The model reported back (a dated snapshot, like the real APIs); defaults to `name`. */
  responseModel?: string;
  kind: 'chat' | 'embedding';
  latency: SimLatency;
  failure: SimFailure;
  quality: SimQuality;
  /** Reasoning-style model: reasoning tokens per answer (counted in output tokens). */
  reasoningTokens?: { easy: number; hard: number; other: number };
  /** Prompt caching: prompts of at least `minTokens` are cached in `blockTokens` increments. */
  cache: { minTokens: number; blockTokens: number };
  /** Embedding dimensions (embedding models). */
  dimensions?: number;
  /** Context window and the largest output it allows (for `GET /v1/models` and validation). */
  contextWindow: number;
  maxOutputTokens: number;
  /** Informational list price (the sim never charges); matches the public price lists. */
  price: SimPrice;
}

/** A deep-partial patch for `LlmSim.setModel`. */
export interface SimModelPatch {
  provider?: string;
  responseModel?: string;
  dimensions?: number;
  latency?: Partial<SimLatency>;
  failure?: Partial<SimFailure>;
  quality?: Partial<Record<TaskKind, Partial<Record<TaskDifficulty, number>>>>;
  reasoningTokens?: { easy: number; hard: number; other: number } | undefined;
  cache?: Partial<SimModelConfig['cache']>;
  contextWindow?: number;
  maxOutputTokens?: number;
  price?: SimPrice;
}

const NO_FAILURE: SimFailure = { rate429: 0, rate500: 0, rateTimeout: 0, retryAfterSeconds: 1 };

function quality(
  arithmetic: [number, number],
  reverse: [number, number],
  count: [number, number],
  json: [number, number],
): SimQuality {
  return {
    arithmetic: { easy: arithmetic[0], hard: arithmetic[1] },
    reverse: { easy: reverse[0], hard: reverse[1] },
    count: { easy: count[0], hard: count[1] },
    json: { easy: json[0], hard: json[1] },
  };
}

/**
 * The default models: three price/quality tiers across OpenAI, Anthropic and an open model on Groq,
 * with the public list prices as of 2025 (the sim itself never charges).
 */
export const DEFAULT_SIM_MODELS: SimModelConfig[] = [
  {
    name: 'gpt-4o',
    provider: 'openai',
    responseModel: 'gpt-4o-2024-08-06',
    kind: 'chat',
    latency: { ttftMs: 450, perTokenMs: 12, sigma: 0.35 },
    failure: { rate429: 0.02, rate500: 0.005, rateTimeout: 0.002, retryAfterSeconds: 1 },
    quality: quality([0.98, 0.86], [0.9, 0.62], [0.92, 0.7], [0.99, 0.95]),
    cache: { minTokens: 1024, blockTokens: 128 },
    contextWindow: 128_000,
    maxOutputTokens: 16_384,
    price: { inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: 1.25 },
  },
  {
    name: 'gpt-4o-mini',
    provider: 'openai',
    responseModel: 'gpt-4o-mini-2024-07-18',
    kind: 'chat',
    latency: { ttftMs: 350, perTokenMs: 8, sigma: 0.35 },
    failure: { rate429: 0.02, rate500: 0.005, rateTimeout: 0.002, retryAfterSeconds: 1 },
    quality: quality([0.95, 0.6], [0.8, 0.4], [0.85, 0.5], [0.97, 0.85]),
    cache: { minTokens: 1024, blockTokens: 128 },
    contextWindow: 128_000,
    maxOutputTokens: 16_384,
    price: { inputPerMTok: 0.15, outputPerMTok: 0.6, cachedInputPerMTok: 0.075 },
  },
  {
    name: 'o3-mini',
    provider: 'openai',
    responseModel: 'o3-mini-2025-01-31',
    kind: 'chat',
    latency: { ttftMs: 1200, perTokenMs: 7, sigma: 0.4 },
    failure: { rate429: 0.02, rate500: 0.005, rateTimeout: 0.004, retryAfterSeconds: 2 },
    quality: quality([0.99, 0.96], [0.97, 0.9], [0.98, 0.93], [0.98, 0.94]),
    reasoningTokens: { easy: 128, hard: 640, other: 192 },
    cache: { minTokens: 1024, blockTokens: 128 },
    contextWindow: 200_000,
    maxOutputTokens: 100_000,
    price: { inputPerMTok: 1.1, outputPerMTok: 4.4, cachedInputPerMTok: 0.55 },
  },
  {
    name: 'claude-sonnet-4-5',
    provider: 'anthropic',
    responseModel: 'claude-sonnet-4-5-20250929',
    kind: 'chat',
    latency: { ttftMs: 700, perTokenMs: 14, sigma: 0.35 },
    failure: { rate429: 0.02, rate500: 0.005, rateTimeout: 0.002, retryAfterSeconds: 1 },
    quality: quality([0.99, 0.9], [0.94, 0.75], [0.95, 0.8], [0.99, 0.97]),
    cache: { minTokens: 1024, blockTokens: 1 },
    contextWindow: 200_000,
    maxOutputTokens: 64_000,
    price: { inputPerMTok: 3, outputPerMTok: 15, cachedInputPerMTok: 0.3, cacheWritePerMTok: 3.75 },
  },
  {
    name: 'claude-haiku-4-5',
    provider: 'anthropic',
    responseModel: 'claude-haiku-4-5-20251001',
    kind: 'chat',
    latency: { ttftMs: 380, perTokenMs: 6, sigma: 0.35 },
    failure: { rate429: 0.02, rate500: 0.005, rateTimeout: 0.002, retryAfterSeconds: 1 },
    quality: quality([0.96, 0.72], [0.85, 0.5], [0.88, 0.58], [0.98, 0.9]),
    cache: { minTokens: 1024, blockTokens: 1 },
    contextWindow: 200_000,
    maxOutputTokens: 64_000,
    price: { inputPerMTok: 1, outputPerMTok: 5, cachedInputPerMTok: 0.1, cacheWritePerMTok: 1.25 },
  },
  {
    name: 'llama-3.1-8b-instant',
    provider: 'groq',
    kind: 'chat',
    latency: { ttftMs: 120, perTokenMs: 2, sigma: 0.3 },
    failure: { rate429: 0.05, rate500: 0.01, rateTimeout: 0.003, retryAfterSeconds: 2 },
    quality: quality([0.85, 0.3], [0.55, 0.15], [0.6, 0.2], [0.85, 0.55]),
    cache: { minTokens: 1024, blockTokens: 128 },
    contextWindow: 131_072,
    maxOutputTokens: 8192,
    price: { inputPerMTok: 0.05, outputPerMTok: 0.08 },
  },
  {
    name: 'text-embedding-3-small',
    provider: 'openai',
    kind: 'embedding',
    latency: { ttftMs: 60, perTokenMs: 0, sigma: 0.3 },
    failure: { ...NO_FAILURE, rate429: 0.01, rate500: 0.002 },
    quality: quality([0, 0], [0, 0], [0, 0], [0, 0]),
    cache: { minTokens: Number.POSITIVE_INFINITY, blockTokens: 1 },
    dimensions: 1536,
    contextWindow: 8191,
    maxOutputTokens: 0,
    price: { inputPerMTok: 0.02, outputPerMTok: 0 },
  },
];

/** Public view of a model (what `LlmSim.models()` returns). */
export type SimModel = Readonly<SimModelConfig>;

export function cloneModel(config: SimModelConfig): SimModelConfig {
  return structuredClone(config);
}

export function applyPatch(config: SimModelConfig, patch: SimModelPatch): SimModelConfig {
  const next = cloneModel(config);
  if (patch.provider !== undefined) next.provider = patch.provider;
  if (patch.responseModel !== undefined) next.responseModel = patch.responseModel;
  if (patch.dimensions !== undefined) next.dimensions = patch.dimensions;
  if (patch.latency) Object.assign(next.latency, patch.latency);
  if (patch.failure) Object.assign(next.failure, patch.failure);
  if (patch.quality) {
    for (const [kind, levels] of Object.entries(patch.quality)) {
      if (levels) Object.assign(next.quality[kind as TaskKind], levels);
    }
  }
  if ('reasoningTokens' in patch) {
    if (patch.reasoningTokens) next.reasoningTokens = { ...patch.reasoningTokens };
    else delete next.reasoningTokens;
  }
  if (patch.cache) Object.assign(next.cache, patch.cache);
  if (patch.contextWindow !== undefined) next.contextWindow = patch.contextWindow;
  if (patch.maxOutputTokens !== undefined) next.maxOutputTokens = patch.maxOutputTokens;
  if (patch.price) next.price = { ...patch.price };
  return next;
}
