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
import { PREDICTION_FIELDS } from './predictor.js';
import type { QualityPredictor } from './predictor.js';
import type { RandomSource } from './random.js';

/**
 * A per-request decision; its predictions (`predicted`) and explanation are built when read,
 * not on the hot path.
 */
class PredictDecision implements Decision {
  readonly kind = 'predict' as const;
  readonly first: readonly string[];
  readonly weight = 1;
  readonly classKey: string;
  readonly at: number;
  readonly answerWith: string;
  readonly vector: RequestVector;
  private readonly models: readonly string[];
  /** Per candidate: predicted quality, mean cost and evidence (`PREDICTED_FIELDS` each). */
  private readonly figures: readonly number[];
  private readonly rule: string;
  private listed: readonly PredictedQuality[] | undefined;
  private explained: string | undefined;
  constructor(
    request: EngineRequest,
    answerWith: string,
    vector: RequestVector,
    models: readonly string[],
    figures: readonly number[],
    rule: string,
  ) {
    this.classKey = request.classKey;
    this.at = request.at;
    this.answerWith = answerWith;
    this.vector = vector;
    this.models = models;
    this.figures = figures;
    this.rule = rule;
    this.first = [answerWith];
  }
  get predicted(): readonly PredictedQuality[] {
    this.listed ??= predictedList(this.models, this.figures);
    return this.listed;
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

/** Numbers per candidate in a decision's figures: predicted quality, mean cost, evidence. */
const PREDICTED_FIELDS = 3;

/** The `predicted` list of a decision from its figures. */
function predictedList(models: readonly string[], figures: readonly number[]): PredictedQuality[] {
  return models.map((model, at) => ({
    model,
    quality: figures[PREDICTED_FIELDS * at]!,
    costUsd: figures[PREDICTED_FIELDS * at + 1]!,
    evidence: figures[PREDICTED_FIELDS * at + 2]!,
  }));
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

  /** The class's sums (undefined: no call of the class yet), for `ofIn`. */
  sumsOf(classKey: string): Float64Array | undefined {
    return this.sums.get(classKey);
  }

  /**
   * The mean in the class's sums, else the global mean, else the candidate's prior cost (0
   * without one).
   */
  ofIn(sums: Float64Array | undefined, model: number): number {
    if (sums !== undefined && sums[2 * model + 1]! > 0)
      return sums[2 * model]! / sums[2 * model + 1]!;
    const global = this.sums.get('*');
    if (global !== undefined && global[2 * model + 1]! > 0) {
      return global[2 * model]! / global[2 * model + 1]!;
    }
    return this.policy.candidates[model]!.priorCostPerCallUsd ?? 0;
  }
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
  /** The choice rule, as the explanation names it. */
  private readonly rule: string;
  /**
   * The current request's figures (`decide` is synchronous): each candidate's prediction
   * (`PREDICTION_FIELDS` numbers), mean cost, and predicted quality × the chance the call
   * succeeds (what the choice compares); the best such quality and the dearest cost among
   * the allowed candidates.
   */
  private readonly predictions: Float64Array;
  private readonly cost: Float64Array;
  private readonly quality: Float64Array;
  private bestQuality = 0;
  private dearest = 0;

  constructor(options: PredictModeOptions) {
    this.policy = options.policy;
    this.models = options.policy.candidates.map((candidate) => candidate.model);
    this.random = options.random;
    this.predictor = options.predictor;
    this.costs = options.costs;
    this.failures = options.failures;
    this.warmup = options.warmup;
    const penalty = this.policy.goal.costPenalty;
    this.rule =
      penalty === undefined
        ? `cheapest within ${this.policy.goal.qualityMargin} of the best predicted quality`
        : `best predicted quality − ${penalty} × cost ÷ dearest`;
    const count = this.models.length;
    this.predictions = new Float64Array(PREDICTION_FIELDS * count);
    this.cost = new Float64Array(count);
    this.quality = new Float64Array(count);
  }

  /** Counts one request of a class toward its cold start without deciding (offline fit). */
  count(classKey: string): void {
    this.seen.set(classKey, (this.seen.get(classKey) ?? 0) + 1);
  }

  decide(request: EngineRequest, vector: RequestVector): Decision {
    const { classKey, exclude } = request;
    const seen = this.seen.get(classKey) ?? 0;
    this.seen.set(classKey, seen + 1);
    this.predictAll(vector, classKey, request.at, exclude);
    const classBest = this.classBest(exclude);
    const warmup = this.warmup(classKey);
    if (seen < warmup && request.single !== true) {
      return {
        ...this.base(request, vector),
        kind: 'warmup',
        first: this.allowedModels(exclude),
        answerWith: this.models[classBest]!,
        weight: 1,
        reason: `cold start (${seen + 1} of ${warmup} in class ${classKey}): every candidate is called`,
      };
    }
    if (this.random() < this.policy.exploration) return this.explore(request, vector);
    const chosen = this.pick(exclude);
    return new PredictDecision(
      request,
      this.models[chosen < 0 ? classBest : chosen]!,
      vector,
      this.models,
      this.figures(),
      this.rule,
    );
  }

  /** Whether `model` may be called for the request. */
  private allowed(model: number, exclude: ReadonlySet<string> | undefined): boolean {
    return exclude?.has(this.models[model]!) !== true;
  }

  private allowedModels(exclude: ReadonlySet<string> | undefined): string[] {
    return this.models.filter((_, model) => this.allowed(model, exclude));
  }

  /** Each candidate's predicted quality, mean cost and evidence (`PREDICTED_FIELDS` each). */
  private figures(): number[] {
    const figures: number[] = [];
    for (let model = 0; model < this.models.length; model += 1) {
      const at = PREDICTION_FIELDS * model;
      figures.push(this.predictions[at]!, this.cost[model]!, this.predictions[at + 4]!);
    }
    return figures;
  }

  /** What every decision of this mode carries (the predictions listed). */
  private base(request: EngineRequest, vector: RequestVector) {
    const predicted = predictedList(this.models, this.figures());
    return { classKey: request.classKey, at: request.at, vector, predicted };
  }

  /** Each candidate's predicted quality weighed by the chance its call succeeds, and its cost. */
  private predictAll(
    vector: RequestVector,
    classKey: string,
    at: number,
    exclude: ReadonlySet<string> | undefined,
  ): void {
    const sampled = this.policy.predictor.thompson > 0;
    this.predictor.predictEach(vector, classKey, sampled, this.predictions);
    let bestQuality = -Infinity;
    let dearest = 0;
    // the class's rows, looked up once for all candidates
    const sums = this.costs.sumsOf(classKey);
    const rates = this.failures.ratesOf(classKey);
    for (let model = 0; model < this.models.length; model += 1) {
      const cost = this.costs.ofIn(sums, model);
      const quality =
        this.predictions[PREDICTION_FIELDS * model]! * this.failures.successIn(rates, model, at);
      this.cost[model] = cost;
      this.quality[model] = quality;
      if (!this.allowed(model, exclude)) continue;
      if (quality > bestQuality) bestQuality = quality;
      if (cost > dearest) dearest = cost;
    }
    this.bestQuality = bestQuality;
    this.dearest = dearest;
  }

  /** The allowed candidate best by class statistics (it answers warm-up probes); else the first. */
  private classBest(exclude: ReadonlySet<string> | undefined): number {
    const classQuality = (model: number) => this.predictions[PREDICTION_FIELDS * model + 3]!;
    let classBest = -1;
    for (let model = 0; model < this.models.length; model += 1) {
      if (!this.allowed(model, exclude)) continue;
      if (classBest < 0 || classQuality(model) > classQuality(classBest)) classBest = model;
    }
    return classBest < 0 ? 0 : classBest;
  }

  /** An exploration decision: a uniformly random allowed candidate. */
  private explore(request: EngineRequest, vector: RequestVector): Decision {
    const { exploration } = this.policy;
    const choices = this.allowedModels(request.exclude);
    const model = choices[Math.floor(this.random() * choices.length)] ?? this.models[0]!;
    return {
      ...this.base(request, vector),
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
  private pick(exclude: ReadonlySet<string> | undefined): number {
    const { bestQuality, dearest } = this;
    const { thompson } = this.policy.predictor;
    const penalty = this.policy.goal.costPenalty;
    const margin = this.policy.goal.qualityMargin;
    let chosen = -1;
    let chosenValue = -Infinity;
    for (let model = 0; model < this.models.length; model += 1) {
      if (!this.allowed(model, exclude)) continue;
      const cost = this.cost[model]!;
      let quality = this.quality[model]!;
      if (thompson > 0) {
        const u = Math.max(this.random(), 1e-12);
        const noise = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
        const logitSd = this.predictions[PREDICTION_FIELDS * model + 2]!;
        quality += thompson * noise * logitSd * quality * (1 - quality);
      }
      if (penalty !== undefined) {
        const value = quality - (penalty * cost) / Math.max(dearest, 1e-12);
        if (value > chosenValue) {
          chosenValue = value;
          chosen = model;
        }
      } else if (quality >= bestQuality - margin && (chosen < 0 || cost < this.cost[chosen]!)) {
        chosen = model;
      }
    }
    return chosen;
  }
}
