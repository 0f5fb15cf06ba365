import type { Directives } from './directives.js';
import type { GenerationRequest } from './engine.js';
import type { PrefixCache } from './prefix-cache.js';
import type { SimJudgeConfig } from './judge.js';
import type { SseFrame } from './http-util.js';
import type { SimModelConfig } from './models.js';

/** What a provider handler gets for one generation request. */
export interface CallContext {
  model: SimModelConfig;
  seed: number;
  /** Unique, deterministic salt for ids of this request (seed + request number). */
  salt: string;
  directives: Directives;
  cache: PrefixCache;
  /** How judge prompts are answered. */
  judge: SimJudgeConfig;
  /** Unix seconds. */
  created: number;
}

/** What a provider handler returns: a JSON body, an SSE stream, or an error in the provider's shape. */
export type CallResult =
  | { kind: 'json'; body: unknown; outputTokens: number; graded?: Graded }
  | { kind: 'sse'; frames: SseFrame[]; graded?: Graded }
  | { kind: 'error'; status: number; message: string; param?: string | null; code?: string | null };

/** How many answers to recognised tasks were right or wrong in one response. */
export interface Graded {
  correct: number;
  wrong: number;
}

/** The parts of a generation request that come from the call, not from the provider's body. */
export function callFields(
  context: CallContext,
): Pick<GenerationRequest, 'model' | 'seed' | 'requestSalt' | 'directives' | 'judge'> {
  const { model, seed, salt, directives, judge } = context;
  return { model, seed, requestSalt: salt, directives, judge };
}

export function gradeOf(choices: readonly { correct: boolean | undefined }[]): Graded {
  let correct = 0;
  let wrong = 0;
  for (const choice of choices) {
    if (choice.correct === true) correct++;
    else if (choice.correct === false) wrong++;
  }
  return { correct, wrong };
}

export function invalid(
  message: string,
  param: string | null = null,
  code: string | null = null,
): CallResult {
  return { kind: 'error', status: 400, message, param, code };
}

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
