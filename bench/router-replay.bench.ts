/**
 * Offline replay of the default cascade policy on RouterBench (train = history, test =
 * measured, bandit feedback), against always-best measured in the same run.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRouterBench, runReplay } from '@modelmaxx/router';
import type { BenchOptions, BenchResult } from './types.js';

const DATA_DIR =
  process.env.MODELMAXX_ROUTERBENCH_DIR ??
  join(dirname(fileURLToPath(import.meta.url)), '../../shared/data/routerbench');

export async function run(_options: BenchOptions): Promise<BenchResult[]> {
  const files = (split: string) =>
    ['arc_challenge', 'mbpp', 'winograde'].map((task) => join(DATA_DIR, `${task}_${split}.csv`));
  if (!files('test').every((file) => existsSync(file))) {
    throw new Error(`RouterBench data not found in ${DATA_DIR} (set MODELMAXX_ROUTERBENCH_DIR)`);
  }
  const report = runReplay(loadRouterBench(files('train')), loadRouterBench(files('test')), {
    seed: 1,
  });
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
      notes: `RouterBench test split (${report.testPrompts} prompts), ${best.name} as baseline; ${table}`,
    },
    {
      name: 'router-replay-cost-vs-best',
      value: report.router.costUsd,
      unit: 'USD',
      baseline: best.costUsd,
      ratio: report.router.costVsBest,
      goal: '<= 0.20',
      notes: `every call charged; the router also spent $${report.trainCostUsd.toFixed(3)} learning on the train split`,
    },
  ];
}
