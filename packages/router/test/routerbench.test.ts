import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadRouterBench, parseCsv, parsePythonStringList } from '../src/routerbench.js';

const DIR = new URL('../../../../shared/data/routerbench/', import.meta.url).pathname;
const HAS_DATA = existsSync(DIR);
const files = (split: string) =>
  ['arc_challenge', 'mbpp', 'winograde'].map((task) => `${DIR}${task}_${split}.csv`);

describe.skipIf(!HAS_DATA)('RouterBench loader', () => {
  it('parses quoted CSV fields with commas, quotes and newlines', () => {
    expect(parseCsv('a,b\n"x, ""y""\nz",2\n')).toEqual([
      ['a', 'b'],
      ['x, "y"\nz', '2'],
    ]);
  });

  it('parses Python list literals with both quote styles and escapes', () => {
    expect(parsePythonStringList(`['it\\'s\\n', "say \\"hi\\"", 'caf\\xe9']`)).toEqual([
      "it's\n",
      'say "hi"',
      'café',
    ]);
    expect(parsePythonStringList('plain text')).toEqual(['plain text']);
  });

  it('reproduces the reference figures of the data README on the test split', () => {
    const test = loadRouterBench(files('test'));
    expect(test.prompts.length).toBe(945);
    const figure = (model: string) => {
      const index = test.models.indexOf(model);
      let score = 0;
      let cost = 0;
      for (const prompt of test.prompts) {
        score += prompt.scores[index]!;
        cost += prompt.costs[index]!;
      }
      return [((score / test.prompts.length) * 100).toFixed(2), cost.toFixed(3)];
    };
    expect(figure('gpt-4-1106-preview')).toEqual(['87.94', '4.728']);
    expect(figure('zero-one-ai/Yi-34B-Chat')).toEqual(['77.88', '0.312']);
    expect(figure('mistralai/mixtral-8x7b-chat')).toEqual(['74.71', '0.233']);
    expect(figure('gpt-3.5-turbo-1106')).toEqual(['75.03', '0.395']);
    const train = loadRouterBench(files('train'));
    expect(train.prompts.length).toBe(2205);
    expect(test.prompts[0]!.prompt.includes("['")).toBe(false);
  });
});
