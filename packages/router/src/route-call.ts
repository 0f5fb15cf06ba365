/**
 * One routed request, step by step: the engine's decision (or the budget's cheapest pick),
 * the decision's plan of several calls (cascade voters, probes) when it has one, then the
 * attempt/fallback loop with cooldowns, the observation the engine learns from, the `route`
 * span's attributes, and the offer to shadow the answer.
 */
import { diag } from '@opentelemetry/api';
import type { Span, Tracer } from '@opentelemetry/api';
import type OpenAI from 'openai';
import { callContext, LLM_CONTEXT_KEY } from './candidate-call.js';
import type { CandidateClients } from './candidate-call.js';
import { choiceOf, nextChoice } from './candidate-choice.js';
import { classifyRequest } from './classifier.js';
import type { Cooldowns } from './cooldowns.js';
import type { Choice } from './decision.js';
import type { Decision, EngineOutcome, RoutingEngine } from './engine.js';
import type { RequestVector } from './features.js';
import { completedOutcome, failedOutcome } from './observation.js';
import { isPlan, runPlan } from './plan-run.js';
import type { Candidate, Policy } from './policy.js';
import type { RandomSource } from './random.js';
import { AllCandidatesFailedError, RouterConfigError, classifyError } from './route-errors.js';
import {
  attemptFailed,
  callAttributes,
  endFailed,
  endRouted,
  labelRouteSpan,
} from './route-span.js';
import type { RouteLabels } from './route-span.js';
import type {
  ChatCompletion,
  ChatParams,
  ChatResult,
  RouteAttempt,
  RouteRequestOptions,
  RouterOptions,
} from './router-types.js';
import type { ShadowDispatcher } from './shadow-dispatch.js';
import type { BudgetTracker } from './spend.js';

/** What every routed request of one router shares. */
export interface RouterCore {
  readonly policy: Policy;
  readonly engine: RoutingEngine;
  readonly candidates: ReadonlyMap<string, Candidate>;
  readonly clients: CandidateClients;
  readonly cooldowns: Cooldowns;
  readonly budget: BudgetTracker;
  readonly shadows: ShadowDispatcher;
  readonly referenceModel: string;
  readonly tracer: Tracer;
  readonly random: RandomSource;
  readonly now: () => number;
  readonly options: Pick<RouterOptions, 'check' | 'cost' | 'score'>;
  /** The request's feature vector (with its embedding when an embedder is given). */
  readonly vectorOf: (params: ChatParams, classKey: string) => Promise<RequestVector>;
  /** Each returned completion's (or stream's) decision (`router.decisionOf`). */
  readonly decisions: WeakMap<object, Decision>;
}

/** A request, as the route loop takes it. */
interface RouteRequest {
  readonly params: ChatParams;
  readonly task: string | undefined;
  readonly requestOptions: OpenAI.RequestOptions;
  readonly classKey: string;
  /** The model the request names (not "auto" nor the policy's name). */
  readonly pinned: string | undefined;
  readonly vector: RequestVector | undefined;
  /** The app's LLM context (task, feature) at the call, for shadow calls. */
  readonly llmContext: unknown;
}

/** The candidate a request names, or undefined for "auto" / the policy's name. */
function pinnedModel(core: RouterCore, params: ChatParams): string | undefined {
  const { policy } = core;
  if (params.model === 'auto' || params.model === policy.name) return undefined;
  if (!core.candidates.has(params.model)) {
    throw new RouterConfigError(
      `model "${params.model}" is neither "auto", the policy name "${policy.name}", nor one of its candidates`,
    );
  }
  return params.model;
}

/** Routes one chat request (`router.chat.completions.create`). */
export async function routeRequest(
  core: RouterCore,
  params: ChatParams,
  routeOptions: RouteRequestOptions = {},
): Promise<ChatResult> {
  const { task, ...requestOptions } = routeOptions;
  const pinned = pinnedModel(core, params);
  const classKey = classifyRequest({ ...params, task });
  const llmContext = callContext({}, task).getValue(LLM_CONTEXT_KEY);
  const vector =
    core.engine.mode === 'predict' && pinned === undefined
      ? await core.vectorOf(params, classKey)
      : undefined;
  const request = { params, task, requestOptions, classKey, pinned, vector, llmContext };
  return core.tracer.startActiveSpan(`route ${core.policy.name}`, (span: Span) =>
    new RouteCall(core, span, request).run(),
  );
}

class RouteCall {
  private readonly core: RouterCore;
  private readonly span: Span;
  private readonly request: RouteRequest;
  private readonly labels: RouteLabels;
  private readonly attempts: RouteAttempt[] = [];
  private readonly outcomes: EngineOutcome[] = [];
  private exclude = new Set<string>();
  private decision: Decision | undefined;
  private firstChoice: Choice | undefined;
  /** The first choice is a shadow exploration (`ShadowDispatcher.explore`). */
  private explored: string | undefined;
  private pinned: string | undefined;
  /** Why the pinned model is called after a cascade plan escalated. */
  private escalation: string | undefined;

  constructor(core: RouterCore, span: Span, request: RouteRequest) {
    this.core = core;
    this.span = span;
    this.request = request;
    this.pinned = request.pinned;
    this.labels = {
      policy: core.policy.name,
      classKey: request.classKey,
      referenceModel: core.referenceModel,
    };
  }

  async run(): Promise<ChatResult> {
    const time = this.core.now();
    this.exclude = this.core.cooldowns.active(time);
    labelRouteSpan(this.span, this.labels);
    if (this.pinned === undefined) this.firstChoice = this.decide(time);
    const decision = this.decision;
    if (decision !== undefined && isPlan(decision)) {
      const answered = await this.runPlan(decision);
      if (answered !== undefined) return answered;
    }
    return this.runAttempts(time);
  }

  /** The first choice: the budget's cheapest pick when it is spent, else the engine's decision. */
  private decide(time: number): Choice | undefined {
    const { engine, budget } = this.core;
    const { params, classKey, vector } = this.request;
    const overBudget = budget.choice(() => engine.table(time), classKey, this.exclude);
    if (overBudget !== undefined) return overBudget;
    this.decision = engine.decide({
      classKey,
      at: time,
      ...(params.stream === true ? { single: true } : {}),
      exclude: this.exclude,
      ...(vector === undefined ? {} : { vector }),
    });
    const choice = choiceOf(this.decision, classKey);
    const single = this.decision.first.length === 1 && this.decision.escalateTo === undefined;
    if (choice === undefined || params.stream === true || !single) {
      return choice;
    }
    const chosen = this.core.shadows.exploreChoice(classKey, choice, this.exclude);
    if (chosen !== choice) this.explored = chosen.model;
    return chosen;
  }

  private requestOptions(): OpenAI.RequestOptions {
    return {
      timeout: this.core.policy.fallback.timeoutMs,
      maxRetries: 0,
      ...this.request.requestOptions,
    };
  }

  /**
   * A plan of several calls (cascade voters, probes; ./plan-run.ts): returns the answer, or
   * undefined to go on with the attempt loop (the escalation, or a fallback when the answering
   * call failed).
   */
  private async runPlan(decision: Decision): Promise<ChatResult | undefined> {
    const { engine, options } = this.core;
    const check = options.check;
    const end = await runPlan(engine, decision, this.outcomes, {
      call: (models, role) => this.callVoters(models, role),
      check: check === undefined ? undefined : (lead) => check(lead, this.request.params),
    });
    this.firstChoice = undefined;
    if (end.kind === 'answered') {
      return this.answered(end.model, decision.weight, end.reason, end.answer);
    }
    for (const model of end.exclude) this.exclude.add(model);
    if (end.kind === 'failed') {
      this.pinned = undefined; // the answering call failed: fall back like a single call
      return undefined;
    }
    this.escalation = end.reason;
    this.pinned = end.model;
    return undefined;
  }

  /** Calls a plan's models in parallel and records each; the answers of those that answered. */
  private async callVoters(
    models: readonly string[],
    reason: string,
  ): Promise<Map<string, ChatCompletion>> {
    const completions = new Map<string, ChatCompletion>();
    const { candidates, clients } = this.core;
    const { params, task } = this.request;
    const results = await Promise.all(
      models.map(async (model) => {
        const route = callAttributes(this.labels, { model, reason });
        try {
          const call = clients.callInRoute(
            candidates.get(model)!,
            params,
            this.requestOptions(),
            route,
            task,
          );
          return { model, result: (await call) as ChatCompletion };
        } catch (error) {
          return { model, error };
        }
      }),
    );
    for (const entry of results) {
      if ('result' in entry) {
        this.attempts.push({ model: entry.model, outcome: 'ok' });
        completions.set(entry.model, entry.result);
        this.outcomes.push(this.completed(entry.model, entry.result));
        continue;
      }
      this.recordFailure(entry.model, entry.error);
    }
    return completions;
  }

  /** The attempt/fallback loop: up to `fallback.maxAttempts` calls, one at a time. */
  private async runAttempts(time: number): Promise<ChatResult> {
    const voterCalls = this.attempts.length;
    try {
      for (let attempt = 1; attempt <= this.core.policy.fallback.maxAttempts; attempt += 1) {
        const choice = this.attemptChoice(attempt, time);
        if (choice === undefined) break;
        const result = await this.attempt(choice, attempt, voterCalls + attempt);
        if (result !== undefined) {
          return this.answered(choice.model, choice.weight, choice.reason, result);
        }
      }
      throw this.allFailed();
    } catch (error) {
      endFailed(this.span, error, this.attempts.length);
      this.learn();
      throw error;
    }
  }

  /** The model of one attempt: the first choice, the pinned (or escalation) model, or a fallback. */
  private attemptChoice(attempt: number, time: number): Choice | undefined {
    const { pinned } = this;
    if (attempt === 1 && pinned === undefined && this.firstChoice !== undefined) {
      return this.firstChoice;
    }
    if (pinned !== undefined && attempt === 1 && !this.exclude.has(pinned)) {
      return {
        model: pinned,
        weight: 1,
        reason: this.escalation ?? 'model pinned by the request',
        classKey: this.request.classKey,
      };
    }
    const { policy, random, engine } = this.core;
    return nextChoice(
      policy,
      random,
      engine.table(time),
      this.request.classKey,
      this.exclude,
      attempt,
    );
  }

  /**
   * One attempt: the answer, or undefined after a retryable failure (the model cools down and
   * is excluded). A non-retryable failure is thrown.
   */
  private async attempt(
    choice: Choice,
    attempt: number,
    callNumber: number,
  ): Promise<ChatResult | undefined> {
    const { params, task } = this.request;
    const route = callAttributes(this.labels, { ...choice, attempt: callNumber });
    try {
      const candidate = this.core.candidates.get(choice.model)!;
      const result = await this.core.clients.callInRoute(
        candidate,
        params,
        this.requestOptions(),
        route,
        task,
      );
      this.attempts.push({ model: choice.model, outcome: 'ok' });
      this.outcomes.push(this.completed(choice.model, result));
      return result;
    } catch (error) {
      attemptFailed(this.span, choice.model, attempt, error);
      if (this.recordFailure(choice.model, error) === 'failed') throw error;
      this.exclude.add(choice.model);
      const message = error instanceof Error ? error.message : String(error);
      diag.debug(`modelmaxx router: ${choice.model} failed (${message}), falling back`);
      return undefined;
    }
  }

  private completed(model: string, result: unknown): EngineOutcome {
    const { candidates, budget, options } = this.core;
    return completedOutcome(candidates.get(model)!, result, this.request.params, budget, options);
  }

  /** Records a failed call (attempt, outcome, cooldown when retryable); returns its class. */
  private recordFailure(model: string, error: unknown): 'retryable' | 'failed' {
    const failure = classifyError(error);
    const message = error instanceof Error ? error.message : String(error);
    this.attempts.push({ model, outcome: failure.status, error: message });
    this.outcomes.push(failedOutcome(model));
    if (failure.status === 'retryable') this.core.cooldowns.start(model, failure);
    return failure.status;
  }

  private allFailed(): AllCandidatesFailedError {
    const { attempts } = this;
    const policy = this.core.policy.name;
    const tried = attempts.map((entry) => `${entry.model}: ${entry.error ?? entry.outcome}`);
    return new AllCandidatesFailedError(
      attempts.length === 0
        ? `policy "${policy}": every candidate for class "${this.request.classKey}" is cooling down or excluded (${this.coolingDown()})`
        : `policy "${policy}": all ${attempts.length} attempts failed (${tried.join('; ')})`,
      attempts,
    );
  }

  /** Which models cool down and for how long, e.g. `gpt-4o cooling down for 28.5 s more`. */
  private coolingDown(): string {
    const now = this.core.now();
    const cooling = [...this.core.cooldowns.snapshot()].filter(([, until]) => until > now);
    if (cooling.length === 0) return 'none is cooling down: the policy makes none eligible';
    return cooling
      .map(
        ([model, until]) => `${model} cooling down for ${((until - now) / 1000).toFixed(1)} s more`,
      )
      .join(', ');
  }

  private learn(): void {
    if (this.decision !== undefined) this.core.engine.observe(this.decision, this.outcomes);
  }

  /** The request is answered: end the span, learn, offer the answer for a shadow comparison. */
  private answered(model: string, weight: number, reason: string, result: ChatResult): ChatResult {
    endRouted(this.span, { model, weight, reason, attempts: this.attempts.length });
    this.learn();
    const { decision } = this;
    if (decision !== undefined) this.core.decisions.set(result, decision);
    const { params } = this.request;
    if (
      this.core.shadows.enabled &&
      decision !== undefined &&
      params.stream !== true &&
      decision.first.length === 1 &&
      decision.escalateTo === undefined
    ) {
      this.core.shadows.offer({
        model,
        classKey: this.request.classKey,
        decision,
        params,
        completion: result as ChatCompletion,
        routeSpan: this.span.spanContext(),
        llmContext: this.request.llmContext,
        task: this.request.task,
        ...(this.explored === model ? { explored: true } : {}),
      });
    }
    return result;
  }
}
