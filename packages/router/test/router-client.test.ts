import Anthropic from '@anthropic-ai/sdk';
import type { LlmSim } from '@modelmaxx/llm-sim';
import type OpenAI from 'openai';
import { beforeEach, describe, expect, it } from 'vitest';
import { AllCandidatesFailedError } from '../src/route-errors.js';
import { createRouter } from '../src/router-client.js';
import { createRandom } from '../src/random.js';
import type { PolicyInput } from '../src/policy.js';
import { useLlmSim } from './support/llm-sim-env.js';

type LlmSimModelQuality = ReturnType<LlmSim['models']>[number]['quality'];

let anthropic: Anthropic;
const originalQuality = new Map<string, LlmSimModelQuality>();
const env = useLlmSim({ seed: 3, timeoutHoldMs: 5_000 }, (sim) => {
  anthropic = new Anthropic({ baseURL: sim.anthropicBaseURL, apiKey: 'test', maxRetries: 0 });
  for (const model of sim.models()) originalQuality.set(model.name, structuredClone(model.quality));
});
const { exporter } = env;
const tracer = env.tracer('router-test');

const NO_FAILURE = { rate429: 0, rate500: 0, rateTimeout: 0 };
beforeEach(() => {
  exporter.reset();
  for (const model of ['gpt-4o-mini', 'claude-haiku-4-5', 'gpt-4o']) {
    env.sim.setModel(model, { failure: NO_FAILURE, quality: originalQuality.get(model)! });
  }
});

/** mini first (cheapest at equal quality, strong priors so the choice is certain), then haiku, then gpt-4o. */
const POLICY: PolicyInput = {
  name: 'support',
  candidates: [
    { model: 'gpt-4o-mini', priorQuality: 0.9, priorCostPerCallUsd: 0.0003 },
    {
      model: 'claude-haiku-4-5',
      provider: 'anthropic',
      priorQuality: 0.9,
      priorCostPerCallUsd: 0.001,
    },
    { model: 'gpt-4o', priorQuality: 0.9, priorCostPerCallUsd: 0.005 },
  ],
  exploration: 0,
  priorStrength: 100_000,
  fallback: {
    chain: ['claude-haiku-4-5', 'gpt-4o'],
    maxAttempts: 3,
    cooldownMs: 20_000,
    timeoutMs: 500,
  },
};

function makeRouter(now = () => 1_000_000) {
  return createRouter({
    policy: POLICY,
    clients: { openai: env.openai, anthropic },
    random: createRandom(1),
    now,
    tracer,
  });
}

const ask = { messages: [{ role: 'user' as const, content: 'What is 2 + 3?' }] };

describe('routed client', () => {
  it('routes model "auto" by weight and records the decision on the span', async () => {
    const router = makeRouter();
    const completion = await router.chat.completions.create(
      { model: 'auto', ...ask },
      { task: 'math-qa' },
    );
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toMatch(/^gpt-4o-mini/);
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    const reason = spans[0]!.attributes['modelmaxx.route.reason'];
    expect(reason).toMatch(/^chosen in 100\.0% of draws: quality 0\.900/);
    expect(spans[0]!.name).toBe('route support');
    expect(spans[0]!.attributes).toEqual({
      'modelmaxx.route.policy': 'support',
      'modelmaxx.route.class': 'math-qa',
      'modelmaxx.route.reference_model': 'gpt-4o',
      'modelmaxx.route.model': 'gpt-4o-mini',
      'modelmaxx.route.weight': 1,
      'modelmaxx.route.reason': reason,
      'modelmaxx.route.attempt': 1,
    });
  });

  it('falls back on 429, honours retry-after as the cooldown, and skips the cooling model', async () => {
    env.sim.setModel('gpt-4o-mini', { failure: { rate429: 1, retryAfterSeconds: 7 } });
    let clock = 1_000_000;
    const router = makeRouter(() => clock);
    const completion = await router.chat.completions.create({ model: 'support', ...ask });
    expect(completion.model).toMatch(/^claude-haiku-4-5/);
    expect(completion.choices[0]!.message.content).toBeTruthy();
    expect(router.cooldowns()).toEqual(new Map([['gpt-4o-mini', 1_007_000]]));
    const [span] = exporter.getFinishedSpans();
    expect(span!.attributes['modelmaxx.route.model']).toBe('claude-haiku-4-5');
    expect(span!.attributes['modelmaxx.route.attempt']).toBe(2);
    expect(String(span!.attributes['modelmaxx.route.reason'])).toMatch(/^fallback chain: /);
    expect(span!.events.map((event) => event.attributes)).toEqual([
      {
        'modelmaxx.route.model': 'gpt-4o-mini',
        'modelmaxx.route.attempt': 1,
        'error.type': 'RateLimitError',
      },
    ]);
    const before = env.sim.stats()['gpt-4o-mini']!.requests;
    clock += 5_000;
    await router.chat.completions.create({ model: 'auto', ...ask });
    expect(env.sim.stats()['gpt-4o-mini']!.requests).toBe(before);
    clock += 2_001;
    env.sim.setModel('gpt-4o-mini', { failure: NO_FAILURE });
    const again = await router.chat.completions.create({ model: 'auto', ...ask });
    expect(again.model).toMatch(/^gpt-4o-mini/);
    expect(env.sim.stats()['gpt-4o-mini']!.requests).toBe(before + 1);
  });

  it('falls back on 500 and cools the model down for the policy cooldown', async () => {
    env.sim.setModel('gpt-4o-mini', { failure: { rate500: 1 } });
    const router = makeRouter();
    const completion = await router.chat.completions.create({ model: 'auto', ...ask });
    expect(completion.model).toMatch(/^claude-haiku-4-5/);
    expect(router.cooldowns()).toEqual(new Map([['gpt-4o-mini', 1_020_000]]));
  });

  it('falls back on a timeout', async () => {
    env.sim.setModel('gpt-4o-mini', { failure: { rateTimeout: 1 } });
    const router = makeRouter();
    const started = Date.now();
    const completion = await router.chat.completions.create({ model: 'auto', ...ask });
    expect(completion.model).toMatch(/^claude-haiku-4-5/);
    expect(Date.now() - started).toBeLessThan(4_000);
    const [span] = exporter.getFinishedSpans();
    expect(span!.events[0]!.attributes!['error.type']).toBe('APIConnectionTimeoutError');
  });

  it('throws one clear error when every candidate is down', async () => {
    for (const model of ['gpt-4o-mini', 'claude-haiku-4-5', 'gpt-4o']) {
      env.sim.setModel(model, { failure: { rate500: 1 } });
    }
    const router = makeRouter();
    const error = await router.chat.completions
      .create({ model: 'auto', ...ask })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AllCandidatesFailedError);
    const failed = error as AllCandidatesFailedError;
    expect(failed.attempts.map((attempt) => [attempt.model, attempt.outcome])).toEqual([
      ['gpt-4o-mini', 'retryable'],
      ['claude-haiku-4-5', 'retryable'],
      ['gpt-4o', 'retryable'],
    ]);
    expect(failed.message).toMatch(/^policy "support": all 3 attempts failed \(gpt-4o-mini: 500 /);
    const [span] = exporter.getFinishedSpans();
    expect(span!.status.code).toBe(2);
    expect(span!.attributes).toEqual({
      'modelmaxx.route.policy': 'support',
      'modelmaxx.route.class': 'math',
      'modelmaxx.route.reference_model': 'gpt-4o',
      'modelmaxx.route.attempt': 3,
      'error.type': 'AllCandidatesFailedError',
    });
    // now everything is cooling down: the next call fails at once, without a request
    const requests = env.sim.requestCount();
    await expect(router.chat.completions.create({ model: 'auto', ...ask })).rejects.toThrow(
      'every candidate for class "math" is cooling down or excluded',
    );
    expect(env.sim.requestCount()).toBe(requests);
  });

  it('does not fall back on a client error', async () => {
    const router = makeRouter();
    await expect(
      router.chat.completions.create({ model: 'auto', messages: [] }),
    ).rejects.toMatchObject({ status: 400 });
    expect(router.cooldowns().size).toBe(0);
  });

  it('streams from openai and from anthropic candidates in the chat-completions shape', async () => {
    const router = makeRouter();
    const collect = async (stream: AsyncIterable<OpenAI.Chat.ChatCompletionChunk>) => {
      let text = '';
      let usage: OpenAI.CompletionUsage | undefined | null;
      let finish: string | null = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (chunk.usage) usage = chunk.usage;
      }
      return { text, usage, finish };
    };
    const streamed = async (model: string) =>
      collect(
        await router.chat.completions.create({
          model,
          ...ask,
          stream: true,
          stream_options: { include_usage: true },
        }),
      );
    const fromOpenAI = await streamed('auto');
    expect(fromOpenAI.text.length).toBeGreaterThan(0);
    expect(fromOpenAI.finish).toBe('stop');
    expect(fromOpenAI.usage?.completion_tokens).toBeGreaterThan(0);
    const fromAnthropic = await streamed('claude-haiku-4-5');
    expect(fromAnthropic.text.length).toBeGreaterThan(0);
    expect(fromAnthropic.finish).toBe('stop');
    expect(fromAnthropic.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(fromAnthropic.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('rejects models outside the policy and missing clients', async () => {
    const router = makeRouter();
    await expect(router.chat.completions.create({ model: 'gpt-5', ...ask })).rejects.toThrow(
      'model "gpt-5" is neither "auto", the policy name "support", nor one of its candidates',
    );
    expect(() => createRouter({ policy: POLICY, clients: { openai: env.openai } })).toThrow(
      'no client "anthropic" for candidate claude-haiku-4-5: pass clients.anthropic',
    );
  });
});

describe('routed client cascade', () => {
  const CASCADE: PolicyInput = {
    ...POLICY,
    name: 'cascade',
    cascade: { enabled: true, voters: ['gpt-4o-mini', 'claude-haiku-4-5'], escalateTo: 'gpt-4o' },
  };
  const arithmetic = { messages: [{ role: 'user' as const, content: 'What is 37 * 48?' }] };
  const quality = (value: number) => ({
    arithmetic: { easy: value, hard: value },
  });
  const requests = () =>
    Object.fromEntries(
      ['gpt-4o-mini', 'claude-haiku-4-5', 'gpt-4o'].map((model) => [
        model,
        env.sim.stats()[model]?.requests ?? 0,
      ]),
    );

  it('answers with the voters when they agree, without calling the frontier model', async () => {
    env.sim.setModel('gpt-4o-mini', { quality: quality(1) });
    env.sim.setModel('claude-haiku-4-5', { quality: quality(1) });
    const router = createRouter({
      policy: CASCADE,
      clients: { openai: env.openai, anthropic },
      random: createRandom(2),
      tracer,
    });
    const before = requests();
    const completion = await router.chat.completions.create({ model: 'auto', ...arithmetic });
    expect(completion.choices[0]!.message.content).toBe('The answer is 1776.');
    const after = requests();
    expect([
      after['gpt-4o-mini']! - before['gpt-4o-mini']!,
      after['claude-haiku-4-5']! - before['claude-haiku-4-5']!,
      after['gpt-4o']! - before['gpt-4o']!,
    ]).toEqual([1, 1, 0]);
    const [span] = exporter.getFinishedSpans();
    expect(span!.attributes).toEqual({
      'modelmaxx.route.policy': 'cascade',
      'modelmaxx.route.class': 'math',
      'modelmaxx.route.reference_model': 'gpt-4o',
      'modelmaxx.route.model': 'gpt-4o-mini',
      'modelmaxx.route.weight': 1,
      'modelmaxx.route.reason': 'cascade: gpt-4o-mini and claude-haiku-4-5 agree',
      'modelmaxx.route.attempt': 2,
    });
  });

  it('escalates when the voters disagree or the check fails', async () => {
    env.sim.setModel('gpt-4o-mini', { quality: quality(0) });
    env.sim.setModel('claude-haiku-4-5', { quality: quality(1) });
    env.sim.setModel('gpt-4o', { quality: quality(1) });
    const router = createRouter({
      policy: CASCADE,
      clients: { openai: env.openai, anthropic },
      random: createRandom(2),
      tracer,
    });
    const completion = await router.chat.completions.create({ model: 'auto', ...arithmetic });
    expect(completion.model).toMatch(/^gpt-4o-2024/);
    expect(completion.choices[0]!.message.content).toBe('The answer is 1776.');
    const [span] = exporter.getFinishedSpans();
    expect(span!.attributes['modelmaxx.route.reason']).toBe(
      'cascade escalated: the voters disagree',
    );
    expect(span!.attributes['modelmaxx.route.attempt']).toBe(3);

    exporter.reset();
    env.sim.setModel('gpt-4o-mini', { quality: quality(1) });
    const strict = createRouter({
      policy: CASCADE,
      clients: { openai: env.openai, anthropic },
      random: createRandom(2),
      tracer,
      check: (answer) => (answer.choices[0]!.message.content ?? '').includes('certain'),
    });
    await strict.chat.completions.create({ model: 'auto', ...arithmetic });
    expect(exporter.getFinishedSpans()[0]!.attributes['modelmaxx.route.reason']).toBe(
      'cascade escalated: the check failed',
    );
  });

  it('escalates when a voter fails, and cools it down', async () => {
    env.sim.setModel('gpt-4o-mini', {
      quality: quality(1),
      failure: { rate429: 1, retryAfterSeconds: 3 },
    });
    const router = createRouter({
      policy: CASCADE,
      clients: { openai: env.openai, anthropic },
      random: createRandom(2),
      tracer,
      now: () => 5_000,
    });
    const completion = await router.chat.completions.create({ model: 'auto', ...arithmetic });
    expect(completion.model).toMatch(/^gpt-4o-2024/);
    expect(router.cooldowns()).toEqual(new Map([['gpt-4o-mini', 8_000]]));
    expect(exporter.getFinishedSpans()[0]!.attributes['modelmaxx.route.reason']).toBe(
      'cascade escalated: a voter failed',
    );
  });
});

describe('routed client budget', () => {
  it('prices each call and routes to the cheapest eligible model once the period budget is spent', async () => {
    let clock = 3_600_000 * 10;
    const router = createRouter({
      policy: {
        name: 'budgeted',
        candidates: [
          { model: 'gpt-4o-mini', priorQuality: 0.6, priorCostPerCallUsd: 0.0003 },
          { model: 'gpt-4o', priorQuality: 0.95, priorCostPerCallUsd: 0.005 },
        ],
        exploration: 0,
        priorStrength: 100_000,
        goal: { budget: { usd: 0.00001, periodMs: 3_600_000 } },
      },
      clients: { openai: env.openai },
      random: createRandom(3),
      tracer,
      now: () => clock,
    });
    const first = await router.chat.completions.create({ model: 'auto', ...ask });
    expect(first.model).toMatch(/^gpt-4o-2024/);
    // gpt-4o: 2.5 / 10 USD per million input / output tokens (@modelmaxx/pricing)
    const expected = (first.usage!.prompt_tokens * 2.5 + first.usage!.completion_tokens * 10) / 1e6;
    expect(router.spend().periodStart).toBe(36_000_000);
    expect(router.spend().spentUsd).toBeCloseTo(expected, 15);
    expect(expected).toBeGreaterThan(0.00001);
    const second = await router.chat.completions.create({ model: 'auto', ...ask });
    expect(second.model).toMatch(/^gpt-4o-mini/);
    expect(
      String(exporter.getFinishedSpans().at(-1)!.attributes['modelmaxx.route.reason']),
    ).toMatch(/^budget of \$0\.00001 spent \(\$0\.\d+ this period\): cheapest eligible candidate$/);
    clock += 3_600_000;
    const third = await router.chat.completions.create({ model: 'auto', ...ask });
    expect(third.model).toMatch(/^gpt-4o-2024/);
  });
});
