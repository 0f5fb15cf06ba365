/**
 * The field's routing metrics on recorded data: the cost–quality curve from sweeping the
 * policy's cost knob, RouteLLM's APGR (average performance gap recovered) and CPT(50%) /
 * CPT(80%) (the share of calls to the strong model needed to recover 50% / 80% of the gap),
 * each beside a random mix at the same share and a static per-class table chosen on train.
 *
 * With two models the x axis is the share of test prompts on which the strong model is
 * called (RouteLLM's); with more, the cost as a share of always-best's. "Strong" is the best
 * model on the train split, "weak" the cheapest there; PGR = (accuracy − weak) / (strong − weak).
 */
import type { Policy } from './policy.js';
import { parsePolicy } from './policy.js';
import { defaultReplayPolicy, runReplay } from './replay.js';
import { bestAndCheapest, totals } from './totals.js';
import type { ReplayOptions } from './replay.js';
import type { RecordedDataset, RecordedPrompt } from './routerbench.js';

export interface CurvePoint {
  /** The knob's value (cost penalty or quality margin); null for baselines' points. */
  readonly knob: number | null;
  readonly accuracy: number;
  readonly costUsd: number;
  readonly costVsBest: number;
  readonly strongShare: number;
  /** The x axis: strong share (two models) or cost share (more). */
  readonly x: number;
  readonly pgr: number;
}

export interface Curve {
  readonly points: readonly CurvePoint[];
  /** Area under PGR over x, from always-weak to always-strong, normalized to 0..1. */
  readonly apgr: number;
  /** x at which 50% / 80% of the gap is recovered (null: never). */
  readonly cpt50: number | null;
  readonly cpt80: number | null;
}

export interface RoutingMetrics {
  readonly axis: 'strong-share' | 'cost-share';
  readonly knob: 'goal.costPenalty' | 'goal.qualityMargin';
  readonly strongModel: string;
  readonly weakModel: string;
  readonly strongAccuracy: number;
  readonly weakAccuracy: number;
  readonly router: Curve;
  readonly random: Curve;
  readonly staticTable: Curve;
  /** The router at the policy's own knob, and both baselines at the same x. */
  readonly atPolicy: {
    readonly router: CurvePoint;
    readonly randomPgr: number;
    readonly staticPgr: number;
  };
}

export const PENALTY_KNOBS = [
  0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.23, 0.26, 0.3,
  0.35, 0.4, 0.5, 0.6, 0.8, 1,
];
export const MARGIN_KNOBS = [0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1];

/** Area, CPT(50%), CPT(80%) of points sorted by x (endpoints included by the caller). */
export function curveOf(points: readonly CurvePoint[], xMin: number): Curve {
  const sorted = [...points].sort((a, b) => a.x - b.x || a.pgr - b.pgr);
  let area = 0;
  for (let index = 1; index < sorted.length; index += 1) {
    const left = sorted[index - 1]!;
    const right = sorted[index]!;
    area += ((left.pgr + right.pgr) / 2) * (right.x - left.x);
  }
  const span = 1 - xMin;
  const cpt = (target: number): number | null => {
    for (let index = 0; index < sorted.length; index += 1) {
      const point = sorted[index]!;
      if (point.pgr < target) continue;
      const previous = sorted[index - 1];
      if (previous === undefined || point.pgr === previous.pgr) return point.x;
      return (
        previous.x + ((target - previous.pgr) / (point.pgr - previous.pgr)) * (point.x - previous.x)
      );
    }
    return null;
  };
  return { points: sorted, apgr: span > 0 ? area / span : 0, cpt50: cpt(0.5), cpt80: cpt(0.8) };
}

/** PGR of a curve at x (linear between points). */
export function pgrAt(curve: Curve, x: number): number {
  const points = curve.points;
  for (let index = 1; index < points.length; index += 1) {
    const left = points[index - 1]!;
    const right = points[index]!;
    if (x <= right.x) {
      if (right.x === left.x) return right.pgr;
      return left.pgr + ((x - left.x) / (right.x - left.x)) * (right.pgr - left.pgr);
    }
  }
  return points.at(-1)?.pgr ?? 0;
}

export interface MetricsOptions extends ReplayOptions {
  /** Knob values to sweep (default: PENALTY_KNOBS or MARGIN_KNOBS by the policy's mode). */
  readonly knobs?: readonly number[];
}

/** The test split's always-strong and always-weak totals, and how a strategy becomes a point. */
class CurveAxis {
  readonly strong: number;
  readonly weak: number;
  readonly n: number;
  readonly strongTest: { score: number; cost: number };
  readonly weakTest: { score: number; cost: number };
  readonly twoModels: boolean;
  private readonly gap: number;

  constructor(trainTotals: readonly { score: number; cost: number }[], test: RecordedDataset) {
    const { best, cheapest } = bestAndCheapest(trainTotals);
    this.strong = best;
    this.weak = cheapest;
    this.n = Math.max(test.prompts.length, 1);
    this.strongTest = totals(test.prompts, best);
    this.weakTest = totals(test.prompts, cheapest);
    this.gap = this.strongTest.score - this.weakTest.score;
    this.twoModels = test.models.length === 2;
  }

  point(knob: number | null, score: number, cost: number, strongCalls: number): CurvePoint {
    const { n, strongTest } = this;
    const strongShare = strongCalls / n;
    const costShare = strongTest.cost > 0 ? cost / strongTest.cost : 0;
    return {
      knob,
      accuracy: score / n,
      costUsd: cost,
      costVsBest: costShare,
      strongShare,
      x: this.twoModels ? strongShare : costShare,
      pgr: this.gap === 0 ? 0 : (score - this.weakTest.score) / this.gap,
    };
  }

  get weakPoint(): CurvePoint {
    return this.point(null, this.weakTest.score, this.weakTest.cost, 0);
  }

  get strongPoint(): CurvePoint {
    return this.point(null, this.strongTest.score, this.strongTest.cost, this.n);
  }
}

/** Per class of the train split: each model's score and cost sums, and the prompt count. */
interface ClassTotals {
  readonly score: Float64Array;
  readonly cost: Float64Array;
  count: number;
}

function classTotals(
  train: RecordedDataset,
  classOf: (prompt: RecordedPrompt) => string,
): Map<string, ClassTotals> {
  const models = train.models.length;
  const classStats = new Map<string, ClassTotals>();
  for (const prompt of train.prompts) {
    const key = classOf(prompt);
    let entry = classStats.get(key);
    if (entry === undefined) {
      entry = { score: new Float64Array(models), cost: new Float64Array(models), count: 0 };
      classStats.set(key, entry);
    }
    entry.count += 1;
    for (let model = 0; model < models; model += 1) {
      entry.score[model] = entry.score[model]! + prompt.scores[model]!;
      entry.cost[model] = entry.cost[model]! + prompt.costs[model]!;
    }
  }
  return classStats;
}

/**
 * The static per-class table chosen on train, at a sweep of the price of cost (a Lagrangian
 * sweep): each class's best model by mean score − price × cost ÷ the strong model's cost per
 * call, measured on test; one point per distinct table.
 */
function staticTableCurve(
  train: RecordedDataset,
  test: RecordedDataset,
  axis: CurveAxis,
  trainTotals: readonly { score: number; cost: number }[],
  classOf: (prompt: RecordedPrompt) => string,
): Curve {
  const models = test.models.length;
  const { strong, twoModels } = axis;
  const classStats = classTotals(train, classOf);
  const global: ClassTotals = {
    score: Float64Array.from(trainTotals, (entry) => entry.score),
    cost: Float64Array.from(trainTotals, (entry) => entry.cost),
    count: train.prompts.length,
  };
  const strongCostPerCall = trainTotals[strong]!.cost / Math.max(train.prompts.length, 1);
  const staticPoints: CurvePoint[] = [axis.weakPoint, axis.strongPoint];
  const seen = new Set<string>();
  for (let exponent = -4; exponent <= 2; exponent += 0.02) {
    const price = 10 ** exponent;
    const choice = new Map<string, number>();
    const pick = (key: string) => {
      let chosen = choice.get(key);
      if (chosen !== undefined) return chosen;
      const entry = classStats.get(key) ?? global;
      let best = -Infinity;
      chosen = strong;
      for (let model = 0; model < models; model += 1) {
        // On the strong-share axis a call counts, not its price: each model's mean cost per
        // call over all of train; on the cost axis the class's own cost per call.
        const cost = twoModels
          ? global.cost[model]! / global.count
          : entry.cost[model]! / entry.count;
        const value =
          entry.score[model]! / entry.count - (price * cost) / Math.max(strongCostPerCall, 1e-12);
        if (value > best) {
          best = value;
          chosen = model;
        }
      }
      choice.set(key, chosen);
      return chosen;
    };
    let score = 0;
    let cost = 0;
    let strongCalls = 0;
    for (const prompt of test.prompts) {
      const model = pick(classOf(prompt));
      score += prompt.scores[model]!;
      cost += prompt.costs[model]!;
      if (model === strong) strongCalls += 1;
    }
    const key = [...choice.entries()].sort().join(';');
    if (seen.has(key)) continue;
    seen.add(key);
    staticPoints.push(axis.point(price, score, cost, strongCalls));
  }
  return curveOf(staticPoints, axis.weakPoint.x);
}

/** Replays the policy at every knob value and measures the curves. */
export function routingMetrics(
  train: RecordedDataset,
  test: RecordedDataset,
  options: MetricsOptions = {},
): RoutingMetrics {
  const models = test.models;
  const policy: Policy = parsePolicy(
    options.policy ?? defaultReplayPolicy(models),
    'replay policy',
  );
  const trainTotals = models.map((_, model) => totals(train.prompts, model));
  const axis = new CurveAxis(trainTotals, test);
  const { weakPoint, strongPoint, n } = axis;
  const xMin = weakPoint.x;
  const usesPenalty = policy.predictor.enabled || policy.cascade.enabled;
  const knobs = options.knobs ?? (usesPenalty ? PENALTY_KNOBS : MARGIN_KNOBS);
  const strongName = models[axis.strong]!;
  const replayAt = (knob: number | undefined): CurvePoint => {
    const tuned: Policy =
      knob === undefined
        ? policy
        : usesPenalty
          ? { ...policy, goal: { ...policy.goal, costPenalty: knob } }
          : { ...policy, goal: { ...policy.goal, qualityMargin: knob } };
    const report = runReplay(train, test, { ...options, policy: tuned });
    const strongCalls = report.decisions.filter((decision) =>
      decision.calls.includes(strongName),
    ).length;
    return axis.point(knob ?? null, report.router.accuracy * n, report.router.costUsd, strongCalls);
  };
  const routerPoints = knobs.map((knob) => replayAt(knob));
  const router = curveOf([weakPoint, ...routerPoints, strongPoint], xMin);
  const own = replayAt(undefined);
  // random mix of always-weak and always-strong: PGR linear in x
  const random = curveOf([weakPoint, strongPoint], xMin);
  const classOf = options.classOf ?? ((prompt: RecordedPrompt) => prompt.task);
  const staticTable = staticTableCurve(train, test, axis, trainTotals, classOf);
  return {
    axis: axis.twoModels ? 'strong-share' : 'cost-share',
    knob: usesPenalty ? 'goal.costPenalty' : 'goal.qualityMargin',
    strongModel: strongName,
    weakModel: models[axis.weak]!,
    strongAccuracy: axis.strongTest.score / n,
    weakAccuracy: axis.weakTest.score / n,
    router,
    random,
    staticTable,
    atPolicy: {
      router: own,
      randomPgr: pgrAt(random, own.x),
      staticPgr: pgrAt(staticTable, own.x),
    },
  };
}
