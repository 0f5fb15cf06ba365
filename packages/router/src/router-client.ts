/**
 * The routed client: `router.chat.completions.create({ model: 'auto', ... })` in the openai
 * SDK's shape. Picks a candidate by weight, falls back on 429 / 5xx / timeouts with cooldowns
 * and a bounded number of attempts, never to a model the policy excludes, and records the
 * decision on a span (each attempt's SDK span, when instrumented, is its child).
 */
import {
  ROOT_CONTEXT,
  SpanStatusCode,
  context,
  createContextKey,
  diag,
  trace,
} from '@opentelemetry/api';
import type { Attributes, Context, Span, SpanContext, Tracer } from '@opentelemetry/api';
import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';
import { costOf } from '@modelmaxx/pricing';
import {
  ATTR_MODELMAXX_ROUTE_ATTEMPT,
  ATTR_MODELMAXX_ROUTE_CLASS,
  ATTR_MODELMAXX_ROUTE_MODEL,
  ATTR_MODELMAXX_ROUTE_POLICY,
  ATTR_MODELMAXX_ROUTE_REASON,
  ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL,
  ATTR_MODELMAXX_ROUTE_WEIGHT,
  ATTR_GEN_AI_EVALUATION_EXPLANATION,
  ATTR_GEN_AI_EVALUATION_NAME,
  ATTR_GEN_AI_EVALUATION_SCORE_LABEL,
  ATTR_GEN_AI_EVALUATION_SCORE_VALUE,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_MODELMAXX_EVALUATION_NAME,
  ATTR_MODELMAXX_EVALUATION_ROLE,
  ATTR_MODELMAXX_EVALUATION_SOURCE,
  ATTR_MODELMAXX_EVALUATION_TARGET_RESPONSE_ID,
  ATTR_MODELMAXX_EVALUATION_TARGET_SPAN_ID,
  ATTR_MODELMAXX_EVALUATION_TARGET_TRACE_ID,
  ATTR_MODELMAXX_TASK,
  EVALUATION_ROLE_VALUE_JUDGE,
  EVALUATION_ROLE_VALUE_SHADOW,
  EVENT_GEN_AI_EVALUATION_RESULT,
  CONTEXT_KEY_LLM_CONTEXT,
  CONTEXT_KEY_ROUTE_ATTRIBUTES,
} from '@modelmaxx/semconv';
import {
  fromAnthropicMessage,
  fromAnthropicStream,
  toAnthropicParams,
} from './anthropic-adapter.js';
import { normalizeAnswer } from './answer.js';
import { classifyRequest } from './classifier.js';
import { chooseModel } from './decision.js';
import { RoutingEngine } from './engine.js';
import type { Decision, EngineOutcome } from './engine.js';
import { cachedEmbedder, featurize, featurizeInputOf } from './features.js';
import type { Embedder, RequestVector } from './features.js';
import type { Choice, WeightTable } from './decision.js';
import { parsePolicy } from './policy.js';
import type { Candidate, Policy, PolicyInput } from './policy.js';
import type { RandomSource } from './random.js';
import { ShadowMonitor, ShadowQueue, SpendWindow, referenceModelOf } from './shadow.js';
import type { PairwiseJudge, ShadowEstimate, ShadowVerdict } from './shadow.js';

/** The evaluation name of shadow verdicts (`llm_scores.Name`). */
export const SHADOW_EVALUATION_NAME = 'modelmaxx.shadow';

/** One finished shadow comparison (`createRouter({ onShadow })`). */
export interface ShadowResult {
  readonly policy: string;
  readonly classKey: string;
  readonly model: string;
  readonly referenceModel: string;
  /** The verdict's score for the routed answer (1 win, 0.5 tie, 0 loss); undefined on error. */
  readonly score?: number;
  readonly label: string;
  readonly error?: string;
  /** USD of the reference call and of judging. */
  readonly shadowCostUsd: number;
  readonly judgeCostUsd: number;
  readonly responseId?: string;
  readonly traceId: string;
}

/** What the shadow comparisons did so far (`router.shadows()`). */
export interface ShadowStats {
  readonly referenceModel: string;
  /** Routed calls that could be shadowed (another model than the reference answered). */
  offered: number;
  notSampled: number;
  /** Dropped because the queue was full. */
  dropped: number;
  /** Not shadowed because the hourly or daily cap was reached. */
  overBudget: number;
  shadowCalls: number;
  shadowErrors: number;
  judged: number;
  judgeErrors: number;
  /** USD of the reference calls and of the judge calls. */
  shadowUsd: number;
  judgeUsd: number;
  queued: number;
  running: number;
  /** Per class and routed model: the difference, its 95% half-width and the sampling state. */
  estimates: ShadowEstimate[];
}

type ChatParams = OpenAI.Chat.ChatCompletionCreateParams;
type ChatCompletion = OpenAI.Chat.ChatCompletion;
type ChatChunk = OpenAI.Chat.ChatCompletionChunk;

/** The part of an openai client the router uses. */
export interface OpenAILike {
  readonly chat: {
    readonly completions: {
      create(params: ChatParams, options?: OpenAI.RequestOptions): PromiseLike<unknown>;
    };
  };
}

/** The part of an anthropic client the router uses. */
export interface AnthropicLike {
  readonly messages: {
    create(
      params: Anthropic.MessageCreateParams,
      options?: Anthropic.RequestOptions,
    ): PromiseLike<unknown>;
  };
}

export interface RouterOptions {
  readonly policy: Policy | PolicyInput;
  /**
   * Clients by name: a candidate uses `clients[candidate.client]`, else `clients[candidate.provider]`
   * (`openai` / `anthropic`). Pass the app's own SDK instances.
   */
  readonly clients: Readonly<Record<string, OpenAILike | AnthropicLike>>;
  /** Where weights come from: a `WeightUpdater` (its `current`), a table, or a function. */
  readonly weights?: { readonly current: WeightTable } | WeightTable | (() => WeightTable);
  readonly random?: RandomSource;
  readonly now?: () => number;
  readonly tracer?: Tracer;
  /**
   * Cascade check (with `policy.cascade.voters`): return false to escalate even when the
   * voters agree, e.g. when the answer fails to parse or a unit test fails.
   */
  readonly check?: (completion: ChatCompletion, params: ChatParams) => boolean;
  /**
   * Scores a completed (non-streamed) call at once (0..1), so the engine learns from it
   * immediately: a check, a unit test, or a recorded outcome. Without it the engine learns
   * calls, costs and errors only (quality comes from the collector's stats via `weights`).
   */
  readonly score?: (
    completion: ChatCompletion,
    params: ChatParams,
    model: string,
  ) => number | undefined;
  /** Cost of a completed call in USD (default: its usage × the candidate's price or the catalog). */
  readonly cost?: (
    completion: ChatCompletion,
    params: ChatParams,
    model: string,
  ) => number | undefined;
  /**
   * Embedder for per-request routing (`predictor.enabled`): texts in, vectors out, e.g. an
   * embeddings model through the observed openai client. Cached by content hash.
   */
  readonly embed?: Embedder;
  /**
   * The pairwise judge of shadow comparisons (`policy.shadow`): e.g. `pairwiseJudge({ client,
   * model })` from this package, or any function with the same contract. Without it the policy's
   * shadow settings are ignored (one warning).
   */
  readonly judge?: PairwiseJudge;
  /** Called with each finished shadow comparison (after it is recorded and learned from). */
  readonly onShadow?: (result: ShadowResult) => void;
}

/** Per-call router options, given as the second argument next to the SDK's request options. */
export interface RouteRequestOptions extends OpenAI.RequestOptions {
  /** The app's task label (`modelmaxx.task`), used as the routing class. */
  readonly task?: string;
}

export interface RouteAttempt {
  readonly model: string;
  readonly outcome: 'ok' | 'retryable' | 'failed';
  readonly error?: string;
}

/** Every allowed candidate failed or was cooling down. */
export class AllCandidatesFailedError extends Error {
  override readonly name = 'AllCandidatesFailedError';
  readonly attempts: readonly RouteAttempt[];
  constructor(message: string, attempts: readonly RouteAttempt[], options?: ErrorOptions) {
    super(message, options);
    this.attempts = attempts;
  }
}

export class RouterConfigError extends Error {
  override readonly name = 'RouterConfigError';
}

type Outcome = { status: 'retryable'; retryAfterMs?: number } | { status: 'failed' };

/** Classifies an SDK error: 429, 5xx, timeouts and connection errors are worth a fallback. */
export function classifyError(error: unknown): Outcome {
  if (error === null || typeof error !== 'object') return { status: 'failed' };
  const status = (error as { status?: unknown }).status;
  const name = `${String((error as { name?: unknown }).name)} ${error.constructor.name}`;
  if (typeof status === 'number' && (status === 429 || status === 408 || status >= 500)) {
    const headers = (error as { headers?: unknown }).headers;
    let retryAfter: string | null | undefined;
    if (headers instanceof Headers) retryAfter = headers.get('retry-after');
    else if (headers !== null && typeof headers === 'object') {
      retryAfter = (headers as Record<string, string | undefined>)['retry-after'];
    }
    const seconds = retryAfter === null || retryAfter === undefined ? NaN : Number(retryAfter);
    return Number.isFinite(seconds)
      ? { status: 'retryable', retryAfterMs: seconds * 1000 }
      : { status: 'retryable' };
  }
  if (
    status === undefined &&
    /Timeout|Connection|AbortError/.test(name) &&
    !/UserAbort/.test(name)
  ) {
    return { status: 'retryable' };
  }
  return { status: 'failed' };
}

export interface Router {
  readonly policy: Policy;
  /** The routing engine (decisions, weight table, explanations). */
  readonly engine: RoutingEngine;
  readonly chat: {
    readonly completions: {
      create(
        params: ChatParams & { stream: true },
        options?: RouteRequestOptions,
      ): Promise<AsyncIterable<ChatChunk>>;
      create(
        params: ChatParams & { stream?: false | null },
        options?: RouteRequestOptions,
      ): Promise<ChatCompletion>;
      create(
        params: ChatParams,
        options?: RouteRequestOptions,
      ): Promise<ChatCompletion | AsyncIterable<ChatChunk>>;
    };
  };
  /** Models cooling down now, with the time (ms) they become available again. */
  cooldowns(): ReadonlyMap<string, number>;
  /**
   * USD spent through this router in the current budget period (non-streamed calls with
   * usage; priced by the candidate's `price` override, else `@modelmaxx/pricing`).
   */
  spend(): { readonly periodStart: number; readonly spentUsd: number };
  /** The model routed calls are measured against (`policy.shadow.referenceModel` or the dearest). */
  readonly referenceModel: string;
  /** Shadow comparisons so far. */
  shadows(): ShadowStats;
  /** Resolves when no shadow comparison is queued or running (tests, graceful shutdown). */
  idle(): Promise<void>;
}

// Context slots shared with @modelmaxx/instrument (createContextKey is Symbol.for(description)).
const ROUTE_ATTRIBUTES_KEY = createContextKey(CONTEXT_KEY_ROUTE_ATTRIBUTES);
const LLM_CONTEXT_KEY = createContextKey(CONTEXT_KEY_LLM_CONTEXT);

function callContext(route: Attributes, task: string | undefined): Context {
  const active = context.active().setValue(ROUTE_ATTRIBUTES_KEY, route);
  if (task === undefined) return active;
  const existing = active.getValue(LLM_CONTEXT_KEY);
  return active.setValue(LLM_CONTEXT_KEY, {
    ...(typeof existing === 'object' && existing !== null ? existing : {}),
    task,
  });
}

interface ShadowJob {
  readonly model: string;
  readonly classKey: string;
  readonly decision: Decision;
  readonly params: ChatParams;
  readonly question: string;
  readonly answer: string;
  readonly responseId?: string;
  readonly routeSpan: SpanContext;
  readonly llmContext: unknown;
  readonly task: string | undefined;
}

/** The text of the request's last user turn. */
function lastUserText(params: ChatParams): string {
  for (let index = params.messages.length - 1; index >= 0; index -= 1) {
    const message = params.messages[index]!;
    if (message.role !== 'user') continue;
    const content = message.content;
    if (typeof content === 'string') return content;
    return content
      .map((part) => (part.type === 'text' ? part.text : ''))
      .filter((text) => text !== '')
      .join('\n');
  }
  return '';
}

export function createRouter(options: RouterOptions): Router {
  const policy = parsePolicy(options.policy);
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const tracer = options.tracer ?? trace.getTracer('@modelmaxx/router');
  const cooldownUntil = new Map<string, number>();
  const candidates = new Map(policy.candidates.map((candidate) => [candidate.model, candidate]));
  for (const candidate of policy.candidates) {
    const name = candidate.client ?? candidate.provider;
    if (options.clients[name] === undefined) {
      throw new RouterConfigError(
        `no client "${name}" for candidate ${candidate.model}: pass clients.${name}`,
      );
    }
  }
  const budget = policy.goal.budget;
  let periodStart = 0;
  let spentUsd = 0;
  const rollPeriod = () => {
    if (budget === undefined) return;
    const start = Math.floor(now() / budget.periodMs) * budget.periodMs;
    if (start !== periodStart) {
      periodStart = start;
      spentUsd = 0;
    }
  };
  /** USD of a completed call from its usage (the candidate's price, else the catalog). */
  const priceOf = (candidate: Candidate, result: unknown): number | undefined => {
    const usage = (result as { usage?: OpenAI.CompletionUsage | null } | undefined)?.usage;
    if (usage === undefined || usage === null) return undefined;
    if (candidate.price !== undefined) {
      return (
        (usage.prompt_tokens * candidate.price.inputPerMillion +
          usage.completion_tokens * candidate.price.outputPerMillion) /
        1e6
      );
    }
    const cost = costOf({
      provider: candidate.provider,
      model: candidate.model,
      usage: { inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens },
    });
    if (cost.known) return cost.amount;
    diag.debug(`modelmaxx router: no price for ${candidate.model}: ${cost.reason}`);
    return undefined;
  };
  /** Adds the cost of a completed call to the period's spend; returns it. */
  const recordSpend = (candidate: Candidate, result: unknown): number => {
    const cost = priceOf(candidate, result) ?? 0;
    if (cost === 0) return cost;
    rollPeriod();
    spentUsd += cost;
    return cost;
  };
  /** What the engine learns from one completed call. */
  const outcomeOf = (model: string, result: unknown, params: ChatParams): EngineOutcome => {
    const candidate = candidates.get(model)!;
    const spent = recordSpend(candidate, result);
    const streamed = params.stream === true;
    const completion = result as ChatCompletion;
    const costUsd = streamed ? spent : (options.cost?.(completion, params, model) ?? spent);
    const score = streamed ? undefined : options.score?.(completion, params, model);
    const answer = streamed
      ? undefined
      : normalizeAnswer(completion.choices?.[0]?.message?.content ?? '');
    return {
      model,
      costUsd,
      ...(score === undefined ? {} : { score }),
      ...(answer === undefined ? {} : { answer }),
    };
  };
  const externalWeights =
    options.weights === undefined
      ? undefined
      : (): WeightTable => {
          const source = options.weights!;
          if (typeof source === 'function') return source();
          if ('classes' in source) return source;
          return source.current;
        };
  const engine = new RoutingEngine({
    policy,
    random,
    ...(externalWeights === undefined ? {} : { weights: externalWeights }),
  });
  if (policy.predictor.enabled && options.score === undefined) {
    diag.warn(
      `modelmaxx router: policy "${policy.name}" routes per request but createRouter has no score(): the predictor learns only from scored calls, so it keeps its priors and routes by cost`,
    );
  }
  const embedder = options.embed === undefined ? undefined : cachedEmbedder(options.embed);
  const referenceModel = referenceModelOf(policy);
  const shadowPolicy = policy.shadow;
  const shadowOn = shadowPolicy.enabled && options.judge !== undefined;
  if (shadowPolicy.enabled && options.judge === undefined) {
    diag.warn(
      `modelmaxx router: policy "${policy.name}" enables shadow comparisons but createRouter has no judge: no shadows`,
    );
  }
  const monitor = new ShadowMonitor(policy);
  const shadowQueue = new ShadowQueue(shadowPolicy.queueSize, shadowPolicy.concurrency);
  const shadowSpend = new SpendWindow();
  const shadowStats = {
    offered: 0,
    notSampled: 0,
    dropped: 0,
    overBudget: 0,
    shadowCalls: 0,
    shadowErrors: 0,
    judged: 0,
    judgeErrors: 0,
    shadowUsd: 0,
    judgeUsd: 0,
  };
  const shadowTracer = tracer;

  /** Records a shadow verdict (or judge error) on the routed call: the late-score path. */
  const recordVerdict = (
    job: ShadowJob,
    verdict: ShadowVerdict | undefined,
    error: string | undefined,
  ) => {
    const attributes: Attributes = {
      [ATTR_GEN_AI_EVALUATION_NAME]: SHADOW_EVALUATION_NAME,
      [ATTR_MODELMAXX_EVALUATION_SOURCE]: 'judge',
      [ATTR_GEN_AI_REQUEST_MODEL]: job.model,
      [ATTR_GEN_AI_PROVIDER_NAME]: candidates.get(job.model)!.provider,
      [ATTR_MODELMAXX_ROUTE_POLICY]: policy.name,
      [ATTR_MODELMAXX_ROUTE_CLASS]: job.classKey,
      [ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL]: referenceModel,
    };
    if (job.task !== undefined) attributes[ATTR_MODELMAXX_TASK] = job.task;
    if (job.responseId !== undefined) attributes[ATTR_GEN_AI_RESPONSE_ID] = job.responseId;
    if (verdict === undefined) {
      attributes[ATTR_GEN_AI_EVALUATION_SCORE_LABEL] = 'judge_error';
      attributes[ATTR_GEN_AI_EVALUATION_EXPLANATION] = (error ?? 'no verdict').slice(0, 500);
    } else {
      attributes[ATTR_GEN_AI_EVALUATION_SCORE_VALUE] = verdict.score;
      attributes[ATTR_GEN_AI_EVALUATION_SCORE_LABEL] = verdict.label;
      if (verdict.explanation !== undefined) {
        attributes[ATTR_GEN_AI_EVALUATION_EXPLANATION] = verdict.explanation.slice(0, 500);
      }
    }
    // A short span, child of the route span (in the app's trace), holding the result event.
    const parent = trace.setSpanContext(ROOT_CONTEXT, job.routeSpan);
    const span = shadowTracer.startSpan(`evaluate ${SHADOW_EVALUATION_NAME}`, {}, parent);
    span.addEvent(EVENT_GEN_AI_EVALUATION_RESULT, attributes);
    span.end();
  };

  /** Runs one shadow comparison: the reference call, the judge, the record, the learning. */
  const runShadow = async (job: ShadowJob): Promise<void> => {
    const reference = candidates.get(referenceModel)!;
    const marks = (role: string): Attributes => ({
      [ATTR_MODELMAXX_EVALUATION_ROLE]: role,
      [ATTR_MODELMAXX_EVALUATION_NAME]: SHADOW_EVALUATION_NAME,
      [ATTR_MODELMAXX_EVALUATION_TARGET_TRACE_ID]: job.routeSpan.traceId,
      [ATTR_MODELMAXX_EVALUATION_TARGET_SPAN_ID]: job.routeSpan.spanId,
      ...(job.responseId === undefined
        ? {}
        : { [ATTR_MODELMAXX_EVALUATION_TARGET_RESPONSE_ID]: job.responseId }),
      [ATTR_MODELMAXX_ROUTE_POLICY]: policy.name,
      [ATTR_MODELMAXX_ROUTE_CLASS]: job.classKey,
      [ATTR_MODELMAXX_ROUTE_MODEL]: job.model,
      // The shadow call is the reference model's (the ledger's shadow spend); a judge call has none.
      ...(role === EVALUATION_ROLE_VALUE_SHADOW
        ? { [ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL]: referenceModel }
        : {}),
    });
    // A trace of its own (the app's trace gets only the verdict), with the app's task/feature.
    const evaluationContext = (role: string) =>
      ROOT_CONTEXT.setValue(LLM_CONTEXT_KEY, job.llmContext).setValue(
        ROUTE_ATTRIBUTES_KEY,
        marks(role),
      );
    const finish = (
      result: Omit<ShadowResult, 'policy' | 'classKey' | 'model' | 'referenceModel' | 'traceId'>,
    ) => {
      try {
        options.onShadow?.({
          policy: policy.name,
          classKey: job.classKey,
          model: job.model,
          referenceModel,
          traceId: job.routeSpan.traceId,
          ...result,
        });
      } catch (error) {
        diag.warn(`modelmaxx router: onShadow threw: ${String(error)}`);
      }
    };
    if (shadowSpend.over(now(), shadowPolicy)) {
      shadowStats.overBudget += 1;
      return;
    }
    shadowStats.shadowCalls += 1;
    let referenceAnswer: ChatCompletion;
    try {
      const { stream: _stream, stream_options: _options, ...plain } = job.params;
      referenceAnswer = (await context.with(evaluationContext(EVALUATION_ROLE_VALUE_SHADOW), () =>
        callCandidateNow(reference, plain as ChatParams, {
          timeout: shadowPolicy.timeoutMs,
          maxRetries: 0,
        }),
      )) as ChatCompletion;
    } catch (error) {
      shadowStats.shadowErrors += 1;
      finish({
        label: 'shadow_error',
        error: `reference call failed: ${String(error)}`,
        shadowCostUsd: 0,
        judgeCostUsd: 0,
        ...(job.responseId === undefined ? {} : { responseId: job.responseId }),
      });
      return;
    }
    const shadowCostUsd = priceOf(reference, referenceAnswer) ?? 0;
    shadowStats.shadowUsd += shadowCostUsd;
    shadowSpend.add(now(), shadowCostUsd);
    let verdict: ShadowVerdict | undefined;
    let error: string | undefined;
    try {
      verdict = await context.with(evaluationContext(EVALUATION_ROLE_VALUE_JUDGE), () =>
        options.judge!({
          question: job.question,
          answer: job.answer,
          reference: referenceAnswer.choices?.[0]?.message?.content ?? '',
          model: job.model,
          referenceModel,
          classKey: job.classKey,
          policy: policy.name,
        }),
      );
      if (
        verdict !== undefined &&
        (!Number.isFinite(verdict.score) || verdict.score < 0 || verdict.score > 1)
      ) {
        error = `judge score ${String(verdict.score)} is not in [0, 1]`;
        verdict = undefined;
      }
    } catch (thrown) {
      error = thrown instanceof Error ? thrown.message : String(thrown);
      const cost = (thrown as { costUsd?: unknown } | null)?.costUsd;
      if (typeof cost === 'number') {
        shadowStats.judgeUsd += cost;
        shadowSpend.add(now(), cost);
      }
    }
    const judgeCostUsd = verdict?.costUsd ?? 0;
    shadowStats.judgeUsd += judgeCostUsd;
    shadowSpend.add(now(), judgeCostUsd);
    recordVerdict(job, verdict, error);
    if (verdict === undefined) {
      shadowStats.judgeErrors += 1;
    } else {
      shadowStats.judged += 1;
      engine.score(
        job.decision,
        [
          { model: job.model, score: verdict.score },
          { model: referenceModel, score: 1 - verdict.score },
        ],
        now(),
      );
      monitor.add(job.classKey, job.model, 2 * verdict.score - 1);
    }
    finish({
      label: verdict?.label ?? 'judge_error',
      ...(verdict === undefined ? { error: error ?? 'no verdict' } : { score: verdict.score }),
      shadowCostUsd,
      judgeCostUsd,
      ...(job.responseId === undefined ? {} : { responseId: job.responseId }),
    });
  };

  /** After the app has its answer: shadow this call? (never throws, never waits) */
  const maybeShadow = (
    job: Omit<ShadowJob, 'question' | 'answer' | 'responseId'> & { completion: ChatCompletion },
  ) => {
    try {
      if (!shadowOn || job.model === referenceModel) return;
      shadowStats.offered += 1;
      const rate = monitor.rate(job.classKey, job.model);
      if (!(random() < rate)) {
        shadowStats.notSampled += 1;
        return;
      }
      if (shadowSpend.over(now(), shadowPolicy)) {
        shadowStats.overBudget += 1;
        return;
      }
      const question = lastUserText(job.params);
      const answer = job.completion.choices?.[0]?.message?.content ?? '';
      if (question === '' || answer === '') {
        shadowStats.notSampled += 1;
        return;
      }
      const { completion, ...rest } = job;
      const full: ShadowJob = {
        ...rest,
        question,
        answer,
        ...(typeof completion.id === 'string' ? { responseId: completion.id } : {}),
      };
      if (!shadowQueue.offer(() => runShadow(full))) shadowStats.dropped += 1;
    } catch (error) {
      diag.warn(`modelmaxx router: could not queue a shadow comparison: ${String(error)}`);
    }
  };
  /** The request's feature vector (with its embedding when an embedder is given). */
  const vectorOf = async (params: ChatParams, classKey: string): Promise<RequestVector> => {
    const input = featurizeInputOf(params, classKey, policy.predictor.features);
    if (embedder === undefined) return featurize(input);
    try {
      return featurize(input, await embedder(input.text));
    } catch (error) {
      diag.warn(`modelmaxx router: embedding failed, routing without it: ${String(error)}`);
      return featurize(input);
    }
  };
  /** Over budget: the cheapest eligible candidate by observed (or prior) cost per call. */
  const budgetChoice = (
    tableOf: () => WeightTable,
    classKey: string,
    exclude: ReadonlySet<string>,
  ) => {
    if (budget === undefined) return undefined;
    rollPeriod();
    if (spentUsd < budget.usd) return undefined;
    const table = tableOf();
    const entry = table.classes.get(classKey) ?? table.fallbackClass;
    let cheapest: (typeof entry.weights)[number] | undefined;
    for (const weight of entry.weights) {
      if (!weight.eligible || exclude.has(weight.model)) continue;
      if (
        cheapest === undefined ||
        (weight.costPerCallUsd ?? Infinity) < (cheapest.costPerCallUsd ?? Infinity)
      ) {
        cheapest = weight;
      }
    }
    if (cheapest === undefined) return undefined;
    return {
      model: cheapest.model,
      weight: cheapest.weight,
      reason: `budget of $${budget.usd} spent ($${spentUsd.toFixed(4)} this period): cheapest eligible candidate`,
      classKey: entry.classKey,
    };
  };

  /**
   * Calls one candidate inside a context that carries the route decision and the app's task,
   * so the instrumentation records them on the LLM call's own span (`llm_calls.RoutePolicy`,
   * `RouteReason`, `Task`): each attempt is its own span, child of the `route` span.
   */
  const callCandidate = (
    candidate: Candidate,
    params: ChatParams,
    requestOptions: OpenAI.RequestOptions,
    route: Attributes,
    task: string | undefined,
  ): Promise<ChatCompletion | AsyncIterable<ChatChunk>> =>
    context.with(callContext(route, task), () =>
      callCandidateNow(candidate, params, requestOptions),
    );

  const callCandidateNow = async (
    candidate: Candidate,
    params: ChatParams,
    requestOptions: OpenAI.RequestOptions,
  ): Promise<ChatCompletion | AsyncIterable<ChatChunk>> => {
    const client = options.clients[candidate.client ?? candidate.provider]!;
    if (candidate.provider === 'anthropic') {
      const anthropic = client as AnthropicLike;
      const result = await anthropic.messages.create(
        toAnthropicParams(params, candidate.model),
        requestOptions as unknown as Anthropic.RequestOptions,
      );
      if (params.stream === true) {
        return fromAnthropicStream(
          result as AsyncIterable<Anthropic.RawMessageStreamEvent>,
          params.stream_options?.include_usage === true,
        );
      }
      return fromAnthropicMessage(result as Anthropic.Message);
    }
    const openai = client as OpenAILike;
    return (await openai.chat.completions.create(
      { ...params, model: candidate.model },
      requestOptions,
    )) as ChatCompletion | AsyncIterable<ChatChunk>;
  };

  /**
   * The next model to try. First attempt: by weight. Fallbacks: the policy's chain, then the
   * remaining candidates by weight, then by quality; never a candidate the policy makes
   * ineligible (e.g. over the latency SLO), never one cooling down or already tried.
   */
  const nextChoice = (
    table: WeightTable,
    classKey: string,
    exclude: ReadonlySet<string>,
    attempt: number,
  ): Choice | undefined => {
    const choice = chooseModel(table, classKey, random, exclude);
    if (attempt === 1 && choice !== undefined) return choice;
    const entry = table.classes.get(classKey) ?? table.fallbackClass;
    const allowed = entry.weights.filter((weight) => weight.eligible && !exclude.has(weight.model));
    const chained = policy.fallback.chain
      ?.map((model) => allowed.find((weight) => weight.model === model))
      .find((weight) => weight !== undefined);
    if (chained !== undefined) {
      return {
        model: chained.model,
        weight: chained.weight,
        reason: `fallback chain: ${chained.reason}`,
        classKey: entry.classKey,
      };
    }
    if (choice !== undefined) return { ...choice, reason: `fallback: ${choice.reason}` };
    const best = [...allowed].sort((a, b) => b.quality - a.quality)[0];
    if (best === undefined) return undefined;
    return {
      model: best.model,
      weight: best.weight,
      reason: `fallback by quality: ${best.reason}`,
      classKey: entry.classKey,
    };
  };

  async function route(
    params: ChatParams,
    routeOptions: RouteRequestOptions = {},
  ): Promise<ChatCompletion | AsyncIterable<ChatChunk>> {
    const { task, ...requestOptions } = routeOptions;
    let pinned: string | undefined;
    if (params.model !== 'auto' && params.model !== policy.name) {
      if (!candidates.has(params.model)) {
        throw new RouterConfigError(
          `model "${params.model}" is neither "auto", the policy name "${policy.name}", nor one of its candidates`,
        );
      }
      pinned = params.model;
    }
    const classKey = classifyRequest({ ...params, task });
    const appLlmContext = callContext({}, task).getValue(LLM_CONTEXT_KEY);
    const vector =
      engine.mode === 'predict' && pinned === undefined
        ? await vectorOf(params, classKey)
        : undefined;
    return tracer.startActiveSpan(`route ${policy.name}`, async (span: Span) => {
      const attempts: RouteAttempt[] = [];
      const exclude = new Set<string>();
      const time = now();
      for (const [model, until] of cooldownUntil) {
        if (until > time) exclude.add(model);
        else cooldownUntil.delete(model);
      }
      span.setAttribute(ATTR_MODELMAXX_ROUTE_POLICY, policy.name);
      span.setAttribute(ATTR_MODELMAXX_ROUTE_CLASS, classKey);
      span.setAttribute(ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL, referenceModel);
      const outcomes: EngineOutcome[] = [];
      const requestOptionsOf = () => ({
        timeout: policy.fallback.timeoutMs,
        maxRetries: 0,
        ...requestOptions,
      });
      let decision: Decision | undefined;
      let firstChoice: Choice | undefined;
      if (pinned === undefined) {
        firstChoice = budgetChoice(() => engine.table(time), classKey, exclude);
        if (firstChoice === undefined) {
          decision = engine.decide({
            classKey,
            at: time,
            ...(params.stream === true ? { single: true } : {}),
            exclude,
            ...(vector === undefined ? {} : { vector }),
          });
          firstChoice =
            decision.first.length === 0
              ? undefined
              : {
                  model: decision.first[0]!,
                  weight: decision.weight,
                  reason: decision.reason,
                  classKey,
                };
        }
      }
      const learn = () => {
        if (decision !== undefined) engine.observe(decision, outcomes);
      };
      const done = (model: string, weight: number, reason: string, result: unknown) => {
        span.setAttribute(ATTR_MODELMAXX_ROUTE_MODEL, model);
        span.setAttribute(ATTR_MODELMAXX_ROUTE_WEIGHT, weight);
        span.setAttribute(ATTR_MODELMAXX_ROUTE_REASON, reason);
        span.setAttribute(ATTR_MODELMAXX_ROUTE_ATTEMPT, attempts.length);
        span.end();
        learn();
        if (
          shadowOn &&
          decision !== undefined &&
          params.stream !== true &&
          decision.first.length === 1 &&
          decision.escalateTo === undefined
        ) {
          maybeShadow({
            model,
            classKey,
            decision,
            params,
            completion: result as ChatCompletion,
            routeSpan: span.spanContext(),
            llmContext: appLlmContext,
            task,
          });
        }
        return result as ChatCompletion | AsyncIterable<ChatChunk>;
      };
      let escalation: string | undefined;
      if (
        decision !== undefined &&
        (decision.first.length > 1 || decision.escalateTo !== undefined)
      ) {
        // A plan of several calls (cascade voters, probes): no per-call fallback; a failed
        // voter counts as a disagreement.
        const completions = new Map<string, ChatCompletion>();
        const role =
          decision.escalateTo === undefined
            ? decision.reason
            : `cascade voter (${decision.first.join(' and ')})`;
        let accepted = true;
        let step = engine.next(decision, outcomes);
        let voterFailed = false;
        while (!step.done) {
          if (
            decision.escalateTo !== undefined &&
            step.call.length === 1 &&
            step.call[0] === decision.escalateTo
          ) {
            break; // the escalation goes through the fallback loop below
          }
          const results = await Promise.all(
            step.call.map(async (model) => {
              const candidate = candidates.get(model)!;
              try {
                const result = (await callCandidate(
                  candidate,
                  params,
                  requestOptionsOf(),
                  {
                    [ATTR_MODELMAXX_ROUTE_POLICY]: policy.name,
                    [ATTR_MODELMAXX_ROUTE_CLASS]: classKey,
                    [ATTR_MODELMAXX_ROUTE_MODEL]: model,
                    [ATTR_MODELMAXX_ROUTE_REASON]: role,
                    [ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL]: referenceModel,
                  },
                  task,
                )) as ChatCompletion;
                return { model, result };
              } catch (error) {
                return { model, error };
              }
            }),
          );
          for (const entry of results) {
            if ('result' in entry) {
              attempts.push({ model: entry.model, outcome: 'ok' });
              completions.set(entry.model, entry.result);
              outcomes.push(outcomeOf(entry.model, entry.result, params));
              continue;
            }
            const outcome = classifyError(entry.error);
            voterFailed = true;
            attempts.push({
              model: entry.model,
              outcome: outcome.status,
              error: entry.error instanceof Error ? entry.error.message : String(entry.error),
            });
            outcomes.push({ model: entry.model, costUsd: 0, failed: true });
            if (outcome.status === 'retryable') {
              cooldownUntil.set(
                entry.model,
                now() + (outcome.retryAfterMs ?? policy.fallback.cooldownMs),
              );
            }
          }
          const lead = completions.get(decision.first[0]!);
          if (decision.escalateTo !== undefined && lead !== undefined && options.check) {
            accepted = options.check(lead, params);
          }
          step = engine.next(decision, outcomes, accepted);
        }
        if (step.done) {
          const answer = completions.get(step.answeredBy);
          if (answer !== undefined) {
            const reason =
              decision.escalateTo === undefined
                ? decision.reason
                : step.answeredBy === decision.third
                  ? `cascade: ${decision.third} matches a voter`
                  : `cascade: ${decision.first.join(' and ')} agree`;
            return done(step.answeredBy, decision.weight, reason, answer);
          }
          // The answering call failed: fall back like a single call.
          pinned = undefined;
          for (const model of completions.keys()) exclude.add(model);
        } else {
          const agreedButRejected = !accepted;
          escalation = agreedButRejected
            ? 'cascade escalated: the check failed'
            : voterFailed
              ? 'cascade escalated: a voter failed'
              : 'cascade escalated: the voters disagree';
          pinned = decision.escalateTo;
          for (const model of completions.keys()) exclude.add(model);
          for (const model of decision.first) exclude.add(model);
          if (decision.third !== undefined) exclude.add(decision.third);
        }
        firstChoice = undefined;
      }
      const voterCalls = attempts.length;
      try {
        for (let attempt = 1; attempt <= policy.fallback.maxAttempts; attempt += 1) {
          const choice: Choice | undefined =
            (attempt === 1 && pinned === undefined ? firstChoice : undefined) ??
            (pinned !== undefined && attempt === 1 && !exclude.has(pinned)
              ? {
                  model: pinned,
                  weight: 1,
                  reason: escalation ?? 'model pinned by the request',
                  classKey,
                }
              : nextChoice(engine.table(time), classKey, exclude, attempt));
          if (choice === undefined) break;
          const candidate = candidates.get(choice.model)!;
          try {
            const result = await callCandidate(
              candidate,
              params,
              requestOptionsOf(),
              {
                [ATTR_MODELMAXX_ROUTE_POLICY]: policy.name,
                [ATTR_MODELMAXX_ROUTE_CLASS]: classKey,
                [ATTR_MODELMAXX_ROUTE_MODEL]: choice.model,
                [ATTR_MODELMAXX_ROUTE_WEIGHT]: choice.weight,
                [ATTR_MODELMAXX_ROUTE_REASON]: choice.reason,
                [ATTR_MODELMAXX_ROUTE_ATTEMPT]: voterCalls + attempt,
                [ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL]: referenceModel,
              },
              task,
            );
            attempts.push({ model: choice.model, outcome: 'ok' });
            outcomes.push(outcomeOf(choice.model, result, params));
            return done(choice.model, choice.weight, choice.reason, result);
          } catch (error) {
            const outcome = classifyError(error);
            const message = error instanceof Error ? error.message : String(error);
            attempts.push({ model: choice.model, outcome: outcome.status, error: message });
            outcomes.push({ model: choice.model, costUsd: 0, failed: true });
            span.addEvent('route.attempt_failed', {
              [ATTR_MODELMAXX_ROUTE_MODEL]: choice.model,
              [ATTR_MODELMAXX_ROUTE_ATTEMPT]: attempt,
              'error.type': error instanceof Error ? error.constructor.name : 'Error',
            });
            if (outcome.status === 'failed') throw error;
            cooldownUntil.set(
              choice.model,
              now() + (outcome.retryAfterMs ?? policy.fallback.cooldownMs),
            );
            exclude.add(choice.model);
            diag.debug(`modelmaxx router: ${choice.model} failed (${message}), falling back`);
          }
        }
        const tried = attempts.map((entry) => `${entry.model}: ${entry.error ?? entry.outcome}`);
        throw new AllCandidatesFailedError(
          attempts.length === 0
            ? `policy "${policy.name}": every candidate for class "${classKey}" is cooling down or excluded`
            : `policy "${policy.name}": all ${attempts.length} attempts failed (${tried.join('; ')})`,
          attempts,
        );
      } catch (error) {
        span.setAttribute(ATTR_MODELMAXX_ROUTE_ATTEMPT, attempts.length);
        span.setAttribute('error.type', error instanceof Error ? error.constructor.name : 'Error');
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        span.end();
        learn();
        throw error;
      }
    });
  }

  return {
    policy,
    engine,
    chat: {
      completions: {
        create: route as Router['chat']['completions']['create'],
      },
    },
    cooldowns: () => new Map(cooldownUntil),
    referenceModel,
    shadows: () => ({
      referenceModel,
      ...shadowStats,
      queued: shadowQueue.queued,
      running: shadowQueue.inFlight,
      estimates: monitor.estimates(),
    }),
    idle: () => shadowQueue.idle(),
    spend: () => {
      rollPeriod();
      return { periodStart, spentUsd };
    },
  };
}
