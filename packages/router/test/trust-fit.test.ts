import { describe, expect, it } from 'vitest';
import { featurize } from '../src/features.js';
import { QualityPredictor } from '../src/predictor.js';
import { createRandom } from '../src/random.js';
import { RoutingEngine } from '../src/engine.js';
import type { LabelledExample } from '../src/engine.js';
import { parsePolicy } from '../src/policy.js';
import { TrustFit, crossClassTransfer } from '../src/trust-fit.js';

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
    return trust.best({ share: 0.25, weight: 0.5 }).trust;
  }

  it('trusts the features where they rank the gain, and the class mean where they are noise', () => {
    expect(trustOf(true)).toBeGreaterThan(0.5);
    expect(trustOf(false)).toBeLessThan(0.5);
  });
});

describe('request features on a class the fit never saw (crossClassTransfer)', () => {
  const policy = parsePolicy({
    name: 'transfer',
    candidates: [{ model: 'weak' }, { model: 'strong' }],
    goal: { costPenalty: 0.2 },
    exploration: 0,
    predictor: { enabled: true },
  });

  /**
   * Two classes, each with a word that marks its hard requests (the weak model fails them).
   * `shared`: both classes use the same words, so weights learned on one rank the other;
   * else each class has its own words and what one class teaches says nothing about the other.
   */
  function history(shared: boolean): LabelledExample[] {
    const random = createRandom(11);
    const words = {
      alpha: ['integral', 'banana'],
      beta: shared ? ['integral', 'banana'] : ['sonnet', 'recipe'],
    };
    return Array.from({ length: 1600 }, (_, at) => {
      const classKey = at % 2 === 0 ? 'alpha' : 'beta';
      const hard = random() < 0.5;
      const text = `question ${words[classKey][hard ? 0 : 1]}`;
      return {
        request: { classKey, at, vector: featurize({ text, classKey }) },
        outcomes: [
          { model: 'weak', score: random() < (hard ? 0.1 : 0.9) ? 1 : 0, costUsd: 0.001 },
          { model: 'strong', score: random() < 0.9 ? 1 : 0, costUsd: 0.01 },
        ],
      };
    });
  }

  /** The weak model's predicted quality on a hard-word and an easy-word request of `classKey`. */
  function weakPredictions(engine: RoutingEngine, classKey: string, at = 10_000): number[] {
    return ['integral', 'banana'].map((word, offset) => {
      const vector = featurize({ text: `question ${word}`, classKey });
      const decision = engine.decide({ classKey, at: at + offset, vector });
      return decision.predicted!.find((entry) => entry.model === 'weak')!.quality;
    });
  }

  function fitted(shared: boolean): RoutingEngine {
    const engine = new RoutingEngine({ policy, random: createRandom(1) });
    engine.fit(history(shared));
    return engine;
  }

  it('measures the transfer by holding out classes of the history', () => {
    const index = new Map([
      ['weak', 0],
      ['strong', 1],
    ]);
    const predictor = new QualityPredictor({ candidates: 2, halfLifeMs: 1e12, priors: [0.5, 0.5] });
    const apart = crossClassTransfer(predictor, history(false), index, 3);
    const alike = crossClassTransfer(predictor, history(true), index, 3);
    expect(apart.transfers).toBe(false);
    expect(apart.auc!).toBeLessThanOrEqual(0.55);
    expect(alike.transfers).toBe(true);
    expect(alike.auc!).toBeGreaterThan(0.7);
    // a single class shows nothing about other classes: conservative
    const single = history(true).filter((example) => example.request.classKey === 'alpha');
    expect(crossClassTransfer(predictor, single, index, 3)).toEqual({
      auc: undefined,
      folds: [],
      transfers: false,
    });
  });

  it("predicts an unseen class on its own, learning online, when the history's features do not carry over between its classes", () => {
    const engine = fitted(false);
    const [hard, easy] = weakPredictions(engine, 'gamma');
    expect(hard).toBe(easy);
    // the classes of the history keep their per-request predictions
    const [seenHard, seenEasy] = weakPredictions(engine, 'alpha');
    expect(seenEasy! - seenHard!).toBeGreaterThan(0.1);
    // the unseen class learns its own request weights from single calls (bandit feedback)
    for (let at = 0; at < 200; at += 1) {
      const word = at % 2 === 0 ? 'integral' : 'banana';
      const vector = featurize({ text: `question ${word}`, classKey: 'gamma' });
      const decision = engine.decide({ classKey: 'gamma', at: 20_000 + at, vector });
      engine.observe(decision, [
        { model: 'weak', score: word === 'banana' ? 1 : 0, costUsd: 0.001 },
      ]);
    }
    const [learnedHard, learnedEasy] = weakPredictions(engine, 'gamma', 30_000);
    expect(learnedEasy! - learnedHard!).toBeGreaterThan(0.1);
  });

  it('uses the fitted weights on an unseen class when they carry over between the classes of the history', () => {
    const [hard, easy] = weakPredictions(fitted(true), 'gamma');
    expect(easy! - hard!).toBeGreaterThan(0.1);
  });
});
