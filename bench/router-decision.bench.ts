/**
 * Latency of one routing decision on the production engine (`RoutingEngine.decide`, the core
 * `createRouter` and the replay run):
 * - per-request routing (predict mode, no embedder), the request's featurization included
 *   (a ~600-character prompt: word n-grams hashed), 2 candidates (the headline) and 11;
 * - the featurizer alone, the weight router (11 candidates, 8 classes), the learned cascade
 *   planner, and a uniform random pick (the timer's own cost: the baseline);
 * - with an embedder's vector, the predictor's nearest neighbours (a full memory), against the
 *   decision without one in the same rounds.
 *
 * Honest on a shared machine: every subject is warmed up, then measured in many short rounds
 * taken in turn (a load change hits all subjects alike); reported are p50/p99/p99.9 over all
 * rounds, the median of the rounds' own p99 (stable where one burst of load moves the pooled
 * p99), CPU time per call, OS preemptions per 1,000 calls, the heap and array-buffer bytes
 * allocated per call (median of GC-free batches, net of the measuring itself) and the load
 * average before and after.
 *
 * `ROUTER_BENCH_BASELINE=<another build's packages/router/dist/index.js>` also measures that
 * build's per-request decision (2 candidates) and featurizer in the same rounds (A/B).
 */
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import * as router from '@modelmaxx/router';
import type { EngineOutcome, RoutingEngine } from '@modelmaxx/router';
import type { BenchOptions, BenchResult } from './types.js';

type RouterApi = Pick<
  typeof router,
  'RoutingEngine' | 'createRandom' | 'featurize' | 'parsePolicy'
>;

const CLASSES = ['code', 'math', 'chat', 'choice', 'json', 'tools', 'long', 'conversation'];
const WORDS = (
  'the of and to in is you that it he was for on are as with his they at be this have from ' +
  'solve equation integral function python list dictionary return value compute average ' +
  'story poem summary translate explain why how many people years price total'
).split(' ');

function prompts(count: number, random: () => number): string[] {
  return Array.from({ length: count }, () => {
    let text = '';
    while (text.length < 600) text += WORDS[Math.floor(random() * WORDS.length)]! + ' ';
    // flat, as a parsed request body's text is (not a chain of concatenations)
    return JSON.parse(JSON.stringify(text)) as string;
  });
}

/** One thing timed: `action(index)` does one call; `index` grows across warm-up and rounds. */
interface Subject {
  readonly name: string;
  readonly action: (index: number) => void;
}

/** What the rounds measured for one subject. */
interface Measured {
  /** Wall µs per call, all rounds, sorted. */
  readonly times: Float64Array;
  readonly roundP99s: readonly number[];
  readonly cpuUs: number;
  /** Involuntary context switches (the OS preempting the bench) per 1,000 calls. */
  readonly preemptions: number;
  readonly heapBytes: number;
  readonly bufferBytes: number;
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

/** The feature families a default per-request policy reads (the routed client passes them). */
const familiesOf = (api: RouterApi) =>
  api.parsePolicy({ candidates: [{ model: 'x' }] }).predictor.features;

/**
 * An engine over `models` candidates, trained with 5,000 decisions and their outcomes over
 * the 8 classes (featurized in the predict mode).
 */
function trainedEngine(
  api: RouterApi,
  models: number,
  mode: 'predict' | 'weights' | 'cascade',
  texts: readonly string[],
): RoutingEngine {
  const random = api.createRandom(42);
  const engine = new api.RoutingEngine({
    policy: api.parsePolicy({
      candidates: Array.from({ length: models }, (_, index) => ({ model: `model-${index}` })),
      goal: { costPenalty: 0.1 },
      ...(mode === 'predict' ? { predictor: { enabled: true } } : {}),
      ...(mode === 'cascade' ? { cascade: { enabled: true } } : {}),
    }),
    random,
  });
  const families = familiesOf(api);
  for (let index = 0; index < 5_000; index += 1) {
    const classKey = CLASSES[index % 8]!;
    const vector =
      mode === 'predict'
        ? api.featurize({ text: texts[index % texts.length]!, classKey, families })
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
  return engine;
}

/** Per-request decisions (`models` candidates), the prompt's featurization included. */
function predictSubject(name: string, api: RouterApi, models: number, texts: readonly string[]) {
  const engine = trainedEngine(api, models, 'predict', texts);
  const families = familiesOf(api);
  return {
    name,
    action: (index: number) => {
      const classKey = CLASSES[index % 8]!;
      const text = texts[index % texts.length]!;
      const vector = api.featurize({ text, classKey, families });
      sink += engine.decide({ classKey, at: 5_000_000 + index, vector }).first.length;
    },
  };
}

/** A random unit vector of `dimensions` (an embedding's shape, without its meaning). */
function unitVector(random: () => number, dimensions: number): Float32Array {
  const vector = Float32Array.from({ length: dimensions }, () => random() - 0.5);
  const norm = Math.hypot(...vector);
  return vector.map((value) => value / norm);
}

/**
 * Per-request decisions with an embedder (512 dimensions, as the bench's Universal Sentence
 * Encoder): 2 candidates, the neighbours' memory full (2,048 requests, the default) and read at share 0.25.
 */
function neighboursSubject(texts: readonly string[]): Subject {
  const random = router.createRandom(43);
  const policy = router.parsePolicy({
    candidates: [{ model: 'model-0' }, { model: 'model-1' }],
    goal: { costPenalty: 0.1 },
    predictor: { enabled: true, neighbours: { weight: 0.5 } },
  });
  const engine = new router.RoutingEngine({ policy, random });
  const families = policy.predictor.features;
  for (let index = 0; index < 5_000; index += 1) {
    const classKey = CLASSES[index % 8]!;
    const text = texts[index % texts.length]!;
    const vector = router.featurize({ text, classKey, families }, unitVector(random, 512));
    const decision = engine.decide({ classKey, at: index * 1000, vector });
    engine.observe(
      decision,
      decision.first.map((model) => outcome(random, model, Number(model.slice(6)))),
    );
  }
  const embeddings = texts.map(() => unitVector(random, 512));
  return {
    name: 'neighbours',
    action: (index: number) => {
      const classKey = CLASSES[index % 8]!;
      const at = index % texts.length;
      const vector = router.featurize({ text: texts[at]!, classKey, families }, embeddings[at]);
      sink += engine.decide({ classKey, at: 5_000_000 + index, vector }).first.length;
    },
  };
}

function featurizeSubject(name: string, api: RouterApi, texts: readonly string[]): Subject {
  const families = familiesOf(api);
  return {
    name,
    action: (index) => {
      const text = texts[index % texts.length]!;
      sink += api.featurize({ text, classKey: 'chat', families }).index.length;
    },
  };
}

/** Decisions of a trained engine in the weights or cascade mode (11 candidates). */
function byClassSubject(mode: 'weights' | 'cascade', texts: readonly string[]): Subject {
  const engine = trainedEngine(router, 11, mode, texts);
  return {
    name: mode,
    action: (index) => {
      sink += engine.decide({ classKey: CLASSES[index % 8]!, at: 5_000_000 }).first.length;
    },
  };
}

const percentile = (sorted: Float64Array, share: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))]!;

/**
 * Heap and array-buffer bytes allocated per call: median over batches of 100 calls (the young
 * generation is a few MB, so most batches see no scavenge; one that does shrinks the heap and
 * is dropped).
 */
function allocation(subject: Subject, start: number): { heap: number; buffers: number } {
  const batch = 100;
  const heap: number[] = [];
  const buffers: number[] = [];
  for (let round = 0; round < 101; round += 1) {
    const before = process.memoryUsage();
    for (let call = 0; call < batch; call += 1) subject.action(start + round * batch + call);
    const after = process.memoryUsage();
    if (after.heapUsed >= before.heapUsed) heap.push((after.heapUsed - before.heapUsed) / batch);
    if (after.arrayBuffers >= before.arrayBuffers) {
      buffers.push((after.arrayBuffers - before.arrayBuffers) / batch);
    }
  }
  const median = (values: number[]) =>
    values.length === 0 ? Number.NaN : values.sort((a, b) => a - b)[values.length >> 1]!;
  return { heap: median(heap), buffers: median(buffers) };
}

/** Warms every subject up, then times `rounds` rounds of `perRound` calls, subjects in turn. */
function measure(
  subjects: readonly Subject[],
  rounds: number,
  perRound: number,
): Map<Subject, Measured> {
  const warmup = perRound * 2;
  for (const subject of subjects)
    for (let index = 0; index < warmup; index += 1) subject.action(index);
  const times = subjects.map(() => new Float64Array(rounds * perRound));
  const roundP99s = subjects.map((): number[] => []);
  const cpu = subjects.map(() => 0);
  const switches = subjects.map(() => 0);
  for (let round = 0; round < rounds; round += 1) {
    subjects.forEach((subject, at) => {
      const own = times[at]!;
      const offset = round * perRound;
      const switched = process.resourceUsage().involuntaryContextSwitches;
      const started = process.cpuUsage();
      for (let call = 0; call < perRound; call += 1) {
        const begin = performance.now();
        subject.action(warmup + offset + call);
        own[offset + call] = (performance.now() - begin) * 1000;
      }
      const used = process.cpuUsage(started);
      cpu[at] = cpu[at]! + used.user + used.system;
      switches[at] = switches[at]! + process.resourceUsage().involuntaryContextSwitches - switched;
      roundP99s[at]!.push(percentile(own.slice(offset, offset + perRound).sort(), 0.99));
    });
  }
  const empty = allocation({ name: 'empty', action: () => undefined }, 0);
  const results = new Map<Subject, Measured>();
  subjects.forEach((subject, at) => {
    const bytes = allocation(subject, warmup + rounds * perRound);
    results.set(subject, {
      times: times[at]!.sort(),
      roundP99s: roundP99s[at]!.sort((a, b) => a - b),
      cpuUs: cpu[at]! / (rounds * perRound),
      preemptions: (1000 * switches[at]!) / (rounds * perRound),
      heapBytes: Math.max(0, bytes.heap - empty.heap),
      bufferBytes: bytes.buffers,
    });
  });
  return results;
}

const fixed = (value: number) => value.toFixed(value < 10 ? 2 : 1);

/** One subject's figures as text. */
function describe(measured: Measured): string {
  const { times, roundP99s } = measured;
  return (
    `p50 ${fixed(percentile(times, 0.5))} µs, p99 ${fixed(percentile(times, 0.99))} µs, ` +
    `p99.9 ${fixed(percentile(times, 0.999))} µs (median round p99 ` +
    `${fixed(roundP99s[roundP99s.length >> 1]!)} µs), CPU ${fixed(measured.cpuUs)} µs/call, ` +
    `${measured.preemptions.toFixed(1)} preemptions/1000 calls, ` +
    `allocates ${Math.round(measured.heapBytes)} B heap + ${Math.round(measured.bufferBytes)} B buffers/call`
  );
}

/** The subjects: this build's, and another build's (A/B) when `ROUTER_BENCH_BASELINE` names one. */
async function subjectsOf(texts: readonly string[]): Promise<Subject[]> {
  const subjects: Subject[] = [
    predictSubject('predict2', router, 2, texts),
    predictSubject('predict11', router, 11, texts),
    featurizeSubject('featurize', router, texts),
    byClassSubject('weights', texts),
    byClassSubject('cascade', texts),
  ];
  const baselinePath = process.env['ROUTER_BENCH_BASELINE'];
  if (baselinePath !== undefined && baselinePath !== '') {
    const baseline = (await import(baselinePath)) as RouterApi;
    subjects.push(predictSubject('baseline predict2', baseline, 2, texts));
    subjects.push(featurizeSubject('baseline featurize', baseline, texts));
  }
  const uniformRandom = router.createRandom(7);
  subjects.push({
    name: 'uniform',
    action: () => {
      sink += Math.floor(uniformRandom() * 11);
    },
  });
  return subjects;
}

export async function run({ quick }: BenchOptions): Promise<BenchResult[]> {
  const texts = prompts(2_000, router.createRandom(42));
  const subjects = await subjectsOf(texts);
  const loadBefore = loadavg()[0]!;
  const rounds = quick ? 10 : 30;
  const perRound = quick ? 5_000 : 10_000;
  const measured = measure(subjects, rounds, perRound);
  if (sink === Number.MIN_VALUE) console.log(sink);
  const of = (name: string) => measured.get(subjects.find((subject) => subject.name === name)!)!;
  // with an embedder a decision scans the neighbours' memory (milliseconds, not microseconds):
  // fewer calls, beside the same per-request decision without one
  const near = [neighboursSubject(texts), predictSubject('predict2', router, 2, texts)];
  const nearMeasured = measure(near, quick ? 5 : 10, quick ? 50 : 100);
  const withNeighbours = nearMeasured.get(near[0]!)!;
  const withoutNeighbours = nearMeasured.get(near[1]!)!;
  const predict2 = of('predict2');
  const baseline = percentile(of('uniform').times, 0.99);
  const ab = subjects
    .filter((subject) => subject.name.startsWith('baseline'))
    .map(
      (subject) => `; ${subject.name} (ROUTER_BENCH_BASELINE): ${describe(measured.get(subject)!)}`,
    )
    .join('');
  const load = `load average ${loadBefore.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after, on ${availableParallelism()} cores`;
  return [
    {
      name: 'router-decision-p99-us',
      value: percentile(predict2.times, 0.99),
      unit: 'µs',
      baseline,
      ratio: null,
      goal: '< 20',
      notes:
        `RoutingEngine.decide, per-request predictor (no embedder), 2 candidates, featurizing a ~600-char prompt included, ${rounds} rounds of ${perRound} after ${2 * perRound} warm-up calls, subjects in turn: ${describe(predict2)}; ` +
        `11 candidates: ${describe(of('predict11'))}; featurize alone: ${describe(of('featurize'))}; ` +
        `weight router (11 candidates, 8 classes): ${describe(of('weights'))}${ab}; baseline = uniform random pick p99 (${baseline.toFixed(3)} µs, the timer's own cost); ${load}`,
    },
    {
      name: 'router-decision-neighbours-p99-us',
      value: percentile(withNeighbours.times, 0.99),
      unit: 'µs',
      baseline: percentile(withoutNeighbours.times, 0.99),
      ratio: percentile(withNeighbours.times, 0.99) / percentile(withoutNeighbours.times, 0.99),
      goal: '-',
      notes: `RoutingEngine.decide with an embedder's vector (512-d) and the predictor's nearest neighbours (memory full: 2,048 requests, the default; share 0.25, weight 0.5), 2 candidates, featurizing included: ${describe(withNeighbours)}; baseline: the same decision without an embedder, in the same rounds: ${describe(withoutNeighbours)}`,
    },
    {
      name: 'router-cascade-plan-p99-us',
      value: percentile(of('cascade').times, 0.99),
      unit: 'µs',
      baseline: null,
      ratio: null,
      goal: '-',
      notes: `RoutingEngine.decide with the learned cascade planner, 11 candidates (plans re-evaluated every 10 observations of a class): ${describe(of('cascade'))}`,
    },
  ];
}
