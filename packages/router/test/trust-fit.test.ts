import { describe, expect, it } from 'vitest';
import { featurize } from '../src/features.js';
import { QualityPredictor } from '../src/predictor.js';
import { createRandom } from '../src/random.js';
import { TrustFit } from '../src/trust-fit.js';

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
