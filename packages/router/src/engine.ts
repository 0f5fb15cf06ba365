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
import type { ModelClassStats, WeightTable } from './decision.js';
import type { RequestVector } from './features.js';
import type { Policy } from './policy.js';
import { QualityPredictor } from './predictor.js';
import type { RandomSource } from './random.js';

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

const BUCKETS = 60;
/** Per model in a stats bucket: calls, errors, cost, score sum, scored calls, score squares. */
const SLOTS = 6;

const warmupOf = (warmup: number | ((classKey: string) => number), classKey: string) =>
  typeof warmup === 'number' ? warmup : warmup(classKey);
const WINDOW_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

export function windowMs(window: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(window);
  if (match === null) throw new Error(`invalid window "${window}"`);
  return Number(match[1]) * WINDOW_UNITS[match[2]!]!;
}

/**
 * The engine's own stats: per class and model, buckets of `statsWindow / 60`, read as the
 * sum over the window with each bucket decayed by `halfLifeMs` (like the collector's
 * per-minute rollups over `/api/stats?window=` blended with decayed evidence).
 */
class WindowStats {
  private readonly width: number;
  private readonly window: number;
  private readonly halfLifeMs: number;
  private readonly models: readonly string[];
  /** class → bucket number → [calls, errors, cost, scoreSum, scored, scoreSquares] per model, × 2^(t/halfLife). */
  private readonly classes = new Map<string, Map<number, Float64Array>>();
  /** Values are stored multiplied by 2^((t - origin) / halfLife): exact decay per call. */
  private origin: number | undefined;

  constructor(policy: Policy) {
    this.window = windowMs(policy.statsWindow);
    this.width = Math.max(1, this.window / BUCKETS);
    this.halfLifeMs = policy.halfLifeMs;
    this.models = policy.candidates.map((candidate) => candidate.model);
  }

  private growth(at: number): number {
    if (this.origin === undefined) this.origin = at;
    let growth = 2 ** ((at - this.origin) / this.halfLifeMs);
    if (growth > 1e100) {
      // rebase: everything stored shrinks by the growth, the origin moves to now
      for (const buckets of this.classes.values()) {
        for (const bucket of buckets.values()) {
          for (let index = 0; index < bucket.length; index += 1) bucket[index]! /= growth;
        }
      }
      this.origin = at;
      growth = 1;
    }
    return growth;
  }

  add(classKey: string, model: number, at: number, outcome: EngineOutcome): void {
    const growth = this.growth(at);
    let buckets = this.classes.get(classKey);
    if (buckets === undefined) this.classes.set(classKey, (buckets = new Map()));
    const number = Math.floor(at / this.width);
    let bucket = buckets.get(number);
    if (bucket === undefined) {
      buckets.set(number, (bucket = new Float64Array(SLOTS * this.models.length)));
      for (const old of buckets.keys()) {
        if ((number - old) * this.width > this.window) buckets.delete(old);
      }
    }
    const base = SLOTS * model;
    bucket[base] = bucket[base]! + growth;
    if (outcome.failed === true) bucket[base + 1] = bucket[base + 1]! + growth;
    bucket[base + 2] = bucket[base + 2]! + outcome.costUsd * growth;
    if (outcome.score !== undefined && outcome.failed !== true) {
      bucket[base + 3] = bucket[base + 3]! + outcome.score * growth;
      bucket[base + 4] = bucket[base + 4]! + growth;
      bucket[base + 5] = bucket[base + 5]! + outcome.score * outcome.score * growth;
    }
  }

  /** A score that arrives after the call was counted (a shadow judge's verdict): no call added. */
  addScore(classKey: string, model: number, at: number, score: number): void {
    const growth = this.growth(at);
    let buckets = this.classes.get(classKey);
    if (buckets === undefined) this.classes.set(classKey, (buckets = new Map()));
    const number = Math.floor(at / this.width);
    let bucket = buckets.get(number);
    if (bucket === undefined)
      buckets.set(number, (bucket = new Float64Array(SLOTS * this.models.length)));
    const base = SLOTS * model;
    // A model only scored (the reference in a shadow) needs calls for its row to exist.
    if (bucket[base]! < bucket[base + 4]! + growth) bucket[base] = bucket[base + 4]! + growth;
    bucket[base + 3] = bucket[base + 3]! + score * growth;
    bucket[base + 4] = bucket[base + 4]! + growth;
    bucket[base + 5] = bucket[base + 5]! + score * score * growth;
  }

  snapshot(at: number): ModelClassStats[] {
    const rows: ModelClassStats[] = [];
    const count = this.models.length;
    const global = new Float64Array(SLOTS * count);
    const current = Math.floor(at / this.width);
    const factor = this.origin === undefined ? 1 : 1 / this.growth(at);
    for (const [classKey, buckets] of this.classes) {
      const sums = new Float64Array(SLOTS * count);
      for (const [number, bucket] of buckets) {
        if ((current - number) * this.width >= this.window) continue;
        for (let index = 0; index < sums.length; index += 1) {
          sums[index] = sums[index]! + bucket[index]! * factor;
          global[index] = global[index]! + bucket[index]! * factor;
        }
      }
      this.rows(classKey, sums, rows);
    }
    this.rows('*', global, rows);
    return rows;
  }

  private rows(classKey: string, sums: Float64Array, rows: ModelClassStats[]): void {
    this.models.forEach((model, index) => {
      const base = SLOTS * index;
      const calls = sums[base]!;
      if (calls <= 0) return;
      const scored = sums[base + 4]!;
      const mean = scored > 0 ? sums[base + 3]! / scored : 0;
      rows.push({
        model,
        classKey,
        calls,
        errors: sums[base + 1]!,
        costPerCallUsd: sums[base + 2]! / calls,
        latencyP95Ms: null,
        meanScore: scored > 0 ? mean : null,
        scoreCount: scored,
        scoreVariance: scored > 0 ? Math.max(0, sums[base + 5]! / scored - mean * mean) : null,
      });
    });
  }
}

/** A per-request decision; its explanation is formatted when read, not on the hot path. */
class PredictDecision implements Decision {
  readonly kind = 'predict' as const;
  readonly first: readonly string[];
  readonly weight = 1;
  readonly classKey: string;
  readonly at: number;
  readonly answerWith: string;
  readonly vector: RequestVector;
  readonly predicted: readonly PredictedQuality[];
  private readonly rule: string;
  private explained: string | undefined;
  constructor(
    classKey: string,
    at: number,
    answerWith: string,
    vector: RequestVector,
    predicted: readonly PredictedQuality[],
    rule: string,
  ) {
    this.classKey = classKey;
    this.at = at;
    this.answerWith = answerWith;
    this.vector = vector;
    this.predicted = predicted;
    this.rule = rule;
    this.first = [answerWith];
  }
  get reason(): string {
    if (this.explained === undefined) {
      const list = this.predicted
        .map(
          (entry) =>
            `${entry.model} ${entry.quality.toFixed(3)} ($${entry.costUsd.toPrecision(2)}, evidence ${(entry.evidence ?? 0).toFixed(1)})`,
        )
        .join(', ');
      this.explained = `${this.rule}: ${list}`;
    }
    return this.explained;
  }
}

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
  private readonly warmup: (classKey: string) => number;
  private readonly seen = new Map<string, number>();
  /** Per class: cost sum and calls per model (mean cost per call, for the predictor). */
  private readonly costs = new Map<string, Float64Array>();
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
    this.warmup = (classKey) =>
      Math.min(
        options.warmup === undefined ? Infinity : warmupOf(options.warmup, classKey),
        policy.predictor.warmup,
      );
    if (this.mode === 'predict') {
      this.predictor = new QualityPredictor({
        candidates: this.models.length,
        halfLifeMs: policy.halfLifeMs,
        priors: policy.candidates.map((candidate) => candidate.priorQuality ?? 0.5),
        classWeight: policy.predictor.classWeight,
        priorPrecision: policy.predictor.regularization,
        classPrior: policy.predictor.classPrior,
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
    if (this.mode === 'predict' && request.vector !== undefined) {
      return this.predict(request);
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

  private costOf(classKey: string, model: number): number {
    const sums = this.costs.get(classKey);
    if (sums !== undefined && sums[2 * model + 1]! > 0)
      return sums[2 * model]! / sums[2 * model + 1]!;
    const global = this.costs.get('*');
    if (global !== undefined && global[2 * model + 1]! > 0) {
      return global[2 * model]! / global[2 * model + 1]!;
    }
    return this.policy.candidates[model]!.priorCostPerCallUsd ?? 0;
  }

  private predict(request: EngineRequest): Decision {
    const predictor = this.predictor!;
    const vector = request.vector!;
    const { classKey, exclude } = request;
    const count = this.models.length;
    const seen = this.seen.get(classKey) ?? 0;
    this.seen.set(classKey, seen + 1);
    const thompson = this.policy.predictor.thompson;
    const predictions = [];
    let bestQuality = -Infinity;
    let dearest = 0;
    for (let model = 0; model < count; model += 1) {
      const prediction = predictor.predict(model, vector, classKey, thompson > 0);
      const cost = this.costOf(classKey, model);
      predictions.push({ prediction, cost });
      if (exclude?.has(this.models[model]!) === true) continue;
      if (prediction.quality > bestQuality) bestQuality = prediction.quality;
      if (cost > dearest) dearest = cost;
    }
    const predicted = predictions.map(({ prediction, cost }, model) => ({
      model: this.models[model]!,
      quality: prediction.quality,
      costUsd: cost,
      evidence: prediction.evidence,
    }));
    const base = { classKey, at: request.at, vector, predicted };
    const allowed = (model: number) => exclude?.has(this.models[model]!) !== true;
    // Class best by class statistics: answers warm-up probes.
    let classBest = -1;
    for (let model = 0; model < count; model += 1) {
      if (!allowed(model)) continue;
      if (
        classBest < 0 ||
        predictions[model]!.prediction.classQuality >
          predictions[classBest]!.prediction.classQuality
      ) {
        classBest = model;
      }
    }
    if (classBest < 0) classBest = 0;
    const warmup = this.warmup(classKey);
    if (seen < warmup && request.single !== true) {
      const first = this.models.filter((_, model) => allowed(model));
      return {
        ...base,
        kind: 'warmup',
        first,
        answerWith: this.models[classBest]!,
        weight: 1,
        reason: `cold start (${seen + 1} of ${warmup} in class ${classKey}): every candidate is called`,
      };
    }
    if (this.random() < this.policy.exploration) {
      const choices = this.models.filter((_, model) => allowed(model));
      const model = choices[Math.floor(this.random() * choices.length)] ?? this.models[0]!;
      return {
        ...base,
        kind: 'explore',
        first: [model],
        answerWith: model,
        weight: this.policy.exploration / Math.max(choices.length, 1),
        reason: `exploration (${(this.policy.exploration * 100).toFixed(1)}% of requests)`,
      };
    }
    const penalty = this.policy.goal.costPenalty;
    let chosen = -1;
    let chosenValue = -Infinity;
    for (let model = 0; model < count; model += 1) {
      if (!allowed(model)) continue;
      const { prediction, cost } = predictions[model]!;
      let quality = prediction.quality;
      if (thompson > 0) {
        const u = Math.max(this.random(), 1e-12);
        const noise = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
        quality += thompson * noise * prediction.logitSd * quality * (1 - quality);
      }
      if (penalty !== undefined) {
        const value = quality - (penalty * cost) / Math.max(dearest, 1e-12);
        if (value > chosenValue) {
          chosenValue = value;
          chosen = model;
        }
      } else if (
        quality >= bestQuality - this.policy.goal.qualityMargin &&
        (chosen < 0 || cost < predictions[chosen]!.cost)
      ) {
        chosen = model;
      }
    }
    if (chosen < 0) chosen = classBest;
    return new PredictDecision(
      classKey,
      request.at,
      this.models[chosen]!,
      vector,
      predicted,
      penalty === undefined
        ? `cheapest within ${this.policy.goal.qualityMargin} of the best predicted quality`
        : `best predicted quality − ${penalty} × cost ÷ dearest`,
    );
  }

  /** Features behind a predict decision (slower; for explanations, not on the hot path). */
  explain(decision: Decision): readonly PredictedQuality[] {
    if (this.predictor === undefined || decision.vector === undefined) {
      return decision.predicted ?? [];
    }
    return (decision.predicted ?? []).map((entry) => ({
      ...entry,
      features: this.predictor!.topFeatures(this.index.get(entry.model)!, decision.vector!),
    }));
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
    for (const { model: name, score } of scores) {
      const model = this.index.get(name);
      if (model === undefined || !Number.isFinite(score)) continue;
      this.stats.addScore(decision.classKey, model, at, score);
      if (this.predictor !== undefined && decision.vector !== undefined) {
        this.predictor.update(model, decision.vector, decision.classKey, score, at);
      }
    }
  }

  /** Learns from the outcomes of the calls made for one decision (bandit feedback). */
  observe(decision: Decision, outcomes: readonly EngineOutcome[]): void {
    const { classKey, at } = decision;
    for (const outcome of outcomes) {
      const model = this.index.get(outcome.model);
      if (model === undefined) continue;
      this.stats.add(classKey, model, at, outcome);
      for (const key of [classKey, '*']) {
        let sums = this.costs.get(key);
        if (sums === undefined)
          this.costs.set(key, (sums = new Float64Array(2 * this.models.length)));
        sums[2 * model] = sums[2 * model]! + outcome.costUsd;
        sums[2 * model + 1] = sums[2 * model + 1]! + 1;
      }
      if (
        this.predictor !== undefined &&
        decision.vector !== undefined &&
        outcome.score !== undefined &&
        outcome.failed !== true
      ) {
        this.predictor.update(model, decision.vector, classKey, outcome.score, at);
      }
    }
    if (this.planner !== undefined && decision.plan !== undefined) {
      if (outcomes.some((outcome) => outcome.score === undefined)) return;
      const calls: CallOutcome[] = outcomes
        .filter((outcome) => this.index.has(outcome.model))
        .map((outcome) => ({
          model: this.index.get(outcome.model)!,
          score: outcome.failed === true ? 0 : outcome.score!,
          costUsd: outcome.costUsd,
          answer: outcome.answer,
        }));
      this.planner.observe(classKey, decision.plan, calls);
    }
  }
}
