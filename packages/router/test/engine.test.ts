import type OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { RoutingEngine } from '../src/engine.js';
import type { EngineOutcome } from '../src/engine.js';
import { featurize } from '../src/features.js';
import { parsePolicy } from '../src/policy.js';
import type { PolicyInput } from '../src/policy.js';
import { createRandom } from '../src/random.js';
import { labelledExamples, runReplay } from '../src/replay.js';
import { createRouter } from '../src/router-client.js';
import type { RecordedDataset, RecordedPrompt } from '../src/routerbench.js';
import { MODELS, syntheticDataset } from './support/synthetic-data.js';
import { teachMathVsStory } from './support/math-vs-story.js';

/**
 * Three models, two kinds of prompt: "easy" ones (short, about fruit) where the cheap models
 * are right and agree, and "hard" ones (long, with arithmetic) where only the frontier model is
 * right. The per-request signal (the words) tells them apart; the class label does not.
 */
function dataset(count: number, seed: number, prefix: string): RecordedDataset {
  return syntheticDataset(count, seed, prefix, (random, index) => {
    const hard = random() < 0.35;
    const frontierRight = random() < 0.95;
    const cheapRight = hard ? random() < 0.1 : random() < 0.92;
    const text = hard
      ? `${prefix} ${index}: compute 17 * ${index} + 23 and solve the equation for x, then explain the integral`
      : `${prefix} ${index}: which fruit is yellow, a banana or a plum?`;
    return { text, frontierRight, cheapRight };
  });
}

/**
 * A scripted client that answers from the recorded data, through the routed client's real
 * path (the same shape as the openai SDK's `chat.completions.create`).
 */
function recordedClient(prompts: readonly RecordedPrompt[]) {
  const byText = new Map(prompts.map((prompt) => [prompt.prompt, prompt]));
  const lookup = (params: OpenAI.Chat.ChatCompletionCreateParams) => {
    const text = params.messages.map((message) => String(message.content)).join('');
    const prompt = byText.get(text);
    if (prompt === undefined) throw new Error(`no recorded prompt for ${text}`);
    return { prompt, model: MODELS.indexOf(params.model) };
  };
  const client = {
    chat: {
      completions: {
        create: async (params: OpenAI.Chat.ChatCompletionCreateParams) => {
          const { prompt, model } = lookup(params);
          return {
            id: `rec-${prompt.sampleId}`,
            object: 'chat.completion',
            created: 0,
            model: params.model,
            choices: [
              {
                index: 0,
                message: {
                  role: 'assistant',
                  content: prompt.responses[model] ?? null,
                  refusal: null,
                },
                finish_reason: 'stop',
                logprobs: null,
              },
            ],
            usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 },
          } satisfies OpenAI.Chat.ChatCompletion;
        },
      },
    },
  };
  const score = (
    _completion: OpenAI.Chat.ChatCompletion,
    params: OpenAI.Chat.ChatCompletionCreateParams,
    name: string,
  ) => {
    const { prompt } = lookup(params);
    return prompt.scores[MODELS.indexOf(name)]!;
  };
  const cost = (
    _completion: OpenAI.Chat.ChatCompletion,
    params: OpenAI.Chat.ChatCompletionCreateParams,
    name: string,
  ) => {
    const { prompt } = lookup(params);
    return prompt.costs[MODELS.indexOf(name)]!;
  };
  return { client, score, cost };
}

const POLICIES: Record<string, PolicyInput> = {
  weights: {
    name: 'w',
    candidates: MODELS.map((model) => ({ model })),
    refreshIntervalMs: 10_000,
    statsWindow: '5m',
    halfLifeMs: 120_000,
  },
  cascade: {
    name: 'c',
    candidates: MODELS.map((model) => ({ model })),
    goal: { costPenalty: 0.1 },
    cascade: { enabled: true, warmupProbes: 20 },
  },
  fixedCascade: {
    name: 'f',
    candidates: MODELS.map((model) => ({ model })),
    cascade: { enabled: true, voters: ['cheap-a', 'cheap-b'], escalateTo: 'frontier' },
  },
  predict: {
    name: 'p',
    candidates: MODELS.map((model) => ({ model })),
    goal: { costPenalty: 0.2 },
    predictor: { enabled: true, warmup: 10 },
  },
  // the same, with an embedder: the predictor's nearest neighbours read the embeddings
  neighbours: {
    name: 'n',
    candidates: MODELS.map((model) => ({ model })),
    goal: { costPenalty: 0.2 },
    predictor: { enabled: true, warmup: 10, neighbours: { weight: 0.5 } },
  },
};

/**
 * The data set with a unit embedding per prompt: noise around ±e1 for hard prompts and ±e2
 * for easy ones (the replay reads it from the data, the routed client from its embedder).
 */
function embedded(data: RecordedDataset, seed: number): RecordedDataset {
  const random = createRandom(seed);
  return {
    ...data,
    prompts: data.prompts.map((prompt) => {
      const vector = Float32Array.from({ length: 8 }, () => (random() - 0.5) * 0.5);
      const axis = prompt.prompt.includes('equation') ? 0 : 1;
      vector[axis] = vector[axis]! + (random() < 0.5 ? 1 : -1);
      const norm = Math.hypot(...vector);
      return { ...prompt, embedding: vector.map((value) => value / norm) };
    }),
  };
}

describe('one routing engine for replay and the routed client', () => {
  const plainTrain = dataset(240, 1, 'train');
  const plainTest = dataset(160, 2, 'test');

  const cases = Object.keys(POLICIES).flatMap((name) => [
    [name, 'online'] as const,
    [name, 'fit'] as const,
  ]);
  it.each(cases)(
    'makes the same decisions over one recorded stream in replay and in the client (%s, %s history)',
    async (name, history) => {
      const policy = POLICIES[name]!;
      const withEmbedder = name === 'neighbours';
      const train = withEmbedder ? embedded(plainTrain, 11) : plainTrain;
      const test = withEmbedder ? embedded(plainTest, 12) : plainTest;
      const report = runReplay(train, test, { policy, seed: 7, warmup: 1_000, history });
      const all = [...train.prompts, ...test.prompts];
      const { client, score, cost } = recordedClient(all);
      const embeddingOf = new Map(all.map((prompt) => [prompt.prompt, prompt.embedding]));
      let clock = 0;
      const router = createRouter({
        policy,
        clients: { openai: client },
        random: createRandom(7),
        now: () => clock,
        score,
        cost,
        ...(withEmbedder
          ? { embed: async (texts) => texts.map((text) => [...embeddingOf.get(text)!]) }
          : {}),
      });
      const routed: { sample_id: string; model: string; calls: string[]; reason: string }[] = [];
      const seen: string[] = [];
      const originalCreate = client.chat.completions.create;
      client.chat.completions.create = async (params) => {
        seen.push(params.model);
        return originalCreate(params);
      };
      // a fitted history goes through the engine's fit, the same API the replay uses
      if (history === 'fit') router.engine.fit(labelledExamples(train, policy));
      const stream = history === 'fit' ? test.prompts : [...train.prompts, ...test.prompts];
      const offset = history === 'fit' ? train.prompts.length : 0;
      for (const [at, prompt] of stream.entries()) {
        const index = at + offset;
        clock = index * 1000; // the replay's default synthetic clock: one request a second
        seen.length = 0;
        const completion = await router.chat.completions.create(
          { model: 'auto', messages: [{ role: 'user', content: prompt.prompt }] },
          { task: prompt.task },
        );
        if (index < train.prompts.length) continue;
        routed.push({
          sample_id: prompt.sampleId,
          model: completion.model,
          calls: [...seen],
          reason: '',
        });
      }
      expect(routed).toHaveLength(report.decisions.length);
      expect(routed.map(({ sample_id, model, calls }) => ({ sample_id, model, calls }))).toEqual(
        report.decisions.map(({ sample_id, model, calls }) => ({ sample_id, model, calls })),
      );
      // the stream exercised more than one choice
      expect(
        new Set(report.decisions.map((decision) => decision.calls.join())).size,
      ).toBeGreaterThan(1);
    },
  );

  it('reads the request: the predictor sends hard prompts to the frontier model, easy ones to a cheap one', () => {
    const report = runReplay(plainTrain, plainTest, { policy: POLICIES.predict!, seed: 3 });
    const byId = new Map(plainTest.prompts.map((prompt) => [prompt.sampleId, prompt]));
    let hardFrontier = 0;
    let hard = 0;
    let easyCheap = 0;
    let easy = 0;
    for (const decision of report.decisions) {
      const isHard = byId.get(decision.sample_id)!.prompt.includes('equation');
      if (isHard) {
        hard += 1;
        if (decision.model === 'frontier') hardFrontier += 1;
      } else {
        easy += 1;
        if (decision.model !== 'frontier') easyCheap += 1;
      }
    }
    expect(hardFrontier / hard).toBeGreaterThan(0.85);
    expect(easyCheap / easy).toBeGreaterThan(0.85);
    // far above the class-only weight router, which cannot tell the prompts apart
    expect(report.router.accuracyVsBest).toBeGreaterThan(0.95);
    expect(report.router.costVsBest).toBeLessThan(0.5);
    const decision = report.decisions.find((entry) => entry.kind === 'predict')!;
    expect(decision.reason).toMatch(/frontier 0\.\d{3} \(\$0\.010, evidence \d/);
  });
});

describe('drift and the clock', () => {
  /** Two models; the cheap one is right 95% of the time until `breakAt`, then `after`. */
  function drifting(count: number, breakAt: number, offset: number, after = 0): RecordedDataset {
    const random = createRandom(11 + offset);
    return {
      models: ['strong', 'cheap'],
      skipped: 0,
      prompts: Array.from({ length: count }, (_, index) => ({
        sampleId: String(offset + index),
        prompt: `request ${offset + index} about the weather`,
        task: 'chat',
        scores: Float64Array.from([
          random() < 0.95 ? 1 : 0,
          random() < (offset + index < breakAt ? 0.95 : after) ? 1 : 0,
        ]),
        costs: Float64Array.from([0.01, 0.0005]),
        responses: ['', ''],
      })),
    };
  }

  const strongShareReaches = (models: readonly string[], share: number, window = 50) => {
    for (let end = window; end <= models.length; end += 1) {
      const slice = models.slice(end - window, end);
      if (slice.filter((model) => model === 'strong').length / window >= share) return end;
    }
    return undefined;
  };

  it('after a cheap model starts failing, passes 90% to the strong model within 200 requests', () => {
    const train = drifting(400, 400, 0);
    const test = drifting(200, 0, 400);
    for (const policy of [
      {
        candidates: [{ model: 'strong' }, { model: 'cheap' }],
        goal: { costPenalty: 0.3 },
        halfLifeMs: 60_000,
        predictor: { enabled: true },
      },
      {
        candidates: [{ model: 'strong' }, { model: 'cheap' }],
        halfLifeMs: 60_000,
        statsWindow: '10m',
        refreshIntervalMs: 5_000,
      },
    ]) {
      const report = runReplay(train, test, { policy, seed: 5 });
      const models = report.decisions.map((decision) => decision.model);
      // before the break the cheap model carried the traffic
      const before = runReplay(train, drifting(100, 1_000, 400), { policy, seed: 5 });
      expect(before.decisions.filter((entry) => entry.model === 'cheap').length).toBeGreaterThan(
        80,
      );
      const reached = strongShareReaches(models, 0.9);
      expect(reached, JSON.stringify(policy)).toBeDefined();
      expect(reached!).toBeLessThanOrEqual(200);
    }
  });

  it('honours halfLifeMs and statsWindow: old evidence fades with the replay clock', () => {
    // the cheap model drops from 95% to 80% (the strong one stays at 95%)
    const train = drifting(400, 400, 0);
    const test = drifting(200, 0, 400, 0.8);
    const base = {
      candidates: [{ model: 'strong' }, { model: 'cheap' }],
      refreshIntervalMs: 5_000,
    };
    const share = (policy: PolicyInput, intervalMs?: number) => {
      const report = runReplay(train, test, {
        policy,
        seed: 5,
        ...(intervalMs === undefined ? {} : { intervalMs }),
      });
      const last = report.decisions.slice(-100);
      return last.filter((entry) => entry.model === 'strong').length / last.length;
    };
    // a day of window and half-life: 400 good calls outweigh 200 worse ones
    const slow = share({ ...base, statsWindow: '1d', halfLifeMs: 86_400_000 });
    // a short window forgets the good calls
    const window = share({ ...base, statsWindow: '2m', halfLifeMs: 86_400_000 });
    // a short half-life does too
    const halfLife = share({ ...base, statsWindow: '1d', halfLifeMs: 30_000 });
    // a 2 h half-life: slow at a request a second, fast at a request a minute (the clock
    // counts, not the number of requests)
    const dense = share({ ...base, statsWindow: '1d', halfLifeMs: 7_200_000 });
    const spaced = share({ ...base, statsWindow: '1d', halfLifeMs: 7_200_000 }, 60_000);
    // (seed 5: 0.27, 0.91, 0.67, 0.29, 0.82 to the strong model over the last 100 requests)
    expect(slow).toBeLessThan(0.4);
    expect(window).toBeGreaterThan(0.8);
    expect(halfLife).toBeGreaterThan(0.55);
    expect(dense).toBeLessThan(0.4);
    expect(spaced).toBeGreaterThan(0.65);
  });
});

describe('the engine core', () => {
  it('escalates a pair on disagreement, on a rejected check, and stops on agreement', () => {
    const engine = new RoutingEngine({
      policy: parsePolicy({
        candidates: MODELS.map((model) => ({ model })),
        cascade: { enabled: true, voters: ['cheap-a', 'cheap-b'], escalateTo: 'frontier' },
      }),
      random: createRandom(1),
    });
    const decision = engine.decide({ classKey: 'qa', at: 0 });
    expect(decision.first).toEqual(['cheap-a', 'cheap-b']);
    const voters = (a: string, b: string): EngineOutcome[] => [
      { model: 'cheap-a', costUsd: 1, answer: a },
      { model: 'cheap-b', costUsd: 1, answer: b },
    ];
    expect(engine.next(decision, [])).toEqual({ done: false, call: ['cheap-a', 'cheap-b'] });
    expect(engine.next(decision, voters('A', 'A'))).toEqual({ done: true, answeredBy: 'cheap-a' });
    expect(engine.next(decision, voters('A', 'B'))).toEqual({ done: false, call: ['frontier'] });
    expect(engine.next(decision, voters('A', 'A'), false)).toEqual({
      done: false,
      call: ['frontier'],
    });
    expect(engine.next(decision, [...voters('A', 'B'), { model: 'frontier', costUsd: 5 }])).toEqual(
      { done: true, answeredBy: 'frontier' },
    );
  });

  it('explains a per-request decision with predictions and features', () => {
    const policy = parsePolicy({
      candidates: [{ model: 'strong' }, { model: 'cheap' }],
      goal: { costPenalty: 0.2 },
      predictor: { enabled: true, warmup: 0 },
      exploration: 0,
    });
    const engine = new RoutingEngine({ policy, random: createRandom(1) });
    teachMathVsStory(engine, (math, index) =>
      math ? `solve 3 * ${index} = x for x` : `tell me a story about cat ${index}`,
    );
    const vector = featurize({ text: 'solve 7 * 8 = y for y', classKey: 'chat' });
    const decision = engine.decide({ classKey: 'chat', at: 300_000, vector });
    expect(decision.first).toEqual(['strong']);
    const explained = engine.explain(decision);
    const cheap = explained.find((entry) => entry.model === 'cheap')!;
    expect(cheap.quality).toBeLessThan(0.3);
    expect(cheap.features!.length).toBeGreaterThan(0);
    const story = engine.decide({
      classKey: 'chat',
      at: 301_000,
      vector: featurize({ text: 'tell me a story about a dog', classKey: 'chat' }),
    });
    expect(story.first).toEqual(['cheap']);
  });
});
