/** Loads recorded data in either supported format (RouterBench or RouteLLM), by header. */
import { readFileSync } from 'node:fs';
import { parseRouteLlmCsv, routeLlmTaskOf } from './routellm.js';
import { isRouterBenchCsv, mergeDatasets, parseRouterBenchCsv } from './routerbench.js';
import type { RecordedDataset } from './routerbench.js';

export function loadRecorded(files: readonly string[]): RecordedDataset {
  return mergeDatasets(
    files.map((file) => {
      const text = readFileSync(file, 'utf8');
      return isRouterBenchCsv(text)
        ? parseRouterBenchCsv(text)
        : parseRouteLlmCsv(text, routeLlmTaskOf(file));
    }),
  );
}
