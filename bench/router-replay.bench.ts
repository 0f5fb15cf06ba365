/**
 * Offline replays on the production routing engine (`RoutingEngine`, the core `createRouter`
 * runs), with bandit feedback and every call charged:
 * - RouterBench (11 models): the default replay policy's accuracy and cost against always-best;
 * - RouteLLM's MT-Bench, GSM8K and MMLU (GPT-4 vs Mixtral), in-distribution: a seeded 50/50
 *   split per task, the router learns on train and is measured on test, mean APGR over 5 seeds
 *   (from sweeping the cost knob), beside the static per-class table chosen on train and the
 *   random mix (APGR 0.5);
 * - transfer: each data set measured after learning on the other two only (classes from the
 *   request, and from the task labels, which the history never saw);
 * - fitted MT-Bench and GSM8K again with a semantic embedder (`-fit-embed`; MMLU too with
 *   `ROUTER_BENCH_EMBED_MMLU=1`; none with `ROUTER_BENCH_EMBED=off`), against the run without.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  RoutingEngine,
  classOfFeatures,
  createRandom,
  extractFeatures,
  labelledExamples,
  loadRecorded,
  loadRouterBench,
  mergeDatasets,
  parsePolicy,
  routingMetrics,
  runReplay,
  splitDataset,
} from '@modelmaxx/router';
import type {
  PolicyInput,
  RecordedDataset,
  RecordedPrompt,
  RoutingMetrics,
} from '@modelmaxx/router';
import { withEmbeddings } from './embeddings.ts';
import type { BenchOptions, BenchResult } from './types.js';

const DATA_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../shared/data');
const ROUTERBENCH_DIR = process.env.MODELMAXX_ROUTERBENCH_DIR ?? join(DATA_DIR, 'routerbench');
const ROUTELLM_DIR = process.env.MODELMAXX_ROUTELLM_DIR ?? join(DATA_DIR, 'routellm');

/** The per-request policy (chosen on train splits only). */
export function predictPolicy(models: readonly string[]): PolicyInput {
  return {
    name: 'predict',
    candidates: models.map((model) => ({ model })),
    goal: { costPenalty: 0.1 },
    // chosen on inner splits of the train splits: 0.01 vs 0.05 MMLU 0.654 vs 0.640, GSM8K 0.595 both
    exploration: 0.01,
    // neighbours (prompts with embeddings only): weight 0.5 for histories too small for the fit
    // to choose (MT-Bench), chosen on inner splits of MT-Bench's train splits (docs/routing-measurements.md)
    predictor: { enabled: true, neighbours: { weight: 0.5 } },
  };
}

const requestClass = (prompt: RecordedPrompt) =>
  classOfFeatures(extractFeatures({ messages: [{ role: 'user', content: prompt.prompt }] }));

const f3 = (value: number | null) => (value === null ? 'never' : value.toFixed(3));

/** Mean of a figure over seeds; a CPT that is never reached counts as 1 (always strong). */
function meanOf(
  metrics: readonly RoutingMetrics[],
  pick: (entry: RoutingMetrics) => number | null,
) {
  return metrics.reduce((sum, entry) => sum + (pick(entry) ?? 1), 0) / metrics.length;
}

/** The curve table's row: APGR, CPT(50%), CPT(80%) of router, static table and random mix. */
function curveRow(metrics: readonly RoutingMetrics[]): string {
  const row = (curve: (entry: RoutingMetrics) => RoutingMetrics['router']) =>
    [
      meanOf(metrics, (entry) => curve(entry).apgr),
      meanOf(metrics, (entry) => curve(entry).cpt50),
      meanOf(metrics, (entry) => curve(entry).cpt80),
    ]
      .map((value) => value.toFixed(3))
      .join('/');
  return (
    `APGR/CPT(50%)/CPT(80%) means: router ${row((entry) => entry.router)}, ` +
    `static ${row((entry) => entry.staticTable)}, random ${row((entry) => entry.random)}`
  );
}

function describe(metrics: readonly RoutingMetrics[]): {
  router: number;
  staticTable: number;
  notes: string;
} {
  const mean = (pick: (entry: RoutingMetrics) => number) => meanOf(metrics, pick);
  const router = mean((entry) => entry.router.apgr);
  const staticTable = mean((entry) => entry.staticTable.apgr);
  const first = metrics[0]!;
  const curve = first.router.points
    .map((point) => `${(point.x * 100).toFixed(0)}%:${point.pgr.toFixed(2)}`)
    .join(' ');
  return {
    router,
    staticTable,
    notes:
      `${curveRow(metrics)}; ` +
      `APGR per seed ${metrics.map((entry) => entry.router.apgr.toFixed(3)).join(', ')}; ` +
      `static per-class table (chosen on train) ${staticTable.toFixed(3)}, random mix 0.500; ` +
      `CPT(50%) ${metrics.map((entry) => f3(entry.router.cpt50)).join(', ')}; ` +
      `CPT(80%) ${metrics.map((entry) => f3(entry.router.cpt80)).join(', ')}; ` +
      `strong ${(first.strongAccuracy * 100).toFixed(1)}% vs weak ${(first.weakAccuracy * 100).toFixed(1)}% (seed 1); ` +
      `curve seed 1 (strong share:PGR) ${curve}`,
  };
}

/** RouterBench (11 models): the default replay policy against always-best. */
function routerBenchResults(): BenchResult[] {
  const files = (split: string) =>
    ['arc_challenge', 'mbpp', 'winograde'].map((task) =>
      join(ROUTERBENCH_DIR, `${task}_${split}.csv`),
    );
  if (!files('test').every((file) => existsSync(file))) {
    throw new Error(
      `RouterBench data not found in ${ROUTERBENCH_DIR} (set MODELMAXX_ROUTERBENCH_DIR)`,
    );
  }
  const train = loadRouterBench(files('train'));
  const test = loadRouterBench(files('test'));
  const report = runReplay(train, test, { seed: 1 });
  const fitted = runReplay(train, test, { seed: 1, history: 'fit' });
  const best = report.baselines[0]!;
  const table = [report.router, ...report.baselines]
    .map((row) => `${row.name}: ${(row.accuracy * 100).toFixed(2)}% / $${row.costUsd.toFixed(3)}`)
    .join('; ');
  return [
    {
      name: 'router-replay-accuracy-vs-best',
      value: report.router.accuracy,
      unit: 'accuracy',
      baseline: best.accuracy,
      ratio: report.router.accuracyVsBest,
      goal: '>= 0.98',
      notes: `RouterBench test split (${report.testPrompts} prompts), production RoutingEngine (default replay policy: learned cascade), ${best.name} as baseline; ${table}`,
    },
    {
      name: 'router-replay-cost-vs-best',
      value: report.router.costUsd,
      unit: 'USD',
      baseline: best.costUsd,
      ratio: report.router.costVsBest,
      goal: '<= 0.20',
      notes:
        `every call charged; the router also spent $${report.trainCostUsd.toFixed(3)} learning on the train split; ` +
        `with an offline fit of the train split instead (engine.fit, labels $${fitted.trainCostUsd.toFixed(2)}): ` +
        `${(fitted.router.accuracyVsBest * 100).toFixed(1)}% of the accuracy at ${(fitted.router.costVsBest * 100).toFixed(1)}% of the cost`,
    },
  ];
}

type SetName = 'mtbench' | 'gsm8k' | 'mmlu';

/** RouteLLM's three data sets (GPT-4 vs Mixtral). */
function routeLlmSets(): Record<SetName, RecordedDataset> {
  if (!existsSync(join(ROUTELLM_DIR, 'mtb_judgements.jsonl'))) {
    throw new Error(`RouteLLM data not found in ${ROUTELLM_DIR} (set MODELMAXX_ROUTELLM_DIR)`);
  }
  const mmluDir = join(ROUTELLM_DIR, 'mmlu');
  return {
    mtbench: loadRecorded([join(ROUTELLM_DIR, 'mtb_judgements.jsonl')]),
    gsm8k: loadRecorded([join(ROUTELLM_DIR, 'gsm8k_responses.csv')]),
    mmlu: loadRecorded(
      readdirSync(mmluDir)
        .sort()
        .map((file) => join(mmluDir, file)),
    ),
  };
}

type History = 'online' | 'fit';

/** In-distribution: a seeded 50/50 split per task, learned on train, measured on test. */
function inDistribution(
  data: RecordedDataset,
  seeds: readonly number[],
  history: History,
): RoutingMetrics[] {
  return seeds.map((seed) => {
    const { train, test } = splitDataset(data, seed);
    return routingMetrics(train, test, { policy: predictPolicy(data.models), seed, history });
  });
}

/**
 * What a fit costs: the labels (every candidate on every train prompt, USD) and the CPU time
 * of featurizing the history and `engine.fit` (µs per example).
 */
function fitCost(train: RecordedDataset, classOf?: (prompt: RecordedPrompt) => string): string {
  const policy = predictPolicy(train.models);
  const started = process.cpuUsage();
  const examples = labelledExamples(train, policy, classOf === undefined ? {} : { classOf });
  new RoutingEngine({ policy: parsePolicy(policy), random: createRandom(1) }).fit(examples);
  const used = process.cpuUsage(started);
  let labels = 0;
  for (const prompt of train.prompts) for (const cost of prompt.costs) labels += cost;
  const micros = (used.user + used.system) / Math.max(train.prompts.length, 1);
  return `fit of ${train.prompts.length} labelled prompts: labels $${labels.toFixed(2)}, ${micros.toFixed(0)} µs CPU per example (featurize + fit)`;
}

const SUFFIX: Record<History, string> = { online: '', fit: '-fit' };
const SETTING: Record<History, string> = {
  online: 'online only (bandit feedback on the train split, every call charged)',
  fit: "offline fit of the train split (engine.fit: every model's outcome), then online on test",
};

function routeLlmResults(
  sets: ReturnType<typeof routeLlmSets>,
  seeds: readonly number[],
  history: History,
): BenchResult[] {
  const results: BenchResult[] = [];
  const goals = { mtbench: '>= 0.80', gsm8k: '>= 0.63', mmlu: '>= 0.68' };
  for (const name of ['mtbench', 'gsm8k', 'mmlu'] as const) {
    const summary = describe(inDistribution(sets[name], seeds, history));
    const cost = history === 'fit' ? `; ${fitCost(splitDataset(sets[name], 1).train)}` : '';
    results.push({
      name: `router-apgr-${name}${SUFFIX[history]}`,
      value: summary.router,
      unit: 'APGR',
      baseline: summary.staticTable,
      ratio: null,
      goal: goals[name],
      notes: `in-distribution, ${SETTING[history]}, 50/50 split per task, mean of ${seeds.length} seed(s), production RoutingEngine, per-request predictor; ${summary.notes}${cost}`,
    });
  }
  for (const target of ['mtbench', 'gsm8k', 'mmlu'] as const) {
    results.push(transferResult(sets, seeds, history, 'request', target));
    results.push(transferResult(sets, seeds, history, 'task', target));
  }
  return results;
}

const SET_LABEL: Record<SetName, string> = { mtbench: 'MT-Bench', gsm8k: 'GSM8K', mmlu: 'MMLU' };

/**
 * Transfer: learned on the other two data sets only, measured on all of `target`. `request`:
 * classes from the request text (the classifier: the target's prompts fall in classes of the
 * history); `task`: the data's task labels (`gsm8k`, `mmlu_<domain>`, `mtbench`: the target's
 * labels are classes the history never saw, as a new app's task label would be). SPEC's goal
 * (>= 0.70) is MT-Bench's; for the others the floor: above the random mix (0.5).
 */
function transferResult(
  sets: ReturnType<typeof routeLlmSets>,
  seeds: readonly number[],
  history: History,
  classes: 'request' | 'task',
  target: SetName,
): BenchResult {
  const others = (['mtbench', 'gsm8k', 'mmlu'] as const).filter((name) => name !== target);
  const train = mergeDatasets(others.map((name) => sets[name]));
  const transfer = seeds.map((seed) =>
    routingMetrics(train, sets[target], {
      policy: predictPolicy(train.models),
      seed,
      ...(classes === 'request' ? { classOf: requestClass } : {}),
      history,
    }),
  );
  const summary = describe(transfer);
  const described =
    classes === 'request'
      ? 'classes from the request (classifier)'
      : `classes from the task labels (${SET_LABEL[target]}'s unseen)`;
  return {
    name: `router-apgr-transfer-${target}${classes === 'task' ? '-tasks' : ''}${SUFFIX[history]}`,
    value: summary.router,
    unit: 'APGR',
    baseline: summary.staticTable,
    ratio: null,
    goal: target === 'mtbench' ? '>= 0.70' : '> 0.5',
    notes: `transfer: ${SETTING[history]}, learned on ${others.map((name) => SET_LABEL[name]).join(' + ')} (${train.prompts.length} prompts), measured on all of ${SET_LABEL[target]}, ${described}, mean of ${seeds.length} seed(s); ${summary.notes}`,
  };
}

/**
 * In-distribution, fitted, with each prompt's Universal Sentence Encoder embedding
 * (./embeddings.ts): the predictor's nearest neighbours beside its features. `ratio`: against
 * the same setting without embeddings, measured in this run.
 */
async function embeddedResults(
  sets: ReturnType<typeof routeLlmSets>,
  seeds: readonly number[],
  names: readonly SetName[],
  without: readonly BenchResult[],
): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const name of names) {
    const summary = describe(inDistribution(await withEmbeddings(sets[name]), seeds, 'fit'));
    const plain = without.find((result) => result.name === `router-apgr-${name}-fit`)!;
    results.push({
      name: `router-apgr-${name}-fit-embed`,
      value: summary.router,
      unit: 'APGR',
      baseline: plain.value,
      ratio: summary.router / plain.value,
      goal: plain.goal,
      notes: `as router-apgr-${name}-fit (the baseline, this run), with each prompt's Universal Sentence Encoder embedding (512-d, npm @energetic-ai): the predictor's nearest neighbours; ${summary.notes}`,
    });
  }
  return results;
}

export async function run({ quick }: BenchOptions): Promise<BenchResult[]> {
  const results = routerBenchResults();
  const sets = routeLlmSets();
  const seeds = quick ? [1] : [1, 2, 3, 4, 5];
  results.push(...routeLlmResults(sets, seeds, 'online'));
  const fitted = routeLlmResults(sets, seeds, 'fit');
  results.push(...fitted);
  // MMLU's 14,042 prompts take half an hour to embed the first time (cached after), then
  // about 2 minutes of replay per seed: only when asked for
  const embedded: SetName[] = ['mtbench', 'gsm8k'];
  if (process.env['ROUTER_BENCH_EMBED_MMLU'] === '1') embedded.push('mmlu');
  if (process.env['ROUTER_BENCH_EMBED'] !== 'off') {
    results.push(...(await embeddedResults(sets, seeds, embedded, fitted)));
  }
  return results;
}
