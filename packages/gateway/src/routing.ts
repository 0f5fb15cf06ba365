/**
 * A routed request's choices: per attempt, the router engine's decision (or the budget-steered
 * order) among the candidates not excluded — not admitted, not served on this wire, cooling down,
 * or failed already — and the cooldown a failed candidate gets. Without a policy there is one
 * attempt, at the requested model.
 */
import { classifyRequest } from '@modelmaxx/router';
import type { Decision, EngineOutcome } from '@modelmaxx/router';
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
  private decision: Decision | undefined;
  /** Bodies translated for candidates in the other provider's format, made once. */
  private readonly translated = new Map<string, Buffer>();
  /** Why the request cannot go anywhere: no candidate it could be translated for (a 400). */
  refusal: RequestError | undefined;

  constructor(
    request: GatewayRequest,
    resolution: Resolution,
    admission: Admitted,
    targets: Targets,
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
    const next = this.policy.engine.decide({
      classKey: this.labels!.classKey,
      at: this.request.at,
      single: true,
      exclude: this.exclude,
    });
    this.decision ??= next;
    const model = next.first[0];
    if (model === undefined) return undefined;
    return {
      model,
      weight: next.weight,
      reason: attempt === 1 ? next.reason : `fallback: ${next.reason}`,
    };
  }

  /** Another attempt is possible: attempts left and a candidate not excluded. */
  canFallBack(attempt: number): boolean {
    return (
      this.policy !== undefined &&
      attempt < this.maxAttempts &&
      this.candidates.some((model) => !this.exclude.has(model))
    );
  }

  /** A candidate failed (429, 5xx, timeout, connection): it cools down and is not tried again. */
  failed(model: string, cooldownMs: number | undefined, now: number): void {
    this.outcomes.push({ model, costUsd: 0, failed: true });
    if (this.policy === undefined) return;
    this.policy.cooldownUntil.set(
      model,
      now + (cooldownMs ?? this.policy.policy.fallback.cooldownMs),
    );
    this.exclude.add(model);
  }

  /** Tells the engine how the request's attempts went. */
  observe(): void {
    if (this.policy !== undefined && this.decision !== undefined && this.outcomes.length > 0) {
      this.policy.engine.observe(this.decision, this.outcomes);
    }
  }
}
