/** Loads recorded data in any supported format, by header / first line, and splits it. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { hashText } from './features.js';
import { parseMtBenchJsonl } from './mtbench.js';
import { parseRouteLlmCsv, routeLlmTaskOf } from './routellm.js';
import { isRouterBenchCsv, mergeDatasets, parseRouterBenchCsv } from './routerbench.js';
import type { RecordedDataset, RecordedPrompt } from './routerbench.js';
import { isTrafficJsonl, parseTrafficJsonl } from './traffic.js';

/** One file: RouterBench CSV, RouteLLM CSV, MT-Bench judgements or recorded-traffic JSONL. */
export function loadRecordedFile(file: string): RecordedDataset {
  const text = readFileSync(file, 'utf8');
  if (file.endsWith('.jsonl')) {
    return isTrafficJsonl(text) ? parseTrafficJsonl(text, basename(file)) : parseMtBenchJsonl(text);
  }
  return isRouterBenchCsv(text)
    ? parseRouterBenchCsv(text)
    : parseRouteLlmCsv(text, routeLlmTaskOf(file));
}

export function loadRecorded(files: readonly string[]): RecordedDataset {
  return mergeDatasets(files.map(loadRecordedFile));
}

/** The group a prompt is split by: MT-Bench's two turns of a question stay together. */
function groupOf(prompt: RecordedPrompt): string {
  const match = /^(mtbench\.\d+)\.\d$/.exec(prompt.sampleId);
  return match === null ? prompt.sampleId : match[1]!;
}

/**
 * A 32-bit finalizer (MurmurHash3's fmix32): every input bit reaches every output bit. FNV-1a
 * alone orders group names that share a long prefix (`mtbench.81` … `mtbench.160`) almost the
 * same way for different seeds: MT-Bench's splits for seeds 1 and 3 were identical.
 */
function mix32(hash: number): number {
  let h = hash >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A seeded split per task (stratified): `share` of each task's groups go to train, ordered
 * by a mixed hash of the seed and the group, the rest to test. Both keep the data's order.
 */
export function splitDataset(
  data: RecordedDataset,
  seed: number,
  share = 0.5,
): { train: RecordedDataset; test: RecordedDataset } {
  const byTask = new Map<string, string[]>();
  for (const prompt of data.prompts) {
    const group = groupOf(prompt);
    let groups = byTask.get(prompt.task);
    if (groups === undefined) byTask.set(prompt.task, (groups = []));
    if (groups.at(-1) !== group && !groups.includes(group)) groups.push(group);
  }
  const trainGroups = new Set<string>();
  for (const groups of byTask.values()) {
    const ranked = groups
      .map((group) => ({
        group,
        rank: mix32(hashText(group, 0, group.length, (seed * 0x9e3779b1) >>> 0)),
      }))
      .sort((a, b) => a.rank - b.rank || a.group.localeCompare(b.group));
    const count = Math.round(groups.length * share);
    for (const { group } of ranked.slice(0, count)) trainGroups.add(group);
  }
  const train = data.prompts.filter((prompt) => trainGroups.has(groupOf(prompt)));
  const test = data.prompts.filter((prompt) => !trainGroups.has(groupOf(prompt)));
  return {
    train: { models: data.models, prompts: train, skipped: 0 },
    test: { models: data.models, prompts: test, skipped: data.skipped },
  };
}
