import { describe, expect, it } from 'vitest';
import { RoutingEngine } from '../src/engine.js';
import type { EngineOutcome, LabelledExample } from '../src/engine.js';
import { featurize } from '../src/features.js';
import { parsePolicy } from '../src/policy.js';
import type { PolicyInput } from '../src/policy.js';
import { createRandom } from '../src/random.js';

/**
 * The drift case of issue 12, through the production engine (decide → next → observe, one
 * request a second): two models, the strong one right 95% of the time at $0.01 a call, the
 * cheap one right 95% at $0.0005 until `breakAt`, then never (wrong answers, or with
 * `erroring` failed calls). Returns, per request, whether the strong model was called.
 */
function traffic(
  policy: PolicyInput,
  requests: number,
  breakAt: number,
  seed: number,
  erroring = false,
  fitUntil = 0,
): boolean[] {
  const engine = new RoutingEngine({ policy: parsePolicy(policy), random: createRandom(seed) });
  const world = createRandom(seed + 1_000);
  const strongCalled: boolean[] = [];
  const history: LabelledExample[] = [];
  for (let index = 0; index < requests; index += 1) {
    const at = index * 1_000;
    const text = `request ${index}: what will the weather be like in town ${index % 37} tomorrow?`;
    const vector = featurize({ text, classKey: 'chat' });
    if (index < fitUntil) {
      // a labelled history: both models' outcomes, learned with engine.fit
      const score = () => (world() < 0.95 ? 1 : 0);
      history.push({
        request: { classKey: 'chat', at, vector },
        outcomes: [
          { model: 'strong', score: score(), costUsd: 0.01 },
          { model: 'cheap', score: score(), costUsd: 0.0005 },
        ],
      });
      strongCalled.push(true);
      if (index === fitUntil - 1) engine.fit(history);
      continue;
    }
    const decision = engine.decide({ classKey: 'chat', at, vector });
    const outcomes: EngineOutcome[] = [];
    for (let step = engine.next(decision, outcomes); !step.done;) {
      for (const model of step.call) {
        const strong = model === 'strong';
        const broken = !strong && index >= breakAt;
        if (broken && erroring) outcomes.push({ model, costUsd: 0, failed: true });
        else {
          const right = world() < (broken ? 0 : 0.95);
          outcomes.push({ model, score: right ? 1 : 0, costUsd: strong ? 0.01 : 0.0005 });
        }
      }
      step = engine.next(decision, outcomes);
    }
    engine.observe(decision, outcomes);
    strongCalled.push(outcomes.some((outcome) => outcome.model === 'strong'));
  }
  return strongCalled;
}

/** Requests after `from` until 50 in a row sent at least `share` of their calls to strong. */
function requestsUntilShare(strongCalled: readonly boolean[], from: number, share: number) {
  let inWindow = 0;
  for (let index = from; index < strongCalled.length; index += 1) {
    inWindow += strongCalled[index] ? 1 : 0;
    if (index - from >= 50) inWindow -= strongCalled[index - 50] ? 1 : 0;
    if (index - from + 1 >= 50 && inWindow >= share * 50) return index - from + 1;
  }
  return undefined;
}

const shareOf = (strongCalled: readonly boolean[], from: number, to: number) =>
  strongCalled.slice(from, to).filter(Boolean).length / (to - from);

const CANDIDATES = [{ model: 'strong' }, { model: 'cheap' }];
/** A long good history (3,000 requests) before the break: without forgetting it outweighs the failures. */
const BREAK = 3_000;
const TOTAL = 3_400;
const SEEDS = [1, 2, 3];
/** A 30-day half-life and window: nothing is forgotten within the test's hour. */
const NEVER = { halfLifeMs: 30 * 86_400_000, statsWindow: '30d' };

/** The strong model's share of the history's last 200 requests, of the 200 after the first 200 after the break, and how long after the break it took to pass 90%. */
function drift(policy: PolicyInput, seed: number, erroring = false, fitUntil = 0) {
  const strongCalled = traffic(policy, TOTAL, BREAK, seed, erroring, fitUntil);
  return {
    before: shareOf(strongCalled, BREAK - 200, BREAK),
    reached: requestsUntilShare(strongCalled, BREAK, 0.9),
    after: shareOf(strongCalled, BREAK + 200, TOTAL),
  };
}

/** The per-request policy of the drift cases (forgetting within a minute). */
const PREDICT = {
  candidates: CANDIDATES,
  goal: { costPenalty: 0.3 },
  halfLifeMs: 60_000,
  predictor: { enabled: true },
};

/**
 * Before the break the cheap model carried the traffic (the strong model's share under
 * `before`); after it the strong model passed 90% within 200 requests and stays there.
 */
function expectFollowed(result: ReturnType<typeof drift>, label: string, before: number) {
  expect(result.before, label).toBeLessThan(before);
  expect(result.reached, label).toBeDefined();
  expect(result.reached!, label).toBeLessThanOrEqual(200);
  expect(result.after, label).toBeGreaterThan(0.9);
}

describe('drift: after a cheap model starts failing, the strong model gets 90% within 200 requests', () => {
  it('the per-request predictor', () => {
    for (const seed of SEEDS) {
      // failed calls: the predictor learns from answers only, the engine's failure rates
      // weigh its predictions (before them the strong model's share stayed at 2-4%)
      for (const erroring of [false, true]) {
        const label = `seed ${seed}${erroring ? ', failed calls' : ', wrong answers'}`;
        expectFollowed(drift(PREDICT, seed, erroring), label, 0.2);
      }
    }
    // (its online logistic updates move it within ~50-120 requests even with nothing
    // forgotten: measured 102, 115 and 101 at a 30-day half-life, 50, 50 and 56 at 60 s)
  });

  it('the per-request predictor fitted on a labelled history (single calls teach its weights again once the class shifts)', () => {
    // 2,800 labelled requests (engine.fit), 200 routed good ones, then the break. After a fit
    // a single call's score moves only the class statistics while the class's scores match
    // their predictions; without the shift check the strong model's share never reached 90%
    // for seeds 2 and 3 (seed 1: 114 requests). Measured with it: 85, 59, 60 (before the
    // single-call rule, when single calls always taught the weights: 83, 51, 53)
    for (const seed of SEEDS) {
      expectFollowed(drift(PREDICT, seed, false, BREAK - 200), `seed ${seed}`, 0.2);
    }
  });

  it('the class weights, because they forget (a 30-day memory takes longer than 200)', () => {
    const policy = {
      candidates: CANDIDATES,
      goal: { qualityMargin: 0.05 },
      halfLifeMs: 60_000,
      statsWindow: '10m',
      refreshIntervalMs: 5_000,
    };
    for (const seed of SEEDS) {
      for (const erroring of [false, true]) {
        const label = `seed ${seed}${erroring ? ', failed calls' : ', wrong answers'}`;
        expectFollowed(drift(policy, seed, erroring), label, 0.5);
      }
      // the same engine remembering everything: 3,000 good calls outweigh the failures for
      // longer than 200 requests, so the bound above is forgetting's doing
      const late = drift({ ...policy, ...NEVER }, seed).reached;
      expect(late === undefined || late > 200, `seed ${seed}: ${late}`).toBe(true);
    }
  });
});
