import { describe, expect, it } from 'vitest';
import { computeWeights } from '../src/decision.js';
import { EMBEDDING_BASE, featurize } from '../src/features.js';
import { parsePolicy } from '../src/policy.js';
import { createRandom } from '../src/random.js';
import { createRouter } from '../src/router-client.js';
import { useLlmSim } from './support/llm-sim-env.js';

const env = useLlmSim({ seed: 4 });
const { exporter, provider } = env;

describe('per-request routing in the routed client (llm-sim)', () => {
  it('embeds each distinct text once (cached by content), routes on the prediction, explains it', async () => {
    const embedded: string[] = [];
    const router = createRouter({
      policy: {
        name: 'per-request',
        candidates: [{ model: 'gpt-4o-mini' }, { model: 'gpt-4o' }],
        goal: { costPenalty: 0.2 },
        predictor: { enabled: true, warmup: 8 },
        exploration: 0,
      },
      clients: { openai: env.openai },
      random: createRandom(1),
      tracer: provider.getTracer('predict-test'),
      // arithmetic goes wrong on the cheap model; everything else is fine
      score: (completion, params, model) => {
        const text = String(params.messages.at(-1)?.content);
        return model === 'gpt-4o-mini' && text.includes('multiply') ? 0 : 1;
      },
      embed: async (texts) => {
        embedded.push(...texts);
        const response = await env.openai.embeddings.create({
          model: 'text-embedding-3-small',
          input: [...texts],
        });
        return response.data.map((entry) => entry.embedding);
      },
    });
    const ask = (content: string) =>
      router.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content }] });
    for (let round = 0; round < 12; round += 1) {
      await ask(`please multiply 17 by ${round % 3}`);
      await ask(`write a haiku about spring, version ${round % 3}`);
    }
    // six distinct texts, each embedded once
    expect(new Set(embedded).size).toBe(6);
    expect(embedded).toHaveLength(6);
    exporter.reset();
    await ask('please multiply 17 by 2');
    await ask('write a haiku about spring, version 1');
    const spans = exporter.getFinishedSpans();
    expect(spans.map((span) => span.attributes['modelmaxx.route.model'])).toEqual([
      'gpt-4o',
      'gpt-4o-mini',
    ]);
    expect(String(spans[0]!.attributes['modelmaxx.route.reason'])).toMatch(
      /^best predicted quality − 0\.2 × cost ÷ dearest: gpt-4o-mini 0\.\d{3} \(\$.+, evidence .+\), gpt-4o 0\.\d{3}/,
    );
  });

  it('routes without the embedding when the embedder fails', async () => {
    const router = createRouter({
      policy: {
        candidates: [{ model: 'gpt-4o-mini' }, { model: 'gpt-4o' }],
        predictor: { enabled: true, warmup: 0 },
      },
      clients: { openai: env.openai },
      embed: async () => {
        throw new Error('embeddings down');
      },
    });
    const completion = await router.chat.completions.create({
      model: 'auto',
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(completion.choices[0]!.message.content).toBeTruthy();
  });

  it('folds an embedding into the request vector', () => {
    const plain = featurize({ text: 'hello there' });
    const withEmbedding = featurize({ text: 'hello there' }, Float32Array.from([0.6, 0.8]));
    expect(plain.index.some((slot) => slot >= EMBEDDING_BASE)).toBe(false);
    expect(withEmbedding.index.filter((slot) => slot >= EMBEDDING_BASE)).toHaveLength(128);
  });
});

describe('minCalls', () => {
  const stats = (scoreCount: number) => [
    {
      model: 'a',
      classKey: 'c',
      calls: scoreCount,
      errors: 0,
      costPerCallUsd: 0.001,
      latencyP95Ms: null,
      meanScore: 0.5,
      scoreCount,
    },
  ];
  const quality = (minCalls: number, scoreCount: number) =>
    computeWeights({
      policy: parsePolicy({
        candidates: [{ model: 'a', priorQuality: 1 }],
        priorStrength: 10,
        minCalls,
      }),
      stats: stats(scoreCount),
      random: createRandom(1),
    }).classes.get('c')!.weights[0]!.quality;

  it('blends the prior in until minCalls scored calls, then uses the observed mean alone', () => {
    // 19 calls at 0.5 with a prior of 1 × 10: (10 + 9.5) / 29
    expect(quality(20, 19)).toBeCloseTo(19.5 / 29, 12);
    expect(quality(20, 20)).toBeCloseTo(0.5, 12);
    expect(quality(50, 20)).toBeCloseTo(20 / 30, 12);
  });
});
