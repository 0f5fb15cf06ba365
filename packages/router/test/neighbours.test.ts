import { describe, expect, it } from 'vitest';
import { RoutingEngine } from '../src/engine.js';
import { NeighbourMemory } from '../src/neighbours.js';
import { parsePolicy } from '../src/policy.js';
import type { PolicyInput } from '../src/policy.js';
import { createRandom } from '../src/random.js';
import { engineRequestOf, labelledExamples, runReplay } from '../src/replay.js';
import type { RecordedDataset, RecordedPrompt } from '../src/routerbench.js';

const DIMS = 16;

describe('NeighbourMemory', () => {
  const unit = (...values: number[]) => Float32Array.from(values);

  it('keeps one row per request, reads the k most similar rows holding each candidate', () => {
    const memory = new NeighbourMemory(2, 10);
    const a = unit(1, 0);
    const b = unit(0.9, 0.1);
    const c = unit(0, 1);
    memory.add(a, 0, 1);
    memory.add(a, 1, 0); // the same request: the same row
    memory.add(b, 0, 0.5);
    memory.add(c, 0, 0);
    memory.add(c, 1, 1);
    expect(memory.size).toBe(3);
    const means = new Float64Array(4);
    const found = new Float64Array(4);
    memory.predict(unit(2, 0), [1, 2], means, found);
    // k = 1: the nearest row holding each candidate's score (a for both)
    expect([means[0], means[1], found[0], found[1]]).toEqual([1, 0, 1, 1]);
    // k = 2: candidate 0 reads a and b; candidate 1 has no score on b, so a and c
    expect([means[2], means[3], found[2], found[3]]).toEqual([0.75, 0.5, 2, 2]);
  });

  it('drops the oldest row when full, and reads NaN for a candidate nobody scored', () => {
    const memory = new NeighbourMemory(2, 2);
    memory.add(unit(1, 0), 0, 1);
    memory.add(unit(0, 1), 0, 0);
    memory.add(unit(1, 0.01), 0, 0); // overwrites the first row
    expect(memory.size).toBe(2);
    const means = new Float64Array(2);
    const found = new Float64Array(2);
    memory.predict(unit(1, 0), [1], means, found);
    expect(means[0]).toBe(0);
    expect(Number.isNaN(means[1]!)).toBe(true);
    expect(found[1]).toBe(0);
  });
});

/**
 * Requests whose text says nothing (the same words, shuffled) and whose embedding says
 * everything: four clusters at ±e1 and ±e2; the cheap model fails on the ±e1 pair. A linear
 * model over the embedding cannot tell the pairs apart (each is symmetric around 0); the
 * nearest neighbours can. `noise`: the other way round, the words tell the hard requests
 * (one word) and the cluster says nothing.
 */
function clustered(count: number, seed: number, noise: boolean): RecordedDataset {
  const random = createRandom(seed);
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
  const prompts: RecordedPrompt[] = [];
  for (let at = 0; at < count; at += 1) {
    const cluster = Math.floor(random() * 4);
    const hard = cluster < 2;
    const embedding = new Float32Array(DIMS);
    for (let dim = 0; dim < DIMS; dim += 1) embedding[dim] = (random() - 0.5) * 0.4;
    const axis = noise ? Math.floor(random() * 2) : hard ? 0 : 1;
    embedding[axis] = embedding[axis]! + (cluster % 2 === 0 ? 1 : -1);
    // with a noise embedding, the words carry what the embedding does not
    const text = [...words, noise ? (hard ? 'integral' : 'banana') : 'zeta']
      .sort(() => random() - 0.5)
      .join(' ');
    const cheapRight = hard ? random() < 0.1 : random() < 0.95;
    prompts.push({
      sampleId: `q${seed}.${at}`,
      prompt: text,
      task: 'qa',
      scores: Float64Array.of(cheapRight ? 1 : 0, random() < 0.95 ? 1 : 0),
      costs: Float64Array.of(0.0001, 0.002),
      responses: ['', ''],
      embedding,
    });
  }
  return { models: ['cheap', 'frontier'], prompts, skipped: 0 };
}

const policy = (capacity: number): PolicyInput => ({
  name: 'near',
  candidates: [{ model: 'cheap' }, { model: 'frontier' }],
  // the neighbours' mean is blended with the class's (weight < 1), so predictions are shrunk
  // toward it: a knob at which the blended levels separate
  goal: { costPenalty: 0.3 },
  exploration: 0,
  predictor: { enabled: true, neighbours: { capacity } },
});

/** Share of hard (±e1) test requests sent to the frontier model and of easy ones kept cheap. */
function split(capacity: number, noise = false): { hardFrontier: number; easyCheap: number } {
  const train = clustered(800, 1, noise);
  const test = clustered(400, 2, noise);
  const report = runReplay(train, test, { policy: policy(capacity), seed: 1, history: 'fit' });
  const byId = new Map(test.prompts.map((prompt) => [prompt.sampleId, prompt]));
  const counts = { hard: 0, hardFrontier: 0, easy: 0, easyCheap: 0 };
  for (const decision of report.decisions) {
    const prompt = byId.get(decision.sample_id)!;
    const embedding = prompt.embedding!;
    if (
      noise ? prompt.prompt.includes('integral') : Math.abs(embedding[0]!) > Math.abs(embedding[1]!)
    ) {
      counts.hard += 1;
      if (decision.model === 'frontier') counts.hardFrontier += 1;
    } else {
      counts.easy += 1;
      if (decision.model === 'cheap') counts.easyCheap += 1;
    }
  }
  return {
    hardFrontier: counts.hardFrontier / counts.hard,
    easyCheap: counts.easyCheap / counts.easy,
  };
}

describe('nearest neighbours in the predictor', () => {
  it('routes on what similar requests got where neither the words nor a linear model can', () => {
    const near = split(4096);

    expect(near.hardFrontier).toBeGreaterThan(0.85);
    expect(near.easyCheap).toBeGreaterThan(0.85);
    // without neighbours the same engine cannot tell the clusters apart
    const without = split(0);
    expect(Math.min(without.hardFrontier, without.easyCheap)).toBeLessThan(0.7);
  });

  it('where the embedding is noise and the words tell, routes as well as without neighbours', () => {
    const near = split(4096, true);
    const without = split(0, true);
    expect(without.hardFrontier).toBeGreaterThan(0.85);
    expect(without.easyCheap).toBeGreaterThan(0.85);
    expect(near.hardFrontier).toBeGreaterThan(without.hardFrontier - 0.05);
    expect(near.easyCheap).toBeGreaterThan(without.easyCheap - 0.05);
  });

  it('explains a decision by its neighbours: how many, and their mean score per candidate', () => {
    const engine = new RoutingEngine({
      policy: parsePolicy(policy(4096)),
      random: createRandom(1),
    });
    engine.fit(labelledExamples(clustered(800, 3, false), policy(4096)));
    const hard = clustered(40, 4, false).prompts.find(
      (prompt) => Math.abs(prompt.embedding![0]!) > 0.5,
    )!;
    const explained = engine.explain(engine.decide(engineRequestOf(hard, 1e9, true)));
    const [cheap, frontier] = explained.map((entry) => entry.neighbours!);
    expect(cheap!.count).toBeGreaterThan(20);
    expect(frontier!.count).toBeGreaterThan(20);
    // the cheap model fails on requests like this one; the frontier model does not
    expect(cheap!.mean).toBeLessThan(0.3);
    expect(frontier!.mean).toBeGreaterThan(0.8);
  });
});
