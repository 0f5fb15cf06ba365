import { ROOT_CONTEXT, context, diag } from '@opentelemetry/api';
import type { Attributes, TracerProvider, Tracer } from '@opentelemetry/api';
import { costOf } from '@modelmaxx/pricing';
import type { PriceCatalog } from '@modelmaxx/pricing';
import {
  ATTR_GEN_AI_EVALUATION_EXPLANATION,
  ATTR_GEN_AI_EVALUATION_NAME,
  ATTR_GEN_AI_EVALUATION_SCORE_LABEL,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_MODELMAXX_EVALUATION_NAME,
  ATTR_MODELMAXX_EVALUATION_POSITION,
  ATTR_MODELMAXX_EVALUATION_ROLE,
  ATTR_MODELMAXX_EVALUATION_SOURCE,
  ATTR_MODELMAXX_EVALUATION_TARGET_RESPONSE_ID,
  ATTR_MODELMAXX_EVALUATION_TARGET_SPAN_ID,
  ATTR_MODELMAXX_EVALUATION_TARGET_TRACE_ID,
  ATTR_MODELMAXX_FEATURE,
  ATTR_MODELMAXX_TASK,
  EVALUATION_ROLE_VALUE_JUDGE,
} from '@modelmaxx/semconv';
import { INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION, resolveConfig } from './config.js';
import { ROUTE_CONTEXT_KEY } from './context.js';
import { emitLateEvaluation, evaluationAttributes } from './evaluators.js';
import { rememberedResponse } from './feedback.js';
import {
  JUDGE_TOOL_NAME,
  PAIRWISE_SCHEMA,
  POINTWISE_SCHEMA,
  judgePrompt,
  judgeSystemPrompt,
  questionOf,
} from './judge-prompt.js';
import type { JudgeMode } from './judge-prompt.js';
import { parseVerdict } from './judge-parse.js';
import type { JudgeVerdict } from './judge-parse.js';
import type { Evaluator, EvaluatorCall, TokenUsage } from './types.js';

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

interface Job {
  call: EvaluatorCall;
}

/** Request bodies the judges sent: their own calls are never judged. */
const judgeBodies = new WeakSet<object>();

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const MINUTE_MS = 60_000;

/** Spend per minute over the last day: the hour and day sums of a rolling window. */
class SpendWindow {
  private readonly minutes = new Map<number, number>();

  add(now: number, usd: number): void {
    const minute = Math.floor(now / MINUTE_MS);
    this.minutes.set(minute, (this.minutes.get(minute) ?? 0) + usd);
    const oldest = minute - DAY_MS / MINUTE_MS;
    for (const key of this.minutes.keys()) if (key <= oldest) this.minutes.delete(key);
  }

  since(now: number, ms: number): number {
    const first = Math.floor((now - ms) / MINUTE_MS);
    let sum = 0;
    for (const [minute, usd] of this.minutes) if (minute > first) sum += usd;
    return sum;
  }
}

function checkRate(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new RangeError(`judge(): ${what} must be a number from 0 to 1`);
  }
  return value;
}

function checkPositive(value: unknown, what: string, integer: boolean): void {
  if (value === undefined) return;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value <= 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw new RangeError(`judge(): ${what} must be a positive ${integer ? 'integer' : 'number'}`);
  }
}

type Create = (body: Record<string, unknown>, options: Record<string, unknown>) => Promise<unknown>;

function clientKind(client: unknown): { provider: 'openai' | 'anthropic'; create: Create } {
  const record = client as Record<string, Record<string, unknown> | undefined> | null;
  const completions = (record?.['chat'] as Record<string, Record<string, unknown>> | undefined)?.[
    'completions'
  ];
  if (typeof completions?.['create'] === 'function') {
    const create = completions['create'] as Create;
    return {
      provider: 'openai',
      create: (body, options) => create.call(completions, body, options),
    };
  }
  const messages = record?.['messages'];
  if (typeof messages?.['create'] === 'function') {
    const create = messages['create'] as Create;
    return {
      provider: 'anthropic',
      create: (body, options) => create.call(messages, body, options),
    };
  }
  throw new TypeError(
    'judge(): client must be an openai client (chat.completions.create) or an @anthropic-ai/sdk client (messages.create)',
  );
}

/** Token usage of a judge reply (OpenAI chat or Anthropic messages shape). */
function usageOf(provider: 'openai' | 'anthropic', response: unknown): TokenUsage | undefined {
  const usage = (response as { usage?: Record<string, unknown> } | null)?.usage;
  if (typeof usage !== 'object' || usage === null) return undefined;
  const number = (value: unknown): number => (typeof value === 'number' ? value : 0);
  if (provider === 'openai') {
    const details = usage['prompt_tokens_details'] as Record<string, unknown> | null | undefined;
    const out = usage['completion_tokens_details'] as Record<string, unknown> | null | undefined;
    return {
      inputTokens: number(usage['prompt_tokens']),
      outputTokens: number(usage['completion_tokens']),
      cacheReadTokens: number(details?.['cached_tokens']),
      reasoningTokens: number(out?.['reasoning_tokens']),
    };
  }
  const read = number(usage['cache_read_input_tokens']);
  const write = number(usage['cache_creation_input_tokens']);
  return {
    inputTokens: number(usage['input_tokens']) + read + write,
    outputTokens: number(usage['output_tokens']),
    cacheReadTokens: read,
    cacheWriteTokens: write,
  };
}

/**
 * An LLM judge as an evaluator: pass it in `evaluators` (of `observe()`, `configureInstrumentation`
 * or `register`'s config). For each successful chat call it is offered, it decides at once (and
 * cheaply) whether to judge it; the judging itself runs later, after the app has its response,
 * on a bounded queue with bounded concurrency. It never delays or fails the app's call.
 *
 * Results are `gen_ai.evaluation.result` events with `modelmaxx.evaluation.source = judge` on a
 * short `evaluate <name>` span, child of the evaluated call's span (the late-score path).
 * Pointwise: score 0..1 and label pass/fail. Pairwise (with `reference`): 1 win, 0.5 tie, 0 loss.
 * A judge call that fails, or whose reply is no verdict, is recorded as an evaluation event
 * without a score (label `judge_error`), never as a score.
 */
export function judge(options: JudgeOptions): JudgeEvaluator {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('judge(): options must be an object');
  }
  const { provider, create } = clientKind(options.client);
  if (typeof options.model !== 'string' || options.model === '') {
    throw new TypeError('judge(): model must be a non-empty string');
  }
  const mode: JudgeMode = options.reference === undefined ? 'pointwise' : 'pairwise';
  if (options.reference !== undefined && typeof options.reference !== 'function') {
    throw new TypeError('judge(): reference must be a function of the call');
  }
  const name =
    options.name ?? (mode === 'pairwise' ? 'modelmaxx.judge.pairwise' : 'modelmaxx.judge');
  const rate = checkRate(options.sample?.rate ?? 1, 'sample.rate');
  const byTask = new Map<string, number>();
  const byFeature = new Map<string, number>();
  for (const [key, value] of Object.entries(options.sample?.byTask ?? {}))
    byTask.set(key, checkRate(value, `sample.byTask.${key}`));
  for (const [key, value] of Object.entries(options.sample?.byFeature ?? {}))
    byFeature.set(key, checkRate(value, `sample.byFeature.${key}`));
  checkPositive(options.maxUsdPerHour, 'maxUsdPerHour', false);
  checkPositive(options.maxUsdPerDay, 'maxUsdPerDay', false);
  checkPositive(options.queueSize, 'queueSize', true);
  checkPositive(options.concurrency, 'concurrency', true);
  checkPositive(options.timeoutMs, 'timeoutMs', false);
  checkPositive(options.maxTokens, 'maxTokens', true);
  checkPositive(options.maxInputChars, 'maxInputChars', true);
  const queueSize = options.queueSize ?? 100;
  const concurrency = options.concurrency ?? 2;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const structured = options.structuredOutput ?? true;
  const maxTokens = options.maxTokens ?? 512;
  const maxInputChars = options.maxInputChars ?? 8000;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const order = options.order ?? 'random';
  const rubric = options.rubric;

  const stats: JudgeStats = {
    offered: 0,
    notSampled: 0,
    dropped: 0,
    overBudget: 0,
    skipped: 0,
    judgeCalls: 0,
    scored: 0,
    callErrors: 0,
    parseErrors: 0,
    spentUsd: 0,
    unpricedCalls: 0,
    queued: 0,
    running: 0,
  };
  const queue: Job[] = [];
  const spend = new SpendWindow();
  let pumpScheduled = false;
  let idleWaiters: (() => void)[] = [];
  let warnedUnpriced = false;

  const rateFor = (call: EvaluatorCall): number => {
    if (call.task !== undefined) {
      const value = byTask.get(call.task);
      if (value !== undefined) return value;
    }
    if (call.feature !== undefined) {
      const value = byFeature.get(call.feature);
      if (value !== undefined) return value;
    }
    return rate;
  };

  const overBudget = (): boolean => {
    if (options.maxUsdPerHour === undefined && options.maxUsdPerDay === undefined) return false;
    const at = now();
    if (options.maxUsdPerHour !== undefined && spend.since(at, HOUR_MS) >= options.maxUsdPerHour)
      return true;
    return options.maxUsdPerDay !== undefined && spend.since(at, DAY_MS) >= options.maxUsdPerDay;
  };

  const settleIdle = (): void => {
    if (queue.length > 0 || stats.running > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  };

  const resultTracer = (call: EvaluatorCall): Tracer => {
    if (call.responseId !== undefined) {
      const remembered = rememberedResponse(call.responseId);
      if (remembered !== undefined && remembered.spanContext.spanId === call.spanContext.spanId) {
        return remembered.tracer;
      }
    }
    return (
      options.tracerProvider?.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION) ??
      resolveConfig(undefined).tracer
    );
  };

  const scoredCall = (call: EvaluatorCall): Attributes => {
    const attributes: Attributes = { [ATTR_GEN_AI_PROVIDER_NAME]: call.provider };
    const model = call.requestModel ?? call.responseModel;
    if (model !== undefined) attributes[ATTR_GEN_AI_REQUEST_MODEL] = model;
    if (call.task !== undefined) attributes[ATTR_MODELMAXX_TASK] = call.task;
    if (call.feature !== undefined) attributes[ATTR_MODELMAXX_FEATURE] = call.feature;
    return attributes;
  };

  const record = (call: EvaluatorCall, attributes: Attributes): void => {
    emitLateEvaluation(
      resultTracer(call),
      'evaluate',
      call.spanContext,
      attributes,
      name,
      scoredCall(call),
    );
  };

  /** A judge error: an evaluation event without a score. */
  const recordError = (call: EvaluatorCall, explanation: string): void => {
    const attributes: Attributes = {
      [ATTR_GEN_AI_EVALUATION_NAME]: name,
      [ATTR_GEN_AI_EVALUATION_SCORE_LABEL]: 'judge_error',
      [ATTR_GEN_AI_EVALUATION_EXPLANATION]: explanation,
      [ATTR_MODELMAXX_EVALUATION_SOURCE]: 'judge',
    };
    if (call.responseId !== undefined) attributes[ATTR_GEN_AI_RESPONSE_ID] = call.responseId;
    record(call, attributes);
  };

  const judgeOne = async (job: Job): Promise<void> => {
    const call = job.call;
    if (overBudget()) {
      stats.overBudget += 1;
      return;
    }
    const question = questionOf(call.request);
    const answer =
      call.outputText !== ''
        ? call.outputText
        : call.toolCalls.length > 0
          ? JSON.stringify(
              call.toolCalls.map(({ name: tool, arguments: args }) => ({ tool, args })),
            )
          : '';
    if (question === undefined || answer === '') {
      stats.skipped += 1;
      return;
    }
    let reference: string | undefined;
    let answerFirst = true;
    if (mode === 'pairwise') {
      try {
        reference = await options.reference?.(call);
      } catch (error) {
        diag.warn('modelmaxx: judge reference() threw; call not judged', error);
      }
      if (typeof reference !== 'string' || reference === '') {
        stats.skipped += 1;
        return;
      }
      answerFirst =
        order === 'answer-first' ? true : order === 'answer-second' ? false : random() < 0.5;
    }
    const prompt = judgePrompt({
      mode,
      rubric,
      question,
      answer,
      reference,
      answerFirst,
      maxChars: maxInputChars,
    });
    const system = judgeSystemPrompt(mode, structured);
    const schema = mode === 'pairwise' ? PAIRWISE_SCHEMA : POINTWISE_SCHEMA;
    const body: Record<string, unknown> =
      provider === 'openai'
        ? {
            model: options.model,
            messages: [
              { role: 'system', content: system },
              { role: 'user', content: prompt },
            ],
            max_completion_tokens: maxTokens,
            ...(structured
              ? {
                  response_format: {
                    type: 'json_schema',
                    json_schema: { name: JUDGE_TOOL_NAME, strict: true, schema },
                  },
                }
              : {}),
          }
        : {
            model: options.model,
            max_tokens: maxTokens,
            system,
            messages: [{ role: 'user', content: prompt }],
            ...(structured
              ? {
                  tools: [
                    {
                      name: JUDGE_TOOL_NAME,
                      description: 'Records the verdict on the answer.',
                      input_schema: schema,
                    },
                  ],
                  tool_choice: { type: 'tool', name: JUDGE_TOOL_NAME },
                }
              : {}),
          };
    judgeBodies.add(body);
    const marks: Attributes = {
      [ATTR_MODELMAXX_EVALUATION_ROLE]: EVALUATION_ROLE_VALUE_JUDGE,
      [ATTR_MODELMAXX_EVALUATION_NAME]: name,
      [ATTR_MODELMAXX_EVALUATION_TARGET_TRACE_ID]: call.spanContext.traceId,
      [ATTR_MODELMAXX_EVALUATION_TARGET_SPAN_ID]: call.spanContext.spanId,
    };
    if (call.responseId !== undefined)
      marks[ATTR_MODELMAXX_EVALUATION_TARGET_RESPONSE_ID] = call.responseId;
    stats.judgeCalls += 1;
    let response: unknown;
    try {
      // A trace of its own (the app's trace carries only the result), with the evaluation marks
      // that the instrumentation copies onto the judge's call span.
      response = await context.with(ROOT_CONTEXT.setValue(ROUTE_CONTEXT_KEY, marks), () =>
        create(body, { timeout: timeoutMs, maxRetries: 0 }),
      );
    } catch (error) {
      stats.callErrors += 1;
      const message = error instanceof Error ? error.message : String(error);
      recordError(call, `judge call failed: ${message.slice(0, 500)}`);
      return;
    }
    const usage = usageOf(provider, response);
    const responseModel = (response as { model?: unknown } | null)?.model;
    const cost =
      usage === undefined
        ? undefined
        : costOf(
            {
              provider,
              model: typeof responseModel === 'string' ? responseModel : options.model,
              usage,
            },
            options.catalog === undefined ? undefined : { catalog: options.catalog },
          );
    if (cost?.known === true) {
      stats.spentUsd += cost.amount;
      spend.add(now(), cost.amount);
    } else {
      stats.unpricedCalls += 1;
      if (
        !warnedUnpriced &&
        (options.maxUsdPerHour !== undefined || options.maxUsdPerDay !== undefined)
      ) {
        warnedUnpriced = true;
        diag.warn(
          `modelmaxx: judge ${name}: the cost of a call to ${options.model} is unknown (${cost?.known === false ? cost.reason : 'no usage'}); the spend cap cannot count it`,
        );
      }
    }
    const verdict: JudgeVerdict = parseVerdict(provider, mode, response);
    if (verdict.kind === 'error') {
      stats.parseErrors += 1;
      recordError(call, `judge reply is no verdict: ${verdict.reason}`);
      return;
    }
    let score: number;
    let label: string;
    if (verdict.kind === 'pairwise') {
      const answerSlot = answerFirst ? 'A' : 'B';
      if (verdict.winner === 'tie') {
        score = 0.5;
        label = 'tie';
      } else if (verdict.winner === answerSlot) {
        score = 1;
        label = 'win';
      } else {
        score = 0;
        label = 'loss';
      }
    } else {
      score = verdict.score;
      label = verdict.label;
    }
    const result: { name: string; score: number; label: string; explanation?: string } = {
      name,
      score,
      label,
    };
    if (verdict.explanation !== undefined) result.explanation = verdict.explanation;
    const attributes = evaluationAttributes(result, 'judge', call.responseId);
    if (mode === 'pairwise')
      attributes[ATTR_MODELMAXX_EVALUATION_POSITION] = answerFirst ? 'first' : 'second';
    stats.scored += 1;
    record(call, attributes);
  };

  const pump = (): void => {
    pumpScheduled = false;
    while (stats.running < concurrency && queue.length > 0) {
      const job = queue.shift() as Job;
      stats.queued = queue.length;
      stats.running += 1;
      judgeOne(job)
        .catch((error: unknown) => diag.error('modelmaxx: judging a call failed', error))
        .finally(() => {
          stats.running -= 1;
          if (queue.length > 0) schedule();
          else settleIdle();
        });
    }
    settleIdle();
  };

  const schedule = (): void => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    // Never on the response path: the app's continuation (a microtask) runs first.
    setImmediate(pump);
  };

  const evaluator = ((call: EvaluatorCall): undefined => {
    try {
      stats.offered += 1;
      if (call.operation !== 'chat') return undefined;
      if (
        typeof call.request === 'object' &&
        call.request !== null &&
        judgeBodies.has(call.request)
      )
        return undefined;
      const share = rateFor(call);
      if (share < 1 && !(random() < share)) {
        stats.notSampled += 1;
        return undefined;
      }
      if (queue.length >= queueSize) {
        stats.dropped += 1;
        return undefined;
      }
      queue.push({ call });
      stats.queued = queue.length;
      schedule();
    } catch (error) {
      diag.error('modelmaxx: judge could not take a call', error);
    }
    return undefined;
  }) as JudgeEvaluator;

  Object.defineProperties(evaluator, {
    evaluationName: { value: name, enumerable: true },
    mode: { value: mode, enumerable: true },
    stats: { value: (): JudgeStats => ({ ...stats }) },
    idle: {
      value: (): Promise<void> =>
        queue.length === 0 && stats.running === 0 && !pumpScheduled
          ? Promise.resolve()
          : new Promise<void>((resolve) => idleWaiters.push(resolve)),
    },
  });
  return evaluator;
}
