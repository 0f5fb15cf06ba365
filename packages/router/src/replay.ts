/**
 * Offline replay: drives the decision core (or the cascade planner) over recorded data with
 * bandit feedback. The router sees only the outcomes (score, cost, answer) of the models it
 * called; every call is charged. Train = history (learning), test = measured (learning goes on).
 */
import { performance } from 'node:perf_hooks';
import { normalizeAnswer } from './answer.js';
import { RoutingEngine } from './engine.js';
import type { DecisionKind, EngineOutcome, EngineRequest, LabelledExample } from './engine.js';
import { featurize } from './features.js';
import type { FeatureFamily, RequestVector } from './features.js';
import { parsePolicy } from './policy.js';
import type { Policy, PolicyInput } from './policy.js';
import { createRandom } from './random.js';
import type { RecordedDataset, RecordedPrompt } from './routerbench.js';
import { cascadeFrontier, margin98, staticFrontier } from './frontiers.js';
import type { ResultOf } from './frontiers.js';
import { bestAndCheapest, totals } from './totals.js';

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
  /**
   * What learning on the train split (history) cost: the router's own calls (online), or the
   * labels of a fit (every candidate on every train prompt).
   */
  readonly trainCostUsd: number;
  /** How the train split was learned (`ReplayOptions.history`). */
  readonly history: 'online' | 'fit';
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
  /**
   * How the train split (history) is learned: `online` (default) routes it with bandit
   * feedback, every call charged; `fit` hands every model's outcome to `engine.fit` (full
   * information, as a labelled history would), charging the labels: every candidate on
   * every train prompt.
   */
  readonly history?: 'online' | 'fit';
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

/**
 * A recorded data set as a labelled history for `engine.fit`: per prompt, the request the
 * engine would see (class, time from `startAt` by `intervalMs`, features) and every
 * candidate's recorded outcome. A routed client fitted with them decides like the replay.
 */
export function labelledExamples(
  data: RecordedDataset,
  policyInput: Policy | PolicyInput,
  options: Pick<ReplayOptions, 'classOf' | 'intervalMs'> & { readonly startAt?: number } = {},
): LabelledExample[] {
  const policy = parsePolicy(policyInput, 'policy');
  const classOf = options.classOf ?? ((prompt: RecordedPrompt) => prompt.task);
  const interval = options.intervalMs ?? 1000;
  const columns = policy.candidates.map((candidate) => data.models.indexOf(candidate.model));
  return data.prompts.map((prompt, index) => ({
    request: engineRequestOf(
      prompt,
      (options.startAt ?? 0) + index * interval,
      policy.predictor.enabled,
      classOf(prompt),
      policy.predictor.features,
    ),
    outcomes: policy.candidates.flatMap((candidate, at) =>
      columns[at]! < 0 ? [] : [recordedOutcome(prompt, candidate.model, columns[at]!)],
    ),
  }));
}

/** The recorded outcome of calling one model (its column in the data) on a prompt. */
function recordedOutcome(prompt: RecordedPrompt, name: string, model: number): EngineOutcome {
  return {
    model: name,
    score: prompt.scores[model]!,
    costUsd: prompt.costs[model]!,
    answer: normalizeAnswer(prompt.responses[model] ?? ''),
  };
}

/** One replay: the engine over the train split (history), then the test split (measured). */
class ReplayRun {
  readonly engine: RoutingEngine;
  readonly decisionTimes: number[] = [];
  readonly decisions: ReplayDecision[] = [];
  trainCost = 0;
  testScore = 0;
  testCost = 0;
  private clock = 0;
  private readonly policy: Policy;
  private readonly models: readonly string[];
  private readonly intervalMs: number;
  private readonly classOf: (prompt: RecordedPrompt) => string;
  /** Per candidate: its model's column in the data. */
  private readonly columnOf: ReadonlyMap<string, number>;

  constructor(
    policy: Policy,
    models: readonly string[],
    train: RecordedDataset,
    options: ReplayOptions,
  ) {
    this.policy = policy;
    this.models = models;
    this.intervalMs = options.intervalMs ?? 1000;
    this.columnOf = new Map(
      policy.candidates.map((candidate) => [candidate.model, models.indexOf(candidate.model)]),
    );
    this.classOf = options.classOf ?? ((prompt: RecordedPrompt) => prompt.task);
    this.engine = new RoutingEngine({
      policy,
      random: createRandom(options.seed ?? 1),
      warmup: options.warmup ?? scaledWarmup(train, this.classOf),
    });
  }

  /** Decides for one recorded prompt, makes the calls the plan asks for, learns, counts. */
  step(prompt: RecordedPrompt, measured: boolean): void {
    const { engine } = this;
    const request = engineRequestOf(
      prompt,
      this.clock,
      engine.mode === 'predict',
      this.classOf(prompt),
      this.policy.predictor.features,
    );
    this.clock += this.intervalMs;
    const started = performance.now();
    const decision = engine.decide(request);
    if (measured) this.decisionTimes.push((performance.now() - started) * 1000);
    const outcomes: EngineOutcome[] = [];
    let next = engine.next(decision, outcomes);
    while (!next.done) {
      for (const name of next.call) outcomes.push(this.recorded(prompt, name));
      next = engine.next(decision, outcomes);
    }
    engine.observe(decision, outcomes);
    const answered = this.columnOf.get(next.answeredBy)!;
    let cost = 0;
    for (const outcome of outcomes) cost += outcome.costUsd;
    if (!measured) {
      this.trainCost += cost;
      return;
    }
    this.testScore += prompt.scores[answered]!;
    this.testCost += cost;
    this.decisions.push({
      sample_id: prompt.sampleId,
      model: this.models[answered]!,
      calls: outcomes.map((outcome) => outcome.model),
      kind: decision.kind,
      reason: decision.reason,
    });
  }

  /** The recorded outcome of calling one candidate on a prompt. */
  private recorded(prompt: RecordedPrompt, name: string): EngineOutcome {
    return recordedOutcome(prompt, name, this.columnOf.get(name)!);
  }

  /** Full-information fit of the train split (`engine.fit`); the labels are charged. */
  fit(train: RecordedDataset): void {
    const examples = labelledExamples(train, this.policy, {
      classOf: this.classOf,
      intervalMs: this.intervalMs,
      startAt: this.clock,
    });
    this.engine.fit(examples);
    this.clock += train.prompts.length * this.intervalMs;
    for (const { outcomes } of examples) {
      for (const outcome of outcomes) this.trainCost += outcome.costUsd;
    }
  }
}

/** Score and cost of the cheapest correct model per prompt (the cheapest model when none is). */
function oracleTotals(prompts: readonly RecordedPrompt[], models: number) {
  let score = 0;
  let cost = 0;
  for (const prompt of prompts) {
    let chosen = -1;
    let cheapestIndex = 0;
    for (let model = 0; model < models; model += 1) {
      if (prompt.costs[model]! < prompt.costs[cheapestIndex]!) cheapestIndex = model;
      if (
        prompt.scores[model]! >= 1 &&
        (chosen < 0 || prompt.costs[model]! < prompt.costs[chosen]!)
      ) {
        chosen = model;
      }
    }
    score += chosen < 0 ? prompt.scores[cheapestIndex]! : 1;
    cost += prompt.costs[chosen < 0 ? cheapestIndex : chosen]!;
  }
  return { score, cost };
}

/**
 * The strategies the router is measured against. "Best" and "cheapest" are decided on the
 * train split (history), as a user would.
 */
function baselinesOf(train: RecordedDataset, test: RecordedDataset) {
  const models = test.models;
  const trainTotals = models.map((_, model) => totals(train.prompts, model));
  const { best: bestModel, cheapest: cheapestModel } = bestAndCheapest(trainTotals);
  const testPrompts = test.prompts;
  const best = totals(testPrompts, bestModel);
  const result: ResultOf = (name, score, cost, note) => ({
    name,
    accuracy: score / testPrompts.length,
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
  const oracle = oracleTotals(testPrompts, models.length);
  baselines.push(
    result('oracle (cheapest correct model)', oracle.score, oracle.cost, 'knows every outcome'),
  );
  return { bestModel, cheapestModel, result, baselines };
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
  const run = new ReplayRun(policy, models, train, options);
  if (options.history === 'fit') run.fit(train);
  else for (const prompt of train.prompts) run.step(prompt, false);
  for (const prompt of test.prompts) run.step(prompt, true);
  const { bestModel, cheapestModel, result, baselines } = baselinesOf(train, test);
  const sorted = [...run.decisionTimes].sort((a, b) => a - b);
  const mode = run.engine.mode;
  return {
    models,
    bestModel: models[bestModel]!,
    cheapestModel: models[cheapestModel]!,
    trainPrompts: train.prompts.length,
    testPrompts: test.prompts.length,
    trainCostUsd: run.trainCost,
    history: options.history ?? 'online',
    router: result(
      `router (${mode === 'cascade' ? 'cascade' : mode})`,
      run.testScore,
      run.testCost,
    ),
    baselines,
    decisionMicros: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) },
    decisions: run.decisions,
    policy,
  };
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
