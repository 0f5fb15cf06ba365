import { describe, expect, it } from 'vitest';
import { featurize } from '../src/features.js';
import { PENALTY_KNOBS, calibratedKnobs, routingMetrics } from '../src/metrics.js';
import { parsePolicy } from '../src/policy.js';
import { QualityPredictor } from '../src/predictor.js';
import { createRandom } from '../src/random.js';
import type { RecordedDataset } from '../src/routerbench.js';
import { TrustFit } from '../src/trust-fit.js';

/**
 * Two models, classes whose gaps (strong − weak right rate) lie close together: a fixed knob
 * grid steps over both flips at once; a grid calibrated on train stops between them.
 */
function closeGaps(count: number, seed: number, prefix: string): RecordedDataset {
  const random = createRandom(seed);
  const gaps: Record<string, number> = { near: 0.31, far: 0.335 };
  return {
    models: ['weak', 'strong'],
    skipped: 0,
    prompts: Array.from({ length: count }, (_, index) => {
      const task = index % 4 === 0 ? 'far' : 'near';
      const strong = random() < 0.9 ? 1 : 0;
      return {
        sampleId: `${prefix}.${index}`,
        prompt: `${prefix} ${task} question ${index}`,
        task,
        scores: Float64Array.from([random() < 0.9 - gaps[task]! ? 1 : 0, strong]),
        costs: Float64Array.from([0.0001, 0.01]),
        responses: ['', ''],
      };
    }),
  };
}

const policy = {
  name: 'p',
  candidates: [{ model: 'weak' }, { model: 'strong' }],
  goal: { costPenalty: 0.1 },
  exploration: 0,
  predictor: { enabled: true, features: ['class' as const] },
};

describe('calibrated cost knobs', () => {
  const train = closeGaps(800, 1, 'train');
  const test = closeGaps(400, 2, 'test');

  it('samples the curve between close flips that the fixed grid steps over', () => {
    const knobs = calibratedKnobs(train, parsePolicy(policy));
    expect(knobs.length).toBeGreaterThan(5);
    // the fixed grid alone: both classes flip between the same two knobs
    const fixed = routingMetrics(train, test, { policy, history: 'fit', knobs: PENALTY_KNOBS });
    const calibrated = routingMetrics(train, test, { policy, history: 'fit' });
    const farOnly = (points: readonly { strongShare: number }[]) =>
      points.some((point) => Math.abs(point.strongShare - 0.25) < 0.02);
    expect(farOnly(fixed.router.points)).toBe(false);
    expect(farOnly(calibrated.router.points)).toBe(true);
    expect(calibrated.router.apgr).toBeGreaterThan(fixed.router.apgr);
  });

  it('is empty where it does not apply (no predictor, or more than two candidates)', () => {
    expect(
      calibratedKnobs(train, parsePolicy({ ...policy, predictor: { enabled: false } })),
    ).toEqual([]);
  });
});

describe('trust in the request features (TrustFit)', () => {
  /** Held-out rows learned then scored; `signal` says whether the words carry the outcome. */
  function trustOf(signal: boolean): number {
    const random = createRandom(3);
    const predictor = new QualityPredictor({ candidates: 2, halfLifeMs: 1e12, priors: [0.5, 0.5] });
    const trust = new TrustFit(predictor, 2);
    const index = new Map([
      ['weak', 0],
      ['strong', 1],
    ]);
    for (let at = 0; at < 1200; at += 1) {
      const hard = random() < 0.5;
      const word = hard === (signal || random() < 0.5) ? 'integral' : 'banana';
      const vector = featurize({ text: `question ${word}`, classKey: 'qa' });
      const request = { classKey: 'qa', at, vector };
      const outcomes = [
        {
          model: 'weak',
          score: hard ? (random() < 0.2 ? 1 : 0) : random() < 0.9 ? 1 : 0,
          costUsd: 0,
        },
        { model: 'strong', score: random() < 0.9 ? 1 : 0, costUsd: 0 },
      ];
      if (at >= 600) trust.score(request, outcomes, index);
      for (const outcome of outcomes) {
        predictor.update(index.get(outcome.model)!, vector, 'qa', outcome.score, at);
      }
    }
    return trust.best();
  }

  it('trusts the features where they rank the gain, and the class mean where they are noise', () => {
    expect(trustOf(true)).toBeGreaterThan(0.5);
    expect(trustOf(false)).toBeLessThan(0.5);
  });
});
