/**
 * Hindsight frontiers on the test split, reported beside the replayed router: the cheapest
 * per-class mix of single models, and of single models and unanimous 2-3 voter cascades, that
 * reaches 98% of always-best accuracy (and the best such mix within a share of its cost).
 * Upper bounds for per-class policies, not deployable ones.
 */
import { normalizeAnswer } from './answer.js';
import type { StrategyResult } from './replay.js';
import { totals } from './totals.js';
import type { RecordedDataset, RecordedPrompt } from './routerbench.js';

/** Names, scores and costs a strategy result relative to always-best. */
export type ResultOf = (name: string, score: number, cost: number, note?: string) => StrategyResult;

export const margin98 = (bestScore: number) => 0.98 * bestScore;

/** A fixed per-class plan's totals over a class's prompts. */
interface PlanPoint {
  readonly score: number;
  readonly cost: number;
}

function promptsByClass(test: RecordedDataset): RecordedPrompt[][] {
  const byClass = new Map<string, RecordedPrompt[]>();
  for (const prompt of test.prompts) {
    let list = byClass.get(prompt.task);
    if (!list) byClass.set(prompt.task, (list = []));
    list.push(prompt);
  }
  return [...byClass.values()];
}

/**
 * The lower convex hull of (cost, score) over one plan per class: a Lagrangian sweep over the
 * price of cost. Mixing two adjacent hull points (randomizing per prompt within a class)
 * reaches any point between them.
 */
function planHull(classes: readonly (readonly PlanPoint[])[]): PlanPoint[] {
  const hull: PlanPoint[] = [];
  for (let exponent = -2; exponent <= 7; exponent += 0.01) {
    const price = 10 ** exponent;
    let score = 0;
    let cost = 0;
    for (const points of classes) {
      let pick = points[0]!;
      for (const point of points) {
        if (point.score - point.cost / price > pick.score - pick.cost / price) pick = point;
      }
      score += pick.score;
      cost += pick.cost;
    }
    hull.push({ score, cost });
  }
  return hull.sort((a, b) => a.cost - b.cost || a.score - b.score);
}

/** The cheapest hull point (interpolated) reaching `targetScore`; cost Infinity when none does. */
function cheapestAt(hull: readonly PlanPoint[], targetScore: number): PlanPoint {
  for (let index = 0; index < hull.length; index += 1) {
    const point = hull[index]!;
    if (point.score < targetScore) continue;
    const previous = hull
      .slice(0, index)
      .reverse()
      .find((entry) => entry.score < targetScore);
    if (previous === undefined || point.score === previous.score) return point;
    const share = (targetScore - previous.score) / (point.score - previous.score);
    return { score: targetScore, cost: previous.cost + share * (point.cost - previous.cost) };
  }
  return { score: 0, cost: Infinity };
}

/** The best hull score (interpolated) within `budget`. */
function bestWithin(hull: readonly PlanPoint[], budget: number): PlanPoint {
  let best: PlanPoint = { score: 0, cost: 0 };
  for (let index = 0; index < hull.length; index += 1) {
    const point = hull[index]!;
    if (point.cost <= budget) {
      if (point.score > best.score) best = point;
      continue;
    }
    const previous = hull[index - 1];
    if (previous !== undefined && previous.cost <= budget && point.cost > previous.cost) {
      const share = (budget - previous.cost) / (point.cost - previous.cost);
      const score = previous.score + share * (point.score - previous.score);
      if (score > best.score) best = { score, cost: budget };
    }
  }
  return best;
}

/**
 * The per-class static frontier, computed with hindsight on the test split itself: the
 * cheapest mix of one model per class (plus one class split between two models) reaching 98%
 * of always-best accuracy. An upper bound for per-class weights, not a deployable policy.
 */
export function staticFrontier(
  test: RecordedDataset,
  targetScore: number,
  result: ResultOf,
): StrategyResult {
  const classes = promptsByClass(test).map((prompts) =>
    test.models.map((_, model) => totals(prompts, model)),
  );
  const point = cheapestAt(planHull(classes), targetScore);
  return result(
    'per-class static frontier (hindsight on test)',
    point.score,
    point.cost,
    'cheapest per-class mix of models at 98% of best, chosen with test outcomes',
  );
}

/**
 * Totals of every fixed plan a cascade router can run on a class: each single model, and each
 * pair or triple of cheap voters (cost at most a quarter of the class's best model) whose
 * unanimous normalized answer is used, escalating to the class's best model otherwise.
 */
function cascadePlans(prompts: readonly RecordedPrompt[], models: number): PlanPoint[] {
  const singles = Array.from({ length: models }, (_, model) => totals(prompts, model));
  let best = 0;
  singles.forEach((entry, model) => {
    if (entry.score > singles[best]!.score) best = model;
  });
  const cheap = singles
    .map((entry, model) => ({ entry, model }))
    .filter(({ entry, model }) => model !== best && entry.cost <= 0.25 * singles[best]!.cost)
    .map(({ model }) => model);
  const answers = prompts.map((prompt) =>
    prompt.responses.map((response) => normalizeAnswer(response ?? '')),
  );
  const plans: PlanPoint[] = [...singles];
  const voterSets: number[][] = [];
  for (let a = 0; a < cheap.length; a += 1) {
    for (let b = a + 1; b < cheap.length; b += 1) {
      voterSets.push([cheap[a]!, cheap[b]!]);
      for (let c = b + 1; c < cheap.length; c += 1)
        voterSets.push([cheap[a]!, cheap[b]!, cheap[c]!]);
    }
  }
  for (const voters of voterSets) {
    let score = 0;
    let cost = 0;
    prompts.forEach((prompt, index) => {
      const first = answers[index]![voters[0]!];
      for (const voter of voters) cost += prompt.costs[voter]!;
      if (first !== undefined && voters.every((voter) => answers[index]![voter] === first)) {
        score += prompt.scores[voters[0]!]!;
      } else {
        score += prompt.scores[best]!;
        cost += prompt.costs[best]!;
      }
    });
    plans.push({ score, cost });
  }
  return plans;
}

/**
 * The per-class cascade frontier, with hindsight on the test split: the best mix of fixed
 * per-class plans (a single model, or 2-3 cheap voters escalating to the class's best model on
 * disagreement) — at 98% of always-best accuracy, and within `budgetShare` of its cost.
 * An upper bound for per-class cascades, not a deployable policy.
 */
export function cascadeFrontier(
  test: RecordedDataset,
  targetScore: number,
  budget: number,
  budgetShare: number,
  result: ResultOf,
): StrategyResult[] {
  const hull = planHull(
    promptsByClass(test).map((prompts) => cascadePlans(prompts, test.models.length)),
  );
  const at98 = cheapestAt(hull, targetScore);
  const within = bestWithin(hull, budget);
  const percent = Math.round(budgetShare * 100);
  return [
    result(
      'per-class cascade frontier at 98% (hindsight on test)',
      at98.score,
      at98.cost,
      'cheapest per-class mix of single models and unanimous 2-3 voter cascades at 98% of best, chosen with test outcomes',
    ),
    result(
      `per-class cascade frontier at ${percent}% cost (hindsight on test)`,
      within.score,
      within.cost,
      `most accurate per-class mix of the same plans within ${percent}% of best's cost, chosen with test outcomes`,
    ),
  ];
}
