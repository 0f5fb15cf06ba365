/** `modelmaxx-router replay …`: the offline replay of a routing policy on recorded outcomes. */
import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { classOfFeatures, extractFeatures } from './classifier.js';
import { routingMetrics } from './metrics.js';
import type { Curve, RoutingMetrics } from './metrics.js';
import { loadPolicyFile, parsePolicy } from './policy.js';
import type { Policy } from './policy.js';
import { loadRecorded, splitDataset } from './recorded.js';
import { defaultReplayPolicy, runReplay } from './replay.js';
import type { ReplayReport, StrategyResult } from './replay.js';
import type { RecordedDataset, RecordedPrompt } from './routerbench.js';

interface Writable {
  write(text: string): unknown;
}

const SYNOPSIS =
  'modelmaxx-router replay (--train F... --test F... | --data F... [--split S]) [options]';

const HELP = `Usage: ${SYNOPSIS}

Replays a routing policy on recorded outcomes (RouterBench CSVs, RouteLLM CSVs, MT-Bench
judgements .jsonl, or your own traffic .jsonl) with bandit feedback: the router sees only the
outcomes of the models it calls, and every call is charged. The train split is history (the
router learns, charged but not measured), the test split is measured (learning continues).

options:
  --train F...         recorded data learned on first (history)
  --test F...          recorded data measured
  --data F...          one data set, split per task into train/test (seeded by --seed)
  --split S            share of --data that goes to train (default 0.5)
  --policy P.json      the routing policy (default: the built-in replay policy for the data)
  --predict            per-request routing: the default policy with predictor.enabled
  --fit                learn the train split as a labelled history (engine.fit: every model's
                       outcome per prompt, the labels charged) instead of routing it online
  --class task|request routing class: the data's task label (default), or the class the
                       classifier derives from the request text (for transfer across data sets)
  --interval-ms N      ms between recorded requests on the replay clock (default 1000); the
                       policy's refreshIntervalMs, statsWindow and halfLifeMs run on this clock
  --sweep              sweep the policy's cost knob: cost-quality curve, APGR, CPT(50%),
                       CPT(80%), beside a random mix and a static per-class table chosen on train
                       (on by default for two-model data)
  --no-sweep           do not sweep
  --knobs a,b,...      knob values for the sweep (goal.costPenalty, or goal.qualityMargin for
                       the weight router)
  --seed N             random seed of the router and of the --data split (default 1)
  --decisions OUT      write one JSON line per test prompt (sample_id, model, calls, kind, reason)
  --json               print the whole report (including the curves) as JSON
  --help, -h           print this text
`;

const USAGE = `usage: ${SYNOPSIS}\n(modelmaxx-router replay --help lists every option)\n`;

interface ReplayArguments {
  train: string[];
  test: string[];
  data: string[];
  split: number;
  policy?: string;
  predict: boolean;
  fit: boolean;
  classBy: 'task' | 'request';
  intervalMs: number;
  sweep: boolean | undefined;
  knobs?: number[];
  decisions?: string;
  json: boolean;
  seed: number;
  help: boolean;
}

function numberOf(arg: string, text: string, check: (value: number) => boolean): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || !check(value)) {
    throw new Error(`${arg}: "${text}" is not a valid value`);
  }
  return value;
}

/** Flags (no value); each also ends a file list. */
const FLAGS = new Map<string, (parsed: ReplayArguments) => void>([
  ['--predict', (parsed) => (parsed.predict = true)],
  ['--fit', (parsed) => (parsed.fit = true)],
  ['--sweep', (parsed) => (parsed.sweep = true)],
  ['--no-sweep', (parsed) => (parsed.sweep = false)],
  ['--json', (parsed) => (parsed.json = true)],
]);

/** Options followed by a list of files. */
const LISTS = new Map<string, (parsed: ReplayArguments) => string[]>([
  ['--train', (parsed) => parsed.train],
  ['--test', (parsed) => parsed.test],
  ['--data', (parsed) => parsed.data],
]);

/** Sets the value of an option that takes one (`VALUE_OPTIONS`), checked. */
function setValueOption(parsed: ReplayArguments, arg: string, text: string): void {
  switch (arg) {
    case '--split':
      parsed.split = numberOf(arg, text, (v) => v > 0 && v < 1);
      break;
    case '--policy':
      parsed.policy = text;
      break;
    case '--class':
      if (text !== 'task' && text !== 'request') {
        throw new Error(`--class is "task" or "request", not "${text}"`);
      }
      parsed.classBy = text;
      break;
    case '--interval-ms':
      parsed.intervalMs = numberOf(arg, text, (v) => v > 0);
      break;
    case '--knobs':
      parsed.knobs = text.split(',').map((knob) => numberOf('--knobs', knob, (v) => v >= 0));
      break;
    case '--decisions':
      parsed.decisions = text;
      break;
    default: // --seed
      parsed.seed = numberOf(arg, text, (v) => Number.isInteger(v));
  }
}
const VALUE_OPTIONS = new Set([
  '--split',
  '--policy',
  '--class',
  '--interval-ms',
  '--knobs',
  '--decisions',
  '--seed',
]);

/** The data and policy options must make one replay. */
function checkArguments(parsed: ReplayArguments): void {
  const split = parsed.train.length > 0 || parsed.test.length > 0;
  if (parsed.data.length > 0 && split) throw new Error('give --data, or --train and --test');
  if (parsed.data.length === 0 && (parsed.train.length === 0 || parsed.test.length === 0)) {
    throw new Error('give at least one --train and one --test file (or --data)');
  }
  if (parsed.predict && parsed.policy !== undefined) {
    throw new Error('--predict changes the default policy: with --policy, set predictor.enabled');
  }
}

function parseArguments(args: readonly string[]): ReplayArguments {
  const parsed: ReplayArguments = {
    train: [],
    test: [],
    data: [],
    split: 0.5,
    predict: false,
    fit: false,
    classBy: 'task',
    intervalMs: 1000,
    sweep: undefined,
    json: false,
    seed: 1,
    help: false,
  };
  let list: string[] | undefined;
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index]!;
    if (arg === '--help' || arg === '-h') {
      parsed.help = true;
    } else if (LISTS.has(arg)) {
      list = LISTS.get(arg)!(parsed);
    } else if (FLAGS.has(arg)) {
      FLAGS.get(arg)!(parsed);
      list = undefined;
    } else if (VALUE_OPTIONS.has(arg)) {
      const next = args[index + 1];
      if (next === undefined || next.startsWith('--')) throw new Error(`${arg} needs a value`);
      index += 1;
      list = undefined;
      setValueOption(parsed, arg, next);
    } else if (arg.startsWith('--')) {
      throw new Error(`unknown option ${arg}`);
    } else if (list === undefined) {
      throw new Error(`unexpected argument ${arg}`);
    } else {
      list.push(arg);
    }
  }
  if (!parsed.help) checkArguments(parsed);
  return parsed;
}

const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
const share = (value: number | null) => (value === null ? 'never' : percent(value));

function row(result: StrategyResult): string {
  return `| ${result.name} | ${percent(result.accuracy)} | ${result.costUsd.toFixed(3)} | ${percent(result.accuracyVsBest)} | ${percent(result.costVsBest)} |`;
}

function curveLine(name: string, curve: Curve): string {
  return `| ${name} | ${curve.apgr.toFixed(3)} | ${share(curve.cpt50)} | ${share(curve.cpt80)} |`;
}

/** The replay table in Markdown (and the curves when swept). */
export function formatReport(report: ReplayReport, metrics?: RoutingMetrics): string {
  const extra: string[] = [];
  if (metrics !== undefined) {
    const axis =
      metrics.axis === 'strong-share'
        ? `share of prompts calling ${metrics.strongModel}`
        : `cost ÷ always-${metrics.strongModel}`;
    extra.push(
      `cost–quality curve (sweep of ${metrics.knob}; x = ${axis}; strong ${metrics.strongModel} ${percent(metrics.strongAccuracy)}, weak ${metrics.weakModel} ${percent(metrics.weakAccuracy)})`,
      '',
      '| curve | APGR | CPT(50%) | CPT(80%) |',
      '| --- | --- | --- | --- |',
      curveLine('router', metrics.router),
      curveLine('random mix', metrics.random),
      curveLine('static per-class table (chosen on train)', metrics.staticTable),
      '',
      '| knob | x | accuracy | cost vs best | PGR |',
      '| --- | --- | --- | --- | --- |',
      ...metrics.router.points
        .filter((point) => point.knob !== null)
        .map(
          (point) =>
            `| ${point.knob} | ${percent(point.x)} | ${percent(point.accuracy)} | ${percent(point.costVsBest)} | ${point.pgr.toFixed(3)} |`,
        ),
      '',
      `at the policy's own knob: x ${percent(metrics.atPolicy.router.x)}, PGR ${metrics.atPolicy.router.pgr.toFixed(3)} (random mix ${metrics.atPolicy.randomPgr.toFixed(3)}, static table ${metrics.atPolicy.staticPgr.toFixed(3)} at the same x)`,
      '',
    );
  }
  return [
    `train ${report.trainPrompts} prompts (${report.history === 'fit' ? 'fitted offline, labels cost' : 'router spent'} $${report.trainCostUsd.toFixed(3)}${report.history === 'fit' ? '' : ' learning'}), test ${report.testPrompts} prompts`,
    '',
    '| policy | accuracy | cost (USD) | accuracy vs best | cost vs best |',
    '| --- | --- | --- | --- | --- |',
    row(report.router),
    ...report.baselines.map(row),
    '',
    `decision time per prompt: p50 ${report.decisionMicros.p50.toFixed(2)} µs, p99 ${report.decisionMicros.p99.toFixed(2)} µs`,
    '',
    ...extra,
  ].join('\n');
}

/** The class the classifier gives a recorded prompt from its text alone. */
export function requestClassOf(prompt: RecordedPrompt): string {
  return classOfFeatures(extractFeatures({ messages: [{ role: 'user', content: prompt.prompt }] }));
}

/** Fails before the replay runs when `--decisions` cannot be written (not after it). */
function checkWritable(file: string): void {
  const directory = dirname(file);
  try {
    if (!statSync(directory).isDirectory()) throw new Error('not a directory');
    accessSync(directory, constants.W_OK);
  } catch (error) {
    throw new Error(
      `--decisions ${file}: cannot write into ${directory} (${(error as Error).message})`,
      { cause: error },
    );
  }
}

/** The train and test data of the arguments; a note on stderr for each file with skipped rows. */
function loadSplits(
  parsed: ReplayArguments,
  stderr: Writable,
): { train: RecordedDataset; test: RecordedDataset } {
  const noteSkipped = (file: string, rows: number): void => {
    stderr.write(
      `note: ${file}: ${rows} rows skipped (a model's score missing or the row incomplete)\n`,
    );
  };
  if (parsed.data.length > 0) {
    return splitDataset(loadRecorded(parsed.data, noteSkipped), parsed.seed, parsed.split);
  }
  const train = loadRecorded(parsed.train, noteSkipped);
  const test = loadRecorded(parsed.test, noteSkipped);
  if (train.models.join('\n') !== test.models.join('\n')) {
    throw new Error(
      `the --train files (${parsed.train.join(', ')}) have models ${train.models.join(', ')}, the --test files (${parsed.test.join(', ')}) ${test.models.join(', ')}`,
    );
  }
  return { train, test };
}

export async function main(
  args: readonly string[],
  stdout: Writable,
  stderr: Writable,
): Promise<number> {
  const [command, ...rest] = args;
  if (command === '--help' || command === '-h' || command === 'help') {
    stdout.write(HELP);
    return 0;
  }
  if (command !== 'replay') {
    stderr.write(command === undefined ? USAGE : `unknown command ${command}\n${USAGE}`);
    return 2;
  }
  let parsed: ReplayArguments;
  try {
    parsed = parseArguments(rest);
  } catch (error) {
    stderr.write(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    stdout.write(HELP);
    return 0;
  }
  try {
    if (parsed.decisions !== undefined) checkWritable(parsed.decisions);
    const { train, test } = loadSplits(parsed, stderr);
    let policy: Policy | undefined =
      parsed.policy === undefined ? undefined : loadPolicyFile(parsed.policy);
    if (parsed.predict) {
      const base = parsePolicy(defaultReplayPolicy(test.models), 'replay policy');
      policy = {
        ...base,
        cascade: { ...base.cascade, enabled: false },
        goal: { ...base.goal, costPenalty: base.goal.costPenalty ?? 0.1 },
        predictor: { ...base.predictor, enabled: true },
      };
    }
    const options = {
      ...(policy === undefined ? {} : { policy }),
      seed: parsed.seed,
      intervalMs: parsed.intervalMs,
      ...(parsed.classBy === 'request' ? { classOf: requestClassOf } : {}),
      ...(parsed.fit ? { history: 'fit' as const } : {}),
    };
    const report = runReplay(train, test, options);
    const sweep = parsed.sweep ?? test.models.length === 2;
    const metrics = sweep
      ? routingMetrics(train, test, {
          ...options,
          ...(parsed.knobs === undefined ? {} : { knobs: parsed.knobs }),
        })
      : undefined;
    if (parsed.json) {
      const { decisions: _decisions, ...summary } = report;
      stdout.write(JSON.stringify({ ...summary, metrics }, null, 2) + '\n');
    } else {
      stdout.write(formatReport(report, metrics));
    }
    if (parsed.decisions !== undefined) {
      writeFileSync(
        parsed.decisions,
        report.decisions.map((decision) => JSON.stringify(decision)).join('\n') + '\n',
      );
    }
    return 0;
  } catch (error) {
    stderr.write(`replay failed: ${(error as Error).message}\n`);
    return 1;
  }
}
