/**
 * Inner splits of the RouteLLM train splits, for choosing what the router keeps without reading
 * the test splits: for each seed, the bench's 50/50 train split (`splitDataset(data, seed)`) is
 * split 50/50 again (seeds seed + 100, + 200, …), the router is fitted on the inner train part
 * and measured on the inner held-out part (APGR, the bench's fitted setting and policy).
 * `node bench/router-inner-split.ts`; `SET=gsm8k|mtbench|mmlu` (gsm8k), `SEEDS=1,2,3,4,5`,
 * `INNER=<inner splits per seed>` (1), `ROUTER_DIST=<another build's dist>` (an A/B of a
 * change, e.g. a copy of packages/router/src built elsewhere).
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pathToFileURL } from 'node:url';
import type * as RouterModule from '@modelmaxx/router';
import type { RecordedDataset } from '@modelmaxx/router';
import { predictPolicy } from './router-replay.bench.ts';

// ROUTER_DIST: another build of the router (e.g. a copy with a featurizer variant)
const router = (await import(
  process.env['ROUTER_DIST'] === undefined
    ? '@modelmaxx/router'
    : pathToFileURL(join(process.env['ROUTER_DIST'], 'index.js')).href
)) as typeof RouterModule;
const { loadRecorded, routingMetrics, splitDataset } = router;

const DIR =
  process.env['MODELMAXX_ROUTELLM_DIR'] ??
  join(dirname(fileURLToPath(import.meta.url)), '../../shared/data/routellm');

function load(name: string): RecordedDataset {
  if (name === 'gsm8k') return loadRecorded([join(DIR, 'gsm8k_responses.csv')]);
  if (name === 'mtbench') return loadRecorded([join(DIR, 'mtb_judgements.jsonl')]);
  const mmlu = join(DIR, 'mmlu');
  return loadRecorded(
    readdirSync(mmlu)
      .sort()
      .map((file) => join(mmlu, file)),
  );
}

const set = process.env['SET'] ?? 'gsm8k';
const seeds = (process.env['SEEDS'] ?? '1,2,3,4,5').split(',').map(Number);
/** Inner splits per seed (inner seeds seed + 100, seed + 200, …). */
const inner = Number(process.env['INNER'] ?? '1');
const data = load(set);
const figures: number[] = [];
for (const seed of seeds) {
  const outer = splitDataset(data, seed).train;
  for (let split = 1; split <= inner; split += 1) {
    const { train, test } = splitDataset(outer, seed + 100 * split);
    const metrics = routingMetrics(train, test, {
      policy: predictPolicy(data.models),
      seed,
      history: 'fit',
    });
    figures.push(metrics.router.apgr);
  }
}
const mean = figures.reduce((sum, value) => sum + value, 0) / figures.length;
console.log(
  `${set} inner APGR mean ${mean.toFixed(4)} per seed ${figures.map((value) => value.toFixed(3)).join(' ')}`,
);
