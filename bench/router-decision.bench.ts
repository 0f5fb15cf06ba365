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

/** What the timed runs read: the random source, the prompts, and how many decisions to time. */
interface Workload {
  readonly random: () => number;
  readonly texts: readonly string[];
  readonly count: number;
}

/** Keeps the timed calls' results alive (so nothing is optimized away). */
let sink = 0;

/** A recorded-like outcome: model i scores 1 with probability 0.5 + 0.04 i, costs grow with i. */
const outcome = (random: () => number, model: string, index: number): EngineOutcome => ({
  model,
  score: random() < 0.5 + (index % 11) * 0.04 ? 1 : 0,
  costUsd: 0.0001 * ((index % 11) + 1) ** 2,
  answer: random() < 0.7 ? 'A' : 'B',
});

/** Warms an engine up with `steps` decisions and their outcomes, over the 8 classes. */
function train(engine: RoutingEngine, steps: number, withVector: boolean, work: Workload): void {
  const { texts, random } = work;
  for (let index = 0; index < steps; index += 1) {
    const classKey = CLASSES[index % 8]!;
    const vector = withVector
      ? featurize({ text: texts[index % texts.length]!, classKey, families: FAMILIES })
      : undefined;
    const decision = engine.decide({ classKey, at: index * 1000, ...(vector ? { vector } : {}) });
    const outcomes: EngineOutcome[] = [];
    let step = engine.next(decision, outcomes);
    while (!step.done) {
      for (const model of step.call) outcomes.push(outcome(random, model, Number(model.slice(6))));
      step = engine.next(decision, outcomes);
    }
    engine.observe(decision, outcomes);
  }
}

/** Per-request decisions over `models` candidates, the prompt's featurization included. */
function timePredict(models: number, work: Workload): Float64Array {
  const { engine } = engineFor(models, 'predict', work.random);
  train(engine, 5_000, true, work);
  const { texts } = work;
  return timeEach(work.count, (index) => {
    const classKey = CLASSES[index % 8]!;
    const vector = featurize({ text: texts[index % texts.length]!, classKey, families: FAMILIES });
    sink += engine.decide({ classKey, at: 5_000_000 + index, vector }).first.length;
  });
}

/** Decisions of a trained engine in the weights or cascade mode (11 candidates). */
function timeByClass(mode: 'weights' | 'cascade', count: number, work: Workload) {
  const trained = engineFor(11, mode, work.random);
  train(trained.engine, 5_000, false, work);
  const times = timeEach(count, (index) => {
    sink += trained.engine.decide({ classKey: CLASSES[index % 8]!, at: 5_000_000 }).first.length;
  });
  return { times, names: trained.names };
}

const us = (times: Float64Array) =>
  `p50 ${percentile(times, 0.5).toFixed(2)} µs, p99 ${percentile(times, 0.99).toFixed(2)} µs`;

export async function run({ quick }: BenchOptions): Promise<BenchResult[]> {
  const random = createRandom(42);
  const count = quick ? 50_000 : 300_000;
  const work: Workload = { random, texts: prompts(2_000, random), count };
  const predict2 = timePredict(2, work);
  const predict11 = timePredict(11, work);
  const featurizeOnly = timeEach(count, (index) => {
    const text = work.texts[index % work.texts.length]!;
    sink += featurize({ text, classKey: 'chat', families: FAMILIES }).index.length;
  });
  const weights = timeByClass('weights', count, work);
  const plans = timeByClass('cascade', quick ? 20_000 : 200_000, work).times;
  const uniform = timeEach(count, () => {
    sink += weights.names[Math.floor(random() * weights.names.length)]!.length;
  });
  if (sink === Number.MIN_VALUE) console.log(sink);
  const baseline = percentile(uniform, 0.99);
  const load = loadavg()[0]!.toFixed(1);
  return [
    {
      name: 'router-decision-p99-us',
      value: percentile(predict2, 0.99),
      unit: 'µs',
      baseline,
      ratio: null,
      goal: '< 20',
      notes:
        `RoutingEngine.decide, per-request predictor (no embedder), 2 candidates, featurizing a ~600-char prompt included, ${count} decisions: ${us(predict2)}; ` +
        `11 candidates: ${us(predict11)}; featurize alone: ${us(featurizeOnly)}; ` +
        `weight router (11 candidates, 8 classes): ${us(weights.times)}; baseline = uniform random pick p99 (${baseline.toFixed(3)} µs); load average ${load} on ${availableParallelism()} cores`,
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
