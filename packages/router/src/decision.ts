/**
 * The pure decision core: aggregate stats + policy + a random source in, per-class weights
 * over candidates out, each weight with its explanation. No I/O, no clock, no globals.
 */
import type { Candidate, Policy } from './policy.js';
import type { RandomSource } from './random.js';

/** Aggregates for one model in one class, as the weight updater hands them over. */
export interface ModelClassStats {
  readonly model: string;
  /** Class (task label); `*` for stats that apply to every class. */
  readonly classKey: string;
  /** Effective (possibly decayed) number of calls and of scored calls. */
  readonly calls: number;
  readonly errors: number;
  readonly costPerCallUsd: number | null;
  readonly latencyP95Ms: number | null;
  readonly meanScore: number | null;
  readonly scoreCount: number;
  /**
   * Variance of the scores (the engine's own stats). When given, the uncertainty of the mean
   * uses it instead of the Bernoulli `mean × (1 − mean)`: scores that cluster (a pairwise shadow
   * verdict is mostly a tie, 0.5) are far less uncertain than pass/fail scores.
   */
  readonly scoreVariance?: number | null;
}

export interface CandidateWeight {
  readonly model: string;
  readonly weight: number;
  /** One line: why this weight (quality, cost, latency, errors, rule applied). */
  readonly reason: string;
  readonly quality: number;
  readonly qualityStdDev: number;
  readonly costPerCallUsd: number | null;
  readonly eligible: boolean;
}

export interface ClassWeights {
  readonly classKey: string;
  readonly weights: readonly CandidateWeight[];
  /** Summary of the rule applied to the class. */
  readonly explanation: string;
}

export interface WeightTable {
  readonly policy: string;
  readonly classes: ReadonlyMap<string, ClassWeights>;
  /** Weights for a class never seen in the stats (priors only). */
  readonly fallbackClass: ClassWeights;
  /** Set when the stats were stale or missing and these are the last good weights. */
  readonly stale?: string;
}

export interface ComputeWeightsInput {
  readonly policy: Policy;
  readonly stats: readonly ModelClassStats[];
  readonly random: RandomSource;
  /** Classes to compute in addition to those in the stats. */
  readonly classes?: readonly string[];
  /** USD spent in the current budget period. */
  readonly spentUsd?: number;
  /** Thompson draws per class (more: smoother weights, slower). */
  readonly draws?: number;
}

/** Standard normal sample (Box-Muller) from a uniform source. */
function gaussian(random: RandomSource): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

interface Evaluated {
  readonly candidate: Candidate;
  readonly mean: number;
  readonly sd: number;
  readonly cost: number | null;
  readonly p95: number | null;
  readonly errorRate: number;
  readonly calls: number;
  sloOk: boolean;
}

function evaluate(
  candidate: Candidate,
  stats: ModelClassStats | undefined,
  global: ModelClassStats | undefined,
  policy: Policy,
): Evaluated {
  const priorQuality = candidate.priorQuality ?? global?.meanScore ?? 0.5;
  const strength = policy.priorStrength;
  const scored = stats?.scoreCount ?? 0;
  const observed = stats?.meanScore ?? null;
  // Until `minCalls` scored calls, the prior blends in; from then on the observed mean alone.
  const ownOnly = observed !== null && scored >= Math.max(policy.minCalls, 1);
  const alpha = ownOnly
    ? observed * scored
    : priorQuality * strength + (observed === null ? 0 : observed * scored);
  const total = ownOnly ? scored : strength + (observed === null ? 0 : scored);
  const mean = total > 0 ? alpha / total : priorQuality;
  const variance =
    stats?.scoreVariance !== undefined && stats.scoreVariance !== null && scored >= 2
      ? // the prior's pseudo-counts carry Bernoulli variance, the observed scores their own
        ((total - scored) * mean * (1 - mean) + scored * stats.scoreVariance) / total
      : mean * (1 - mean);
  const sd = Math.sqrt(variance / (total + 1));
  const calls = stats?.calls ?? 0;
  const errorRate = calls > 0 ? (stats?.errors ?? 0) / calls : 0;
  const cost =
    stats?.costPerCallUsd ?? global?.costPerCallUsd ?? candidate.priorCostPerCallUsd ?? null;
  const p95 = stats?.latencyP95Ms ?? global?.latencyP95Ms ?? null;
  return {
    candidate,
    mean: mean * (1 - errorRate),
    sd,
    cost,
    p95,
    errorRate,
    calls,
    sloOk:
      policy.goal.latencySloMs === undefined || p95 === null || p95 <= policy.goal.latencySloMs,
  };
}

const format = (value: number, digits = 3) => value.toFixed(digits);

function classWeights(
  classKey: string,
  policy: Policy,
  byModel: ReadonlyMap<string, ModelClassStats>,
  globalByModel: ReadonlyMap<string, ModelClassStats>,
  random: RandomSource,
  overBudget: boolean,
  draws: number,
): ClassWeights {
  const evaluated = policy.candidates.map((candidate) =>
    evaluate(candidate, byModel.get(candidate.model), globalByModel.get(candidate.model), policy),
  );
  let eligible = evaluated.filter((entry) => entry.sloOk);
  let sloNote = '';
  if (eligible.length === 0) {
    eligible = evaluated;
    sloNote = '; no candidate meets the latency SLO, so all are considered';
    for (const entry of evaluated) entry.sloOk = true;
  }
  const count = evaluated.length;
  const wins = new Float64Array(count);
  const margin = policy.goal.qualityMargin;
  const costOf = (entry: Evaluated) => entry.cost ?? 0;
  let rule: string;
  if (overBudget) {
    let cheapest = eligible[0]!;
    for (const entry of eligible) if (costOf(entry) < costOf(cheapest)) cheapest = entry;
    wins[evaluated.indexOf(cheapest)] = draws;
    rule = `budget spent: cheapest eligible model ${cheapest.candidate.model}`;
  } else {
    // Thompson sampling over the rule "cheapest whose quality is within margin of the best".
    const sampled = new Float64Array(count);
    for (let draw = 0; draw < draws; draw += 1) {
      let best = -Infinity;
      for (let index = 0; index < count; index += 1) {
        const entry = evaluated[index]!;
        if (!entry.sloOk) continue;
        const value = entry.mean + entry.sd * gaussian(random);
        sampled[index] = value;
        if (value > best) best = value;
      }
      let chosen = -1;
      for (let index = 0; index < count; index += 1) {
        const entry = evaluated[index]!;
        if (!entry.sloOk || sampled[index]! < best - margin) continue;
        if (chosen < 0 || costOf(entry) < costOf(evaluated[chosen]!)) chosen = index;
      }
      if (chosen >= 0) wins[chosen] = wins[chosen]! + 1;
    }
    rule = `cheapest within ${margin} of the best quality (Thompson, ${draws} draws)`;
  }
  const exploration = policy.exploration;
  const eligibleCount = eligible.length;
  const weights = evaluated.map((entry, index) => {
    const exploit = wins[index]! / draws;
    const weight = entry.sloOk ? (1 - exploration) * exploit + exploration / eligibleCount : 0;
    const parts = [
      `quality ${format(entry.mean)}±${format(entry.sd)} (${entry.calls.toFixed(0)} calls)`,
      `cost/call ${entry.cost === null ? 'unknown' : '$' + entry.cost.toPrecision(3)}`,
      `p95 ${entry.p95 === null ? 'unknown' : Math.round(entry.p95) + 'ms'}`,
      `errors ${format(entry.errorRate * 100, 1)}%`,
    ];
    let why: string;
    if (!entry.sloOk) why = `over the latency SLO of ${policy.goal.latencySloMs}ms`;
    else if (exploit > 0) why = `chosen in ${format(exploit * 100, 1)}% of draws`;
    else why = 'exploration share only';
    return {
      model: entry.candidate.model,
      weight,
      reason: `${why}: ${parts.join(', ')}`,
      quality: entry.mean,
      qualityStdDev: entry.sd,
      costPerCallUsd: entry.cost,
      eligible: entry.sloOk,
    };
  });
  return { classKey, weights, explanation: rule + sloNote };
}

/** Computes per-class weights over the policy's candidates. Pure given `random`. */
export function computeWeights(input: ComputeWeightsInput): WeightTable {
  const { policy, stats, random } = input;
  const draws = input.draws ?? 200;
  const byClass = new Map<string, Map<string, ModelClassStats>>();
  for (const row of stats) {
    let models = byClass.get(row.classKey);
    if (!models) byClass.set(row.classKey, (models = new Map()));
    models.set(row.model, row);
  }
  const globalByModel = byClass.get('*') ?? new Map<string, ModelClassStats>();
  const budget = policy.goal.budget;
  const overBudget = budget !== undefined && (input.spentUsd ?? 0) >= budget.usd;
  const classes = new Map<string, ClassWeights>();
  const keys = new Set([...byClass.keys(), ...(input.classes ?? [])]);
  keys.delete('*');
  for (const classKey of keys) {
    classes.set(
      classKey,
      classWeights(
        classKey,
        policy,
        byClass.get(classKey) ?? new Map(),
        globalByModel,
        random,
        overBudget,
        draws,
      ),
    );
  }
  const fallbackClass = classWeights(
    '*',
    policy,
    globalByModel,
    globalByModel,
    random,
    overBudget,
    draws,
  );
  return { policy: policy.name, classes, fallbackClass };
}

export interface Choice {
  readonly model: string;
  readonly weight: number;
  readonly reason: string;
  readonly classKey: string;
}

/**
 * Picks a model for one request by weight. `exclude` removes models (cooling down, already
 * tried); returns undefined when nothing is left. Fast: one pass over the weights.
 */
export function chooseModel(
  table: WeightTable,
  classKey: string,
  random: RandomSource,
  exclude?: ReadonlySet<string>,
): Choice | undefined {
  const entry = table.classes.get(classKey) ?? table.fallbackClass;
  const weights = entry.weights;
  let total = 0;
  for (const weight of weights) {
    if (weight.weight > 0 && !exclude?.has(weight.model)) total += weight.weight;
  }
  if (total <= 0) return undefined;
  let point = random() * total;
  let last: CandidateWeight | undefined;
  for (const weight of weights) {
    if (weight.weight <= 0 || exclude?.has(weight.model)) continue;
    last = weight;
    point -= weight.weight;
    if (point < 0) break;
  }
  if (last === undefined) return undefined;
  return {
    model: last.model,
    weight: last.weight / total,
    reason: last.reason,
    classKey: entry.classKey,
  };
}
