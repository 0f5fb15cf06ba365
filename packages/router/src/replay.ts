/**
 * Offline replay: drives the decision core (or the cascade planner) over recorded data with
 * bandit feedback. The router sees only the outcomes (score, cost, answer) of the models it
 * called; every call is charged. Train = history (learning), test = measured (learning goes on).
 */
import { performance } from 'node:perf_hooks';
import { normalizeAnswer } from './answer.js';
import { RoutingEngine } from './engine.js';
import type { DecisionKind, EngineOutcome, EngineRequest } from './engine.js';
import { featurize } from './features.js';
import type { FeatureFamily, RequestVector } from './features.js';
import { parsePolicy } from './policy.js';
import type { Policy, PolicyInput } from './policy.js';
import { createRandom } from './random.js';
import type { RecordedDataset, RecordedPrompt } from './routerbench.js';

export interface ReplayDecision {
  readonly sample_id: string;
  /** The model whose answer is used. */
  readonly model: string;
  /** Every model called for this prompt, in order. */
  readonly calls: readonly string[];
  /** The engine's decision kind and explanation. */
  readonly kind?: DecisionKind;
  readonly reason?: string;
}

export interface StrategyResult {
  readonly name: string;
  /** Mean score over test prompts (0..1). */
  readonly accuracy: number;
  readonly costUsd: number;
  readonly accuracyVsBest: number;
  readonly costVsBest: number;
  readonly note?: string;
}

export interface ReplayReport {
  readonly models: readonly string[];
  readonly bestModel: string;
  readonly cheapestModel: string;
  readonly trainPrompts: number;
  readonly testPrompts: number;
  /** What the router spent while learning on the train split (history). */
  readonly trainCostUsd: number;
  readonly router: StrategyResult;
  readonly baselines: readonly StrategyResult[];
  readonly decisionMicros: { readonly p50: number; readonly p99: number };
  readonly decisions: readonly ReplayDecision[];
  readonly policy: Policy;
}

export interface ReplayOptions {
  readonly policy?: Policy | PolicyInput;
  readonly seed?: number;
  /**
   * Synthetic clock: ms between recorded requests (default 1000), against which the policy's
   * `refreshIntervalMs`, `statsWindow` and `halfLifeMs` apply.
   */
  readonly intervalMs?: number;
  /** Cold start per class (default: `scaledWarmup(train)`, capped by the policy's). */
  readonly warmup?: number | ((classKey: string) => number);
  /** Routing class of a recorded prompt (default: its task label). */
  readonly classOf?: (prompt: RecordedPrompt) => string;
}

/** The default replay policy over the data set's models (tuned on RouterBench's train split only). */
export function defaultReplayPolicy(models: readonly string[]): PolicyInput {
  if (models.length < 3) {
    // No two cheap voters to compare: the weight router alone.
    return {
      name: 'replay',
      candidates: models.map((model) => ({ model })),
      goal: { qualityMargin: 0.02 },
    };
  }
  return {
    name: 'replay',
    candidates: models.map((model) => ({ model })),
    goal: { qualityMargin: 0.02, costPenalty: 0.1 },
    exploration: 0.05,
    // The history (train split) is long enough to afford an offline-evaluation-like cold start.
    cascade: { enabled: true, warmupProbes: 150 },
  };
}

function resolvePolicy(models: readonly string[], input: Policy | PolicyInput | undefined): Policy {
  const policy = parsePolicy(input ?? defaultReplayPolicy(models), 'replay policy');
  for (const candidate of policy.candidates) {
    if (!models.includes(candidate.model)) {
      throw new Error(
        `policy candidate "${candidate.model}" is not in the data (models: ${models.join(', ')})`,
      );
    }
  }
  return policy;
}

/** Total score and cost of one model over prompts. */
export function totals(prompts: readonly RecordedPrompt[], model: number) {
  let score = 0;
  let cost = 0;
  for (const prompt of prompts) {
    score += prompt.scores[model]!;
    cost += prompt.costs[model]!;
  }
  return { score, cost };
}

/** The best (highest total score) and cheapest (lowest total cost) model of `all`; the first wins a tie. */
export function bestAndCheapest(all: readonly { score: number; cost: number }[]): {
  best: number;
  cheapest: number;
} {
  let best = 0;
  let cheapest = 0;
  all.forEach((entry, model) => {
    if (entry.score > all[best]!.score) best = model;
    if (entry.cost < all[cheapest]!.cost) cheapest = model;
  });
  return { best, cheapest };
}

function percentile(sorted: readonly number[], share: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))]!;
}

const vectors = new WeakMap<RecordedPrompt, Map<string, RequestVector>>();

/** A recorded prompt as the engine sees it: class, time and (predict mode) its features. */
export function engineRequestOf(
  prompt: RecordedPrompt,
  at: number,
  withVector: boolean,
  classKey = prompt.task,
  families?: readonly FeatureFamily[],
): EngineRequest {
  if (!withVector) return { classKey, at };
  let cached = vectors.get(prompt);
  if (cached === undefined) vectors.set(prompt, (cached = new Map()));
  const key = families === undefined ? classKey : `${classKey}\u0000${families.join()}`;
  let vector = cached.get(key);
  if (vector === undefined) {
    const input = {
      text: prompt.prompt,
      turns: prompt.turns ?? 1,
      classKey,
      ...(families === undefined ? {} : { families }),
    };
    vector = prompt.embedding === undefined ? featurize(input) : featurize(input, prompt.embedding);
    cached.set(key, vector);
  }
  return { classKey, at, vector };
}

/**
 * Cold start scaled with the data: per class at most a quarter of that class's train prompts
 * (none for a class the train split does not have), so warm-up probes never outlast the
 * history and never reach the measured split.
 */
export function scaledWarmup(
  train: RecordedDataset,
  classOf: (prompt: RecordedPrompt) => string = (prompt) => prompt.task,
): (classKey: string) => number {
  const counts = new Map<string, number>();
  for (const prompt of train.prompts) {
    const key = classOf(prompt);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return (classKey) => Math.floor(0.25 * (counts.get(classKey) ?? 0));
}

export function runReplay(
  train: RecordedDataset,
  test: RecordedDataset,
  options: ReplayOptions = {},
): ReplayReport {
  const models = test.models;
  if (train.models.join('\n') !== models.join('\n')) {
    throw new Error('train and test data sets have different models');
  }
  const policy = resolvePolicy(models, options.policy);
  const random = createRandom(options.seed ?? 1);
  const intervalMs = options.intervalMs ?? 1000;
  const modelIndex = policy.candidates.map((candidate) => models.indexOf(candidate.model));
  const candidateOf = new Map(
    policy.candidates.map((candidate, index) => [candidate.model, index]),
  );
  const classOf = options.classOf ?? ((prompt: RecordedPrompt) => prompt.task);
  const engine = new RoutingEngine({
    policy,
    random,
    warmup: options.warmup ?? scaledWarmup(train, classOf),
  });
  const withVector = engine.mode === 'predict';
  const decisionTimes: number[] = [];
  const decisions: ReplayDecision[] = [];
  let trainCost = 0;
  let testScore = 0;
  let testCost = 0;
  let clock = 0;

  const step = (prompt: RecordedPrompt, measured: boolean) => {
    const request = engineRequestOf(
      prompt,
      clock,
      withVector,
      classOf(prompt),
      policy.predictor.features,
    );
    clock += intervalMs;
    const started = performance.now();
    const decision = engine.decide(request);
    if (measured) decisionTimes.push((performance.now() - started) * 1000);
    const outcomes: EngineOutcome[] = [];
    let next = engine.next(decision, outcomes);
    while (!next.done) {
      for (const name of next.call) {
        const model = modelIndex[candidateOf.get(name)!]!;
        outcomes.push({
          model: name,
          score: prompt.scores[model]!,
          costUsd: prompt.costs[model]!,
          answer: normalizeAnswer(prompt.responses[model] ?? ''),
        });
      }
      next = engine.next(decision, outcomes);
    }
    engine.observe(decision, outcomes);
    const answered = modelIndex[candidateOf.get(next.answeredBy)!]!;
    let cost = 0;
    for (const outcome of outcomes) cost += outcome.costUsd;
    if (measured) {
      testScore += prompt.scores[answered]!;
      testCost += cost;
      decisions.push({
        sample_id: prompt.sampleId,
        model: models[answered]!,
        calls: outcomes.map((outcome) => outcome.model),
        kind: decision.kind,
        reason: decision.reason,
      });
    } else {
      trainCost += cost;
    }
  };
  for (const prompt of train.prompts) step(prompt, false);
  for (const prompt of test.prompts) step(prompt, true);

  // Baselines. "Best" and "cheapest" are decided on the train split (history), as a user would.
  const trainTotals = models.map((_, model) => totals(train.prompts, model));
  const { best: bestModel, cheapest: cheapestModel } = bestAndCheapest(trainTotals);
  const testPrompts = test.prompts;
  const n = testPrompts.length;
  const best = totals(testPrompts, bestModel);
  const result = (name: string, score: number, cost: number, note?: string): StrategyResult => ({
    name,
    accuracy: score / n,
    costUsd: cost,
    accuracyVsBest: best.score > 0 ? score / best.score : 0,
    costVsBest: best.cost > 0 ? cost / best.cost : 0,
    ...(note === undefined ? {} : { note }),
  });
  const baselines: StrategyResult[] = [];
  baselines.push(result(`always ${models[bestModel]}`, best.score, best.cost, 'best on train'));
  const cheapest = totals(testPrompts, cheapestModel);
  baselines.push(
    result(`always ${models[cheapestModel]}`, cheapest.score, cheapest.cost, 'cheapest on train'),
  );
  let randomScore = 0;
  let randomCost = 0;
  for (let model = 0; model < models.length; model += 1) {
    const entry = totals(testPrompts, model);
    randomScore += entry.score / models.length;
    randomCost += entry.cost / models.length;
  }
  baselines.push(result('random (expected)', randomScore, randomCost));
  baselines.push(staticFrontier(test, margin98(best.score), result));
  baselines.push(...cascadeFrontier(test, margin98(best.score), 0.2 * best.cost, 0.2, result));
  let oracleScore = 0;
  let oracleCost = 0;
  for (const prompt of testPrompts) {
    let chosen = -1;
    let cheapestIndex = 0;
    for (let model = 0; model < models.length; model += 1) {
      if (prompt.costs[model]! < prompt.costs[cheapestIndex]!) cheapestIndex = model;
      if (
        prompt.scores[model]! >= 1 &&
        (chosen < 0 || prompt.costs[model]! < prompt.costs[chosen]!)
      ) {
        chosen = model;
      }
    }
    oracleScore += chosen < 0 ? prompt.scores[cheapestIndex]! : 1;
    oracleCost += prompt.costs[chosen < 0 ? cheapestIndex : chosen]!;
  }
  baselines.push(
    result('oracle (cheapest correct model)', oracleScore, oracleCost, 'knows every outcome'),
  );
  const sorted = [...decisionTimes].sort((a, b) => a - b);
  return {
    models,
    bestModel: models[bestModel]!,
    cheapestModel: models[cheapestModel]!,
    trainPrompts: train.prompts.length,
    testPrompts: n,
    trainCostUsd: trainCost,
    router: result(
      `router (${engine.mode === 'cascade' ? 'cascade' : engine.mode})`,
      testScore,
      testCost,
    ),
    baselines,
    decisionMicros: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) },
    decisions,
    policy,
  };
}

const margin98 = (bestScore: number) => 0.98 * bestScore;

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
function staticFrontier(
  test: RecordedDataset,
  targetScore: number,
  result: (name: string, score: number, cost: number, note?: string) => StrategyResult,
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
function cascadeFrontier(
  test: RecordedDataset,
  targetScore: number,
  budget: number,
  budgetShare: number,
  result: (name: string, score: number, cost: number, note?: string) => StrategyResult,
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

export interface TwoModelMetrics {
  readonly strongModel: string;
  readonly weakModel: string;
  /** Average performance gap recovered over the share of calls to the strong model (0..1). */
  readonly apgr: number;
  /** Share of calls to the strong model needed to recover 50% / 80% of the gap (null: never). */
  readonly cpt50: number | null;
  readonly cpt80: number | null;
  readonly curve: readonly {
    readonly margin: number;
    readonly strongShare: number;
    readonly pgr: number;
  }[];
}

const MARGINS = [0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1];

/**
 * RouteLLM's metrics for two-model data: replays the weight router (bandit feedback) at a
 * sweep of quality margins, and reads APGR and CPT(50%/80%) off the (strong share, PGR) curve.
 */
export function twoModelMetrics(
  train: RecordedDataset,
  test: RecordedDataset,
  options: ReplayOptions = {},
): TwoModelMetrics {
  if (test.models.length !== 2) throw new Error('APGR and CPT need data with exactly two models');
  const trainScore = test.models.map((_, model) => totals(train.prompts, model).score);
  const strong = trainScore[0]! >= trainScore[1]! ? 0 : 1;
  const weak = 1 - strong;
  const weakScore = totals(test.prompts, weak).score;
  const strongScore = totals(test.prompts, strong).score;
  const gap = strongScore - weakScore;
  const points = MARGINS.map((margin) => {
    const report = runReplay(train, test, {
      ...options,
      policy: {
        name: 'two-model',
        candidates: test.models.map((model) => ({ model })),
        goal: { qualityMargin: margin },
        exploration: 0.02,
      },
    });
    const strongCalls = report.decisions.filter(
      (decision) => decision.model === test.models[strong],
    ).length;
    const score = report.router.accuracy * test.prompts.length;
    return {
      margin,
      strongShare: strongCalls / test.prompts.length,
      pgr: gap === 0 ? 0 : (score - weakScore) / gap,
    };
  });
  const curve = [{ strongShare: 0, pgr: 0 }, ...points, { strongShare: 1, pgr: 1 }].sort(
    (a, b) => a.strongShare - b.strongShare,
  );
  let area = 0;
  for (let index = 1; index < curve.length; index += 1) {
    const left = curve[index - 1]!;
    const right = curve[index]!;
    area += ((left.pgr + right.pgr) / 2) * (right.strongShare - left.strongShare);
  }
  const cpt = (target: number): number | null => {
    for (let index = 0; index < curve.length; index += 1) {
      const point = curve[index]!;
      if (point.pgr < target) continue;
      const previous = curve[index - 1];
      if (previous === undefined || point.pgr === previous.pgr) return point.strongShare;
      return (
        previous.strongShare +
        ((target - previous.pgr) / (point.pgr - previous.pgr)) *
          (point.strongShare - previous.strongShare)
      );
    }
    return null;
  };
  return {
    strongModel: test.models[strong]!,
    weakModel: test.models[weak]!,
    apgr: area,
    cpt50: cpt(0.5),
    cpt80: cpt(0.8),
    curve: points,
  };
}

/**
 * Cold-start priors from an offline evaluation: each candidate's mean score and cost per
 * call on recorded data (e.g. a replay set), written into the policy's `priorQuality` and
 * `priorCostPerCallUsd`. Candidates missing from the data keep their priors.
 */
export function seedPriors(policy: Policy, data: RecordedDataset): Policy {
  const count = data.prompts.length;
  if (count === 0) return policy;
  return {
    ...policy,
    candidates: policy.candidates.map((candidate) => {
      const model = data.models.indexOf(candidate.model);
      if (model < 0) return candidate;
      const { score, cost } = totals(data.prompts, model);
      return { ...candidate, priorQuality: score / count, priorCostPerCallUsd: cost / count };
    }),
  };
}
