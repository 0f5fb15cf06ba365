/**
 * The predictor's trust in a request's features, chosen during an offline fit (`engine.fit`)
 * from held-out predictions of the labelled history.
 */
import type { EngineOutcome, EngineRequest, LabelledExample } from './engine.js';
import { blendNeighbours } from './neighbours.js';
import type { QualityPredictor } from './predictor.js';

/** What an offline fit chooses for the predictor (`TrustFit.best`). */
export interface FitChoice {
  readonly trust: number;
  readonly neighbourShare: number;
  readonly neighbourWeight: number;
}

/**
 * Chooses the predictor's `trust` in the request's features, and the neighbours' share and
 * weight (requests with an embedding), during an offline fit: each example of the history's
 * second half is predicted before it is learned (held out). For each pair of candidates and
 * each choice, the held-out examples are ranked by the predicted quality difference and the
 * choice whose ranking recovers the observed difference soonest (the area under the
 * cumulative observed gain, as APGR measures it) wins.
 */
export class TrustFit {
  static readonly LEVELS = [0, 0.25, 0.5, 0.75, 1];
  static readonly NEIGHBOUR_SHARES = [0.0625, 0.125, 0.25, 0.5];
  static readonly NEIGHBOUR_WEIGHTS = [1, 0.75, 0.5, 0.25];
  static readonly MIN_HELD_OUT = 200;
  /** Numbers per candidate in a row: score, quality, class quality, then (mean, cover) per share. */
  private static readonly FIELDS = 3 + 2 * TrustFit.NEIGHBOUR_SHARES.length;
  /** Per held-out example and candidate: the row's `FIELDS` numbers. */
  private readonly rows: Float64Array[] = [];
  private readonly predictor: QualityPredictor;
  private readonly candidates: number;
  private readonly means: Float64Array;
  private readonly found: Float64Array;
  /** Held-out rows with neighbours to read. */
  private withNeighbours = 0;
  constructor(predictor: QualityPredictor, candidates: number) {
    this.predictor = predictor;
    this.candidates = candidates;
    this.means = new Float64Array(TrustFit.NEIGHBOUR_SHARES.length * candidates);
    this.found = new Float64Array(TrustFit.NEIGHBOUR_SHARES.length * candidates);
  }

  /** Predicts one held-out example (the predictor's neighbour weight is 0 during a fit). */
  score(
    request: EngineRequest,
    outcomes: readonly EngineOutcome[],
    index: ReadonlyMap<string, number>,
  ): void {
    if (request.vector === undefined) return;
    const fields = TrustFit.FIELDS;
    const shares = TrustFit.NEIGHBOUR_SHARES;
    const row = new Float64Array(fields * this.candidates).fill(Number.NaN);
    const near = this.predictor.neighbourMeans(request.vector, shares, this.means, this.found);
    if (near) this.withNeighbours += 1;
    for (const [model, score] of scoredOutcomes(outcomes, index)) {
      const prediction = this.predictor.predict(model, request.vector, request.classKey);
      const at = fields * model;
      row[at] = score;
      row[at + 1] = prediction.quality;
      row[at + 2] = prediction.classQuality;
      for (let k = 0; near && k < shares.length; k += 1) {
        row[at + 3 + 2 * k] = this.means[k * this.candidates + model]!;
        row[at + 4 + 2 * k] = this.found[k * this.candidates + model]!;
      }
    }
    this.rows.push(row);
  }

  /**
   * Area under the cumulative observed gain of `a` over `b`, ranked by predicted gain, over the
   * held-out rows of `half` (0: even, 1: odd, 2: all).
   */
  private area(a: number, b: number, level: number, k: number, weight: number, half: number) {
    const fields = TrustFit.FIELDS;
    const ranked: { predicted: number; observed: number }[] = [];
    for (const [position, row] of this.rows.entries()) {
      if (half < 2 && position % 2 !== half) continue;
      if (Number.isNaN(row[fields * a]!) || Number.isNaN(row[fields * b]!)) continue;
      const at = (model: number) => {
        const from = fields * model;
        const base = row[from + 2]! + level * (row[from + 1]! - row[from + 2]!);
        const mean = row[from + 3 + 2 * k]!;
        if (weight === 0 || Number.isNaN(mean)) return base;
        return blendNeighbours(base, mean, weight, row[from + 4 + 2 * k]!);
      };
      ranked.push({ predicted: at(a) - at(b), observed: row[fields * a]! - row[fields * b]! });
    }
    ranked.sort((x, y) => y.predicted - x.predicted);
    let gain = 0;
    let area = 0;
    for (const entry of ranked) {
      gain += entry.observed;
      area += gain;
    }
    return ranked.length > 0 ? area / ranked.length : 0;
  }

  /**
   * The choice with the largest summed area over the pairs of candidates (ties: full trust,
   * no neighbours, then the larger neighbour weight); `defaults` (the policy's share and
   * weight, full trust) when fewer than `MIN_HELD_OUT` examples were held out (the neighbours'
   * when fewer of them had neighbours to read: they matter only with embeddings).
   */
  best(defaults: { readonly share: number; readonly weight: number }): FitChoice {
    const fallback = { trust: 1, neighbourShare: defaults.share, neighbourWeight: defaults.weight };
    // too few held-out examples to tell the choices apart: trust the features' evidence
    if (this.rows.length < TrustFit.MIN_HELD_OUT) return fallback;
    const near = this.withNeighbours >= TrustFit.MIN_HELD_OUT;
    const total = (trust: number, k: number, weight: number, half = 2) => {
      let sum = 0;
      for (let a = 0; a < this.candidates; a += 1) {
        for (let b = a + 1; b < this.candidates; b += 1) {
          sum += this.area(a, b, trust, k, weight, half);
        }
      }
      return sum;
    };
    // the trust first (without neighbours), as before neighbours existed
    let trust = 1;
    let bestTotal = -Infinity;
    for (const level of [...TrustFit.LEVELS].reverse()) {
      const sum = total(level, 0, 0);
      if (sum > bestTotal) [bestTotal, trust] = [sum, level];
    }
    if (!near) return { ...fallback, trust };
    // then the neighbours given that trust, chosen on the even held-out rows and kept only if
    // the choice also beats no neighbours on the odd ones (16 choices on one sample would
    // otherwise pick noise: a pure-noise embedding won by 6% of the area in a test)
    let best: FitChoice = { trust, neighbourShare: defaults.share, neighbourWeight: 0 };
    let bestEven = total(trust, 0, 0, 0);
    for (const neighbourWeight of TrustFit.NEIGHBOUR_WEIGHTS) {
      for (const [k, neighbourShare] of TrustFit.NEIGHBOUR_SHARES.entries()) {
        const sum = total(trust, k, neighbourWeight, 0);
        if (sum > bestEven) [bestEven, best] = [sum, { trust, neighbourShare, neighbourWeight }];
      }
    }
    if (best.neighbourWeight === 0) return best;
    const k = TrustFit.NEIGHBOUR_SHARES.indexOf(best.neighbourShare);
    const confirmed = total(trust, k, best.neighbourWeight, 1) > total(trust, 0, 0, 1);
    return confirmed ? best : { ...best, neighbourWeight: 0 };
  }
}

/** The scored outcomes of one example as (candidate, score) pairs. */
export function scoredOutcomes(
  outcomes: readonly EngineOutcome[],
  index: ReadonlyMap<string, number>,
): [number, number][] {
  const scored: [number, number][] = [];
  for (const outcome of outcomes) {
    const model = index.get(outcome.model);
    if (model === undefined || outcome.score === undefined || outcome.failed === true) continue;
    scored.push([model, outcome.score]);
  }
  return scored;
}

/**
 * One pass of a fit over the history: every scored outcome (`part`: `weights` for a later pass
 * of `engine.fit`, whose first pass counted the class statistics already).
 */
export function learnHistory(
  predictor: QualityPredictor,
  list: readonly LabelledExample[],
  index: ReadonlyMap<string, number>,
  part: 'both' | 'weights',
): void {
  for (const { request, outcomes } of list) {
    if (request.vector === undefined) continue;
    for (const [model, score] of scoredOutcomes(outcomes, index)) {
      predictor.update(model, request.vector, request.classKey, score, request.at, part);
    }
  }
}

/**
 * Area under the ROC curve of `predicted` for telling rows with a positive `observed` from
 * rows with a negative one (0 observed: left out; ties in `predicted` count a half), and the
 * number of positive × negative pairs it rests on.
 */
function rankAuc(rows: readonly { predicted: number; observed: number }[]): [number, number] {
  const kept = rows.filter((row) => row.observed !== 0).sort((x, y) => x.predicted - y.predicted);
  let positives = 0;
  let rankSum = 0;
  for (let start = 0; start < kept.length;) {
    let end = start;
    while (end < kept.length && kept[end]!.predicted === kept[start]!.predicted) end += 1;
    const rank = (start + end + 1) / 2; // mean 1-based rank of the tied run
    for (let at = start; at < end; at += 1) {
      if (kept[at]!.observed > 0) {
        positives += 1;
        rankSum += rank;
      }
    }
    start = end;
  }
  const pairs = positives * (kept.length - positives);
  return [pairs > 0 ? (rankSum - (positives * (positives + 1)) / 2) / pairs : 0.5, pairs];
}

/**
 * Whether the request features' weights learned on some classes rank the candidates on a class
 * they never saw: the history's classes are dealt (largest first) into up to `FOLDS` folds;
 * each fold is held out in turn, a fresh predictor makes `passes` passes over the other folds
 * and predicts the held-out fold's requests (their classes unseen, so their class mean is the
 * all-class mean and only the weights rank them). Per fold, the AUC of the predicted quality
 * difference of each pair of candidates for which of the two scored higher (pooled over the
 * pairs; `folds`); the weights carry over when every fold with `MIN_PAIRS` pairs to tell is
 * above `MIN_AUC` (`auc`: the lowest). With a single class, or no fold to tell, nothing shows
 * that they do: `transfers` is false (the conservative choice).
 */
export function crossClassTransfer(
  predictor: QualityPredictor,
  list: readonly LabelledExample[],
  index: ReadonlyMap<string, number>,
  passes: number,
): { auc: number | undefined; folds: number[]; transfers: boolean } {
  const counts = new Map<string, number>();
  for (const { request } of list) {
    counts.set(request.classKey, (counts.get(request.classKey) ?? 0) + 1);
  }
  const folds = Math.min(CROSS_CLASS.FOLDS, counts.size);
  const foldOf = new Map(
    [...counts]
      .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
      .map(([key], at) => [key, at % folds]),
  );
  const measured: number[] = [];
  for (let fold = 0; counts.size > 1 && fold < folds; fold += 1) {
    const heldOut = fresh(predictor, list, index, passes, (key) => foldOf.get(key) !== fold);
    const examples = list.filter((example) => foldOf.get(example.request.classKey) === fold);
    const [auc, pairs] = heldOutAuc(heldOut, examples, index);
    if (pairs >= CROSS_CLASS.MIN_PAIRS) measured.push(auc);
  }
  if (measured.length === 0) return { auc: undefined, folds: measured, transfers: false };
  const auc = Math.min(...measured);
  return { auc, folds: measured, transfers: auc > CROSS_CLASS.MIN_AUC };
}

/** `rankAuc` of `predictor`'s predicted difference per pair of candidates, pooled over the pairs. */
function heldOutAuc(
  predictor: QualityPredictor,
  examples: readonly LabelledExample[],
  index: ReadonlyMap<string, number>,
): [number, number] {
  const candidates = index.size;
  const rows = Array.from(
    { length: (candidates * (candidates - 1)) / 2 },
    () => [] as { predicted: number; observed: number }[],
  );
  for (const { request, outcomes } of examples) {
    const vector = request.vector;
    if (vector === undefined) continue;
    const score = new Float64Array(candidates).fill(Number.NaN);
    const quality = new Float64Array(candidates);
    for (const [model, value] of scoredOutcomes(outcomes, index)) {
      score[model] = value;
      quality[model] = predictor.predict(model, vector, request.classKey).quality;
    }
    let pair = 0;
    for (let a = 0; a < candidates; a += 1) {
      for (let b = a + 1; b < candidates; b += 1, pair += 1) {
        if (Number.isNaN(score[a]!) || Number.isNaN(score[b]!)) continue;
        rows[pair]!.push({ predicted: quality[a]! - quality[b]!, observed: score[a]! - score[b]! });
      }
    }
  }
  let weighted = 0;
  let pairs = 0;
  for (const pairRows of rows) {
    const [auc, count] = rankAuc(pairRows);
    weighted += auc * count;
    pairs += count;
  }
  return [pairs > 0 ? weighted / pairs : 0.5, pairs];
}

/** The thresholds of `crossClassTransfer`. */
const CROSS_CLASS = {
  FOLDS: 4,
  /** An AUC at most this is taken for no better than chance (the class mean's 0.5). */
  MIN_AUC: 0.55,
  /** Positive × negative pairs a held-out fold needs to tell. */
  MIN_PAIRS: 400,
};

/** A fresh predictor (the options of `like`) fitted on the examples whose class `keep` keeps. */
function fresh(
  like: QualityPredictor,
  list: readonly LabelledExample[],
  index: ReadonlyMap<string, number>,
  passes: number,
  keep: (classKey: string) => boolean,
): QualityPredictor {
  // the request weights are what is checked: without neighbours
  const predictor = like.fresh(undefined, false);
  const kept = list.filter((example) => keep(example.request.classKey));
  for (let pass = 0; pass < passes; pass += 1) {
    learnHistory(predictor, kept, index, pass === 0 ? 'both' : 'weights');
  }
  return predictor;
}

/**
 * After an offline fit: whether a class's live outcomes still look like the fitted history.
 * Each live score's residual from its prediction (score − predicted quality, so the choice of
 * which model to call does not bias it) goes into a running mean per class and candidate over
 * its last ~`MEMORY` outcomes; a class has shifted while some candidate's running mean is at
 * least `MIN_SHIFT` and more than `Z` standard errors from 0 (a model whose answers turned
 * bad, or traffic unlike the history).
 */
export class ShiftCheck {
  static readonly MEMORY = 30;
  static readonly MIN_OUTCOMES = 10;
  static readonly Z = 3;
  /**
   * The smallest mean residual taken for a shift: a fitted predictor's own calibration error
   * on traffic like its history reached 0.06-0.08 on MT-Bench's test splits (with a spread of
   * 0.03-0.07, many standard errors); a model that starts failing moves it by far more.
   */
  static readonly MIN_SHIFT = 0.2;
  private readonly candidates: number;
  /** Per class: per candidate the weighted count, residual sum and squared sum. */
  private readonly sums = new Map<string, Float64Array>();
  constructor(candidates: number) {
    this.candidates = candidates;
  }

  /** Adds one live outcome's residual; returns whether the class has shifted. */
  observe(classKey: string, model: number, residual: number): boolean {
    let values = this.sums.get(classKey);
    if (values === undefined) {
      values = new Float64Array(3 * this.candidates);
      this.sums.set(classKey, values);
    }
    const keep = 1 - 1 / ShiftCheck.MEMORY;
    values[3 * model] = values[3 * model]! * keep + 1;
    values[3 * model + 1] = values[3 * model + 1]! * keep + residual;
    values[3 * model + 2] = values[3 * model + 2]! * keep + residual * residual;
    for (let candidate = 0; candidate < this.candidates; candidate += 1) {
      const count = values[3 * candidate]!;
      if (count < ShiftCheck.MIN_OUTCOMES) continue;
      const mean = values[3 * candidate + 1]! / count;
      const variance = Math.max(values[3 * candidate + 2]! / count - mean * mean, 1e-4);
      const shift = Math.abs(mean);
      if (shift >= ShiftCheck.MIN_SHIFT && shift > ShiftCheck.Z * Math.sqrt(variance / count)) {
        return true;
      }
    }
    return false;
  }
}
