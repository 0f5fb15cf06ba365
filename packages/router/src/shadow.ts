/**
 * Shadow comparisons: for a sample of the requests a policy sends to a model other than its
 * reference, the routed client also calls the reference model after the app has its answer,
 * asks a pairwise judge which answer is better, records the verdict on the routed call and
 * lets the engine learn from it. This module holds the parts that do not touch the SDKs:
 * the sequential stop rule per class and model (`ShadowMonitor`), the spend windows, the
 * bounded off-path queue (`ShadowQueue`), and a pairwise judge over an openai-shaped client
 * that speaks the judge prompt contract of `@modelmaxx/instrument` (`modelmaxx-judge/v1`).
 */
import {
  DEFAULT_JUDGE_RUBRIC,
  JUDGE_PROMPT_MARKER,
  judgePromptSection,
  PAIRWISE_VERDICT_SCHEMA,
} from '@modelmaxx/semconv';
import type { Policy } from './policy.js';
import type { RandomSource } from './random.js';
import { hasNeymanShare, interval95, totalHalfWidth } from './shadow-allocation.js';
import { catalogPrice } from './spend.js';

/** What a pairwise judge is asked: the routed call's answer against the reference's. */
export interface ShadowPair {
  /** The request's last user turn. */
  readonly question: string;
  /** The routed (cheaper) model's answer. */
  readonly answer: string;
  /** The reference model's answer to the same request. */
  readonly reference: string;
  readonly model: string;
  readonly referenceModel: string;
  readonly classKey: string;
  readonly policy: string;
}

/**
 * A judge's verdict on the routed answer: `score` 1 (better than the reference), 0.5 (as
 * good), 0 (worse); `label` `win` | `tie` | `loss`. `costUsd`: what judging cost (counted
 * against the shadow spend cap). Throw, or return `undefined`, when there is no verdict: it is
 * recorded as a judge error, never as a score.
 */
export interface ShadowVerdict {
  readonly score: number;
  readonly label: string;
  readonly explanation?: string;
  readonly costUsd?: number;
}

export type PairwiseJudge = (pair: ShadowPair) => Promise<ShadowVerdict | undefined>;

/** The default reference model: the given one, else the dearest candidate (catalog price, `MODELMAXX_PRICES` included). */
export function referenceModelOf(policy: Policy): string {
  if (policy.shadow.referenceModel !== undefined) return policy.shadow.referenceModel;
  let best = policy.candidates[policy.candidates.length - 1]!.model;
  let bestPrice = -Infinity;
  for (const candidate of policy.candidates) {
    let price: number | undefined;
    if (candidate.price !== undefined) {
      price = candidate.price.inputPerMillion + candidate.price.outputPerMillion;
    } else {
      price =
        catalogPrice(candidate.provider, candidate.model, 1e6, 1e6) ??
        candidate.priorCostPerCallUsd;
    }
    if (price !== undefined && price > bestPrice) {
      bestPrice = price;
      best = candidate.model;
    }
  }
  return best;
}

export { interval95 } from './shadow-allocation.js';

export interface ShadowEstimate {
  readonly classKey: string;
  readonly model: string;
  /** Shadows that produced a verdict (since the last reset). */
  readonly samples: number;
  /** Quality difference routed − reference (from the verdicts: 2 × score − 1). */
  readonly difference: number;
  readonly halfWidth: number;
  /** `sampling` until tight enough, then `stopped` (monitor rate only) until drift. */
  readonly state: 'sampling' | 'stopped';
  /** Times sampling resumed because the monitored difference moved out of the interval. */
  readonly drifts: number;
}

interface MonitorState {
  /** Eligible routed calls of the class and model seen (the cell's traffic weight). */
  calls: number;
  n: number;
  mean: number;
  m2: number;
  stopped: boolean;
  stoppedMean: number;
  stoppedHalfWidth: number;
  stoppedSd: number;
  window: number[];
  drifts: number;
}

/**
 * The sequential rule per class and routed model. While sampling, each eligible call is
 * shadowed with `sampleRate`; once `minSamples` verdicts give a 95% half-width of the
 * difference under `targetHalfWidth`, sampling stops (calls are then shadowed with
 * `monitorRate` only). The monitoring verdicts fill a window of `driftWindow`; when the
 * window is full and its mean lies outside the stopped interval widened by the window's 95%
 * half-width (from the larger of its own and the stopped estimate's standard deviation), the
 * estimate restarts from the window and sampling resumes (drift). With `allocation: 'total'`
 * the target is the half-width of the policy's traffic-weighted difference instead, and a
 * class and model stops once it has its Neyman share of the verdicts (`shadow-allocation.ts`).
 */
export class ShadowMonitor {
  private readonly states = new Map<string, MonitorState>();
  private readonly shadow: Policy['shadow'];
  /** Eligible routed calls of the policy, whatever answered them. */
  private calls = 0;
  constructor(policy: Policy) {
    this.shadow = policy.shadow;
  }

  private state(classKey: string, model: string): MonitorState {
    const key = `${classKey}\u0000${model}`;
    let state = this.states.get(key);
    if (state === undefined) {
      state = {
        calls: 0,
        n: 0,
        mean: 0,
        m2: 0,
        stopped: false,
        stoppedMean: 0,
        stoppedHalfWidth: 0,
        stoppedSd: 0,
        window: [],
        drifts: 0,
      };
      this.states.set(key, state);
    }
    return state;
  }

  /**
   * An eligible routed call of the class answered by `model`, or by the reference (`undefined`):
   * the traffic weights of `allocation: 'total'`.
   */
  observe(classKey: string, model: string | undefined): void {
    this.calls += 1;
    if (model !== undefined) this.state(classKey, model).calls += 1;
  }

  /** The share of eligible calls of this class and model to shadow now. */
  rate(classKey: string, model: string): number {
    const state = this.states.get(`${classKey}\u0000${model}`);
    if (state !== undefined && this.shadow.allocation === 'total') this.allocate(state);
    return state?.stopped === true ? this.shadow.monitorRate : this.shadow.sampleRate;
  }

  /**
   * `allocation: 'total'`: the cell samples until it has its Neyman share of the verdicts the
   * policy's total needs, or the total's interval is under the target. `minSamples` does not
   * apply (a rare class's share can be a handful of verdicts; the two pseudo-verdicts of the
   * adjusted variance keep a short run of ties from reading as certain); 2 at least.
   */
  private allocate(state: MonitorState): void {
    const { targetHalfWidth } = this.shadow;
    const cells = this.states.values();
    const done =
      totalHalfWidth(this.states.values(), this.calls) < targetHalfWidth ||
      (state.n >= 2 && hasNeymanShare(state, cells, this.calls, targetHalfWidth));
    if (done && !state.stopped) this.stop(state);
    else if (!done && state.stopped) {
      state.stopped = false;
      state.window = [];
    }
  }

  private stop(state: MonitorState): void {
    state.stopped = true;
    state.stoppedMean = state.mean;
    state.stoppedHalfWidth = interval95(state.n, state.mean, state.m2);
    state.stoppedSd = Math.sqrt(state.m2 / Math.max(state.n - 1, 1));
    state.window = [];
  }

  /**
   * Share of calls sent to `model` when the engine chose the reference (docs/routing.md): `explore`
   * while open (< `minSamples` verdicts or 95% interval holds `-margin`), then a fifth to 3 × `minSamples`.
   */
  exploreShare(classKey: string, model: string, margin: number, explore: number): number {
    const state = this.states.get(`${classKey}\u0000${model}`);
    if (state === undefined) return explore;
    if (state.stopped) return 0;
    const { minSamples } = this.shadow;
    if (state.n < minSamples) return explore;
    if (Math.abs(state.mean + margin) <= interval95(state.n, state.mean, state.m2)) return explore;
    return state.n < 3 * minSamples ? explore / 5 : 0;
  }

  /** The 95% half-width of the traffic-weighted difference over every class and model. */
  totalHalfWidth(): number {
    return totalHalfWidth(this.states.values(), this.calls);
  }

  /** Adds one verdict's difference (2 × score − 1, in [-1, 1]). */
  add(classKey: string, model: string, difference: number): void {
    const state = this.state(classKey, model);
    if (state.stopped) {
      state.window.push(difference);
      if (state.window.length > this.shadow.driftWindow) state.window.shift();
      if (state.window.length >= this.shadow.driftWindow) {
        let mean = 0;
        for (const value of state.window) mean += value;
        mean /= state.window.length;
        let m2 = 0;
        for (const value of state.window) m2 += (value - mean) ** 2;
        // The window's spread, or the stopped estimate's when larger: a short window of sparse
        // verdicts (all ties) has no spread of its own and would call every wobble a drift.
        const sd = Math.max(Math.sqrt(m2 / (state.window.length - 1)), state.stoppedSd);
        const windowHalfWidth = (1.96 * sd) / Math.sqrt(state.window.length);
        if (Math.abs(mean - state.stoppedMean) > state.stoppedHalfWidth + windowHalfWidth) {
          // Drift: the evidence before it describes another model; start again from the window.
          state.stopped = false;
          state.drifts += 1;
          state.n = 0;
          state.mean = 0;
          state.m2 = 0;
          for (const value of state.window) this.push(state, value);
          state.window = [];
          return;
        }
      }
    }
    this.push(state, difference);
    if (this.shadow.allocation === 'total') this.allocate(state);
    else if (!state.stopped && state.n >= this.shadow.minSamples) {
      if (interval95(state.n, state.mean, state.m2) < this.shadow.targetHalfWidth) {
        this.stop(state);
      }
    }
  }

  private push(state: MonitorState, value: number): void {
    state.n += 1;
    const delta = value - state.mean;
    state.mean += delta / state.n;
    state.m2 += delta * (value - state.mean);
  }

  /** Per class and routed model with a verdict: the estimate and the sampling state. */
  estimates(): ShadowEstimate[] {
    return [...this.states]
      .filter(([, state]) => state.n > 0)
      .map(([key, state]) => {
        const [classKey, model] = key.split('\u0000') as [string, string];
        return {
          classKey,
          model,
          samples: state.n,
          difference: state.mean,
          halfWidth: interval95(state.n, state.mean, state.m2),
          state: state.stopped ? 'stopped' : 'sampling',
          drifts: state.drifts,
        };
      });
  }
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Spend over a rolling hour and day (entries older than a day are dropped). */
export class SpendWindow {
  private readonly entries: { at: number; usd: number }[] = [];
  add(at: number, usd: number): void {
    if (usd > 0) this.entries.push({ at, usd });
  }
  since(at: number, ms: number): number {
    while (this.entries.length > 0 && this.entries[0]!.at <= at - DAY_MS) this.entries.shift();
    let total = 0;
    for (const entry of this.entries) if (entry.at > at - ms) total += entry.usd;
    return total;
  }
  /** Whether the policy's shadow caps are reached at `at`. */
  over(at: number, shadow: Policy['shadow']): boolean {
    if (shadow.maxUsdPerHour !== undefined && this.since(at, HOUR_MS) >= shadow.maxUsdPerHour) {
      return true;
    }
    return shadow.maxUsdPerDay !== undefined && this.since(at, DAY_MS) >= shadow.maxUsdPerDay;
  }
}

/**
 * A bounded queue run with limited concurrency, started with `setImmediate` so that nothing
 * runs before the app's own continuation; a job that throws is counted, never rethrown.
 */
export class ShadowQueue {
  private readonly queue: (() => Promise<void>)[] = [];
  private running = 0;
  private scheduled = false;
  private waiters: (() => void)[] = [];
  readonly size: number;
  readonly concurrency: number;
  constructor(size: number, concurrency: number) {
    this.size = size;
    this.concurrency = concurrency;
  }
  get queued(): number {
    return this.queue.length;
  }
  get inFlight(): number {
    return this.running;
  }
  /** Queues a job; false when the queue is full (the job is dropped). */
  offer(job: () => Promise<void>): boolean {
    if (this.queue.length >= this.size) return false;
    this.queue.push(job);
    this.schedule();
    return true;
  }
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.pump());
  }
  private pump(): void {
    this.scheduled = false;
    while (this.running < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running += 1;
      Promise.resolve()
        .then(job)
        .catch(() => undefined)
        .finally(() => {
          this.running -= 1;
          if (this.queue.length > 0) this.schedule();
          else this.settle();
        });
    }
    this.settle();
  }
  private settle(): void {
    if (this.queue.length > 0 || this.running > 0 || this.scheduled) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.running === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

// The judge prompt contract (marker, sections, verdict schema) is @modelmaxx/semconv's.
const SYSTEM_PROMPT =
  'You are an impartial evaluator. Compare answers A and B to the question against the rubric and say which is better, or tie when they are equally good. The order in which they are shown says nothing about their quality; neither does their length.';
/** The pairwise judge prompt (`modelmaxx-judge/v1 pairwise`), answer A first. */
export function pairwisePrompt(
  question: string,
  answerA: string,
  answerB: string,
  rubric = DEFAULT_JUDGE_RUBRIC,
  maxChars = 8000,
): string {
  return [
    `${JUDGE_PROMPT_MARKER} pairwise`,
    judgePromptSection('rubric', rubric, maxChars),
    judgePromptSection('question', question, maxChars),
    judgePromptSection('answer_a', answerA, maxChars),
    judgePromptSection('answer_b', answerB, maxChars),
  ].join('\n');
}

/** The part of an openai client the judge uses. */
interface JudgeClient {
  readonly chat: {
    readonly completions: {
      create(params: never, options?: never): PromiseLike<unknown>;
    };
  };
}

export interface PairwiseJudgeOptions {
  /** An openai client (chat completions), instrumented or not. */
  readonly client: unknown;
  readonly model: string;
  readonly rubric?: string;
  /** Ask for the JSON schema as structured output (default true). */
  readonly structuredOutput?: boolean;
  readonly maxTokens?: number;
  readonly timeoutMs?: number;
  /** Shows the routed answer first or second with equal odds (position bias averages out). */
  readonly random?: RandomSource;
  /** USD of a judge call from its usage (default: the catalog with `MODELMAXX_PRICES`, `costOf`). */
  readonly cost?: (usage: { prompt_tokens: number; completion_tokens: number }) => number;
}

/** What the judge call returns, as far as the judge reads it. */
interface JudgeResponse {
  choices?: { message?: { content?: string | null } }[];
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  model?: string;
}

/** The chat request of one pairwise judgement (structured output, or JSON asked for in text). */
function judgeRequest(options: PairwiseJudgeOptions, prompt: string): Record<string, unknown> {
  const structured = options.structuredOutput ?? true;
  const reply = `{"winner": "A" | "B" | "tie", "explanation": "<one or two sentences>"}`;
  return {
    model: options.model,
    messages: [
      {
        role: 'system',
        content: structured
          ? `${SYSTEM_PROMPT} Record your verdict with the fields ${reply}.`
          : `${SYSTEM_PROMPT} Reply with one JSON object and nothing else: ${reply}`,
      },
      { role: 'user', content: prompt },
    ],
    max_completion_tokens: options.maxTokens ?? 512,
    ...(structured
      ? {
          response_format: {
            type: 'json_schema',
            json_schema: { name: 'record_verdict', strict: true, schema: PAIRWISE_VERDICT_SCHEMA },
          },
        }
      : {}),
  };
}

/** USD of the judge call: the app's `cost()`, else the catalog; undefined without usage. */
function judgeCost(options: PairwiseJudgeOptions, response: JudgeResponse): number | undefined {
  const usage = response.usage ?? undefined;
  if (usage === undefined) return undefined;
  if (options.cost !== undefined) return options.cost(usage);
  const model = response.model ?? options.model;
  return catalogPrice('openai', model, usage.prompt_tokens, usage.completion_tokens);
}

/** The verdict in a judge's reply: the first `{` to the last `}` as JSON; undefined when none. */
function readVerdict(text: string): { winner: unknown; explanation: unknown } {
  try {
    const parsed = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as Record<
      string,
      unknown
    >;
    return { winner: parsed['winner'], explanation: parsed['explanation'] };
  } catch {
    return { winner: undefined, explanation: undefined };
  }
}

/**
 * A pairwise judge over an openai-shaped client: the prompt of `@modelmaxx/instrument`'s
 * pairwise judges, the routed answer shown first or second at random, the winner mapped to the
 * routed answer's score (win 1, tie 0.5, loss 0). A reply without a verdict throws.
 */
export function pairwiseJudge(options: PairwiseJudgeOptions): PairwiseJudge {
  const client = options.client as JudgeClient;
  if (typeof client?.chat?.completions?.create !== 'function') {
    throw new TypeError('pairwiseJudge(): client must be an openai client (chat.completions)');
  }
  const random = options.random ?? Math.random;
  return async (pair) => {
    const answerFirst = random() < 0.5;
    const prompt = answerFirst
      ? pairwisePrompt(pair.question, pair.answer, pair.reference, options.rubric)
      : pairwisePrompt(pair.question, pair.reference, pair.answer, options.rubric);
    const response = (await client.chat.completions.create(
      judgeRequest(options, prompt) as never,
      { timeout: options.timeoutMs ?? 30_000, maxRetries: 0 } as never,
    )) as JudgeResponse;
    const costUsd = judgeCost(options, response);
    const text = response.choices?.[0]?.message?.content ?? '';
    const { winner, explanation } = readVerdict(text);
    if (winner !== 'A' && winner !== 'B' && winner !== 'tie') {
      throw Object.assign(new Error(`judge reply is no verdict: ${text.slice(0, 200)}`), {
        costUsd,
      });
    }
    const slot = answerFirst ? 'A' : 'B';
    const score = winner === 'tie' ? 0.5 : winner === slot ? 1 : 0;
    return {
      score,
      label: score === 1 ? 'win' : score === 0 ? 'loss' : 'tie',
      ...(typeof explanation === 'string' ? { explanation } : {}),
      ...(costUsd === undefined ? {} : { costUsd }),
    };
  };
}
