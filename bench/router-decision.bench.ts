/**
 * Latency of one routing decision on the production engine (`RoutingEngine.decide`, the core
 * `createRouter` and the replay run), p50/p99 over many single decisions, against a uniform
 * random pick measured in the same run:
 * - per-request routing (predict mode, no embedder), the request's featurization included
 *   (a ~600-character prompt: word and character n-grams hashed), 2 candidates (the headline)
 *   and 11;
 * - the weight router (11 candidates, 8 classes);
 * - the learned cascade planner (informational).
 */
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { RoutingEngine, createRandom, featurize, parsePolicy } from '@modelmaxx/router';
import type { EngineOutcome } from '@modelmaxx/router';
import type { BenchOptions, BenchResult } from './types.js';

/** The feature families a default per-request policy reads (the routed client passes them). */
const FAMILIES = parsePolicy({ candidates: [{ model: 'x' }] }).predictor.features;
const CLASSES = ['code', 'math', 'chat', 'choice', 'json', 'tools', 'long', 'conversation'];
const WORDS = (
  'the of and to in is you that it he was for on are as with his they at be this have from ' +
  'solve equation integral function python list dictionary return value compute average ' +
  'story poem summary translate explain why how many people years price total'
).split(' ');

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

function prompts(count: number, random: () => number): string[] {
  return Array.from({ length: count }, () => {
    let text = '';
    while (text.length < 600) text += WORDS[Math.floor(random() * WORDS.length)]! + ' ';
    return text;
  });
}

function engineFor(models: number, mode: 'predict' | 'weights' | 'cascade', random: () => number) {
  const names = Array.from({ length: models }, (_, index) => `model-${index}`);
  return {
    names,
    engine: new RoutingEngine({
      policy: parsePolicy({
        candidates: names.map((model) => ({ model })),
        goal: { costPenalty: 0.1 },
        ...(mode === 'predict' ? { predictor: { enabled: true } } : {}),
        ...(mode === 'cascade' ? { cascade: { enabled: true } } : {}),
      }),
      random,
    }),
  };
}

export async function run({ quick }: BenchOptions): Promise<BenchResult[]> {
  const random = createRandom(42);
  const count = quick ? 50_000 : 300_000;
  const texts = prompts(2_000, random);
  let sink = 0;
  const outcome = (model: string, index: number): EngineOutcome => ({
    model,
    score: random() < 0.5 + (index % 11) * 0.04 ? 1 : 0,
    costUsd: 0.0001 * ((index % 11) + 1) ** 2,
    answer: random() < 0.7 ? 'A' : 'B',
  });
  const train = (engine: RoutingEngine, steps: number, withVector: boolean) => {
    for (let index = 0; index < steps; index += 1) {
      const classKey = CLASSES[index % 8]!;
      const vector = withVector
        ? featurize({ text: texts[index % texts.length]!, classKey, families: FAMILIES })
        : undefined;
      const decision = engine.decide({ classKey, at: index * 1000, ...(vector ? { vector } : {}) });
      const outcomes: EngineOutcome[] = [];
      let step = engine.next(decision, outcomes);
      while (!step.done) {
        for (const model of step.call) outcomes.push(outcome(model, Number(model.slice(6))));
        step = engine.next(decision, outcomes);
      }
      engine.observe(decision, outcomes);
    }
  };
  const predictRun = (models: number) => {
    const { engine } = engineFor(models, 'predict', random);
    train(engine, 5_000, true);
    return timeEach(count, (index) => {
      const classKey = CLASSES[index % 8]!;
      const vector = featurize({
        text: texts[index % texts.length]!,
        classKey,
        families: FAMILIES,
      });
      sink += engine.decide({ classKey, at: 5_000_000 + index, vector }).first.length;
    });
  };
  const predict2 = predictRun(2);
  const predict11 = predictRun(11);
  const featurizeOnly = timeEach(count, (index) => {
    sink += featurize({ text: texts[index % texts.length]!, classKey: 'chat', families: FAMILIES })
      .index.length;
  });
  const weights = engineFor(11, 'weights', random);
  train(weights.engine, 5_000, false);
  const routed = timeEach(count, (index) => {
    sink += weights.engine.decide({ classKey: CLASSES[index % 8]!, at: 5_000_000 }).first.length;
  });
  const cascade = engineFor(11, 'cascade', random);
  train(cascade.engine, 5_000, false);
  const plans = timeEach(quick ? 20_000 : 200_000, (index) => {
    sink += cascade.engine.decide({ classKey: CLASSES[index % 8]!, at: 5_000_000 }).first.length;
  });
  const uniform = timeEach(count, () => {
    sink += weights.names[Math.floor(random() * weights.names.length)]!.length;
  });
  if (sink === Number.MIN_VALUE) console.log(sink);
  const p99 = percentile(predict2, 0.99);
  const baseline = percentile(uniform, 0.99);
  const us = (times: Float64Array) =>
    `p50 ${percentile(times, 0.5).toFixed(2)} µs, p99 ${percentile(times, 0.99).toFixed(2)} µs`;
  const load = loadavg()[0]!.toFixed(1);
  return [
    {
      name: 'router-decision-p99-us',
      value: p99,
      unit: 'µs',
      baseline,
      ratio: null,
      goal: '< 20',
      notes:
        `RoutingEngine.decide, per-request predictor (no embedder), 2 candidates, featurizing a ~600-char prompt included, ${count} decisions: ${us(predict2)}; ` +
        `11 candidates: ${us(predict11)}; featurize alone: ${us(featurizeOnly)}; ` +
        `weight router (11 candidates, 8 classes): ${us(routed)}; baseline = uniform random pick p99 (${baseline.toFixed(3)} µs); load average ${load} on ${availableParallelism()} cores`,
    },
    {
      name: 'router-cascade-plan-p99-us',
      value: percentile(plans, 0.99),
      unit: 'µs',
      baseline: null,
      ratio: null,
      goal: '-',
      notes: `RoutingEngine.decide with the learned cascade planner, 11 candidates (plans re-evaluated every 10 observations of a class): ${us(plans)}`,
    },
  ];
}
