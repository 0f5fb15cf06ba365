import { describe, expect, it } from 'vitest';
import { RoutingEngine } from '../src/engine.js';
import { featurize } from '../src/features.js';
import { parsePolicy } from '../src/policy.js';
import { QualityPredictor } from '../src/predictor.js';
import { createRandom } from '../src/random.js';
import { labelledExamples, runReplay } from '../src/replay.js';
import type { RecordedDataset } from '../src/routerbench.js';

/**
 * Two models and two classes: on `easy` the cheap model is as good as the strong one, on
 * `hard` it is always wrong. Bandit feedback has to pay to learn this; a labelled history
 * (every model's outcome per prompt) tells it at once.
 */
function twoClasses(count: number, seed: number, prefix: string): RecordedDataset {
  const random = createRandom(seed);
  return {
    models: ['strong', 'cheap'],
    skipped: 0,
    prompts: Array.from({ length: count }, (_, index) => {
      const hard = index % 2 === 1;
      return {
        sampleId: `${prefix}.${index}`,
        prompt: `${prefix} request ${index}`,
        task: hard ? 'hard' : 'easy',
        scores: Float64Array.from([random() < 0.9 ? 1 : 0, hard ? 0 : random() < 0.9 ? 1 : 0]),
        costs: Float64Array.from([0.01, 0.0005]),
        responses: ['', ''],
      };
    }),
  };
}

const policy = {
  name: 'fit',
  candidates: [{ model: 'strong' }, { model: 'cheap' }],
  goal: { costPenalty: 0.3 },
  exploration: 0,
  predictor: { enabled: true, warmup: 50 },
};

describe('offline fit from a labelled history (engine.fit)', () => {
  const train = twoClasses(200, 1, 'train');
  const test = twoClasses(100, 2, 'test');

  it('routes by the fitted per-class outcomes from the first measured request, with no warm-up', () => {
    const report = runReplay(train, test, { policy, seed: 3, history: 'fit' });
    for (const decision of report.decisions) {
      expect(decision.kind).toBe('predict');
      expect(decision.calls).toHaveLength(1);
    }
    const byId = new Map(test.prompts.map((prompt) => [prompt.sampleId, prompt]));
    const wrongModel = report.decisions.filter(
      (decision) =>
        (byId.get(decision.sample_id)!.task === 'hard') !== (decision.model === 'strong'),
    );
    expect(wrongModel).toEqual([]);
  });

  it('charges the labels it learned from: every candidate on every train prompt', () => {
    const fitted = runReplay(train, test, { policy, seed: 3, history: 'fit' });
    const labels = train.prompts.reduce(
      (sum, prompt) => sum + prompt.costs[0]! + prompt.costs[1]!,
      0,
    );
    expect(fitted.trainCostUsd).toBeCloseTo(labels, 9);
    // online, the router paid only for its own calls (warm-up calls both, then mostly one)
    const online = runReplay(train, test, { policy, seed: 3 });
    expect(online.trainCostUsd).toBeLessThan(labels);
  });

  it('draws no random number and makes no decision while fitting', () => {
    let draws = 0;
    const random = createRandom(5);
    const engine = new RoutingEngine({
      policy: parsePolicy(policy),
      random: () => {
        draws += 1;
        return random();
      },
    });
    engine.fit(labelledExamples(train, policy));
    expect(draws).toBe(0);
    // the cold start of both classes is used up by the fit: the first decision predicts
    const [first] = labelledExamples(test, policy, { startAt: 200_000 });
    expect(engine.decide(first!.request).kind).toBe('predict');
  });

  it('learns the cascade planner from full information too (its cold-start probes are used up)', () => {
    const cascade = parsePolicy({
      name: 'c',
      candidates: [{ model: 'strong' }, { model: 'cheap' }, { model: 'cheap-2' }],
      goal: { costPenalty: 0.1 },
      exploration: 0,
      cascade: { enabled: true, warmupProbes: 40, probeRate: 0 },
    });
    const three: RecordedDataset = {
      models: ['strong', 'cheap', 'cheap-2'],
      skipped: 0,
      prompts: train.prompts.map((prompt) => ({
        ...prompt,
        task: 'qa',
        scores: Float64Array.from([prompt.scores[0]!, prompt.scores[1]!, prompt.scores[1]!]),
        costs: Float64Array.from([0.01, 0.0005, 0.0004]),
        responses: ['a', prompt.scores[1] === 1 ? 'a' : 'b', prompt.scores[1] === 1 ? 'a' : 'c'],
      })),
    };
    const engineOf = () => new RoutingEngine({ policy: cascade, random: createRandom(1) });
    const request = { classKey: 'qa', at: 1_000_000 };
    const cold = engineOf();
    expect(cold.decide(request).kind).toBe('probe');
    const fitted = engineOf();
    fitted.fit(labelledExamples(three, cascade));
    // the cheap pair agrees exactly when it is right: a pair cascade, escalating on disagreement
    const decision = fitted.decide(request);
    expect(decision.kind).toBe('pair');
    expect(decision.escalateTo).toBe('strong');
  });

  it('refines only the per-request weights in later fit passes (class statistics count each outcome once)', () => {
    const predictor = new QualityPredictor({ candidates: 1, halfLifeMs: 3_600_000, priors: [0.5] });
    const vector = featurize({ text: 'solve 2 + 2', classKey: 'math' });
    for (let index = 0; index < 20; index += 1) predictor.update(0, vector, 'math', 1, index);
    const once = predictor.classQuality('math', 0);
    const before = predictor.predict(0, vector, 'math').model;
    for (let index = 0; index < 20; index += 1)
      predictor.update(0, vector, 'math', 1, index, 'weights');
    expect(predictor.classQuality('math', 0)).toEqual(once);
    expect(predictor.predict(0, vector, 'math').model).toBeGreaterThan(before);
  });

  it('after a fit, a single call moves the class statistics only; every candidate scored moves the per-request weights too', () => {
    const engine = new RoutingEngine({ policy: parsePolicy(policy), random: createRandom(5) });
    engine.fit(labelledExamples(train, policy));
    const [example] = labelledExamples(test, policy, { startAt: 200_000 });
    const { request } = example!;
    const predicted = () =>
      engine
        .decide(request)
        .predicted!.map((entry) => [entry.model, entry.quality, entry.evidence] as const);
    const before = predicted();
    // the cheap model alone, wrong on an easy request (bandit feedback): the class mean drops,
    // the weights of the request's features stay, so the evidence behind them is unchanged (but
    // for the decay of one second; a learned outcome would add 1)
    const single = engine.decide(request);
    engine.observe(single, [{ model: 'cheap', score: 0, costUsd: 0.0005 }]);
    const afterSingle = predicted();
    expect(afterSingle[1]![1]).toBeLessThan(before[1]![1]);
    expect(afterSingle[1]![2]).toBeCloseTo(before[1]![2]!, 1);
    // both models' outcomes (full information, as in the history): the weights learn too
    engine.observe(single, [
      { model: 'strong', score: 1, costUsd: 0.01 },
      { model: 'cheap', score: 0, costUsd: 0.0005 },
    ]);
    expect(predicted()[1]![2]).toBeGreaterThan(afterSingle[1]![2]! + 0.5);
  });
});
