/** `modelmaxx-router replay --train F… --test F… [--policy P] [--decisions OUT.jsonl] [--json]` */
import { writeFileSync } from 'node:fs';
import { loadPolicyFile } from './policy.js';
import { loadRecorded } from './recorded.js';
import { runReplay, twoModelMetrics } from './replay.js';
import type { ReplayReport, StrategyResult, TwoModelMetrics } from './replay.js';

interface Writable {
  write(text: string): unknown;
}

const USAGE = `usage: modelmaxx-router replay --train F... --test F... [--policy P.json] [--decisions OUT.jsonl] [--json] [--seed N]
`;

interface ReplayArguments {
  train: string[];
  test: string[];
  policy?: string;
  decisions?: string;
  json: boolean;
  seed: number;
}

function parseArguments(args: readonly string[]): ReplayArguments {
  const parsed: ReplayArguments = { train: [], test: [], json: false, seed: 1 };
  let list: string[] | undefined;
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index]!;
    const value = () => {
      const next = args[index + 1];
      if (next === undefined || next.startsWith('--')) throw new Error(`${arg} needs a value`);
      index += 1;
      return next;
    };
    if (arg === '--train') list = parsed.train;
    else if (arg === '--test') list = parsed.test;
    else if (arg === '--policy') {
      parsed.policy = value();
      list = undefined;
    } else if (arg === '--decisions') {
      parsed.decisions = value();
      list = undefined;
    } else if (arg === '--seed') {
      parsed.seed = Number(value());
      list = undefined;
    } else if (arg === '--json') {
      parsed.json = true;
      list = undefined;
    } else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else if (list !== undefined) list.push(arg);
    else throw new Error(`unexpected argument ${arg}`);
  }
  if (parsed.train.length === 0 || parsed.test.length === 0) {
    throw new Error('give at least one --train and one --test file');
  }
  return parsed;
}

const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
const share = (value: number | null) => (value === null ? 'never' : percent(value));

function row(result: StrategyResult): string {
  return `| ${result.name} | ${percent(result.accuracy)} | ${result.costUsd.toFixed(3)} | ${percent(result.accuracyVsBest)} | ${percent(result.costVsBest)} |`;
}

/** The replay table in Markdown. */
export function formatReport(report: ReplayReport, twoModel?: TwoModelMetrics): string {
  const extra =
    twoModel === undefined
      ? []
      : [
          `two models (strong ${twoModel.strongModel}, weak ${twoModel.weakModel}): APGR ${twoModel.apgr.toFixed(3)}, CPT(50%) ${share(twoModel.cpt50)}, CPT(80%) ${share(twoModel.cpt80)}`,
          '',
        ];
  return [
    `train ${report.trainPrompts} prompts (router spent $${report.trainCostUsd.toFixed(3)} learning), test ${report.testPrompts} prompts`,
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

export async function main(
  args: readonly string[],
  stdout: Writable,
  stderr: Writable,
): Promise<number> {
  const [command, ...rest] = args;
  if (command !== 'replay') {
    stderr.write(USAGE);
    return command === undefined || command === '--help' ? 0 : 2;
  }
  let parsed: ReplayArguments;
  try {
    parsed = parseArguments(rest);
  } catch (error) {
    stderr.write(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  try {
    const policy = parsed.policy === undefined ? undefined : loadPolicyFile(parsed.policy);
    const train = loadRecorded(parsed.train);
    const test = loadRecorded(parsed.test);
    const report = runReplay(train, test, {
      ...(policy === undefined ? {} : { policy }),
      seed: parsed.seed,
    });
    const twoModel =
      test.models.length === 2 ? twoModelMetrics(train, test, { seed: parsed.seed }) : undefined;
    if (parsed.decisions !== undefined) {
      writeFileSync(
        parsed.decisions,
        report.decisions.map((decision) => JSON.stringify(decision)).join('\n') + '\n',
      );
    }
    if (parsed.json) {
      const { decisions: _decisions, ...summary } = report;
      stdout.write(JSON.stringify({ ...summary, twoModel }, null, 2) + '\n');
    } else {
      stdout.write(formatReport(report, twoModel));
    }
    return 0;
  } catch (error) {
    stderr.write(`replay failed: ${(error as Error).message}\n`);
    return 1;
  }
}
