/**
 * A routed request's choices: per attempt, the router engine's decision (or the budget-steered
 * order) among the candidates not excluded — not admitted, not served on this wire, cooling down,
 * or failed already — and the cooldown a failed candidate gets. Without a policy there is one
 * attempt, at the requested model.
 */
import { classifyRequest, isPlan, nextChoice } from '@modelmaxx/router';
import type { Decision, EngineOutcome, ShadowDispatcher } from '@modelmaxx/router';
import type { Admission } from './access/types.js';
import { RequestError } from './http.js';
import { classifiable } from './request.js';
import type { GatewayRequest } from './request.js';
import type { Choice, RouteLabels } from './spans.js';
import type { PolicyState, Resolution, Target, Targets } from './targets.js';
import { bodyFor } from './translate/body.js';

type Admitted = Extract<Admission, { ok: true }>;

export class Routing {
  readonly policy: PolicyState | undefined;
  readonly labels: RouteLabels | undefined;
  readonly maxAttempts: number;
  /** Every attempt's outcome, for the engine's `observe`. */
  readonly outcomes: EngineOutcome[] = [];
  private readonly request: GatewayRequest;
  /** The candidates the request's model resolved to. */
  readonly candidates: readonly string[];
  private readonly exclude = new Set<string>();
  private readonly steered: readonly string[] | undefined;
  private readonly steeredBecause: string | undefined;
  /** The engine's decision (none for a real model or a budget-steered request). */
  decision: Decision | undefined;
  /** The first call's choice when the decision is one call; consumed by the first attempt. */
  private first: Choice | undefined;
  /** The model asked after a cascade plan escalated, and why. */
  private escalation: Choice | undefined;
  /** A cascade plan (several calls) for a non-streamed request: ./cascade.ts runs it first. */
  plan: Decision | undefined;
  /** Calls the plan made (the attempts after it are numbered on). */
  planCalls = 0;
  /**
   * The answer may be offered for a shadow comparison (as the routed client offers it): a
   * non-streamed chat, messages or responses request the engine routed to one model (no plan,
   * not steered).
   */
  shadowable = false;
  /** The first call went to this cheaper model for its shadow verdict (`shadow.explore`). */
  explored: string | undefined;
  /** Bodies translated for candidates in the other provider's format, made once. */
  private readonly translated = new Map<string, Buffer>();
  /** Why the request cannot go anywhere: no candidate it could be translated for (a 400). */
  refusal: RequestError | undefined;

  constructor(
    request: GatewayRequest,
    resolution: Resolution,
    admission: Admitted,
    targets: Targets,
    shadows?: ReadonlyMap<string, ShadowDispatcher>,
  ) {
    this.request = request;
    this.policy = resolution.policy;
    this.candidates = resolution.candidates;
    this.maxAttempts = this.policy?.policy.fallback.maxAttempts ?? 1;
    this.steered = admission.steered !== undefined ? [...admission.candidates] : undefined;
    this.steeredBecause = admission.steered;
    if (this.policy === undefined) {
      const target = targets.ofModel(request.requested, request.wire);
      if (target !== undefined) this.translate(request.requested, target);
      return;
    }
    this.labels = {
      policy: this.policy.policy.name,
      classKey: classifyRequest(classifiable(request)),
      referenceModel: this.policy.referenceModel,
    };
    const allowed = new Set(admission.candidates);
    for (const { model } of this.policy.policy.candidates) {
      if (
        !allowed.has(model) ||
        targets.ofCandidate(this.policy, model, request.wire) === undefined
      ) {
        this.exclude.add(model);
      }
    }
    this.translateCandidates(targets);
    for (const [model, until] of this.policy.cooldownUntil) {
      if (until > request.at) this.exclude.add(model);
      else this.policy.cooldownUntil.delete(model);
    }
    if (this.refusal === undefined) this.decide(shadows?.get(this.policy.policy.name));
  }

  /** A candidate in the other provider's format: its body, or why it cannot have one. */
  private translate(model: string, target: Target): boolean {
    if (target.wire === this.request.wire) return true;
    try {
      this.translated.set(model, bodyFor(this.request, target));
      return true;
    } catch (error) {
      if (!(error instanceof RequestError)) throw error;
      this.refusal ??= error;
      return false;
    }
  }

  /** Candidates the request cannot be translated for are left out; a 400 when none is left. */
  private translateCandidates(targets: Targets): void {
    let left = false;
    for (const { model } of this.policy!.policy.candidates) {
      if (this.exclude.has(model)) continue;
      const target = targets.ofCandidate(this.policy!, model, this.request.wire)!;
      if (this.translate(model, target)) left = true;
      else this.exclude.add(model);
    }
    if (left) this.refusal = undefined;
  }

  /** The body the candidate's upstream gets. */
  body(model: string, target: Target): Buffer {
    return this.translated.get(model) ?? bodyFor(this.request, target);
  }

  /**
   * The engine's decision, once, as the routed client makes it: one model by weight for a
   * stream (or embeddings), else the policy's plan (a cascade when it has one). A shadowed
   * policy may send a call the engine gave the reference to a cheaper model whose estimate for
   * the class is still open, as the routed client does (`ShadowDispatcher.explore`).
   */
  private decide(shadows: ShadowDispatcher | undefined): void {
    if (this.policy === undefined || this.steered !== undefined) return;
    const { request } = this;
    const single = request.stream || request.wire === 'embeddings';
    this.decision = this.policy.engine.decide({
      classKey: this.labels!.classKey,
      at: request.at,
      ...(single ? { single: true } : {}),
      exclude: this.exclude,
    });
    if (isPlan(this.decision)) {
      this.plan = this.decision;
      return;
    }
    this.shadowable = !single;
    const model = this.decision.first[0];
    if (model === undefined) return;
    const first = { model, weight: this.decision.weight, reason: this.decision.reason };
    this.first =
      this.shadowable && shadows !== undefined
        ? shadows.exploreChoice(this.labels!.classKey, first, this.exclude)
        : first;
    if (this.first !== first) this.explored = this.first.model;
  }

  /** The candidate of this attempt; undefined when none is left. */
  choose(attempt: number): Choice | undefined {
    if (this.policy === undefined) {
      return attempt === 1 ? { model: this.request.requested, weight: 1, reason: '' } : undefined;
    }
    if (this.steered !== undefined) {
      const model = this.steered.find((entry) => !this.exclude.has(entry));
      return model === undefined
        ? undefined
        : { model, weight: 1, reason: `budget steer: ${this.steeredBecause}` };
    }
    if (attempt === 1 && this.first !== undefined) return this.first;
    const escalation = this.escalation;
    if (attempt === 1 && escalation !== undefined && !this.exclude.has(escalation.model)) {
      return escalation;
    }
    const { policy, engine, random } = this.policy;
    const next = nextChoice(
      policy,
      random,
      engine.table(this.request.at),
      this.labels!.classKey,
      this.exclude,
      attempt,
    );
    return next === undefined
      ? undefined
      : { model: next.model, weight: next.weight, reason: next.reason };
  }

  /** The plan is over without an answer: `model` is asked next (an escalation) or a fallback. */
  afterPlan(exclude: readonly string[], escalation?: Choice): void {
    for (const model of exclude) this.exclude.add(model);
    if (escalation !== undefined) this.escalation = escalation;
  }

  /** Another attempt is possible: attempts left and a candidate not excluded. */
  canFallBack(attempt: number): boolean {
    return (
      this.policy !== undefined &&
      attempt < this.maxAttempts &&
      this.candidates.some((model) => !this.exclude.has(model))
    );
  }

  /**
   * A candidate failed (429, 5xx, timeout, connection): it cools down and is not tried again;
   * `costUsd`: what the call was accounted at (a timeout's estimate), for the engine.
   */
  failed(model: string, cooldownMs: number | undefined, now: number, costUsd = 0): void {
    this.coolDown(model, cooldownMs, now, { costUsd });
    if (this.policy !== undefined) this.exclude.add(model);
  }

  /**
   * A failed call: counted for the engine; a retryable failure (429, 5xx, timeout, connection)
   * cools the model down. A plan's voters are not excluded (as the routed client's are not).
   */
  coolDown(
    model: string,
    cooldownMs: number | undefined,
    now: number,
    { retryable = true, costUsd = 0 }: { retryable?: boolean; costUsd?: number } = {},
  ): void {
    this.outcomes.push({ model, costUsd, failed: true });
    if (this.policy === undefined || !retryable) return;
    this.policy.cooldownUntil.set(
      model,
      now + (cooldownMs ?? this.policy.policy.fallback.cooldownMs),
    );
  }

  /** Tells the engine how the request's calls went (as the routed client: once it decided). */
  observe(): void {
    if (this.policy !== undefined && this.decision !== undefined) {
      this.policy.engine.observe(this.decision, this.outcomes);
    }
  }
}
