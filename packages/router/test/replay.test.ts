import { describe, expect, it } from 'vitest';
import { computeWeights } from '../src/decision.js';
import { parsePolicy } from '../src/policy.js';
import { runReplay, seedPriors } from '../src/replay.js';
import type { RecordedDataset } from '../src/routerbench.js';
import { MODELS, syntheticDataset } from './support/synthetic-data.js';
import { createRandom } from '../src/random.js';

/**
 * A synthetic two-class data set: on "easy" the cheap models are right and agree; on "hard"
 * they disagree and only the frontier model is right (70% of the time).
 */
function dataset(count: number, seed: number, prefix: string): RecordedDataset {
  return syntheticDataset(count, seed, prefix, (random, index) => {
    const hard = random() < 0.3;
    const frontierRight = hard ? random() < 0.7 : random() < 0.95;
    const cheapRight = !hard && random() < 0.9;
    return { text: `question ${index}`, frontierRight, cheapRight };
  });
}

describe('offline replay', () => {
  const train = dataset(600, 1, 'train');
  const test = dataset(400, 2, 'test');
  const policy = {
    name: 'cascade',
    candidates: MODELS.map((model) => ({ model })),
    goal: { costPenalty: 0.1 },
    cascade: { enabled: true },
  };

  it('learns a cascade that keeps frontier accuracy at a fraction of its cost', () => {
    const report = runReplay(train, test, { policy, seed: 3 });
    expect(report.bestModel).toBe('frontier');
    expect(report.router.accuracyVsBest).toBeGreaterThan(0.97);
    expect(report.router.costVsBest).toBeLessThan(0.5);
    expect(report.decisions.length).toBe(400);
  });

  it.each([
    { thirdVoter: false, answerEscalation: false },
    { thirdVoter: true, answerEscalation: false },
    { thirdVoter: false, answerEscalation: true },
  ])('charges every call and answers only with a model it called (%o)', (options) => {
    const report = runReplay(train, test, {
      policy: { ...policy, cascade: { enabled: true, ...options } },
      seed: 4,
    });
    let cost = 0;
    let score = 0;
    const byId = new Map(test.prompts.map((prompt) => [prompt.sampleId, prompt]));
    for (const decision of report.decisions) {
      const prompt = byId.get(decision.sample_id)!;
      expect(decision.calls).toContain(decision.model);
      expect(new Set(decision.calls).size).toBe(decision.calls.length);
      for (const model of decision.calls) cost += prompt.costs[MODELS.indexOf(model)]!;
      score += prompt.scores[MODELS.indexOf(decision.model)]!;
    }
    expect(report.router.costUsd).toBeCloseTo(cost, 12);
    expect(report.router.accuracy).toBeCloseTo(score / 400, 12);
  });

  it('replays the weight-only router with the same decision core', () => {
    const report = runReplay(train, test, {
      policy: { ...policy, goal: { qualityMargin: 0.02 }, cascade: { enabled: false } },
      seed: 5,
    });
    expect(report.router.name).toBe('router (weights)');
    for (const decision of report.decisions) expect(decision.calls).toEqual([decision.model]);
    // with one class and no context, weights alone must mostly pay for the frontier model
    expect(report.router.costVsBest).toBeGreaterThan(0.7);
  });

  it('seeds cold-start priors from an offline evaluation', () => {
    const seeded = seedPriors(
      parsePolicy({ candidates: [{ model: 'frontier' }, { model: 'other' }] }),
      train,
    );
    const frontier = train.prompts.reduce((sum, prompt) => sum + prompt.scores[0]!, 0) / 600;
    expect(seeded.candidates[1]).toEqual({ model: 'other', provider: 'openai' });
    expect(seeded.candidates[0]!.priorQuality).toBeCloseTo(frontier, 12);
    expect(seeded.candidates[0]!.priorCostPerCallUsd).toBeCloseTo(0.01, 12);
    const table = computeWeights({
      policy: seeded,
      stats: [],
      random: createRandom(1),
      classes: ['qa'],
    });
    expect(table.classes.get('qa')!.weights[0]!.quality).toBeCloseTo(frontier, 12);
  });

  it('rejects a policy whose candidates are not in the data', () => {
    expect(() => runReplay(train, test, { policy: { candidates: [{ model: 'gpt-9' }] } })).toThrow(
      'policy candidate "gpt-9" is not in the data',
    );
  });

  it('reports the hindsight frontiers of per-class models and of per-class cascades', () => {
    // Four prompts, truth "A"; frontier right on all, cost 1 each; cheap models cost 0.1.
    // p1, p2: both cheap models right and agreeing; p3: both wrong (B, C); p4: a right, b wrong.
    const rows: [number[], string[]][] = [
      [
        [1, 1, 1],
        ['A', 'A', 'A'],
      ],
      [
        [1, 1, 1],
        ['A', 'A', 'A'],
      ],
      [
        [1, 0, 0],
        ['A', 'B', 'C'],
      ],
      [
        [1, 1, 0],
        ['A', 'A', 'B'],
      ],
    ];
    const tiny: RecordedDataset = {
      models: MODELS,
      skipped: 0,
      prompts: rows.map(([scores, responses], index) => ({
        sampleId: `tiny.${index}`,
        prompt: `question ${index}`,
        task: 'qa',
        scores: Float64Array.from(scores),
        costs: Float64Array.from([1, 0.1, 0.1]),
        responses,
      })),
    };
    const report = runReplay(tiny, tiny, { policy, seed: 1 });
    const row = (name: string) => report.baselines.find((entry) => entry.name === name)!;
    // Plans (score, cost): cheap-a (3, 0.4), frontier (4, 4), cascade a+b→frontier (4, 2.8).
    // 98% of 4 = 3.92: static mixes cheap-a and frontier, the cascade frontier cheap-a and the
    // cascade; within 20% of the cost (0.8) the cascade frontier mixes cheap-a and the cascade.
    const fixed = row('per-class static frontier (hindsight on test)');
    expect(fixed.accuracy).toBeCloseTo(0.98, 9);
    expect(fixed.costUsd).toBeCloseTo(0.4 + 0.92 * 3.6, 6);
    const cascade98 = row('per-class cascade frontier at 98% (hindsight on test)');
    expect(cascade98.accuracy).toBeCloseTo(0.98, 9);
    expect(cascade98.costUsd).toBeCloseTo(0.4 + 0.92 * 2.4, 6);
    const cascade20 = row('per-class cascade frontier at 20% cost (hindsight on test)');
    expect(cascade20.costUsd).toBeCloseTo(0.8, 6);
    expect(cascade20.accuracy).toBeCloseTo((3 + 0.4 / 2.4) / 4, 6);
  });
});
