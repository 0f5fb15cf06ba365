import { describe, expect, it } from 'vitest';
import { parseRouteLlmCsv, routeLlmTaskOf } from '../src/routellm.js';
import { twoModelMetrics } from '../src/replay.js';
import type { RecordedDataset } from '../src/routerbench.js';
import { createRandom } from '../src/random.js';

const WEAK = 'mistralai/Mixtral-8x7B-Instruct-v0.1';
const STRONG = 'gpt-4-1106-preview';

describe('RouteLLM data', () => {
  it('parses scores and derives costs from tokens and list prices', () => {
    const csv = `prompt,${WEAK},${STRONG},${WEAK}_response,${STRONG}_response\n"What is 2+2?",True,True,"4 because 2+2",four\n"x",False,True,,\n"bad",maybe,True,,\n`;
    const data = parseRouteLlmCsv(csv, 'gsm8k');
    expect(data.models).toEqual([WEAK, STRONG]);
    expect(data.skipped).toBe(1);
    expect(data.prompts.map((prompt) => [...prompt.scores])).toEqual([
      [1, 1],
      [0, 1],
    ]);
    // "What is 2+2?" = 12 chars = 3 tokens; "4 because 2+2" = 4 tokens; "four" = 1 token
    expect(data.prompts[0]!.costs[0]).toBeCloseTo((3 * 0.6 + 4 * 0.6) / 1e6, 15);
    expect(data.prompts[0]!.costs[1]).toBeCloseTo((3 * 10 + 1 * 30) / 1e6, 15);
    expect(data.prompts[0]!.sampleId).toBe('gsm8k.0');
    expect(routeLlmTaskOf('/d/mmlu/mmlu_anatomy.csv')).toBe('mmlu_anatomy');
    expect(routeLlmTaskOf('/d/gsm8k_responses.csv')).toBe('gsm8k');
  });

  it('rejects models without a list price', () => {
    expect(() => parseRouteLlmCsv('prompt,a,b\n"x",True,False\n', 't')).toThrow(
      'no list price for RouteLLM model "a"',
    );
  });

  it('computes APGR and CPT from a sweep of the weight router', () => {
    const random = createRandom(9);
    const make = (count: number): RecordedDataset => ({
      models: [WEAK, STRONG],
      skipped: 0,
      prompts: Array.from({ length: count }, (_, index) => {
        // class "easy": both right 90%; class "hard": weak 20%, strong 80%
        const hard = index % 2 === 1;
        return {
          sampleId: String(index),
          prompt: 'p',
          task: hard ? 'hard' : 'easy',
          scores: Float64Array.from([
            random() < (hard ? 0.2 : 0.9) ? 1 : 0,
            random() < (hard ? 0.8 : 0.9) ? 1 : 0,
          ]),
          costs: Float64Array.from([0.0001, 0.003]),
          responses: ['', ''],
        };
      }),
    });
    const metrics = twoModelMetrics(make(600), make(600), { seed: 2 });
    expect(metrics.strongModel).toBe(STRONG);
    // routing only the hard half to the strong model recovers nearly the whole gap at ~50%
    expect(metrics.cpt80).not.toBeNull();
    expect(metrics.cpt80!).toBeLessThan(0.65);
    expect(metrics.apgr).toBeGreaterThan(0.6);
    expect(metrics.apgr).toBeLessThanOrEqual(1);
  });
});
