/**
 * Per-request quality predictor: for each candidate, an online logistic model over the request
 * vector (diagonal Newton steps, so each feature learns at the pace of its own evidence), with
 * exponential forgetting (evidence halves every `halfLifeMs`), blended with the class's own
 * statistics where the request's features have little evidence. Learns only from the outcomes
 * of calls the router made (bandit feedback). Pure: no I/O, no clock (times are passed in).
 */
import { DENSE, DENSE_NAMES, EMBEDDING_BASE, HASH_BUCKETS, VECTOR_SIZE } from './features.js';
import type { RequestVector } from './features.js';
import { NeighbourMemory, blendNeighbours } from './neighbours.js';

export interface Prediction {
  /** Predicted quality (0..1): the logistic model blended with the class statistics. */
  readonly quality: number;
  /** The logistic model's own prediction and its standard deviation in logit units. */
  readonly model: number;
  readonly logitSd: number;
  /** The class's decayed mean score (Beta posterior) and its evidence. */
  readonly classQuality: number;
  /** Mean decayed evidence of the request's features (0 = nothing known, use the class). */
  readonly evidence: number;
}

/** Numbers per candidate that `predictEach` writes (the fields of a `Prediction`). */
export const PREDICTION_FIELDS = 5;

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
/** Key of the statistics over every class (not a valid class name: it holds a NUL). */
const GLOBAL = '\u0000all';

/** Decay scale: values are stored multiplied by 2^(t / halfLife) and read divided by it. */
class DecayClock {
  private origin: number | undefined;
  scale = 1;
  private readonly halfLifeMs: number;
  constructor(halfLifeMs: number) {
    this.halfLifeMs = halfLifeMs;
  }
  /** Sets the clock; returns a factor by which stored values must be multiplied (rebase). */
  advance(at: number): number {
    if (this.origin === undefined) this.origin = at;
    const exponent = (at - this.origin) / this.halfLifeMs;
    const scale = 2 ** Math.max(exponent, 0);
    if (scale > 1e150) {
      // rebase: stored values shrink by the current scale
      const factor = 1 / scale;
      this.origin = at;
      this.scale = 1;
      return factor;
    }
    this.scale = Math.max(scale, this.scale);
    return 1;
  }
}

interface CandidateModel {
  /** Logistic weights. */
  readonly weights: Float64Array;
  /** Fisher information per feature, stored × clock scale. */
  readonly precision: Float64Array;
  /** Decayed evidence (sum of x²) per feature, stored × clock scale. */
  readonly seen: Float64Array;
}

interface ClassStats {
  /** Decayed score sum and count per candidate, stored × clock scale. */
  readonly score: Float64Array;
  readonly count: Float64Array;
  /** The class was in an offline fit's history (else `unseen` predicts it, when set). */
  fitted: boolean;
}

export interface PredictorOptions {
  readonly candidates: number;
  readonly halfLifeMs: number;
  /** Prior quality per candidate (class statistics start there). */
  readonly priors: readonly number[];
  /** Pseudo-count of the class statistics in the blend (and of their prior). */
  readonly classWeight?: number;
  /** Prior precision of every logistic weight (L2 regularization). */
  readonly priorPrecision?: number;
  /** Pseudo-count of the candidate's all-class mean in each class's statistics. */
  readonly classPrior?: number;
  /**
   * Nearest neighbours over request embeddings (requests without one are not affected):
   * `capacity` requests kept (0: none), the most similar `share` of them read per candidate,
   * and the `weight` of those neighbours' mean score in a prediction.
   */
  readonly neighbours?: {
    readonly capacity: number;
    readonly share: number;
    readonly weight: number;
  };
}

/** How many remembered requests a `share` of the memory reads as neighbours (at least 1). */
const neighboursRead = (share: number, memory: NeighbourMemory) =>
  Math.max(1, Math.round(share * memory.size));

export class QualityPredictor {
  private readonly models: CandidateModel[];
  private readonly classes = new Map<string, ClassStats>();
  private readonly clock: DecayClock;
  private readonly options: PredictorOptions;
  private readonly classWeight: number;
  private readonly priorPrecision: number;
  /**
   * How far the request's features may move a prediction from its class's mean (0..1; 1 =
   * as far as their evidence allows). An offline fit sets it from held-out predictions.
   */
  trust = 1;
  /**
   * After an offline fit whose request weights did not carry over between the history's classes
   * (`crossClassTransfer`): the predictor of every class outside the history, which starts from
   * each candidate's all-class mean and learns online from that class's own outcomes, request
   * weights included, as an unfitted engine does.
   */
  private unseen: QualityPredictor | undefined;
  /**
   * Share of the remembered requests read as neighbours (`options.neighbours.share`; an
   * offline fit may choose it).
   */
  neighbourShare: number;
  /**
   * Weight of the neighbours' mean score in a prediction, 0..1, scaled down while fewer
   * neighbours than that share hold the candidate's score (an offline fit may choose it).
   */
  neighbourWeight: number;
  private readonly memory: NeighbourMemory | undefined;
  /** The neighbours' means and counts per candidate for `nearFor` at memory `nearVersion`. */
  private readonly nearMeans: Float64Array;
  private readonly nearFound: Float64Array;
  private nearFor: Float32Array | undefined;
  private nearVersion = -1;
  private nearShare = -1;
  /** A token seen in each hashed slot (for explanations). */
  private readonly names = new Map<number, string>();
  /** `predict`'s scratch (one candidate's fields). */
  private readonly one = new Float64Array(PREDICTION_FIELDS);

  constructor(options: PredictorOptions) {
    this.options = options;
    this.clock = new DecayClock(options.halfLifeMs);
    this.classWeight = options.classWeight ?? 4;
    this.priorPrecision = options.priorPrecision ?? 1;
    this.models = Array.from({ length: options.candidates }, () => ({
      weights: new Float64Array(VECTOR_SIZE),
      precision: new Float64Array(VECTOR_SIZE),
      seen: new Float64Array(VECTOR_SIZE),
    }));
    const neighbours = options.neighbours;
    this.neighbourShare = neighbours?.share ?? 0.25;
    this.neighbourWeight = neighbours?.weight ?? 0;
    this.memory =
      neighbours !== undefined && neighbours.capacity > 0
        ? new NeighbourMemory(options.candidates, neighbours.capacity)
        : undefined;
    this.nearMeans = new Float64Array(options.candidates);
    this.nearFound = new Float64Array(options.candidates);
  }

  /**
   * Each candidate's mean score over the most similar `shares[i]` (ascending) of the remembered
   * requests that hold its score (`means`, `found`: `shares.length` × candidates, as
   * `NeighbourMemory` writes them; `found` as a share of the neighbours read, 0..1); false
   * when the request has no embedding or nothing is remembered.
   */
  neighbourMeans(
    vector: RequestVector,
    shares: readonly number[],
    means: Float64Array,
    found: Float64Array,
  ): boolean {
    const memory = this.memory;
    if (memory === undefined || vector.embedding === undefined || memory.size === 0) return false;
    const ks = shares.map((share) => neighboursRead(share, memory));
    memory.predict(vector.embedding, ks, means, found);
    for (let at = 0; at < found.length; at += 1) {
      found[at] = Math.min(1, found[at]! / ks[Math.floor(at / this.options.candidates)]!);
    }
    return true;
  }

  /** The neighbours' means for this request (cached while the request and memory stay). */
  private near(vector: RequestVector): boolean {
    const embedding = vector.embedding;
    if (this.neighbourWeight <= 0 || embedding === undefined || this.memory === undefined) {
      return false;
    }
    if (
      embedding !== this.nearFor ||
      this.memory.version !== this.nearVersion ||
      this.neighbourShare !== this.nearShare
    ) {
      if (!this.neighbourMeans(vector, [this.neighbourShare], this.nearMeans, this.nearFound)) {
        return false;
      }
      this.nearFor = embedding;
      this.nearVersion = this.memory.version;
      this.nearShare = this.neighbourShare;
    }
    return true;
  }

  /** The neighbours behind a prediction: their count and mean score for the candidate. */
  neighbourSummary(
    candidate: number,
    vector: RequestVector,
    classKey: string,
  ): { readonly count: number; readonly mean: number } | undefined {
    const owner = this.of(this.classes.get(classKey));
    if (!owner.near(vector) || owner.nearFound[candidate] === 0) return undefined;
    const read = neighboursRead(owner.neighbourShare, owner.memory!);
    return {
      count: Math.round(owner.nearFound[candidate]! * read),
      mean: owner.nearMeans[candidate]!,
    };
  }

  private classOf(classKey: string): ClassStats {
    let stats = this.classes.get(classKey);
    if (stats === undefined) {
      const count = this.options.candidates;
      stats = { score: new Float64Array(count), count: new Float64Array(count), fitted: false };
      this.classes.set(classKey, stats);
    }
    return stats;
  }

  /**
   * The class's decayed mean score for a candidate (`stats`: the class's statistics, `global`:
   * those over every class): a Beta posterior shrunk toward the candidate's mean over every
   * class (hierarchical), or toward its prior before any call.
   */
  private classMean(
    stats: ClassStats | undefined,
    global: ClassStats | undefined,
    candidate: number,
  ): number {
    const scale = this.clock.scale;
    const globalCount = global === undefined ? 0 : global.count[candidate]! / scale;
    const basePrior = this.options.priors[candidate] ?? 0.5;
    const prior =
      globalCount > 0
        ? (global!.score[candidate]! / scale + basePrior * this.classWeight) /
          (globalCount + this.classWeight)
        : basePrior;
    const count = stats === undefined ? 0 : stats.count[candidate]! / scale;
    const score = stats === undefined ? 0 : stats.score[candidate]! / scale;
    const strength = this.options.classPrior ?? 5;
    const total = count + strength;
    return total > 0 ? (score + prior * strength) / total : prior;
  }

  /**
   * A predictor with the same options (`priors`: other priors; `neighbours` false: without
   * nearest neighbours) that has learned nothing.
   */
  fresh(priors = this.options.priors, neighbours = true): QualityPredictor {
    const { neighbours: near, ...options } = this.options;
    return new QualityPredictor({
      ...options,
      priors,
      ...(neighbours && near !== undefined ? { neighbours: near } : {}),
    });
  }

  /**
   * Marks every class learned so far as the fitted history; `separate`: classes outside it are
   * predicted and learned by a fresh predictor of their own from now on (else by this one).
   */
  markFitted(separate: boolean): void {
    for (const [key, stats] of this.classes) stats.fitted = key !== GLOBAL;
    // a new class starts from each candidate's all-class mean, as it does in an unfitted engine
    const global = this.classes.get(GLOBAL);
    const means = Array.from({ length: this.options.candidates }, (_, at) =>
      this.classMean(undefined, global, at),
    );
    this.unseen = separate ? this.fresh(means) : undefined;
  }

  /** The predictor of a class (its statistics `stats`): `unseen` for one outside the history. */
  private of(stats: ClassStats | undefined): QualityPredictor {
    return this.unseen !== undefined && stats?.fitted !== true ? this.unseen : this;
  }

  /** The class's decayed mean score for a candidate (`classMean`) and its decayed count. */
  classQuality(classKey: string, candidate: number): { mean: number; count: number } {
    const stats = this.classes.get(classKey);
    const count = stats === undefined ? 0 : stats.count[candidate]! / this.clock.scale;
    return { mean: this.classMean(stats, this.classes.get(GLOBAL), candidate), count };
  }

  predict(candidate: number, vector: RequestVector, classKey: string, withSd = false): Prediction {
    const out = this.one;
    const stats = this.classes.get(classKey);
    const owner = this.of(stats);
    if (owner !== this) return owner.predict(candidate, vector, classKey, withSd);
    this.predictInto(candidate, vector, stats, this.classes.get(GLOBAL), withSd, out, 0);
    return {
      quality: out[0]!,
      model: out[1]!,
      logitSd: out[2]!,
      classQuality: out[3]!,
      evidence: out[4]!,
    };
  }

  /**
   * Every candidate's prediction for one request, without allocating: candidate i's
   * `Prediction` fields (quality, model, logitSd, classQuality, evidence) at
   * out[PREDICTION_FIELDS × i ...]. The class is looked up once for all candidates.
   */
  predictEach(vector: RequestVector, classKey: string, withSd: boolean, out: Float64Array): void {
    const own = this.classes.get(classKey);
    // a class outside a fitted history that does not carry over: its own predictor (`unseen`)
    const owner = this.of(own);
    const stats = owner === this ? own : owner.classes.get(classKey);
    const global = owner.classes.get(GLOBAL);
    for (let candidate = 0; candidate < this.models.length; candidate += 1) {
      owner.predictInto(
        candidate,
        vector,
        stats,
        global,
        withSd,
        out,
        PREDICTION_FIELDS * candidate,
      );
    }
  }

  private predictInto(
    candidate: number,
    vector: RequestVector,
    stats: ClassStats | undefined,
    global: ClassStats | undefined,
    withSd: boolean,
    out: Float64Array,
    at: number,
  ): void {
    const model = this.models[candidate]!;
    const { index, value } = vector;
    const weights = model.weights;
    const seen = model.seen;
    let z = 0;
    let evidence = 0;
    let mass = 0;
    // slot 0 is the bias: it says nothing about this request's evidence
    z += weights[0]! * value[0]!;
    for (let entry = 1; entry < index.length; entry += 1) {
      const slot = index[entry]!;
      const x = value[entry]!;
      const xx = x * x;
      z += weights[slot]! * x;
      evidence += xx * seen[slot]!;
      mass += xx;
    }
    const meanEvidence = mass > 0 ? evidence / mass / this.clock.scale : 0;
    const variance = withSd ? this.variance(model, vector) : 0;
    const own = sigmoid(z);
    const cls = this.classMean(stats, global, candidate);
    const blend = (this.trust * meanEvidence) / (meanEvidence + this.classWeight);
    out[at] = blend * own + (1 - blend) * cls;
    if (this.near(vector) && this.nearFound[candidate]! > 0) {
      const cover = this.nearFound[candidate]!;
      out[at] = blendNeighbours(out[at]!, this.nearMeans[candidate]!, this.neighbourWeight, cover);
    }
    out[at + 1] = own;
    out[at + 2] = Math.sqrt(variance);
    out[at + 3] = cls;
    out[at + 4] = meanEvidence;
  }

  /** The variance of the logistic model's logit for the request (diagonal posterior). */
  private variance(model: CandidateModel, vector: RequestVector): number {
    const { index, value } = vector;
    const scale = this.clock.scale;
    const tau = this.priorPrecision;
    let variance = 0;
    for (let entry = 0; entry < index.length; entry += 1) {
      const x = value[entry]!;
      variance += (x * x) / (model.precision[index[entry]!]! / scale + tau);
    }
    return variance;
  }

  /**
   * Learns one outcome (score 0..1) of `candidate` on a request at time `at` (ms). `part`:
   * `weights` (a later pass of an offline fit over the same outcome: the class statistics
   * counted it already) moves the logistic weights only, `class` the class statistics only.
   */
  update(
    candidate: number,
    vector: RequestVector,
    classKey: string,
    score: number,
    at: number,
    part: 'both' | 'weights' | 'class' = 'both',
  ): void {
    const owner = this.of(this.classes.get(classKey));
    // a class outside the fitted history learns every outcome, as an unfitted engine does
    if (owner !== this) {
      owner.update(candidate, vector, classKey, score, at);
      return;
    }
    const rebase = this.clock.advance(at);
    if (rebase !== 1) this.rebase(rebase);
    const scale = this.clock.scale;
    for (const key of part === 'weights' ? [] : [classKey, GLOBAL]) {
      const stats = this.classOf(key);
      stats.score[candidate] = stats.score[candidate]! + score * scale;
      stats.count[candidate] = stats.count[candidate]! + scale;
    }
    if (part === 'class') return;
    // one request's scores share a row: read as its neighbours' scores by later requests
    if (part === 'both' && vector.embedding !== undefined) {
      this.memory?.add(vector.embedding, candidate, score);
    }
    const model = this.models[candidate]!;
    const { index, value } = vector;
    let z = 0;
    for (let at2 = 0; at2 < index.length; at2 += 1) z += model.weights[index[at2]!]! * value[at2]!;
    const p = sigmoid(z);
    const gradient = p - score;
    const curvature = Math.max(p * (1 - p), 0.05);
    for (let at2 = 0; at2 < index.length; at2 += 1) {
      const slot = index[at2]!;
      const x = value[at2]!;
      if (x === 0) continue;
      model.precision[slot] = model.precision[slot]! + x * x * curvature * scale;
      model.seen[slot] = model.seen[slot]! + x * x * scale;
      const precision = model.precision[slot]! / scale + this.priorPrecision;
      model.weights[slot] = model.weights[slot]! - (gradient * x) / precision;
    }
  }

  private rebase(factor: number): void {
    for (const model of this.models) {
      for (let slot = 0; slot < VECTOR_SIZE; slot += 1) {
        model.precision[slot]! *= factor;
        model.seen[slot]! *= factor;
      }
    }
    for (const stats of this.classes.values()) {
      for (let index = 0; index < stats.count.length; index += 1) {
        stats.count[index]! *= factor;
        stats.score[index]! *= factor;
      }
    }
  }

  /** Remembers a readable token for hashed slots (explanations only). */
  name(slot: number, token: string): void {
    if (!this.names.has(slot) && this.names.size < 50_000) this.names.set(slot, token);
  }

  /**
   * The features pushing this candidate's prediction most, as `name:+0.42` strings; a hashed
   * slot is named by `names` (`featureNames` of the request's text), else by `name`, else
   * shown as `#slot`.
   */
  topFeatures(
    candidate: number,
    vector: RequestVector,
    count = 4,
    names?: ReadonlyMap<number, string>,
  ): string[] {
    const model = this.models[candidate]!;
    const contributions: { slot: number; value: number }[] = [];
    for (let at = 0; at < vector.index.length; at += 1) {
      const slot = vector.index[at]!;
      contributions.push({ slot, value: model.weights[slot]! * vector.value[at]! });
    }
    contributions.sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
    return contributions.slice(0, count).map(({ slot, value }) => {
      const name =
        slot < DENSE
          ? DENSE_NAMES[slot]!
          : slot < DENSE + HASH_BUCKETS
            ? (names?.get(slot) ?? this.names.get(slot) ?? `#${slot - DENSE}`)
            : slot < EMBEDDING_BASE
              ? 'class'
              : `embedding#${slot - EMBEDDING_BASE}`;
      return `${name}:${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
    });
  }
}
