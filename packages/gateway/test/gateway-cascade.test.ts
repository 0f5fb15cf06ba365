/**
 * Cascades behind the gateway: one stream of requests (llm-sim tasks, each model with its own
 * seeded answers and failures) through the routed client (`createRouter`, real SDKs) and through
 * the gateway (real `openai` SDK), with the same policy, seed and clock; every decision the
 * engine observes (plan, models called in order, their answers and failures) and every answer the
 * app gets must be the same. Then a cascade's spans, its budget charge, and a streamed request.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { generateTask, startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { RoutingEngine, createRandom, createRouter } from '@modelmaxx/router';
import type { Decision, EngineOutcome, PolicyInput } from '@modelmaxx/router';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/index.js';
import type { GatewayAccess } from '../src/index.js';
import type { AdmissionRequest, Settlement } from '../src/access/types.js';
import { startSdkGateway, waitFor } from './helpers.js';
import type { SdkGateway } from './helpers.js';

const SEED = 11;
const START = Date.UTC(2026, 11, 7, 3, 0, 0);

const VOTERS = ['gpt-4o-mini', 'claude-haiku-4-5'];
const candidates = [
  { model: 'gpt-4o-mini', client: 'openai', priorQuality: 0.8 },
  {
    model: 'claude-haiku-4-5',
    provider: 'anthropic' as const,
    client: 'anthropic',
    priorQuality: 0.85,
  },
  { model: 'gpt-4o', client: 'openai', priorQuality: 0.9 },
];
const fallback = { maxAttempts: 2, cooldownMs: 2_500, timeoutMs: 10_000 };
/** Fixed voters, and the learned planner (warm-up probes calling every candidate). */
const POLICIES: Record<string, PolicyInput> = {
  pair: {
    name: 'pair',
    candidates,
    fallback,
    cascade: { enabled: true, voters: VOTERS, escalateTo: 'gpt-4o' },
  },
  planner: { name: 'planner', candidates, fallback, cascade: { enabled: true } },
};

/** Failures per model (explicit rates: the same seeded draws in every sim with this seed). */
async function startSim(): Promise<LlmSim> {
  const sim = await startLlmSim({ seed: SEED });
  const none = { rate429: 0, rate500: 0, rateTimeout: 0 };
  sim.setModel('gpt-4o-mini', { failure: { ...none, rate500: 0.12 } });
  sim.setModel('claude-haiku-4-5', {
    failure: { ...none, rate429: 0.1, retryAfterSeconds: 1 },
  });
  sim.setModel('gpt-4o', { failure: { ...none, rate500: 0.15 } });
  return sim;
}

interface Observed {
  readonly kind: string;
  readonly first: readonly string[];
  readonly escalateTo: string | undefined;
  readonly calls: readonly string[];
}

/** Every `observe` the engines make, while `recording` is set. */
let recording: Observed[] | undefined;
const originalObserve = RoutingEngine.prototype.observe;
RoutingEngine.prototype.observe = function (
  this: RoutingEngine,
  decision: Decision,
  outcomes: readonly EngineOutcome[],
) {
  recording?.push({
    kind: decision.kind,
    first: decision.first,
    escalateTo: decision.escalateTo,
    // A plan's answers decide; the gateway reads no other call's answer (without an app
    // `score`, no decision reads it).
    calls: outcomes.map((outcome, index) => {
      if (outcome.failed === true) return `${outcome.model}: failed`;
      const planned = decision.first.length + (decision.third === undefined ? 0 : 1);
      const answer = decision.first.length > 1 && index < planned ? ` ${outcome.answer}` : '';
      return `${outcome.model}:${answer} $${outcome.costUsd.toFixed(9)}`;
    }),
  });
  originalObserve.call(this, decision, outcomes);
};

const prompts = Array.from({ length: 40 }, (_, index) => generateTask({ seed: 5, index }).prompt);

/** What the app got per request: the answering model and text, or "error" (no answer). */
type Answer = string;

/** Sends the prompts in order on the shared clock: what the engine observed, what the app got. */
async function replay(
  ask: (content: string) => Promise<OpenAI.ChatCompletion>,
  setClock: (at: number) => void,
): Promise<{ observed: Observed[]; answers: Answer[] }> {
  const observed: Observed[] = [];
  const answers: Answer[] = [];
  recording = observed;
  try {
    for (const [index, prompt] of prompts.entries()) {
      setClock(START + index * 1_000);
      try {
        const completion = await ask(prompt);
        answers.push(`${completion.model}: ${completion.choices[0]!.message.content}`);
      } catch {
        answers.push('error');
      }
    }
  } finally {
    recording = undefined;
  }
  return { observed, answers };
}

async function throughRouter(policy: PolicyInput) {
  const sim = await startSim();
  let clock = START;
  const router = createRouter({
    policy,
    clients: {
      openai: new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'test', maxRetries: 0 }),
      anthropic: new Anthropic({ baseURL: sim.anthropicBaseURL, apiKey: 'test', maxRetries: 0 }),
    },
    random: createRandom(SEED),
    now: () => clock,
  });
  try {
    return await replay(
      async (content) =>
        (await router.chat.completions.create({
          model: 'auto',
          messages: [{ role: 'user', content }],
        })) as OpenAI.ChatCompletion,
      (at) => (clock = at),
    );
  } finally {
    await sim.close();
  }
}

function gatewayConfig(sim: LlmSim, policy: PolicyInput) {
  return resolveConfig(
    { policies: [policy] },
    {
      upstreamFlags: [`openai=${sim.openaiBaseURL}`, `anthropic=${sim.anthropicBaseURL}`],
      env: {},
    },
  );
}

async function throughGateway(policy: PolicyInput) {
  const sim = await startSim();
  let clock = START;
  const sdk = await startSdkGateway(gatewayConfig(sim, policy), { seed: SEED, now: () => clock });
  try {
    return await replay(
      (content) =>
        sdk.openai.chat.completions.create({
          model: `route:${policy.name}`,
          messages: [{ role: 'user', content }],
        }),
      (at) => (clock = at),
    );
  } finally {
    await sdk.close();
    await sim.close();
  }
}

const opened: SdkGateway[] = [];
const sims: LlmSim[] = [];
afterEach(async () => {
  for (const sdk of opened.splice(0)) await sdk.close();
  for (const sim of sims.splice(0)) await sim.close();
});
afterAll(() => {
  RoutingEngine.prototype.observe = originalObserve;
});

describe('gateway cascades: the same decisions as the routed client', () => {
  for (const [name, policy] of Object.entries(POLICIES)) {
    it(`${name}: every decision, call and answer of one recorded stream is the same`, async () => {
      const routed = await throughRouter(policy);
      const gateway = await throughGateway(policy);
      expect(gateway.observed).toHaveLength(prompts.length);
      expect(gateway.observed).toEqual(routed.observed);
      expect(gateway.answers).toEqual(routed.answers);
      // The stream exercised what it is for: agreements, escalations, failures.
      const calls = routed.observed.flatMap((entry) => entry.calls);
      expect(calls.some((call) => call.endsWith('failed'))).toBe(true);
      if (name === 'pair') {
        const escalated = routed.observed.filter((entry) =>
          entry.calls.some((call) => call.startsWith('gpt-4o:')),
        );
        expect(escalated.length).toBeGreaterThan(0);
        expect(escalated.length).toBeLessThan(prompts.length);
      }
    }, 120_000);
  }
});

/** An access layer that admits everything and keeps what it was asked to reserve and settle. */
function recordingAccess() {
  const admitted: AdmissionRequest[] = [];
  const settled: Settlement[] = [];
  const access: GatewayAccess = {
    authenticate: () => ({ ok: true, principal: { keyId: 'anonymous' } }),
    admit: (request) => {
      admitted.push(request);
      const id = String(admitted.length);
      return Promise.resolve({ ok: true, id, candidates: request.candidates, warnings: [] });
    },
    settle: (_admission, settlement) => void settled.push(settlement),
    close: () => Promise.resolve(),
  };
  return { access, admitted, settled };
}

describe('gateway cascades: spans, budget and streams', () => {
  const arithmetic = 'What is 37 * 48?';

  it('each call its own span under the route span, every cost settled, the plan reserved', async () => {
    const sim = await startLlmSim({ seed: SEED });
    sims.push(sim);
    sim.setModel('gpt-4o-mini', { quality: { arithmetic: { easy: 0, hard: 0 } } });
    sim.setModel('claude-haiku-4-5', { quality: { arithmetic: { easy: 1, hard: 1 } } });
    sim.setModel('gpt-4o', { quality: { arithmetic: { easy: 1, hard: 1 } } });
    const { access, admitted, settled } = recordingAccess();
    const sdk = await startSdkGateway(gatewayConfig(sim, POLICIES.pair!), { seed: SEED, access });
    opened.push(sdk);
    const completion = await sdk.openai.chat.completions.create({
      model: 'route:pair',
      max_tokens: 50,
      messages: [{ role: 'user', content: arithmetic }],
    });
    expect(completion.model).toMatch(/^gpt-4o-2024/);
    expect(completion.choices[0]!.message.content).toBe('The answer is 1776.');

    const calls = await sdk.chatSpans(3);
    await waitFor(() => sdk.receiver.spans.some((span) => span.name === 'route pair'));
    const route = sdk.receiver.spans.find((span) => span.name === 'route pair')!;
    const byAttempt = [...calls].sort(
      (a, b) =>
        Number(a.attributes['modelmaxx.route.attempt']) -
        Number(b.attributes['modelmaxx.route.attempt']),
    );
    expect(
      byAttempt.map((span) => [
        span.attributes['modelmaxx.route.attempt'],
        span.attributes['modelmaxx.route.reason'],
        span.parentSpanId === route.spanId,
      ]),
    ).toEqual([
      [1, 'cascade voter (gpt-4o-mini and claude-haiku-4-5)', true],
      [2, 'cascade voter (gpt-4o-mini and claude-haiku-4-5)', true],
      [3, 'cascade escalated: the voters disagree', true],
    ]);
    expect(
      new Set(byAttempt.slice(0, 2).map((span) => span.attributes['gen_ai.request.model'])),
    ).toEqual(new Set(VOTERS));
    expect(route.attributes['modelmaxx.route.model']).toBe('gpt-4o');
    // The savings ledger's reference, on the route span and every call (as the routed client).
    for (const span of [route, ...calls]) {
      expect(span.attributes['modelmaxx.route.reference_model']).toBe('gpt-4o');
    }
    expect(route.attributes['modelmaxx.route.attempt']).toBe(3);
    expect(route.attributes['modelmaxx.route.reason']).toBe(
      'cascade escalated: the voters disagree',
    );

    // Every call's cost is charged, and admission reserved the whole plan.
    const costs = calls.map((span) => Number(span.attributes['gen_ai.usage.cost.amount']));
    expect(costs.every((cost) => cost > 0)).toBe(true);
    expect(settled).toHaveLength(1);
    expect(settled[0]!.costUsd).toBeCloseTo(
      costs.reduce((sum, cost) => sum + cost, 0),
      12,
    );
    const estimates = admitted[0]!.estimatedCostUsd;
    const plan = Object.values(estimates);
    expect(plan).toHaveLength(3);
    expect(new Set(plan).size).toBe(1);
    expect(plan[0]).toBeGreaterThan(settled[0]!.costUsd);
  });

  it('a stream calls one candidate by weight, as the routed client does; its ttfc is not delayed', async () => {
    const sim = await startLlmSim({ seed: SEED });
    sims.push(sim);
    for (const model of ['gpt-4o-mini', 'claude-haiku-4-5', 'gpt-4o']) {
      sim.setModel(model, { latency: { ttftMs: 120, perTokenMs: 6, sigma: 0 } });
    }
    const sdk = await startSdkGateway(gatewayConfig(sim, POLICIES.pair!), { seed: SEED });
    opened.push(sdk);
    const messages = [{ role: 'user' as const, content: arithmetic }];
    const streamTtfc = async (model: string) => {
      const started = performance.now();
      const stream = await sdk.openai.chat.completions.create({ model, stream: true, messages });
      let first: number | undefined;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) first ??= performance.now() - started;
      }
      return first!;
    };
    const cascadeTotal = async (content: string) => {
      const started = performance.now();
      await sdk.openai.chat.completions.create({
        model: 'route:pair',
        messages: [{ role: 'user', content }],
      });
      return performance.now() - started;
    };
    const figures = {
      routed: [] as number[],
      direct: [] as number[],
      cascade: [] as number[],
      long: [] as number[],
    };
    for (let round = 0; round < 6; round += 1) {
      figures.routed.push(await streamTtfc('route:pair'));
      figures.direct.push(await streamTtfc('gpt-4o-mini'));
      figures.cascade.push(await cascadeTotal(arithmetic));
      // 100-token answers: no comparable answer, so the voters "disagree" and it escalates.
      if (round < 3) figures.long.push(await cascadeTotal('Write a poem. [sim:tokens=100]'));
    }
    // Streams: one call each (12 streams), the cascades two or three each.
    const spans = await sdk.chatSpans(12 + 6 * 2 + 3 * 3);
    const streamed = spans.filter((span) => span.attributes['gen_ai.response.time_to_first_chunk']);
    expect(streamed).toHaveLength(12);
    const routedStreams = streamed.filter((span) => span.attributes['modelmaxx.route.policy']);
    expect(routedStreams).toHaveLength(6);
    for (const span of routedStreams) {
      expect(span.attributes['modelmaxx.route.reason']).not.toMatch(/cascade/);
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
    console.log(
      `cascade policy, llm-sim ttft 120 ms: streamed ttfc median ${median(figures.routed).toFixed(1)} ms ` +
        `(direct model ${median(figures.direct).toFixed(1)} ms); the non-streamed cascade answers after ` +
        `${median(figures.cascade).toFixed(1)} ms, with 100-token answers after ${median(figures.long).toFixed(1)} ms ` +
        `(what running the plan before streaming would cost the first chunk)`,
    );
  }, 60_000);
});

describe('gateway cascades on the other endpoints', () => {
  it('Responses and Anthropic Messages requests: the voters agree on the answer text and one answer goes back', async () => {
    const sim = await startLlmSim({ seed: SEED });
    sims.push(sim);
    for (const model of ['gpt-4o-mini', 'llama-3.1-8b-instant']) {
      sim.setModel(model, { quality: { arithmetic: { easy: 1, hard: 1 } } });
    }
    const policy: PolicyInput = {
      name: 'openai-pair',
      candidates: [
        { model: 'gpt-4o-mini', client: 'openai' },
        { model: 'llama-3.1-8b-instant', client: 'openai' },
        { model: 'gpt-4o', client: 'openai' },
      ],
      cascade: {
        enabled: true,
        voters: ['gpt-4o-mini', 'llama-3.1-8b-instant'],
        escalateTo: 'gpt-4o',
      },
    };
    const sdk = await startSdkGateway(gatewayConfig(sim, policy), { seed: SEED });
    opened.push(sdk);
    const response = await sdk.openai.responses.create({
      model: 'route:openai-pair',
      input: 'What is 37 * 48?',
    });
    expect(response.output_text).toBe('The answer is 1776.');
    const message = await sdk.anthropic.messages.create({
      model: 'route:openai-pair',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'What is 37 * 48?' }],
    });
    expect(message.content).toEqual([
      expect.objectContaining({ type: 'text', text: 'The answer is 1776.' }),
    ]);
    // Two voters each, no escalation: four calls, and both routes answered by the agreement.
    await waitFor(() => {
      void sdk.gateway.forceFlush();
      return sdk.receiver.spans.filter((span) => span.name.startsWith('route ')).length >= 2;
    });
    const routes = sdk.receiver.spans.filter((span) => span.name === 'route openai-pair');
    expect(routes.map((span) => span.attributes['modelmaxx.route.reason'])).toEqual([
      'cascade: gpt-4o-mini and llama-3.1-8b-instant agree',
      'cascade: gpt-4o-mini and llama-3.1-8b-instant agree',
    ]);
    const called = sdk.receiver.spans
      .filter((span) => span.attributes['modelmaxx.route.policy'] && !span.name.startsWith('route'))
      .map((span) => span.attributes['gen_ai.request.model']);
    expect(called.sort()).toEqual([
      'gpt-4o-mini',
      'gpt-4o-mini',
      'llama-3.1-8b-instant',
      'llama-3.1-8b-instant',
    ]);
  }, 60_000);
});
