import type { TracerProvider } from '@opentelemetry/api';
import type { PriceCatalog } from '@modelmaxx/pricing';
import type { JudgeMode } from './judge-prompt.js';
import type { Evaluator, EvaluatorCall } from './types.js';

export type { JudgeMode } from './judge-prompt.js';

/** Which calls a judge looks at: a share of them, per task or feature where given. */
export interface JudgeSample {
  /** Share of calls judged, 0..1 (default 1). */
  rate?: number;
  /** Share per `modelmaxx.task`; wins over `byFeature` and `rate`. */
  byTask?: Record<string, number>;
  /** Share per `modelmaxx.feature`; wins over `rate`. */
  byFeature?: Record<string, number>;
}

export interface JudgeOptions {
  /**
   * The judge's client: an `openai` (chat completions) or `@anthropic-ai/sdk` (messages) client.
   * Instrument it (`observe()`, or `register`) and its calls become spans priced like any other,
   * marked `modelmaxx.evaluation.role = judge`.
   */
  client: unknown;
  /** The judge model, e.g. `gpt-4o-mini`. */
  model: string;
  /** The evaluation name of the results (default `modelmaxx.judge`, pairwise `modelmaxx.judge.pairwise`). */
  name?: string;
  /** What a good answer is. Default: correct, complete and responsive to the question. */
  rubric?: string;
  /**
   * Pairwise judging: the reference answer for a call (from a dataset, a stored answer of the
   * reference model, ...). With it, the judge compares the call's answer to it: win (1), tie
   * (0.5) or loss (0). A call it returns `undefined` for is not judged.
   */
  reference?: (call: EvaluatorCall) => string | undefined | Promise<string | undefined>;
  /** Which calls are judged (default: all of them). */
  sample?: JudgeSample;
  /** Spend cap of the judge's calls per rolling hour / day, in USD (`costOf` on their usage). */
  maxUsdPerHour?: number;
  maxUsdPerDay?: number;
  /** Calls waiting for the judge; more are dropped and counted (default 100). */
  queueSize?: number;
  /** Judge calls in flight at once (default 2). */
  concurrency?: number;
  /** Timeout of one judge call in ms (default 30,000). */
  timeoutMs?: number;
  /** Ask for structured output (OpenAI `json_schema`, Anthropic a forced tool); default true. */
  structuredOutput?: boolean;
  /** Anthropic `max_tokens` / OpenAI `max_completion_tokens` of a judge reply (default 512). */
  maxTokens?: number;
  /** Characters of the question, answer and reference put in the prompt, each (default 8,000). */
  maxInputChars?: number;
  /**
   * Pairwise: where the call's answer is shown. `random` (default) puts it first or second with
   * equal odds, so that a judge's position bias averages out; the result says which it was.
   */
  order?: 'random' | 'answer-first' | 'answer-second';
  /** Tracer provider of the result spans when the evaluated call's is unknown (default: global). */
  tracerProvider?: TracerProvider;
  /** Price catalog for the spend cap (default: the built-in one). */
  catalog?: PriceCatalog;
  /** Random numbers in [0, 1) for sampling and order (default `Math.random`). */
  random?: () => number;
  /** Clock in ms for the spend windows (default `Date.now`). */
  now?: () => number;
}

/** What a judge did so far. */
export interface JudgeStats {
  /** Calls the judge was offered (successful LLM calls of clients it is configured on). */
  offered: number;
  /** Calls left out by the sample rate. */
  notSampled: number;
  /** Calls sampled but dropped because the queue was full. */
  dropped: number;
  /** Calls sampled but not judged because the spend cap was reached. */
  overBudget: number;
  /** Calls not judged for want of input (no question or answer text, no reference answer). */
  skipped: number;
  /** Judge calls made. */
  judgeCalls: number;
  /** Scores recorded. */
  scored: number;
  /** Judge calls that failed (HTTP error, timeout): recorded as judge errors, not scores. */
  callErrors: number;
  /** Judge replies that did not parse as a verdict: recorded as judge errors, not scores. */
  parseErrors: number;
  /** USD spent on judge calls (priced with `costOf`). */
  spentUsd: number;
  /** Judge calls whose cost is unknown (no price for the model, or no usage): not in `spentUsd`. */
  unpricedCalls: number;
  /** Waiting and running now. */
  queued: number;
  running: number;
}

/** An evaluator that judges calls with an LLM, off the response path. */
export interface JudgeEvaluator extends Evaluator {
  readonly evaluationName: string;
  readonly mode: JudgeMode;
  stats(): JudgeStats;
  /** Resolves when nothing is queued or running (tests, graceful shutdown). */
  idle(): Promise<void>;
}
