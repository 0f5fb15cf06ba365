/**
 * A per-request engine taught that math prompts need the strong model and stories do not: 200
 * requests of class `chat`, every candidate called and scored (strong right always, cheap right
 * on stories only).
 */
import type { RoutingEngine } from '../../src/engine.js';
import { featurize } from '../../src/features.js';
import type { FeatureFamily } from '../../src/features.js';

export function teachMathVsStory(
  engine: RoutingEngine,
  textOf: (math: boolean, index: number) => string,
  families?: readonly FeatureFamily[],
): void {
  for (let index = 0; index < 200; index += 1) {
    const math = index % 2 === 0;
    const text = textOf(math, index);
    const vector = featurize({ text, classKey: 'chat', ...(families ? { families } : {}) });
    const decision = engine.decide({ classKey: 'chat', at: index * 1000, vector });
    const outcomes = ['strong', 'cheap'].map((model) => ({
      model,
      costUsd: model === 'strong' ? 0.01 : 0.0005,
      score: model === 'strong' || !math ? 1 : 0,
    }));
    engine.observe({ ...decision, first: ['strong', 'cheap'] }, outcomes);
  }
}
