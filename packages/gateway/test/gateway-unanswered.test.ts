/**
 * Calls the provider had but whose answer never came whole, not through the app's doing: the
 * gateway's timeout to the upstream's headers (504, or a `route:` fallback), an answer the
 * upstream cut or that went silent mid-body, a connection dropped after the request was sent,
 * and streams that went silent. The real `openai` and `@anthropic-ai/sdk` clients against an
 * in-process gateway with keys and budgets, llm-sim (and a half-answering upstream) behind it.
 * Each span carries the admission's input estimate (body bytes ÷ 4) and the output relayed so far
 * (÷ 4) at `cost.source = estimate`, and the key's and team's budgets are charged the same; a
 * connection refused (nothing sent) is not estimated nor charged.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { RoutingEngine } from '@modelmaxx/router';
import type { Decision, EngineOutcome } from '@modelmaxx/router';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { MockInstance } from 'vitest';
import { generateGatewayKey, resolveConfig } from '../src/index.js';
import { Routing } from '../src/routing.js';
import type { AccessLayer } from '../src/index.js';
import { HALF_TEXT, closedPort, startHalfAnswer, startSdkGateway, waitFor } from './helpers.js';
import type { HalfAnswer, SdkGateway } from './helpers.js';
import {
  budgetedAccess,
  costOfSpan,
  estimateChecks,
  expectEstimated,
  usageOf,
} from './estimate-checks.js';

const KEYS = {
  timeout: generateGatewayKey('timeout'),
  messages: generateGatewayKey('messages'),
  routed: generateGatewayKey('routed'),
  plan: generateGatewayKey('plan'),
  cut: generateGatewayKey('cut'),
  silent: generateGatewayKey('silent'),
  dropped: generateGatewayKey('dropped'),
  refused: generateGatewayKey('refused'),
  before: generateGatewayKey('before'),
  after: generateGatewayKey('after'),
  shadowed: generateGatewayKey('shadowed'),
  failed: generateGatewayKey('failed'),
};
/** The gateway's timeout to the upstream's headers, and its idle timeout of an answer. */
const TIMEOUT_MS = 500;
const IDLE_MS = 400;
const STEADY = { ttftMs: 0, perTokenMs: 0, sigma: 0 };

let sim: LlmSim;
let half: HalfAnswer;
let access: AccessLayer;
let sdk: SdkGateway;

beforeAll(async () => {
  sim = await startLlmSim({ seed: 15 });
  half = await startHalfAnswer();
  const quick = { timeoutMs: TIMEOUT_MS, streamIdleTimeoutMs: IDLE_MS };
  const config = resolveConfig(
    {
      upstreams: {
        quick: { kind: 'openai', baseURL: sim.openaiBaseURL, ...quick },
        quickant: { kind: 'anthropic', baseURL: sim.anthropicBaseURL, ...quick },
        half: { kind: 'openai-compatible', baseURL: half.baseURL, streamIdleTimeoutMs: IDLE_MS },
        closed: { kind: 'openai-compatible', baseURL: `http://127.0.0.1:${await closedPort()}/v1` },
      },
      policies: [
        {
          name: 'pair',
          exploration: 0,
          candidates: [
            { model: 'gpt-4o-mini', client: 'quick', priorQuality: 0.95 },
            { model: 'gpt-4o', client: 'quick', priorQuality: 0.5 },
          ],
          fallback: { maxAttempts: 2, cooldownMs: 1, timeoutMs: TIMEOUT_MS },
        },
        {
          // Shadowed (its answers held whole before they are sent); the first candidate's
          // upstream may send its head and go silent.
          name: 'shadowed',
          exploration: 0,
          candidates: [
            { model: 'gpt-4o-mini', client: 'half', priorQuality: 0.95 },
            { model: 'gpt-4o', client: 'quick', priorQuality: 0.5 },
          ],
          fallback: { maxAttempts: 2, cooldownMs: 1, timeoutMs: TIMEOUT_MS },
          shadow: { enabled: true, sampleRate: 0 },
        },
        {
          name: 'voters',
          candidates: [
            { model: 'gpt-4o-mini', client: 'quick' },
            { model: 'claude-haiku-4-5', client: 'quickant' },
            { model: 'gpt-4o', client: 'quick' },
          ],
          fallback: { maxAttempts: 2, cooldownMs: 1, timeoutMs: TIMEOUT_MS },
          cascade: {
            enabled: true,
            voters: ['gpt-4o-mini', 'claude-haiku-4-5'],
            escalateTo: 'gpt-4o',
          },
        },
      ],
      judge: { model: 'gpt-4o' },
    },
    { env: {} },
  );
  access = budgetedAccess(Object.values(KEYS));
  sdk = await startSdkGateway(config, { access });
});

afterAll(async () => {
  await sdk?.close();
  await access?.close();
  await sim?.close();
  await half?.close();
});

beforeEach(async () => {
  await sdk.reset();
});

const { spansOf, expectCharged, expectUncharged } = estimateChecks(
  () => sdk,
  () => access,
);
const openai = (key: { key: string }) =>
  new OpenAI({ baseURL: `${sdk.url}/v1`, apiKey: key.key, maxRetries: 0 });
const anthropic = (key: { key: string }) =>
  new Anthropic({ baseURL: sdk.url, apiKey: key.key, maxRetries: 0 });

/** The engine, decision and outcomes of the one `observe` a request made (once it came). */
async function observedBy(
  observed: MockInstance<RoutingEngine['observe']>,
): Promise<[RoutingEngine, Decision, readonly EngineOutcome[]]> {
  await waitFor(() => observed.mock.calls.length > 0);
  expect(observed.mock.calls).toHaveLength(1);
  const [decision, outcomes] = observed.mock.calls[0]!;
  return [observed.mock.contexts[0] as RoutingEngine, decision, outcomes];
}

/** The error `call` fails with. */
const failure = (call: Promise<unknown>) =>
  call.then(() => undefined).catch((caught: unknown) => caught);

const chat = (model: string, content: string) => ({
  model,
  max_tokens: 64,
  messages: [{ role: 'user' as const, content }],
});

describe("the gateway's timeout to the upstream's headers", () => {
  it('openai chat: 504 timeout; the input estimate, output 0, marked estimate; charged', async () => {
    const body = chat('quick/gpt-4o-mini', 'time out [sim:slow-first=3000]');
    const error = await failure(openai(KEYS.timeout).chat.completions.create(body));
    expect(error).toMatchObject({ status: 504, type: 'timeout' });
    const [span] = await spansOf('timeout', 1);
    const message = `upstream quick did not answer within ${TIMEOUT_MS} ms`;
    await expectCharged('timeout', expectEstimated(span!, body, 'timeout', message));
  });

  it('anthropic /v1/messages: the same', async () => {
    const body = chat('quickant/claude-haiku-4-5', 'time out too [sim:slow-first=3000]');
    const error = await failure(anthropic(KEYS.messages).messages.create(body));
    expect(error).toMatchObject({ status: 504 });
    const [span] = await spansOf('messages', 1);
    const message = `upstream quickant did not answer within ${TIMEOUT_MS} ms`;
    await expectCharged('messages', expectEstimated(span!, body, 'timeout', message));
  });

  it("route: the timed-out attempt's estimate plus the answering candidate's cost", async () => {
    sim.setModel('gpt-4o-mini', { latency: { ttftMs: 3000, perTokenMs: 0, sigma: 0 } });
    const observed = vi.spyOn(RoutingEngine.prototype, 'observe');
    try {
      const body = chat('route:pair', 'time out, then fall back');
      const { data, response } = await openai(KEYS.routed)
        .chat.completions.create(body)
        .withResponse();
      expect(response.headers.get('x-modelmaxx-model')).toBe('gpt-4o');
      const spans = await spansOf('routed', 2);
      const [timedOut, answered] = spans.filter((span) => span.name.startsWith('chat '));
      expect(timedOut!.attributes['modelmaxx.route.attempt']).toBe(1);
      expect(timedOut!.attributes['gen_ai.request.model']).toBe('gpt-4o-mini');
      const estimate = expectEstimated(timedOut!, body, 'timeout');
      expect(answered!.attributes['modelmaxx.route.attempt']).toBe(2);
      expect(usageOf(answered!)).toEqual({
        type: undefined,
        source: 'local',
        input: data.usage!.prompt_tokens,
        output: data.usage!.completion_tokens,
      });
      const billed = costOfSpan(answered!);
      expect(billed).toBeGreaterThan(0);
      await expectCharged('routed', estimate + billed);
      // The engine learns the same money: the timed-out call at its estimate.
      const [engine, decision, outcomes] = await observedBy(observed);
      expect(outcomes).toEqual([
        { model: 'gpt-4o-mini', costUsd: estimate, failed: true },
        { model: 'gpt-4o', costUsd: billed },
      ]);
      const later = decision.at + 60_000; // past the weight table's refresh
      const weights = engine.table(later).classes.get(decision.classKey)!.weights;
      const mini = weights.find((weight) => weight.model === 'gpt-4o-mini')!;
      expect(mini.costPerCallUsd).toBeCloseTo(estimate, 15);
    } finally {
      observed.mockRestore();
      sim.setModel('gpt-4o-mini', { latency: STEADY });
    }
  });
});

describe('a shadowed route: attempt silent after its head', () => {
  it("falls back; the silent attempt's estimate plus the answer's cost", async () => {
    const body = chat('route:shadowed', 'a head, then silence');
    const headers = { 'x-half': 'head' };
    const { data, response } = await openai(KEYS.shadowed)
      .chat.completions.create(body, { headers })
      .withResponse();
    expect(response.headers.get('x-modelmaxx-model')).toBe('gpt-4o');
    const spans = await spansOf('shadowed', 2);
    const [silent, answered] = spans.filter((span) => span.name.startsWith('chat '));
    expect(silent!.attributes['modelmaxx.route.attempt']).toBe(1);
    const estimate = expectEstimated(silent!, body, 'stream_idle_timeout');
    expect(usageOf(answered!)).toEqual({
      type: undefined,
      source: 'local',
      input: data.usage!.prompt_tokens,
      output: data.usage!.completion_tokens,
    });
    await expectCharged('shadowed', estimate + costOfSpan(answered!));
  });
});

describe('a cascade voter that times out', () => {
  it("its estimate, beside the other calls' provider usage; the budgets charged the sum", async () => {
    sim.setModel('gpt-4o-mini', { latency: { ttftMs: 3000, perTokenMs: 0, sigma: 0 } });
    const observed = vi.spyOn(RoutingEngine.prototype, 'observe');
    try {
      const body = chat('route:voters', 'one voter times out');
      const { response } = await openai(KEYS.plan).chat.completions.create(body).withResponse();
      expect(response.headers.get('x-modelmaxx-model')).not.toBe('gpt-4o-mini');
      const spans = await spansOf('plan', 3); // The voters, and the escalation.
      const calls = spans.filter((span) => span.name.startsWith('chat '));
      const by = (model: string) =>
        calls.find((span) => span.attributes['gen_ai.request.model'] === model)!;
      const estimate = expectEstimated(by('gpt-4o-mini'), body, 'timeout');
      const answered = calls.filter((span) => span !== by('gpt-4o-mini'));
      expect(answered.map(usageOf).map(({ type, source }) => ({ type, source }))).toEqual(
        answered.map(() => ({ type: undefined, source: 'local' })),
      );
      const billed = answered.reduce((sum, span) => sum + costOfSpan(span), 0);
      expect(billed).toBeGreaterThan(0);
      await expectCharged('plan', estimate + billed);
      // The engine learns the timed-out voter at its estimate, the calls' sum as charged.
      const [, , outcomes] = await observedBy(observed);
      const voter = outcomes.find((outcome) => outcome.model === 'gpt-4o-mini');
      expect(voter).toEqual({ model: 'gpt-4o-mini', costUsd: estimate, failed: true });
      const learned = outcomes.reduce((sum, outcome) => sum + outcome.costUsd, 0);
      expect(learned).toBeCloseTo(estimate + billed, 15);
    } finally {
      observed.mockRestore();
      sim.setModel('gpt-4o-mini', { latency: STEADY });
    }
  });
});

describe('a non-streamed answer cut by the upstream', () => {
  it('the connection dropped mid-body: stream_interrupted, the estimate', async () => {
    const body = chat('half/gpt-4o-mini', 'half, then gone');
    const headers = { 'x-half': 'drop' };
    expect(await failure(openai(KEYS.cut).chat.completions.create(body, { headers }))).toBeTruthy();
    const [span] = await spansOf('cut', 1);
    const message = 'the upstream closed the connection before its answer ended';
    await expectCharged('cut', expectEstimated(span!, body, 'stream_interrupted', message));
  });

  it('silent mid-body for the idle timeout: stream_idle_timeout, the estimate', async () => {
    const body = chat('half/gpt-4o-mini', 'half, then silence');
    expect(await failure(openai(KEYS.silent).chat.completions.create(body))).toBeTruthy();
    const [span] = await spansOf('silent', 1);
    await expectCharged('silent', expectEstimated(span!, body, 'stream_idle_timeout'));
  });

  it('the connection dropped after the request, before the head: 502, the estimate', async () => {
    const body = chat('half/gpt-4o-mini', 'gone before the head');
    const headers = { 'x-half': 'drop-head' };
    const error = await failure(openai(KEYS.dropped).chat.completions.create(body, { headers }));
    expect(error).toMatchObject({ status: 502 });
    const [span] = await spansOf('dropped', 1);
    await expectCharged('dropped', expectEstimated(span!, body, 'connection_error'));
  });

  it('a connection refused (nothing sent): 502, no usage, nothing charged', async () => {
    const body = chat('closed/gpt-4o-mini', 'nobody home');
    const error = await failure(openai(KEYS.refused).chat.completions.create(body));
    expect(error).toMatchObject({ status: 502 });
    const [span] = await spansOf('refused', 1);
    expect(usageOf(span!)).toEqual({
      type: 'connection_error',
      source: undefined,
      input: undefined,
      output: undefined,
    });
    await expectUncharged('refused');
  });
});

describe('a stream that goes silent', () => {
  it('before its first event: 504, the input estimate, output 0', async () => {
    const body = {
      ...chat('quick/gpt-4o-mini', 'stream later [sim:slow-first=3000]'),
      stream: true as const,
    };
    const error = await failure(
      (async () => {
        const stream = await openai(KEYS.before).chat.completions.create(body);
        for await (const chunk of stream) void chunk;
      })(),
    );
    expect(error).toMatchObject({ status: 504, type: 'timeout' });
    const [span] = await spansOf('before', 1);
    await expectCharged('before', expectEstimated(span!, body, 'stream_idle_timeout'));
  });

  it('after its first event: the input estimate and the output relayed ÷ 4', async () => {
    const body = { ...chat('half/gpt-4o-mini', 'stream, then silence'), stream: true as const };
    let text = '';
    const error = await failure(
      (async () => {
        const stream = await openai(KEYS.after).chat.completions.create(body);
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      })(),
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(text).toBe(HALF_TEXT);
    const [span] = await spansOf('after', 1);
    const output = Math.ceil(HALF_TEXT.length / 4);
    const cost = expectEstimated(span!, body, 'stream_idle_timeout', undefined, output);
    await expectCharged('after', cost);
  });
});

describe('a request the gateway fails on after admitting it', () => {
  it('its reservation is released, nothing charged (a 500 before any call)', async () => {
    // An internal error while the request's routing is built (after admission, before the
    // exchange): made here by the routing's translation step throwing once.
    const translate = vi
      .spyOn(Routing.prototype as unknown as { translate: () => boolean }, 'translate')
      .mockImplementationOnce(() => {
        throw new Error('injected: routing failed');
      });
    try {
      const body = { model: 'route:pair', input: 'fail while routing', max_output_tokens: 16 };
      const error = await failure(openai(KEYS.failed).responses.create(body));
      expect(error).toMatchObject({ status: 500 });
      expect(translate).toHaveBeenCalled();
      await expectUncharged('failed');
    } finally {
      translate.mockRestore();
    }
  });

  it('a null /v1/responses input item is a 400 naming it, before admission', async () => {
    const body = { model: 'route:pair', input: [null as never], max_output_tokens: 16 };
    const error = await failure(openai(KEYS.failed).responses.create(body));
    expect(error).toMatchObject({ status: 400 });
    expect((error as Error).message).toMatch(/input\[0\]/);
    await expectUncharged('failed');
  });
});
