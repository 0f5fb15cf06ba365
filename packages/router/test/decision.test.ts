import type { StatsResponse } from '@modelmaxx/semconv/schemas';
import { describe, expect, it } from 'vitest';
import { chooseModel, computeWeights } from '../src/decision.js';
import type { ModelClassStats, WeightTable } from '../src/decision.js';
import { parsePolicy } from '../src/policy.js';
import type { PolicyInput } from '../src/policy.js';
import { createRandom } from '../src/random.js';
import { WeightUpdater } from '../src/weight-updater.js';

const CANDIDATES = [
  { model: 'big', priorCostPerCallUsd: 0.01 },
  { model: 'mid', priorCostPerCallUsd: 0.002 },
  { model: 'small', priorCostPerCallUsd: 0.0002 },
];

const policyOf = (overrides: Partial<PolicyInput> = {}) =>
  parsePolicy({ candidates: CANDIDATES, exploration: 0.05, ...overrides });

/** Stats of one model in class `qa` over 100 scored calls without errors. */
const qaRow = (
  model: string,
  meanScore: number,
  costPerCallUsd: number,
  latencyP95Ms: number | null,
): ModelClassStats => ({
  model,
  classKey: 'qa',
  calls: 100,
  errors: 0,
  costPerCallUsd,
  latencyP95Ms,
  meanScore,
  scoreCount: 100,
});

/** Cost per call of the three models of the closed loop. */
const COST_PER_CALL: Record<string, number> = { big: 0.01, mid: 0.002, small: 0.0002 };

/**
 * Closed loop: route `rounds` batches of requests by weight, score each answer from the
 * model's true quality in that round, feed the aggregates back into the decision core (bandit feedback).
 */
function simulate(
  policy: ReturnType<typeof policyOf>,
  quality: (round: number) => Record<string, number>,
  rounds: number,
  seed: number,
): { table: WeightTable; history: Record<string, number>[] } {
  const random = createRandom(seed);
  const totals = new Map<string, { calls: number; score: number; cost: number }>();
  let table = computeWeights({ policy, stats: [], random, classes: ['qa'] });
  const history: Record<string, number>[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const qualities = quality(round);
    for (const entry of totals.values()) {
      // old evidence decays (drift)
      entry.calls *= 0.8;
      entry.score *= 0.8;
      entry.cost *= 0.8;
    }
    for (let request = 0; request < 50; request += 1) {
      const choice = chooseModel(table, 'qa', random)!;
      const model = { quality: qualities[choice.model]!, cost: COST_PER_CALL[choice.model]! };
      const entry = totals.get(choice.model) ?? { calls: 0, score: 0, cost: 0 };
      entry.calls += 1;
      entry.score += random() < model.quality ? 1 : 0;
      entry.cost += model.cost;
      totals.set(choice.model, entry);
    }
    const stats: ModelClassStats[] = [...totals].map(([model, entry]) => ({
      model,
      classKey: 'qa',
      calls: entry.calls,
      errors: 0,
      costPerCallUsd: entry.cost / entry.calls,
      latencyP95Ms: null,
      meanScore: entry.score / entry.calls,
      scoreCount: entry.calls,
    }));
    table = computeWeights({ policy, stats, random });
    history.push(weightsOf(table, 'qa'));
  }
  return { table, history };
}

function weightsOf(table: WeightTable, classKey: string): Record<string, number> {
  const entry = table.classes.get(classKey) ?? table.fallbackClass;
  return Object.fromEntries(entry.weights.map((weight) => [weight.model, weight.weight]));
}

describe('decision core', () => {
  it('converges on the cheapest model that is as good as the best', () => {
    const policy = policyOf();
    const { table } = simulate(policy, () => ({ big: 0.9, mid: 0.9, small: 0.4 }), 30, 7);
    const weights = weightsOf(table, 'qa');
    expect(weights.mid).toBeGreaterThan(0.8);
    expect(weights.small).toBeLessThan(0.1);
    const sum = Object.values(weights).reduce((total, weight) => total + weight, 0);
    expect(sum).toBeCloseTo(1, 9);
  });

  it('moves off a model whose quality drops (drift)', () => {
    const policy = policyOf();
    const { history } = simulate(
      policy,
      (round) => ({ big: 0.9, mid: round < 20 ? 0.9 : 0.5, small: 0.3 }),
      45,
      11,
    );
    expect(history[19]!.mid).toBeGreaterThan(0.6);
    expect(history[44]!.mid).toBeLessThan(0.1);
    expect(history[44]!.big).toBeGreaterThan(0.8);
  });

  it('gives no traffic to a candidate over the latency SLO', () => {
    const policy = policyOf({ goal: { latencySloMs: 1000 } });
    const stats: ModelClassStats[] = [
      qaRow('big', 0.9, 0.01, 800),
      qaRow('mid', 0.9, 0.002, 2500),
      qaRow('small', 0.3, 0.0002, 300),
    ];
    const table = computeWeights({ policy, stats, random: createRandom(3) });
    const entry = table.classes.get('qa')!;
    const mid = entry.weights.find((weight) => weight.model === 'mid')!;
    expect(mid.weight).toBe(0);
    expect(mid.eligible).toBe(false);
    expect(mid.reason).toMatch(/^over the latency SLO of 1000ms/);
    expect(weightsOf(table, 'qa').big).toBeGreaterThan(0.9);
    const random = createRandom(4);
    for (let index = 0; index < 1000; index += 1) {
      expect(chooseModel(table, 'qa', random)!.model).not.toBe('mid');
    }
  });

  it('routes to the cheapest eligible model once the budget is spent', () => {
    const policy = policyOf({ goal: { budget: { usd: 10, periodMs: 86_400_000 } } });
    const stats: ModelClassStats[] = [
      qaRow('big', 0.95, 0.01, null),
      qaRow('small', 0.5, 0.0002, null),
    ];
    const under = computeWeights({ policy, stats, random: createRandom(5), spentUsd: 9.99 });
    expect(weightsOf(under, 'qa').big).toBeGreaterThan(0.9);
    const over = computeWeights({ policy, stats, random: createRandom(5), spentUsd: 10 });
    expect(weightsOf(over, 'qa').small).toBeCloseTo(0.95 + 0.05 / 3, 9);
    expect(over.classes.get('qa')!.explanation).toBe('budget spent: cheapest eligible model small');
  });

  it('starts from priors (cold start) and explores every candidate', () => {
    const policy = policyOf({
      candidates: [
        { model: 'big', priorQuality: 0.9, priorCostPerCallUsd: 0.01 },
        { model: 'small', priorQuality: 0.5, priorCostPerCallUsd: 0.0002 },
      ],
      priorStrength: 50,
    });
    const table = computeWeights({ policy, stats: [], random: createRandom(6), classes: ['qa'] });
    const weights = weightsOf(table, 'qa');
    expect(weights.big).toBeGreaterThan(0.9);
    expect(weights.small).toBeGreaterThanOrEqual(0.025);
    // an unknown class uses the same priors
    expect(chooseModel(table, 'never-seen', createRandom(1))!.classKey).toBe('*');
  });

  it('keeps the last good weights when stats go stale or missing, and says so', async () => {
    const policy = policyOf({ staleAfterMs: 60_000 });
    let clock = Date.parse('2026-01-01T00:00:00Z');
    let mode: 'good' | 'stale' | 'down' = 'good';
    const response = (to: number): StatsResponse => ({
      from: new Date(to - 3600_000).toISOString(),
      to: new Date(to).toISOString(),
      groupBy: ['model', 'task'],
      rows: [
        {
          model: 'mid',
          task: 'qa',
          calls: 200,
          errors: 0,
          errorRate: 0,
          costUsd: 0.4,
          costPerCallUsd: 0.002,
          meanInputTokens: 100,
          meanOutputTokens: 50,
          latencyP50Ms: 300,
          latencyP95Ms: 600,
          latencyP99Ms: 900,
          meanScore: 0.9,
          scoreCount: 200,
        },
        {
          model: 'big',
          task: 'qa',
          calls: 50,
          errors: 0,
          errorRate: 0,
          costUsd: 0.5,
          costPerCallUsd: 0.01,
          meanInputTokens: 100,
          meanOutputTokens: 50,
          latencyP50Ms: 300,
          latencyP95Ms: 600,
          latencyP99Ms: 900,
          meanScore: 0.9,
          scoreCount: 50,
        },
      ],
    });
    const updater = new WeightUpdater({
      policy,
      random: createRandom(8),
      now: () => clock,
      source: async () => {
        if (mode === 'down') throw new Error('connect ECONNREFUSED');
        return response(mode === 'good' ? clock : clock - 600_000);
      },
    });
    expect(updater.current.stale).toBe('no stats yet: weights from priors');
    const good = await updater.refresh();
    expect(good.stale).toBeUndefined();
    const goodWeights = weightsOf(good, 'qa');
    expect(goodWeights.mid).toBeGreaterThan(0.5);
    expect(goodWeights.mid).toBeGreaterThan(goodWeights.big!);

    clock += 30_000;
    mode = 'stale';
    const stale = await updater.refresh();
    expect(stale.stale).toBe(
      'stats are stale: window ended 600s ago (limit 60s); keeping weights computed 30s ago',
    );
    expect(weightsOf(stale, 'qa')).toEqual(goodWeights);

    clock += 30_000;
    mode = 'down';
    const down = await updater.refresh();
    expect(down.stale).toBe(
      'stats unavailable (connect ECONNREFUSED); keeping weights computed 60s ago',
    );
    expect(weightsOf(down, 'qa')).toEqual(goodWeights);
    expect(updater.explain('qa')).toContain('note: stats unavailable');

    mode = 'good';
    expect((await updater.refresh()).stale).toBeUndefined();
  });

  it('is deterministic for a given seed', () => {
    const policy = policyOf();
    const run = () => simulate(policy, () => ({ big: 0.9, mid: 0.8, small: 0.7 }), 5, 99).history;
    expect(run()).toEqual(run());
  });
});
