/**
 * The routing engine: one pure core (no I/O; the clock and the random source are passed in)
 * that decides, per request, which models to call, in what order, and when to stop or
 * escalate, and learns from `observe(outcomes)`. The offline replay runs it over recorded
 * outcomes; the routed client runs it over real SDK calls. Same policy, same random source,
 * same observations: same decisions.
 *
 * Modes (from the policy):
 * - weights: per-class Thompson weights (`computeWeights`) over the engine's own windowed,
 *   decayed stats (`statsWindow`, `halfLifeMs`, refreshed every `refreshIntervalMs`), or over
 *   an external weight table (a `WeightUpdater` reading the collector).
 * - cascade (`cascade.enabled`): two cheap voters, escalate to the best model when their
 *   answers differ; fixed (`cascade.voters` + `escalateTo`) or learned per class (`CascadePlanner`).
 * - predict (`predictor.enabled`): per-request quality prediction from the request's features
 *   (`QualityPredictor`), cheapest within `qualityMargin` of the best or, with
 *   `goal.costPenalty`, the best quality − penalty × cost ÷ the dearest candidate's cost.
 */
import { CascadePlanner } from './cascade.js';
import type { CallOutcome, CascadePlan } from './cascade.js';
import { chooseModel, computeWeights } from './decision.js';
import type { WeightTable } from './decision.js';
import type { RequestVector } from './features.js';
import type { Policy } from './policy.js';
import { FailureRates } from './failure-rates.js';
import { requestNames } from './feature-names.js';
import type { ExplainedRequest } from './feature-names.js';
import { CostMeans, PredictMode } from './predict-mode.js';
import { QualityPredictor } from './predictor.js';
import {
  ShiftCheck,
  TrustFit,
  crossClassTransfer,
  learnHistory,
  scoredOutcomes,
} from './trust-fit.js';
import type { RandomSource } from './random.js';
import { WindowStats } from './window-stats.js';

export interface EngineRequest {
  /** Routing class: the app's task label, or a class from request features. */
  readonly classKey: string;
  /** Request time (ms); replay uses a synthetic clock. */
  readonly at: number;
  /** The request's feature vector (`featurize`); needed by the predict mode. */
  readonly vector?: RequestVector;
  /** One model only (streamed or pinned requests): no cascade, no probe. */
  readonly single?: boolean;
  /** Models that may not be called now (cooling down). */
  readonly exclude?: ReadonlySet<string>;
}

export interface PredictedQuality {
  readonly model: string;
  readonly quality: number;
  readonly costUsd: number;
  /** Share of the prediction coming from the request's features rather than the class. */
  readonly evidence?: number;
  readonly features?: readonly string[];
  /** The most similar earlier requests (with an embedding): how many, and their mean score. */
  readonly neighbours?: { readonly count: number; readonly mean: number };
}

export type DecisionKind =
  'weights' | 'single' | 'pair' | 'triple' | 'probe' | 'predict' | 'explore' | 'warmup';

export interface Decision {
  readonly classKey: string;
  readonly at: number;
  readonly kind: DecisionKind;
  /** Models called first, in parallel. */
  readonly first: readonly string[];
  /** Pair / triple: the model asked when the voters disagree (or the check fails). */
  readonly escalateTo?: string;
  /** Triple: asked on disagreement before escalating. */
  readonly third?: string;
  /** Agreed answers that still escalate (answer-conditioned cascade). */
  readonly escalateAnswers?: readonly string[];
  /** Whose answer is used when the plan stops after `first` (single, probe). */
  readonly answerWith: string;
  readonly weight: number;
  /** One line: why (weights, plan, predictions and features). */
  readonly reason: string;
  readonly predicted?: readonly PredictedQuality[];
  /** Internal: the planner's plan and the request vector, for `observe`. */
  readonly plan?: CascadePlan;
  readonly vector?: RequestVector;
}

/** The outcome of one call made for a request. */
export interface EngineOutcome {
  readonly model: string;
  /** Quality 0..1 when known (evaluator, check, recorded data); undefined when not scored. */
  readonly score?: number;
  readonly costUsd: number;
  /** The normalized answer (`normalizeAnswer`), for voter agreement. */
  readonly answer?: string | undefined;
  /** The call failed (429, 5xx, timeout). */
  readonly failed?: boolean;
}

/** One request of a labelled history and the outcome of every candidate on it (`fit`). */
export interface LabelledExample {
  readonly request: EngineRequest;
  readonly outcomes: readonly EngineOutcome[];
}

export type Step =
  | { readonly done: false; readonly call: readonly string[] }
  | { readonly done: true; readonly answeredBy: string };

export interface EngineOptions {
  readonly policy: Policy;
  readonly random: RandomSource;
  /** External weights (e.g. a `WeightUpdater` over the collector) for the weights mode. */
  readonly weights?: () => WeightTable;
  /**
   * Cold start per class (cascade probes and predictor warm-up) — overrides the policy's;
   * the replay scales it with the data so warm-up never outlasts the data.
   */
  readonly warmup?: number | ((classKey: string) => number);
}

const warmupOf = (warmup: number | ((classKey: string) => number), classKey: string) =>
  typeof warmup === 'number' ? warmup : warmup(classKey);

export class RoutingEngine {
  readonly policy: Policy;
  readonly mode: 'weights' | 'cascade' | 'predict';
  private readonly random: RandomSource;
  private readonly models: readonly string[];
  private readonly index: ReadonlyMap<string, number>;
  private readonly external: (() => WeightTable) | undefined;
  private readonly stats: WindowStats;
  private readonly planner: CascadePlanner | undefined;
  private readonly predictor: QualityPredictor | undefined;
  private readonly predictMode: PredictMode | undefined;
  /** How often calls fail lately (for the predict mode, whose predictor learns from answers). */
  private readonly failures: FailureRates | undefined;
  /** Mean cost per call per class and model (for the predict mode). */
  private readonly costs: CostMeans;
  /** After an offline fit: whether each class's live scores still match the history's. */
  private shift: ShiftCheck | undefined;
  private cached: WeightTable | undefined;
  private refreshedAt = -Infinity;

  constructor(options: EngineOptions) {
    const { policy } = options;
    this.policy = policy;
    this.random = options.random;
    this.models = policy.candidates.map((candidate) => candidate.model);
    this.index = new Map(this.models.map((model, index) => [model, index]));
    this.external = options.weights;
    this.stats = new WindowStats(policy);
    this.mode = policy.predictor.enabled
      ? 'predict'
      : policy.cascade.enabled
        ? 'cascade'
        : 'weights';
    if (this.mode === 'cascade' && policy.cascade.voters === undefined) {
      this.planner = new CascadePlanner(policy, {
        random: this.random,
        ...(options.warmup === undefined
          ? {}
          : {
              warmupProbes: (classKey: string) =>
                Math.min(warmupOf(options.warmup!, classKey), policy.cascade.warmupProbes),
            }),
      });
    }
    this.costs = new CostMeans(policy);
    if (this.mode === 'predict') {
      this.predictor = new QualityPredictor({
        candidates: this.models.length,
        halfLifeMs: policy.halfLifeMs,
        priors: policy.candidates.map((candidate) => candidate.priorQuality ?? 0.5),
        classWeight: policy.predictor.classWeight,
        priorPrecision: policy.predictor.regularization,
        classPrior: policy.predictor.classPrior,
        neighbours: policy.predictor.neighbours,
      });
      this.failures = new FailureRates(this.models.length, policy.halfLifeMs);
      this.predictMode = new PredictMode({
        policy,
        random: this.random,
        predictor: this.predictor,
        costs: this.costs,
        failures: this.failures,
        warmup: (classKey) =>
          Math.min(
            options.warmup === undefined ? Infinity : warmupOf(options.warmup, classKey),
            policy.predictor.warmup,
          ),
      });
    }
  }

  /** The weight table for `at`: external, or recomputed from the own stats every refresh interval. */
  table(at: number): WeightTable {
    if (this.external !== undefined) return this.external();
    if (this.cached === undefined || at - this.refreshedAt >= this.policy.refreshIntervalMs) {
      this.cached = computeWeights({
        policy: this.policy,
        stats: this.stats.snapshot(at),
        random: this.random,
        draws: 100,
      });
      this.refreshedAt = at;
    }
    return this.cached;
  }

  private byWeight(request: EngineRequest, note = ''): Decision {
    const choice = chooseModel(
      this.table(request.at),
      request.classKey,
      this.random,
      request.exclude,
    );
    if (choice === undefined) {
      return {
        classKey: request.classKey,
        at: request.at,
        kind: 'weights',
        first: [],
        answerWith: '',
        weight: 0,
        reason: note + 'every candidate is excluded (cooling down or ineligible)',
      };
    }
    const model = choice.model;
    return {
      classKey: request.classKey,
      at: request.at,
      kind: 'weights',
      first: [model],
      answerWith: model,
      weight: choice.weight,
      reason: note + choice.reason,
    };
  }

  decide(request: EngineRequest): Decision {
    const exclude = request.exclude;
    const blocked = (models: readonly string[]) =>
      exclude !== undefined && models.some((model) => exclude.has(model));
    if (this.predictMode !== undefined && request.vector !== undefined) {
      return this.predictMode.decide(request, request.vector);
    }
    if (this.mode !== 'cascade' || request.single === true) return this.byWeight(request);
    const cascade = this.policy.cascade;
    if (cascade.voters !== undefined && cascade.escalateTo !== undefined) {
      if (blocked(cascade.voters)) return this.byWeight(request, 'a voter is cooling down: ');
      return {
        classKey: request.classKey,
        at: request.at,
        kind: 'pair',
        first: cascade.voters,
        escalateTo: cascade.escalateTo,
        answerWith: cascade.voters[0]!,
        weight: 1,
        reason: `cascade: ${cascade.voters.join(' and ')}, escalate to ${cascade.escalateTo} when they disagree`,
      };
    }
    const plan = this.planner!.plan(request.classKey);
    const name = (model: number) => this.models[model]!;
    const base = { classKey: request.classKey, at: request.at, weight: 1, plan };
    let decision: Decision;
    if (plan.kind === 'single') {
      decision = {
        ...base,
        kind: 'single',
        first: [name(plan.model)],
        answerWith: name(plan.model),
        reason: plan.reason,
      };
    } else if (plan.kind === 'probe') {
      decision = {
        ...base,
        kind: 'probe',
        first: [...plan.voters.map(name), name(plan.escalateTo)],
        answerWith: name(plan.escalateTo),
        reason: plan.reason,
      };
    } else {
      decision = {
        ...base,
        kind: plan.kind,
        first: [name(plan.voters[0]), name(plan.voters[1])],
        escalateTo: name(plan.escalateTo),
        ...(plan.kind === 'triple' ? { third: name(plan.voters[2]) } : {}),
        ...(plan.kind === 'pair' && plan.escalateAnswers !== undefined
          ? { escalateAnswers: plan.escalateAnswers }
          : {}),
        answerWith: name(plan.voters[0]),
        reason: plan.reason,
      };
    }
    if (
      blocked([
        ...decision.first,
        ...(decision.escalateTo === undefined ? [] : [decision.escalateTo]),
      ])
    ) {
      return this.byWeight(request, 'a planned model is cooling down: ');
    }
    return decision;
  }

  /** Features behind a predict decision (off the hot path); `request` names hashed slots. */
  explain(decision: Decision, request?: ExplainedRequest): readonly PredictedQuality[] {
    const [predictor, vector] = [this.predictor, decision.vector];
    if (predictor === undefined || vector === undefined) return decision.predicted ?? [];
    const names = requestNames(request, this.policy.predictor.features);
    return (decision.predicted ?? []).map((entry) => {
      const model = this.index.get(entry.model)!;
      const neighbours = predictor.neighbourSummary(model, vector, decision.classKey);
      return {
        ...entry,
        features: predictor.topFeatures(model, vector, 4, names),
        ...(neighbours === undefined ? {} : { neighbours }),
      };
    });
  }

  /**
   * What to do after the calls so far: call more (escalate), or stop and answer. `accepted`
   * false (the app's check rejected the agreed answer) escalates like a disagreement.
   */
  next(decision: Decision, outcomes: readonly EngineOutcome[], accepted = true): Step {
    const called = new Set(outcomes.map((outcome) => outcome.model));
    const pending = decision.first.filter((model) => !called.has(model));
    if (pending.length > 0) return { done: false, call: pending };
    if (decision.escalateTo === undefined) return { done: true, answeredBy: decision.answerWith };
    const get = (model: string) => outcomes.find((outcome) => outcome.model === model);
    const [x, y] = decision.first.map(get);
    const usable = (outcome: EngineOutcome | undefined) =>
      outcome !== undefined && outcome.failed !== true && outcome.answer !== undefined;
    const agree = usable(x) && usable(y) && x!.answer === y!.answer;
    if (agree && accepted && !(decision.escalateAnswers?.includes(x!.answer!) ?? false)) {
      return { done: true, answeredBy: decision.first[0]! };
    }
    if (decision.third !== undefined && !agree) {
      const third = get(decision.third);
      if (third === undefined) return { done: false, call: [decision.third] };
      if (
        usable(third) &&
        ((usable(x) && third.answer === x!.answer) || (usable(y) && third.answer === y!.answer))
      ) {
        return { done: true, answeredBy: decision.third };
      }
    }
    if (!called.has(decision.escalateTo)) return { done: false, call: [decision.escalateTo] };
    return { done: true, answeredBy: decision.escalateTo };
  }

  /**
   * Learns from scores that arrive after the calls were observed (a shadow comparison's
   * verdict: the routed model's score and the reference's). Adds evidence of quality only: the
   * calls, costs and errors were counted by `observe`. Updates the class statistics and, in the
   * predict mode, the per-request predictor with the decision's request vector.
   */
  score(
    decision: Decision,
    scores: readonly { model: string; score: number }[],
    at = decision.at,
  ): void {
    const known = scores.filter(
      ({ model, score }) => this.index.has(model) && Number.isFinite(score),
    );
    const full = known.length >= this.models.length;
    for (const { model: name, score } of known) {
      const model = this.index.get(name)!;
      this.stats.addScore(decision.classKey, model, at, score);
      if (this.predictor !== undefined && decision.vector !== undefined) {
        const part = this.partOf(decision.classKey, decision.vector, model, score, full);
        this.predictor.update(model, decision.vector, decision.classKey, score, at, part);
      }
    }
  }

  /**
   * Offline fit from a labelled history in which every candidate's outcome is known per
   * request (full information, the way RouteLLM's routers are trained): the class statistics,
   * the cost means, the per-request predictor and the cascade planner's pair counts learn from
   * every outcome, and each example counts as one cold-start request of its class (a fitted
   * class needs no warm-up). Makes no decision and draws no random number, so a replay that
   * fits its train split and a routed client fitted with the same examples decide alike.
   * Examples are learned in order; their `at` times drive forgetting like live traffic. In
   * the predict mode, the second half of the history is also predicted before it is learned
   * (held out) to choose how far the request's features may move a prediction from its
   * class's mean (`TrustFit`), and the per-request model then makes `predictor.fitPasses − 1`
   * more passes over the history. A class not in the history is predicted and learned online
   * by a fresh predictor of its own unless weights learned on some of the history's classes
   * ranked the candidates on the others (`crossClassTransfer`). Afterwards one call's outcome teaches the class
   * statistics only, unless the class has shifted (`partOf`; docs/routing.md has the figures).
   */
  fit(examples: Iterable<LabelledExample>): void {
    const list = [...examples];
    const predictor = this.predictor;
    if (predictor !== undefined) {
      predictor.trust = 1;
      // held-out predictions read the neighbours separately (`TrustFit`)
      predictor.neighbourWeight = 0;
      predictor.markFitted(false);
    }
    this.shift = undefined;
    const trust = predictor === undefined ? undefined : new TrustFit(predictor, this.models.length);
    for (const [at, { request, outcomes }] of list.entries()) {
      if (trust !== undefined && 2 * at >= list.length) trust.score(request, outcomes, this.index);
      this.learn(request.classKey, request.at, request.vector, outcomes);
      this.predictMode?.count(request.classKey);
      if (this.planner !== undefined && outcomes.every((outcome) => outcome.score !== undefined)) {
        this.planner.observe(
          request.classKey,
          this.planner.fitPlan(request.classKey),
          this.callOutcomes(outcomes),
        );
      }
    }
    if (predictor === undefined) return;
    this.shift = new ShiftCheck(this.models.length);
    const { neighbours } = this.policy.predictor;
    const choice = trust!.best(neighbours);
    predictor.trust = choice.trust;
    predictor.neighbourShare = choice.neighbourShare;
    predictor.neighbourWeight = choice.neighbourWeight;
    const passes = this.policy.predictor.fitPasses;
    for (let pass = 1; pass < passes; pass += 1)
      learnHistory(predictor, list, this.index, 'weights');
    predictor.markFitted(!crossClassTransfer(predictor, list, this.index, passes).transfers);
  }

  private callOutcomes(outcomes: readonly EngineOutcome[]): CallOutcome[] {
    return outcomes
      .filter((outcome) => this.index.has(outcome.model))
      .map((outcome) => ({
        model: this.index.get(outcome.model)!,
        score: outcome.failed === true ? 0 : outcome.score!,
        costUsd: outcome.costUsd,
        answer: outcome.answer,
      }));
  }

  /** Learns from the outcomes of the calls made for one decision (bandit feedback). */
  observe(decision: Decision, outcomes: readonly EngineOutcome[]): void {
    this.learn(decision.classKey, decision.at, decision.vector, outcomes);
    if (this.planner !== undefined && decision.plan !== undefined) {
      if (outcomes.some((outcome) => outcome.score === undefined)) return;
      this.planner.observe(decision.classKey, decision.plan, this.callOutcomes(outcomes));
    }
  }

  /** The class statistics, cost means and predictor learn from one request's outcomes. */
  private learn(
    classKey: string,
    at: number,
    vector: RequestVector | undefined,
    outcomes: readonly EngineOutcome[],
  ): void {
    // every candidate scored (full information): read by `partOf` after a fit only
    const full =
      this.shift !== undefined && scoredOutcomes(outcomes, this.index).length >= this.models.length;
    for (const outcome of outcomes) {
      const model = this.index.get(outcome.model);
      if (model === undefined) continue;
      this.stats.add(classKey, model, at, outcome);
      this.costs.add(classKey, model, outcome.costUsd);
      this.failures?.add(classKey, model, at, outcome.failed === true);
      if (
        this.predictor !== undefined &&
        vector !== undefined &&
        outcome.score !== undefined &&
        outcome.failed !== true
      ) {
        const part = this.partOf(classKey, vector, model, outcome.score, full);
        this.predictor.update(model, vector, classKey, outcome.score, at, part);
      }
    }
  }

  /**
   * What a live score teaches the predictor after a fit: the class statistics only, unless
   * every candidate was scored (`full`) or the class's scores left their predictions (shift):
   * a single call teaches only the model called and skews the differences the fit learned.
   */
  private partOf(
    classKey: string,
    vector: RequestVector,
    model: number,
    score: number,
    full: boolean,
  ): 'both' | 'class' {
    if (this.shift === undefined) return 'both';
    const residual = score - this.predictor!.predict(model, vector, classKey).quality;
    const shifted = this.shift.observe(classKey, model, residual);
    return full || shifted ? 'both' : 'class';
  }
}
