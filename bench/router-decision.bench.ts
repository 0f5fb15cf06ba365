/**
 * Latency of one routing decision (`chooseModel` over a weight table of 11 candidates and
 * 8 classes), p50/p99 over many single decisions, against a uniform random pick measured in
 * the same run. Also reports the cascade planner's per-prompt decision (informational).
 */
import { performance } from 'node:perf_hooks';
import {
  CascadePlanner,
  chooseModel,
  computeWeights,
  createRandom,
  parsePolicy,
} from '@modelmaxx/router';
import type { ModelClassStats } from '@modelmaxx/router';
import type { BenchOptions, BenchResult } from './types.js';

const MODELS = Array.from({ length: 11 }, (_, index) => `model-${index}`);
const CLASSES = ['code', 'math', 'chat', 'choice', 'json', 'tools', 'long', 'conversation'];

function percentile(sorted: Float64Array, share: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))]!;
}

function timeEach(count: number, action: (index: number) => void): Float64Array {
  const times = new Float64Array(count);
  for (let index = 0; index < count; index += 1) {
    const started = performance.now();
    action(index);
    times[index] = (performance.now() - started) * 1000;
  }
  return times.sort();
}

export async function run({ quick }: BenchOptions): Promise<BenchResult[]> {
  const random = createRandom(42);
  const policy = parsePolicy({
    candidates: MODELS.map((model) => ({ model })),
    cascade: { enabled: true },
    goal: { costPenalty: 0.1 },
  });
  const stats: ModelClassStats[] = [];
  for (const classKey of CLASSES) {
    MODELS.forEach((model, index) => {
      stats.push({
        model,
        classKey,
        calls: 500,
        errors: index,
        costPerCallUsd: 0.0001 * (index + 1) ** 2,
        latencyP95Ms: 300 + 50 * index,
        meanScore: 0.5 + 0.04 * index + (random() - 0.5) * 0.05,
        scoreCount: 400,
      });
    });
  }
  const table = computeWeights({ policy, stats, random });
  const count = quick ? 100_000 : 1_000_000;
  let sink = 0;
  // warm-up
  for (let index = 0; index < 50_000; index += 1) {
    sink += chooseModel(table, CLASSES[index % 8]!, random)!.weight;
  }
  const routed = timeEach(count, (index) => {
    sink += chooseModel(table, CLASSES[index % 8]!, random)!.weight;
  });
  const uniform = timeEach(count, () => {
    sink += MODELS[Math.floor(random() * MODELS.length)]!.length;
  });
  const planner = new CascadePlanner(policy, { random });
  const outcomes = (indexes: readonly number[]) =>
    indexes.map((model) => ({
      model,
      score: random() < 0.5 + model * 0.04 ? 1 : 0,
      costUsd: 0.0001 * (model + 1) ** 2,
      answer: random() < 0.7 ? 'A' : 'B',
    }));
  for (let index = 0; index < 5_000; index += 1) {
    const classKey = CLASSES[index % 8]!;
    const plan = planner.plan(classKey);
    const called = plan.kind === 'single' ? [plan.model] : [...plan.voters, plan.escalateTo];
    planner.observe(classKey, plan, outcomes(called));
  }
  const plans = timeEach(quick ? 20_000 : 200_000, (index) => {
    const plan = planner.plan(CLASSES[index % 8]!);
    sink += plan.kind.length;
  });
  if (sink === Number.MIN_VALUE) console.log(sink);
  const p99 = percentile(routed, 0.99);
  const baseline = percentile(uniform, 0.99);
  return [
    {
      name: 'router-decision-p99-us',
      value: p99,
      unit: 'µs',
      baseline,
      ratio: null,
      goal: '< 20',
      notes: `chooseModel, 11 candidates, ${count} decisions: p50 ${percentile(routed, 0.5).toFixed(3)} µs, p99 ${p99.toFixed(3)} µs; baseline = uniform random pick p99 (${baseline.toFixed(3)} µs)`,
    },
    {
      name: 'router-cascade-plan-p99-us',
      value: percentile(plans, 0.99),
      unit: 'µs',
      baseline: null,
      ratio: null,
      goal: '-',
      notes: `CascadePlanner.plan, 11 candidates (plans re-evaluated every 10 observations of a class): p50 ${percentile(plans, 0.5).toFixed(3)} µs`,
    },
  ];
}
