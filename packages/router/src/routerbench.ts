/**
 * Loader for recorded routing data sets in the RouterBench CSV format: per prompt, each
 * model's score (0..1), cost (USD) and answer text. Also reads RouteLLM's two-model CSVs.
 */
import { readFileSync } from 'node:fs';

/** One recorded prompt with every model's outcome. */
export interface RecordedPrompt {
  readonly sampleId: string;
  /** The prompt text (the turns of the Python list literal joined by blank lines). */
  readonly prompt: string;
  /** The data set's own task label (e.g. `mbpp`), used as the app's task label. */
  readonly task: string;
  /** Per model, in the order of `RecordedDataset.models`. */
  readonly scores: Float64Array;
  readonly costs: Float64Array;
  readonly responses: readonly string[];
  /** Conversation depth (user turns), when more than one. */
  readonly turns?: number;
  /** A precomputed embedding of the prompt (user traffic JSONL), if recorded. */
  readonly embedding?: Float32Array;
}

export interface RecordedDataset {
  readonly models: readonly string[];
  readonly prompts: readonly RecordedPrompt[];
  /** Rows skipped because a score was missing (or, in a CSV, the row had too few columns). */
  readonly skipped: number;
}

/** Parses RFC 4180 CSV (quoted fields may hold commas, quotes and newlines). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let index = 0;
  const length = text.length;
  const special = /[,\r\n"]/g;
  while (index < length) {
    special.lastIndex = index;
    const match = special.exec(text);
    const end = match === null ? length : match.index;
    field += text.slice(index, end);
    if (match === null) break;
    const char = match[0];
    index = end + 1;
    if (char === '"') {
      // quoted section: up to the closing quote, "" is a literal quote
      for (;;) {
        const close = text.indexOf('"', index);
        if (close === -1) {
          field += text.slice(index);
          index = length;
          break;
        }
        field += text.slice(index, close);
        if (text[close + 1] === '"') {
          field += '"';
          index = close + 2;
          continue;
        }
        index = close + 1;
        break;
      }
    } else if (char === ',') {
      row.push(field);
      field = '';
    } else {
      if (char === '\r' && text[index] === '\n') index += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  v: '\v',
  '0': '\0',
  '\n': '',
};

/**
 * Parses a Python list literal of strings (`['a', "b\\n"]`), as RouterBench stores prompts
 * and responses. Returns `[text]` when the value is not such a literal.
 */
export function parsePythonStringList(literal: string): string[] {
  const text = literal.trim();
  if (!text.startsWith('[') || !text.endsWith(']')) return [literal];
  const items: string[] = [];
  let index = 1;
  const end = text.length - 1;
  while (index < end) {
    const char = text[index]!;
    if (char === ' ' || char === ',' || char === '\n') {
      index += 1;
      continue;
    }
    if (char !== "'" && char !== '"') return [literal];
    const quote = char;
    index += 1;
    let value = '';
    const stop = quote === "'" ? /['\\]/g : /["\\]/g;
    while (index < end && text[index] !== quote) {
      const current = text[index]!;
      if (current !== '\\') {
        stop.lastIndex = index;
        const next = stop.exec(text);
        const until = next === null || next.index > end ? end : next.index;
        value += text.slice(index, until);
        index = until;
        continue;
      }
      const escape = text[index + 1] ?? '';
      if (escape === 'x') {
        value += String.fromCharCode(Number.parseInt(text.slice(index + 2, index + 4), 16));
        index += 4;
      } else if (escape === 'u') {
        value += String.fromCharCode(Number.parseInt(text.slice(index + 2, index + 6), 16));
        index += 6;
      } else if (escape === 'U') {
        value += String.fromCodePoint(Number.parseInt(text.slice(index + 2, index + 10), 16));
        index += 10;
      } else if (escape in SIMPLE_ESCAPES) {
        value += SIMPLE_ESCAPES[escape];
        index += 2;
      } else {
        value += '\\' + escape;
        index += 2;
      }
    }
    if (index >= end) return [literal];
    index += 1;
    items.push(value);
  }
  return items;
}

const RESPONSE_SUFFIX = '|model_response';
const COST_SUFFIX = '|total_cost';

/** Parses RouterBench CSV text; rows with any empty score, or too few columns, are skipped. */
export function parseRouterBenchCsv(text: string): RecordedDataset {
  const rows = parseCsv(text);
  const header = rows[0];
  if (header === undefined) return { models: [], prompts: [], skipped: 0 };
  const column = (name: string): number => header.indexOf(name);
  const sampleColumn = column('sample_id');
  const promptColumn = column('prompt');
  const taskColumn = column('eval_name');
  if (sampleColumn < 0 || promptColumn < 0) {
    throw new Error('not a RouterBench CSV: the header has no sample_id or prompt column');
  }
  const models = header.filter(
    (name) => header.includes(name + COST_SUFFIX) && !name.includes('|'),
  );
  const scoreColumns = models.map(column);
  const costColumns = models.map((model) => column(model + COST_SUFFIX));
  const responseColumns = models.map((model) => column(model + RESPONSE_SUFFIX));
  const prompts: RecordedPrompt[] = [];
  let skipped = 0;
  for (let rowIndex = 1; rowIndex < rows.length; rowIndex += 1) {
    const row = rows[rowIndex]!;
    if (row.length === 1 && row[0]!.trim() === '') continue;
    if (row.length < header.length) {
      skipped += 1;
      continue;
    }
    const scores = new Float64Array(models.length);
    const costs = new Float64Array(models.length);
    let complete = true;
    for (let modelIndex = 0; modelIndex < models.length; modelIndex += 1) {
      const score = row[scoreColumns[modelIndex]!]!;
      if (score.trim() === '') {
        complete = false;
        break;
      }
      const cost = row[costColumns[modelIndex]!] || '0';
      scores[modelIndex] = Number(score);
      costs[modelIndex] = Number(cost);
      if (!(scores[modelIndex]! >= 0 && scores[modelIndex]! <= 1 && costs[modelIndex]! >= 0)) {
        const what = `${models[modelIndex]}: score "${score}" (0..1), cost "${cost}" (≥ 0)`;
        throw new Error(`row ${rowIndex} (sample_id ${row[sampleColumn]}): ${what}`);
      }
    }
    if (!complete) {
      skipped += 1;
      continue;
    }
    const responses = responseColumns.map((responseColumn) =>
      responseColumn < 0 ? '' : parsePythonStringList(row[responseColumn] ?? '').join('\n\n'),
    );
    prompts.push({
      sampleId: row[sampleColumn]!,
      prompt: parsePythonStringList(row[promptColumn]!).join('\n\n'),
      task: taskColumn >= 0 ? row[taskColumn]! : 'default',
      scores,
      costs,
      responses,
    });
  }
  return { models, prompts, skipped };
}

/** Merges data sets (e.g. the three RouterBench task files of one split). */
export function mergeDatasets(datasets: readonly RecordedDataset[]): RecordedDataset {
  const first = datasets[0];
  if (first === undefined) return { models: [], prompts: [], skipped: 0 };
  const models = first.models;
  const prompts: RecordedPrompt[] = [];
  let skipped = 0;
  for (const dataset of datasets) {
    skipped += dataset.skipped;
    const order = models.map((model) => dataset.models.indexOf(model));
    if (order.some((position) => position < 0)) {
      throw new Error(
        `data sets have different models: ${models.join(', ')} vs ${dataset.models.join(', ')}`,
      );
    }
    for (const prompt of dataset.prompts) {
      prompts.push({
        ...prompt,
        scores: Float64Array.from(order, (position) => prompt.scores[position]!),
        costs: Float64Array.from(order, (position) => prompt.costs[position]!),
        responses: order.map((position) => prompt.responses[position]!),
      });
    }
  }
  return { models, prompts, skipped };
}

/** Reads and merges RouterBench CSV files. */
export function loadRouterBench(files: readonly string[]): RecordedDataset {
  return mergeDatasets(files.map((file) => parseRouterBenchCsv(readFileSync(file, 'utf8'))));
}

/** True when the CSV text has RouterBench's header (a `sample_id` column). */
export function isRouterBenchCsv(text: string): boolean {
  const firstLine = text.slice(0, text.indexOf('\n'));
  return firstLine.split(',').includes('sample_id');
}
