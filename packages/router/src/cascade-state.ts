/** The cascade planner's per-class counters (plain numbers, updated by `observe`). */
import type { CascadePlan } from './cascade.js';

interface ModelCounters {
  calls: number;
  score: number;
  cost: number;
}

interface AnswerCounters {
  agreed: number;
  score: number;
  bestSeen: number;
  bestScore: number;
}

export interface ClassState {
  readonly models: ModelCounters[];
  /** Pair counters, index `a * n + b` with a < b. */
  readonly pairCalls: Float64Array;
  readonly pairAgree: Float64Array;
  readonly pairAgreeScore: Float64Array;
  readonly pairDisagreeBest: Float64Array;
  readonly pairDisagreeBestScore: Float64Array;
  /** Per pair, per agreed answer: agreements, their score, and the best model's score when seen. */
  readonly pairAnswers: Map<number, Map<string, AnswerCounters>>;
  /** Third-voter counters, index `(a * n + b) * n + c`, over prompts where a and b disagreed. */
  readonly tripleCalls: Float64Array;
  readonly tripleMatch: Float64Array;
  readonly tripleMatchScore: Float64Array;
  readonly tripleNoMatchBest: Float64Array;
  readonly tripleNoMatchBestScore: Float64Array;
  probes: number;
  cached: CascadePlan | undefined;
  sinceRecompute: number;
}

/** Empty counters for a class over `count` candidates. */
export function newClassState(count: number): ClassState {
  const size = count * count;
  return {
    models: Array.from({ length: count }, () => ({ calls: 0, score: 0, cost: 0 })),
    pairCalls: new Float64Array(size),
    pairAgree: new Float64Array(size),
    pairAgreeScore: new Float64Array(size),
    pairDisagreeBest: new Float64Array(size),
    pairDisagreeBestScore: new Float64Array(size),
    pairAnswers: new Map(),
    tripleCalls: new Float64Array(size * count),
    tripleMatch: new Float64Array(size * count),
    tripleMatchScore: new Float64Array(size * count),
    tripleNoMatchBest: new Float64Array(size * count),
    tripleNoMatchBestScore: new Float64Array(size * count),
    probes: 0,
    cached: undefined,
    sinceRecompute: 0,
  };
}
