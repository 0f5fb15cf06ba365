/**
 * Loader for RouteLLM's two-model evaluation CSVs (`prompt, <weak>, <strong>` with True/False,
 * optionally `<model>_response` columns). The data has no costs: they are derived from token
 * estimates (4 characters a token) and list prices.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseCsv } from './routerbench.js';
import type { RecordedDataset, RecordedPrompt } from './routerbench.js';

/** USD per million input / output tokens (data README). */
export const ROUTELLM_PRICES: Readonly<Record<string, { input: number; output: number }>> = {
  'gpt-4-1106-preview': { input: 10, output: 30 },
  'mistralai/Mixtral-8x7B-Instruct-v0.1': { input: 0.6, output: 0.6 },
};

const tokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

/** Parses one RouteLLM CSV; `task` labels its prompts (e.g. the MMLU domain). */
export function parseRouteLlmCsv(text: string, task: string): RecordedDataset {
  const rows = parseCsv(text);
  const header = rows[0] ?? [];
  const promptColumn = header.indexOf('prompt');
  if (promptColumn < 0) throw new Error('not a RouteLLM CSV: the header has no prompt column');
  const models = header.filter(
    (name, index) => index !== promptColumn && name !== '' && !name.endsWith('_response'),
  );
  for (const model of models) {
    if (ROUTELLM_PRICES[model] === undefined) {
      throw new Error(`no list price for RouteLLM model "${model}"`);
    }
  }
  const scoreColumns = models.map((model) => header.indexOf(model));
  const responseColumns = models.map((model) => header.indexOf(`${model}_response`));
  const prompts: RecordedPrompt[] = [];
  let skipped = 0;
  for (let rowIndex = 1; rowIndex < rows.length; rowIndex += 1) {
    const row = rows[rowIndex]!;
    if (row.length === 1 && row[0]!.trim() === '') continue;
    if (row.length < header.length) {
      skipped += 1;
      continue;
    }
    const values = scoreColumns.map((column) => row[column]!.trim().toLowerCase());
    if (values.some((value) => value !== 'true' && value !== 'false')) {
      skipped += 1;
      continue;
    }
    const prompt = row[promptColumn]!;
    const responses = responseColumns.map((column) => (column < 0 ? '' : row[column]!));
    prompts.push({
      sampleId: `${task}.${rowIndex - 1}`,
      prompt,
      task,
      scores: Float64Array.from(values, (value) => (value === 'true' ? 1 : 0)),
      costs: Float64Array.from(models, (model, index) => {
        const price = ROUTELLM_PRICES[model]!;
        // Without a recorded response (MMLU), the answer is one letter: ~1 token.
        const output = responses[index] === '' ? 1 : tokens(responses[index]!);
        return (tokens(prompt) * price.input + output * price.output) / 1e6;
      }),
      responses,
    });
  }
  return { models, prompts, skipped };
}

/** The task label of a RouteLLM file: `mmlu_anatomy.csv` → `mmlu_anatomy`, `gsm8k_responses.csv` → `gsm8k`. */
export function routeLlmTaskOf(file: string): string {
  return basename(file, '.csv').replace(/_responses$/, '');
}

export function loadRouteLlm(file: string): RecordedDataset {
  return parseRouteLlmCsv(readFileSync(file, 'utf8'), routeLlmTaskOf(file));
}
