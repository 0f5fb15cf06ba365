/** Loads recorded data in any supported format, by header / first line, and splits it. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { hashText } from './features.js';
import { parseMtBenchJsonl } from './mtbench.js';
import { parseRouteLlmCsv, routeLlmTaskOf } from './routellm.js';
import { isRouterBenchCsv, mergeDatasets, parseRouterBenchCsv } from './routerbench.js';
import type { RecordedDataset, RecordedPrompt } from './routerbench.js';
import { isTrafficJsonl, parseTrafficJsonl } from './traffic.js';

/** The file's name in errors, unless the parser's message already starts with it. */
function named(name: string, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  return message.startsWith(name)
    ? (error as Error)
    : new Error(`${name}: ${message}`, { cause: error });
}

/**
 * One file: RouterBench CSV, RouteLLM CSV, MT-Bench judgements or recorded-traffic JSONL. Every
 * error names the file (and the line where the parser knows it); an empty file, or one none of
 * whose rows could be read, is an error too.
 */
export function loadRecordedFile(file: string): RecordedDataset {
  const text = readFileSync(file, 'utf8');
  const name = basename(file);
  if (text.trim() === '') throw new Error(`${name}: empty file (no requests)`);
  let data: RecordedDataset;
  try {
    if (file.endsWith('.jsonl')) {
      data = isTrafficJsonl(text) ? parseTrafficJsonl(text, name) : parseMtBenchJsonl(text);
    } else {
      data = isRouterBenchCsv(text)
        ? parseRouterBenchCsv(text)
        : parseRouteLlmCsv(text, routeLlmTaskOf(file));
    }
  } catch (error) {
    throw named(name, error);
  }
  if (data.prompts.length === 0) {
    throw new Error(
      `${name}: no requests${data.skipped > 0 ? ` (${data.skipped} rows skipped: a model's score missing)` : ''}`,
    );
  }
  return data;
}

/** Several files merged; `onSkipped` hears of each file whose rows were skipped (a score missing). */
export function loadRecorded(
  files: readonly string[],
  onSkipped?: (file: string, rows: number) => void,
): RecordedDataset {
  const datasets = files.map((file) => {
    const data = loadRecordedFile(file);
    if (data.skipped > 0) onSkipped?.(file, data.skipped);
    return data;
  });
  try {
    return mergeDatasets(datasets);
  } catch (error) {
    throw new Error(`${files.join(', ')}: ${(error as Error).message}`, { cause: error });
  }
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
