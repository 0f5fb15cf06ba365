/**
 * Cascade planner: per class, learns from the outcomes of its own calls whether to answer with
 * one model, with two cheap "voters" that escalate to the class's best model when their
 * answers disagree, or (rarely, to explore) with every voter plus the best. Pure given its
 * random source; state is plain counters, updated by `observe`.
 */
import type { Policy } from './policy.js';
import type { RandomSource } from './random.js';
import { newClassState } from './cascade-state.js';
import type { ClassState } from './cascade-state.js';

export type CascadePlan =
  | { readonly kind: 'single'; readonly model: number; readonly reason: string }
  | {
      readonly kind: 'pair';
      readonly voters: readonly [number, number];
      readonly escalateTo: number;
      /** Agreed answers that still escalate (their agreement is worth less than the best model). */
      readonly escalateAnswers?: readonly string[];
      readonly reason: string;
    }
  | {
      readonly kind: 'triple';
      /** Ask the first two; on disagreement ask the third; escalate if it matches neither. */
      readonly voters: readonly [number, number, number];
      readonly escalateTo: number;
      readonly reason: string;
    }
  | {
      readonly kind: 'probe';
      readonly voters: readonly number[];
      readonly escalateTo: number;
      readonly reason: string;
    };

/** The outcome of one call made for a prompt. `score` arrives later, as feedback. */
export interface CallOutcome {
  readonly model: number;
  readonly score: number;
  readonly costUsd: number;
  /** The normalized answer (see `normalizeAnswer`), undefined when none was found. */
  readonly answer: string | undefined;
}

/** A candidate plan with its estimated quality, the quality's lower bound, and its cost. */
interface ScoredPlan {
  readonly plan: CascadePlan;
  readonly quality: number;
  readonly lower: number;
  readonly cost: number;
}

/** What every candidate plan of one recomputation shares. */
interface PlanContext {
  readonly state: ClassState;
  readonly best: number;
  readonly bestCost: number;
  readonly bestQuality: number;
  /** Models cheap enough to vote. */
  readonly voters: readonly number[];
}

/** A voter pair's estimates (a < b; x is the better of the two). */
interface PairEstimate {
  readonly a: number;
  readonly b: number;
  readonly x: number;
  readonly y: number;
  readonly index: number;
  readonly calls: number;
  readonly agreeRate: number;
  readonly agreeQuality: number;
  readonly scored: ScoredPlan;
}

export interface CascadeOptions {
  readonly random: RandomSource;
  /** Probes per class before the planner trusts its counters. */
  readonly warmupProbes?: number | ((classKey: string) => number);
  /** Co-observations a voter pair needs before it may be chosen. */
  readonly minPairCalls?: number;
  /** Observations of a class between re-evaluations of its plans (decision speed). */
  readonly recomputeEvery?: number;
}

export class CascadePlanner {
  readonly models: readonly string[];
  private readonly policy: Policy;
  private readonly random: RandomSource;
  private readonly warmupProbes: (classKey: string) => number;
  private readonly minPairCalls: number;
  private readonly recomputeEvery: number;
  private readonly classes = new Map<string, ClassState>();

  constructor(policy: Policy, options: CascadeOptions) {
    this.policy = policy;
    this.models = policy.candidates.map((candidate) => candidate.model);
    this.random = options.random;
    const warmup = options.warmupProbes ?? policy.cascade.warmupProbes;
    this.warmupProbes = typeof warmup === 'number' ? () => warmup : warmup;
    this.minPairCalls = options.minPairCalls ?? policy.cascade.minPairCalls;
    this.recomputeEvery = options.recomputeEvery ?? 10;
  }

  private state(classKey: string): ClassState {
    let state = this.classes.get(classKey);
    if (!state) this.classes.set(classKey, (state = newClassState(this.models.length)));
    return state;
  }

  private quality(state: ClassState, model: number): number {
    const counters = state.models[model]!;
    const prior = this.policy.candidates[model]!.priorQuality ?? 0.5;
    const strength = this.policy.priorStrength;
    return (counters.score + prior * strength) / (counters.calls + strength);
  }

  private cost(state: ClassState, model: number): number {
    const counters = state.models[model]!;
    if (counters.calls > 0) return counters.cost / counters.calls;
    return this.policy.candidates[model]!.priorCostPerCallUsd ?? 0;
  }

  private best(state: ClassState): number {
    let best = 0;
    for (let model = 1; model < this.models.length; model += 1) {
      if (this.quality(state, model) > this.quality(state, best)) best = model;
    }
    return best;
  }

  /** The plan under which a fully labelled example is learned (offline fit): a probe of all. */
  fitPlan(classKey: string): CascadePlan {
    const best = this.best(this.state(classKey));
    const others: number[] = [];
    for (let model = 0; model < this.models.length; model += 1)
      if (model !== best) others.push(model);
    return { kind: 'probe', voters: others, escalateTo: best, reason: 'offline fit' };
  }

  /** Decides which calls to make for one prompt of `classKey`. */
  plan(classKey: string): CascadePlan {
    const state = this.state(classKey);
    const count = this.models.length;
    const best = this.best(state);
    const bestCost = this.cost(state, best);
    const cascade = this.policy.cascade;
    const voters: number[] = [];
    for (let model = 0; model < count; model += 1) {
      if (model !== best && this.cost(state, model) <= cascade.voterMaxCostShare * bestCost) {
        voters.push(model);
      }
    }
    if (state.probes < this.warmupProbes(classKey)) {
      const others: number[] = [];
      for (let model = 0; model < count; model += 1) if (model !== best) others.push(model);
      return {
        kind: 'probe',
        voters: others,
        escalateTo: best,
        reason: 'cold start: probing every candidate',
      };
    }
    if (this.random() < cascade.probeRate) {
      return {
        kind: 'probe',
        voters,
        escalateTo: best,
        reason: 'exploration probe of every voter',
      };
    }
    if (state.cached !== undefined && state.sinceRecompute < this.recomputeEvery) {
      return state.cached;
    }
    const context: PlanContext = {
      state,
      best,
      bestCost,
      bestQuality: this.quality(state, best),
      voters,
    };
    state.cached = this.choose(this.candidatePlans(context), bestCost) ?? {
      kind: 'single',
      model: best,
      reason: 'best model',
    };
    state.sinceRecompute = 0;
    return state.cached;
  }

  /**
   * The plan to run: with `costPenalty`, the best lower quality bound − penalty × cost ÷ the
   * best model's cost; else the cheapest whose lower bound is within `qualityMargin` of the top.
   */
  private choose(plans: readonly ScoredPlan[], bestCost: number): CascadePlan | undefined {
    const penalty = this.policy.goal.costPenalty;
    const margin = this.policy.goal.qualityMargin;
    const lambda = penalty === undefined ? 0 : penalty / Math.max(bestCost, 1e-12);
    let chosen: CascadePlan | undefined;
    let chosenValue = -Infinity;
    let chosenCost = Infinity;
    let topQuality = -Infinity;
    for (const entry of plans) if (entry.quality > topQuality) topQuality = entry.quality;
    for (const entry of plans) {
      if (penalty !== undefined) {
        const value = entry.lower - lambda * entry.cost;
        if (value > chosenValue) {
          chosenValue = value;
          chosen = entry.plan;
        }
      } else if (entry.lower >= topQuality - margin && entry.cost < chosenCost) {
        chosenCost = entry.cost;
        chosen = entry.plan;
      }
    }
    return chosen;
  }

  /** Every plan the class's counters allow, with its estimated quality, lower bound and cost. */
  private candidatePlans(context: PlanContext): ScoredPlan[] {
    const { state, voters } = context;
    const count = this.models.length;
    const strength = this.policy.priorStrength;
    const plans: ScoredPlan[] = [];
    for (let model = 0; model < count; model += 1) {
      const quality = this.quality(state, model);
      const calls = state.models[model]!.calls + strength;
      plans.push({
        plan: {
          kind: 'single',
          model,
          reason: `single ${this.models[model]}: quality ${quality.toFixed(3)}`,
        },
        quality,
        lower: quality - Math.sqrt((quality * (1 - quality)) / calls),
        cost: this.cost(state, model),
      });
    }
    for (let first = 0; first < voters.length; first += 1) {
      for (let second = first + 1; second < voters.length; second += 1) {
        const pair = this.pairEstimate(context, voters[first]!, voters[second]!);
        if (pair === undefined) continue;
        plans.push(pair.scored);
        const answers = this.answerEscalationPlan(context, pair);
        if (answers !== undefined) plans.push(answers);
        if (!this.policy.cascade.thirdVoter) continue;
        for (const third of voters) {
          if (third === pair.a || third === pair.b) continue;
          const triple = this.triplePlan(context, pair, third);
          if (triple !== undefined) plans.push(triple);
        }
      }
    }
    return plans;
  }

  /** Voters a and b escalating to the best model when they disagree (undefined: too few calls). */
  private pairEstimate(context: PlanContext, a: number, b: number): PairEstimate | undefined {
    const { state, best, bestCost, bestQuality } = context;
    const strength = this.policy.priorStrength;
    const index = a * this.models.length + b;
    const calls = state.pairCalls[index]!;
    if (calls < this.minPairCalls) return undefined;
    const agree = state.pairAgree[index]!;
    const agreeRate = (agree + 0.5) / (calls + 1);
    const agreeQuality = (state.pairAgreeScore[index]! + bestQuality) / (agree + 1);
    const disagreeQuality =
      (state.pairDisagreeBestScore[index]! + bestQuality * strength) /
      (state.pairDisagreeBest[index]! + strength);
    const quality = agreeRate * agreeQuality + (1 - agreeRate) * disagreeQuality;
    const cost = this.cost(state, a) + this.cost(state, b) + (1 - agreeRate) * bestCost;
    const lower = quality - Math.sqrt((quality * (1 - quality)) / (calls + 1));
    const [x, y] = this.quality(state, a) >= this.quality(state, b) ? [a, b] : [b, a];
    return {
      a,
      b,
      x,
      y,
      index,
      calls,
      agreeRate,
      agreeQuality,
      scored: {
        plan: {
          kind: 'pair',
          voters: [x, y],
          escalateTo: best,
          reason: `voters ${this.models[x]} + ${this.models[y]} agree ${(agreeRate * 100).toFixed(0)}%, else ${this.models[best]}: quality ${quality.toFixed(3)}`,
        },
        quality,
        lower,
        cost,
      },
    };
  }

  /** The pair, also escalating agreements on answers where the best model is worth its price. */
  private answerEscalationPlan(context: PlanContext, pair: PairEstimate): ScoredPlan | undefined {
    const { state, best, bestCost, bestQuality } = context;
    const penalty = this.policy.goal.costPenalty;
    const answers = state.pairAnswers.get(pair.index);
    if (!this.policy.cascade.answerEscalation || penalty === undefined || answers === undefined) {
      return undefined;
    }
    const strength = this.policy.priorStrength;
    const { calls, agreeQuality, x, y } = pair;
    const escalateAnswers: string[] = [];
    let answerQuality = pair.scored.quality;
    let answerCost = pair.scored.cost;
    for (const [value, counters] of answers) {
      const share = counters.agreed / (calls + 1);
      const valueQuality = (counters.score + agreeQuality) / (counters.agreed + 1);
      const bestValueQuality =
        (counters.bestScore + bestQuality * strength) / (counters.bestSeen + strength);
      if (bestValueQuality - valueQuality > penalty) {
        escalateAnswers.push(value);
        answerQuality += share * (bestValueQuality - valueQuality);
        answerCost += share * bestCost;
      }
    }
    if (escalateAnswers.length === 0) return undefined;
    return {
      plan: {
        kind: 'pair',
        voters: [x, y],
        escalateTo: best,
        escalateAnswers,
        reason: `voters ${this.models[x]} + ${this.models[y]}, else (or when they agree on ${escalateAnswers.join('/')}) ${this.models[best]}: quality ${answerQuality.toFixed(3)}`,
      },
      quality: answerQuality,
      lower: answerQuality - Math.sqrt((answerQuality * (1 - answerQuality)) / (calls + 1)),
      cost: answerCost,
    };
  }

  /** The pair, asking voter c on disagreement before escalating (undefined: too few calls). */
  private triplePlan(context: PlanContext, pair: PairEstimate, c: number): ScoredPlan | undefined {
    const { state, best, bestCost, bestQuality } = context;
    const strength = this.policy.priorStrength;
    const { a, b, x, y, calls, agreeRate, agreeQuality } = pair;
    const tripleIndex = pair.index * this.models.length + c;
    const tripleCalls = state.tripleCalls[tripleIndex]!;
    if (tripleCalls < this.minPairCalls / 2) return undefined;
    const match = state.tripleMatch[tripleIndex]!;
    const matchRate = (match + 0.5) / (tripleCalls + 1);
    const matchQuality = (state.tripleMatchScore[tripleIndex]! + 0.5) / (match + 1);
    const noMatchQuality =
      (state.tripleNoMatchBestScore[tripleIndex]! + bestQuality * strength) /
      (state.tripleNoMatchBest[tripleIndex]! + strength);
    const disagreeValue = matchRate * matchQuality + (1 - matchRate) * noMatchQuality;
    const tripleQuality = agreeRate * agreeQuality + (1 - agreeRate) * disagreeValue;
    const tripleCost =
      this.cost(state, a) +
      this.cost(state, b) +
      (1 - agreeRate) * (this.cost(state, c) + (1 - matchRate) * bestCost);
    const spread = Math.sqrt(
      (tripleQuality * (1 - tripleQuality)) / (calls + 1) +
        ((1 - agreeRate) ** 2 * disagreeValue * (1 - disagreeValue)) / (tripleCalls + 1),
    );
    return {
      plan: {
        kind: 'triple',
        voters: [x, y, c],
        escalateTo: best,
        reason: `voters ${this.models[x]} + ${this.models[y]}, on disagreement ${this.models[c]}, else ${this.models[best]}: quality ${tripleQuality.toFixed(3)}`,
      },
      quality: tripleQuality,
      lower: tripleQuality - spread,
      cost: tripleCost,
    };
  }

  private observeThird(
    state: ClassState,
    a: CallOutcome,
    b: CallOutcome,
    voters: readonly CallOutcome[],
    best: CallOutcome | undefined,
  ): void {
    const count = this.models.length;
    const base = (a.model * count + b.model) * count;
    for (const third of voters) {
      if (third === a || third === b) continue;
      const index = base + third.model;
      state.tripleCalls[index] = state.tripleCalls[index]! + 1;
      const matched =
        third.answer !== undefined && (third.answer === a.answer || third.answer === b.answer);
      if (matched) {
        state.tripleMatch[index] = state.tripleMatch[index]! + 1;
        state.tripleMatchScore[index] = state.tripleMatchScore[index]! + third.score;
      } else if (best !== undefined) {
        state.tripleNoMatchBest[index] = state.tripleNoMatchBest[index]! + 1;
        state.tripleNoMatchBestScore[index] = state.tripleNoMatchBestScore[index]! + best.score;
      }
    }
  }

  /** Feeds back the outcomes of the calls made for one prompt (bandit feedback only). */
  observe(classKey: string, plan: CascadePlan, outcomes: readonly CallOutcome[]): void {
    const state = this.state(classKey);
    const count = this.models.length;
    for (const outcome of outcomes) {
      const counters = state.models[outcome.model]!;
      counters.calls += 1;
      counters.score += outcome.score;
      counters.cost += outcome.costUsd;
    }
    if (plan.kind === 'probe') state.probes += 1;
    state.sinceRecompute += 1;
    if (plan.kind !== 'single') {
      const best = outcomes.find((outcome) => outcome.model === plan.escalateTo);
      const voters = outcomes.filter((outcome) => outcome.model !== plan.escalateTo);
      for (let first = 0; first < voters.length; first += 1) {
        for (let second = first + 1; second < voters.length; second += 1) {
          const one = voters[first]!;
          const two = voters[second]!;
          const [a, b] = one.model < two.model ? [one, two] : [two, one];
          // Only unbiased samples: a probe, or the plan's own first two voters.
          const planPair =
            plan.kind !== 'probe' &&
            ((plan.voters[0] === a.model && plan.voters[1] === b.model) ||
              (plan.voters[0] === b.model && plan.voters[1] === a.model));
          if (plan.kind !== 'probe' && !planPair) continue;
          const index = a.model * count + b.model;
          state.pairCalls[index] = state.pairCalls[index]! + 1;
          if (a.answer !== undefined && a.answer === b.answer) {
            state.pairAgree[index] = state.pairAgree[index]! + 1;
            state.pairAgreeScore[index] = state.pairAgreeScore[index]! + (a.score + b.score) / 2;
            let answers = state.pairAnswers.get(index);
            if (answers === undefined) state.pairAnswers.set(index, (answers = new Map()));
            let counters = answers.get(a.answer);
            if (counters === undefined) {
              if (answers.size >= 16) continue; // free-form answers: keep the table small
              answers.set(
                a.answer,
                (counters = { agreed: 0, score: 0, bestSeen: 0, bestScore: 0 }),
              );
            }
            counters.agreed += 1;
            counters.score += (a.score + b.score) / 2;
            if (best !== undefined) {
              counters.bestSeen += 1;
              counters.bestScore += best.score;
            }
          } else {
            if (best !== undefined) {
              state.pairDisagreeBest[index] = state.pairDisagreeBest[index]! + 1;
              state.pairDisagreeBestScore[index] = state.pairDisagreeBestScore[index]! + best.score;
            }
            if (this.policy.cascade.thirdVoter) {
              const thirds =
                plan.kind === 'probe'
                  ? voters
                  : plan.kind === 'triple'
                    ? voters.filter((outcome) => outcome.model === plan.voters[2])
                    : [];
              this.observeThird(state, a, b, thirds, best);
            }
          }
        }
      }
    }
  }
}
