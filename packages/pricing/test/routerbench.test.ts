import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PriceCatalog } from '@modelmaxx/pricing';
import { parseCsv } from './support/csv.js';
import { ROUTERBENCH_MODELS } from './support/routerbench-models.js';

/*
 * Cross-check of the RouterBench prices against the data set itself. RouterBench priced every
 * prompt as (input tokens × input price + output tokens × output price), counting tokens the same
 * way for all models. So with the right prices, `total_cost / (input price × prompt characters +
 * output price × response characters)` — tokens per character — comes out the same for all 11
 * models; a wrong price for one model moves its ratio by the size of the error.
 */
const DATA_DIR =
  process.env['MODELMAXX_ROUTERBENCH_DIR'] ??
  fileURLToPath(new URL('../../../../shared/data/routerbench/', import.meta.url));
const FILES = ['arc_challenge_train.csv', 'winograde_train.csv'];
const MODELS = ROUTERBENCH_MODELS;

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const characters = (text: string): number => [...text].length;

describe.skipIf(!existsSync(DATA_DIR))('RouterBench prices against the data set', () => {
  it.each(FILES)('gives all 11 models the same tokens per character in %s', (file) => {
    const records = parseCsv(readFileSync(`${DATA_DIR}/${file}`, 'utf8'));
    expect(records.length).toBeGreaterThan(500);
    const catalog = PriceCatalog.default();
    const ratios = MODELS.map((model) => {
      const prices = catalog.lookup(undefined, model)?.prices;
      if (prices === undefined) throw new Error(`no price for ${model}`);
      const perRecord: number[] = [];
      for (const record of records) {
        const cost = record[`${model}|total_cost`];
        if (cost === undefined || cost === '') continue;
        const estimate =
          (prices.input * characters(record['prompt'] ?? '') +
            prices.output * characters(record[`${model}|model_response`] ?? '')) /
          1e6;
        if (estimate > 0) perRecord.push(Number(cost) / estimate);
      }
      return median(perRecord);
    });
    const common = median(ratios);
    // About four characters per token, as for English text.
    expect(common).toBeGreaterThan(0.2);
    expect(common).toBeLessThan(0.3);
    const deviations = Object.fromEntries(
      MODELS.map((model, i) => [model, Math.abs(ratios[i]! / common - 1) < 0.01]),
    );
    expect(deviations).toEqual(Object.fromEntries(MODELS.map((model) => [model, true])));
  });
});
