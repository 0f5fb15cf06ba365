/**
 * The engine's predict mode (`predictor.enabled`): per request, each candidate's quality is
 * predicted from the request's features (`QualityPredictor`) and its cost per call from what
 * the engine observed; a cold start per class calls every candidate, a share of requests
 * explores, the rest go to the cheapest within `qualityMargin` of the best or, with
 * `goal.costPenalty`, to the best quality − penalty × cost ÷ the dearest candidate's cost.
 */
import type { Decision, EngineRequest, PredictedQuality } from './engine.js';
import type { RequestVector } from './features.js';
import type { Policy } from './policy.js';
import type { FailureRates } from './failure-rates.js';
import type { Prediction, QualityPredictor } from './predictor.js';
import type { RandomSource } from './random.js';

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
/** Mean cost per call per class and model (and over all classes, `*`), from observed calls. */
export class CostMeans {
  private readonly policy: Policy;
  /** Per class: cost sum and calls per model. */
  private readonly sums = new Map<string, Float64Array>();

  constructor(policy: Policy) {
    this.policy = policy;
  }

  add(classKey: string, model: number, costUsd: number): void {
    for (const key of [classKey, '*']) {
      let sums = this.sums.get(key);
      if (sums === undefined) {
        this.sums.set(key, (sums = new Float64Array(2 * this.policy.candidates.length)));
      }
      sums[2 * model] = sums[2 * model]! + costUsd;
      sums[2 * model + 1] = sums[2 * model + 1]! + 1;
    }
  }

  /** The class's mean, else the global mean, else the candidate's prior cost (0 without one). */
  of(classKey: string, model: number): number {
    const sums = this.sums.get(classKey);
    if (sums !== undefined && sums[2 * model + 1]! > 0)
      return sums[2 * model]! / sums[2 * model + 1]!;
    const global = this.sums.get('*');
    if (global !== undefined && global[2 * model + 1]! > 0) {
      return global[2 * model]! / global[2 * model + 1]!;
    }
    return this.policy.candidates[model]!.priorCostPerCallUsd ?? 0;
  }
}

/** Every candidate's prediction and mean cost for one request. */
interface Predictions {
  readonly entries: readonly {
    readonly prediction: Prediction;
    readonly cost: number;
    /** The predicted quality × the chance the call succeeds: what the choice compares. */
    readonly quality: number;
  }[];
  /** The best predicted quality and the dearest cost among the allowed candidates. */
  readonly bestQuality: number;
  readonly dearest: number;
}

export interface PredictModeOptions {
  readonly policy: Policy;
  readonly random: RandomSource;
  readonly predictor: QualityPredictor;
  readonly costs: CostMeans;
  /** How often each candidate's calls fail lately, per class. */
  readonly failures: FailureRates;
  /** Cold start (requests calling every candidate) per class. */
  readonly warmup: (classKey: string) => number;
}

export class PredictMode {
  private readonly policy: Policy;
  private readonly models: readonly string[];
  private readonly random: RandomSource;
  private readonly predictor: QualityPredictor;
  private readonly costs: CostMeans;
  private readonly failures: FailureRates;
  private readonly warmup: (classKey: string) => number;
  /** Requests seen per class (for the cold start). */
  private readonly seen = new Map<string, number>();

  constructor(options: PredictModeOptions) {
    this.policy = options.policy;
    this.models = options.policy.candidates.map((candidate) => candidate.model);
    this.random = options.random;
    this.predictor = options.predictor;
    this.costs = options.costs;
    this.failures = options.failures;
    this.warmup = options.warmup;
  }

  /** Counts one request of a class toward its cold start without deciding (offline fit). */
  count(classKey: string): void {
    this.seen.set(classKey, (this.seen.get(classKey) ?? 0) + 1);
  }

  decide(request: EngineRequest, vector: RequestVector): Decision {
    const { classKey, exclude } = request;
    const seen = this.seen.get(classKey) ?? 0;
    this.seen.set(classKey, seen + 1);
    const predictions = this.predictAll(vector, classKey, request.at, exclude);
    const predicted: readonly PredictedQuality[] = predictions.entries.map(
      ({ prediction, cost }, model) => ({
        model: this.models[model]!,
        quality: prediction.quality,
        costUsd: cost,
        evidence: prediction.evidence,
      }),
    );
    const base = { classKey, at: request.at, vector, predicted };
    const allowed = (model: number) => exclude?.has(this.models[model]!) !== true;
    const classBest = this.classBest(predictions, allowed);
    const warmup = this.warmup(classKey);
    if (seen < warmup && request.single !== true) {
      return {
        ...base,
        kind: 'warmup',
        first: this.models.filter((_, model) => allowed(model)),
        answerWith: this.models[classBest]!,
        weight: 1,
        reason: `cold start (${seen + 1} of ${warmup} in class ${classKey}): every candidate is called`,
      };
    }
    if (this.random() < this.policy.exploration) return this.explore(base, allowed);
    const penalty = this.policy.goal.costPenalty;
    const chosen = this.pick(predictions, allowed);
    return new PredictDecision(
      classKey,
      request.at,
      this.models[chosen < 0 ? classBest : chosen]!,
      vector,
      predicted,
      penalty === undefined
        ? `cheapest within ${this.policy.goal.qualityMargin} of the best predicted quality`
        : `best predicted quality − ${penalty} × cost ÷ dearest`,
    );
  }

  /** Each candidate's predicted quality weighed by the chance its call succeeds, and its cost. */
  private predictAll(
    vector: RequestVector,
    classKey: string,
    at: number,
    exclude: ReadonlySet<string> | undefined,
  ): Predictions {
    const sampled = this.policy.predictor.thompson > 0;
    const entries = [];
    let bestQuality = -Infinity;
    let dearest = 0;
    for (let model = 0; model < this.models.length; model += 1) {
      const prediction = this.predictor.predict(model, vector, classKey, sampled);
      const cost = this.costs.of(classKey, model);
      const quality = prediction.quality * this.failures.successOf(classKey, model, at);
      entries.push({ prediction, cost, quality });
      if (exclude?.has(this.models[model]!) === true) continue;
      if (quality > bestQuality) bestQuality = quality;
      if (cost > dearest) dearest = cost;
    }
    return { entries, bestQuality, dearest };
  }

  /** The allowed candidate best by class statistics (it answers warm-up probes); else the first. */
  private classBest(predictions: Predictions, allowed: (model: number) => boolean): number {
    const { entries } = predictions;
    let classBest = -1;
    for (let model = 0; model < entries.length; model += 1) {
      if (!allowed(model)) continue;
      if (
        classBest < 0 ||
        entries[model]!.prediction.classQuality > entries[classBest]!.prediction.classQuality
      ) {
        classBest = model;
      }
    }
    return classBest < 0 ? 0 : classBest;
  }

  /** An exploration decision: a uniformly random allowed candidate. */
  private explore(
    base: Pick<Decision, 'classKey' | 'at' | 'vector' | 'predicted'>,
    allowed: (model: number) => boolean,
  ): Decision {
    const { exploration } = this.policy;
    const choices = this.models.filter((_, model) => allowed(model));
    const model = choices[Math.floor(this.random() * choices.length)] ?? this.models[0]!;
    return {
      ...base,
      kind: 'explore',
      first: [model],
      answerWith: model,
      weight: exploration / Math.max(choices.length, 1),
      reason: `exploration (${(exploration * 100).toFixed(1)}% of requests)`,
    };
  }

  /**
   * The chosen candidate (-1: none): with `costPenalty`, the best quality − penalty × cost ÷
   * dearest; else the cheapest within `qualityMargin` of the best. With `thompson`, each
   * quality is perturbed by a draw from its uncertainty first.
   */
  private pick(predictions: Predictions, allowed: (model: number) => boolean): number {
    const { entries, bestQuality, dearest } = predictions;
    const { thompson } = this.policy.predictor;
    const penalty = this.policy.goal.costPenalty;
    const margin = this.policy.goal.qualityMargin;
    let chosen = -1;
    let chosenValue = -Infinity;
    for (let model = 0; model < entries.length; model += 1) {
      if (!allowed(model)) continue;
      const { prediction, cost } = entries[model]!;
      let quality = entries[model]!.quality;
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
      } else if (quality >= bestQuality - margin && (chosen < 0 || cost < entries[chosen]!.cost)) {
        chosen = model;
      }
    }
    return chosen;
  }
}
