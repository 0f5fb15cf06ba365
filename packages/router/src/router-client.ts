/**
 * The routed client: `router.chat.completions.create({ model: 'auto', ... })` in the openai
 * SDK's shape. Picks a candidate by weight, falls back on 429 / 5xx / timeouts with cooldowns
 * and a bounded number of attempts, never to a model the policy excludes, and records the
 * decision on a span (each attempt's SDK span, when instrumented, is its child).
 */
import { SpanStatusCode, context, createContextKey, diag, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';
import { costOf } from '@modelmaxx/pricing';
import {
  ATTR_MODELMAXX_ROUTE_ATTEMPT,
  ATTR_MODELMAXX_ROUTE_CLASS,
  ATTR_MODELMAXX_ROUTE_MODEL,
  ATTR_MODELMAXX_ROUTE_POLICY,
  ATTR_MODELMAXX_ROUTE_REASON,
  ATTR_MODELMAXX_ROUTE_WEIGHT,
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
    spend: () => {
      rollPeriod();
      return { periodStart, spentUsd };
    },
  };
}
