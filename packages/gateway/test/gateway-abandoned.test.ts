/**
 * Non-streamed requests the app abandons (AbortController while the upstream works): the real
 * `openai` and `@anthropic-ai/sdk` clients against an in-process gateway with keys and budgets,
 * llm-sim upstreams that take seconds to answer. The provider has the prompt by then: the span
 * carries the admission's input estimate (body bytes ÷ 4) at `cost.source = estimate`, the key's
 * and team's budgets are charged the same dollars; a call whose answer (with usage) had already
 * arrived keeps the provider's usage (`local`). The same for a JSON body cut mid-way and a
 * stream cut before its first event; a call the provider refused is not estimated.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateGatewayKey, resolveConfig } from '../src/index.js';
import type { AccessLayer } from '../src/index.js';
import { startHalfAnswer, startSdkGateway, waitFor } from './helpers.js';
import type { HalfAnswer, ReceivedSpan, SdkGateway } from './helpers.js';
import { budgetedAccess, estimateChecks, expectEstimated, usageOf } from './estimate-checks.js';

const CLIENT_GONE = 'the app closed the connection before the answer ended';
const KEYS = {
  chat: generateGatewayKey('chat'),
  messages: generateGatewayKey('messages'),
  routed: generateGatewayKey('routed'),
  plan: generateGatewayKey('plan'),
  planGone: generateGatewayKey('planGone'),
  stream: generateGatewayKey('stream'),
  refused: generateGatewayKey('refused'),
  whole: generateGatewayKey('whole'),
  half: generateGatewayKey('half'),
};
const SLOW = { ttftMs: 4000, perTokenMs: 0, sigma: 0 };
/** llm-sim holds the answer 4 s (the gateway forwards `x-*` headers). */
const SLOW_FIRST = { 'x-sim-directives': 'slow-first=4000' };

let sim: LlmSim;
let half: HalfAnswer;
let access: AccessLayer;
let sdk: SdkGateway;

beforeAll(async () => {
  sim = await startLlmSim({ seed: 14 });
  half = await startHalfAnswer();
  const config = resolveConfig(
    {
      policies: [
        {
          name: 'pair',
          exploration: 0,
          candidates: [{ model: 'gpt-4o-mini' }, { model: 'gpt-4o' }],
          fallback: { maxAttempts: 2, cooldownMs: 1, timeoutMs: 30_000 },
        },
        {
          name: 'voters',
          candidates: [
            { model: 'gpt-4o-mini' },
            { model: 'claude-haiku-4-5' },
            { model: 'gpt-4o' },
          ],
          fallback: { maxAttempts: 2, cooldownMs: 1, timeoutMs: 30_000 },
          cascade: {
            enabled: true,
            voters: ['gpt-4o-mini', 'claude-haiku-4-5'],
            escalateTo: 'gpt-4o',
          },
        },
      ],
    },
    {
      upstreamFlags: [
        `openai=${sim.openaiBaseURL}`,
        `anthropic=${sim.anthropicBaseURL}`,
        `half=${half.baseURL}`,
      ],
      env: {},
    },
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

const openai = (key: { key: string }) =>
  new OpenAI({ baseURL: `${sdk.url}/v1`, apiKey: key.key, maxRetries: 0 });
const anthropic = (key: { key: string }) =>
  new Anthropic({ baseURL: sdk.url, apiKey: key.key, maxRetries: 0 });

/** Calls `send` with a signal aborted after `ms`; the SDK's abort error is expected. */
async function abandon(ms: number, send: (signal: AbortSignal) => Promise<unknown>) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  const error = await send(controller.signal).catch((caught: unknown) => caught);
  clearTimeout(timer);
  expect(`${(error as Error).constructor.name}: ${(error as Error).message}`).toMatch(/Abort/);
}

const { spansOf, expectCharged, expectUncharged } = estimateChecks(
  () => sdk,
  () => access,
);

/** An abandoned call's span: client_aborted, the body's input estimate, output 0; its cost. */
const expectAbandoned = (span: ReceivedSpan, body: object) =>
  expectEstimated(span, body, 'client_aborted', CLIENT_GONE);

describe('a non-streamed request the app abandons while the upstream works', () => {
  it('openai chat: the input estimate, output 0, marked estimate; the budgets charged it', async () => {
    const body = {
      model: 'gpt-4o-mini',
      max_tokens: 64,
      messages: [{ role: 'user' as const, content: 'abandon me' }],
    };
    await abandon(400, (signal) =>
      openai(KEYS.chat).chat.completions.create(body, { signal, headers: SLOW_FIRST }),
    );
    const [span] = await spansOf('chat', 1);
    const cost = expectAbandoned(span!, body);
    await expectCharged('chat', cost);
    // A lower bound of what the provider bills for the call answered in full.
    const whole = await openai(KEYS.whole).chat.completions.create(body);
    const [billed] = await spansOf('whole', 1);
    expect(billed!.attributes['gen_ai.usage.output_tokens']).toBe(whole.usage!.completion_tokens);
    expect(cost).toBeLessThan(Number(billed!.attributes['gen_ai.usage.cost.amount']));
  });

  it('anthropic /v1/messages: the same', async () => {
    const body = {
      model: 'claude-haiku-4-5',
      max_tokens: 64,
      messages: [{ role: 'user' as const, content: 'abandon me too' }],
    };
    await abandon(400, (signal) =>
      anthropic(KEYS.messages).messages.create(body, { signal, headers: SLOW_FIRST }),
    );
    const [span] = await spansOf('messages', 1);
    const cost = expectAbandoned(span!, body);
    await expectCharged('messages', cost);
    const whole = await anthropic(KEYS.whole).messages.create(body);
    const [billed] = await spansOf('whole', 1);
    expect(billed!.attributes['gen_ai.usage.output_tokens']).toBe(whole.usage.output_tokens);
    expect(cost).toBeLessThan(Number(billed!.attributes['gen_ai.usage.cost.amount']));
  });

  it('route: the attempt carries the estimate, the route span says client_aborted', async () => {
    const body = {
      model: 'route:pair',
      max_tokens: 64,
      messages: [{ role: 'user' as const, content: 'route and abandon [sim:slow-first=4000]' }],
    };
    await abandon(400, (signal) => openai(KEYS.routed).chat.completions.create(body, { signal }));
    const spans = await spansOf('routed', 1);
    await waitFor(() => sdk.receiver.spans.some((span) => span.name === 'route pair'));
    const route = sdk.receiver.spans.find((span) => span.name === 'route pair')!;
    expect(spans).toHaveLength(1);
    expect(spans[0]!.parentSpanId).toBe(route.spanId);
    expect(route.attributes['error.type']).toBe('client_aborted');
    expect(route.status).toMatchObject({ code: 2, message: CLIENT_GONE });
    await expectCharged('routed', expectAbandoned(spans[0]!, body));
  });

  it('a stream abandoned before its first event: the input estimate too', async () => {
    const body = {
      model: 'gpt-4o-mini',
      stream: true as const,
      messages: [{ role: 'user' as const, content: 'stream later [sim:slow-first=4000]' }],
    };
    await abandon(400, async (signal) => {
      const stream = await openai(KEYS.stream).chat.completions.create(body, { signal });
      for await (const chunk of stream) void chunk;
    });
    const [span] = await spansOf('stream', 1);
    await expectCharged('stream', expectAbandoned(span!, body));
  });
});

describe('an answer cut by the app mid-body', () => {
  it('the estimate, its body unread (no usage in it yet)', async () => {
    const body = {
      model: 'half/gpt-4o-mini',
      max_tokens: 64,
      messages: [{ role: 'user' as const, content: 'half an answer' }],
    };
    await abandon(400, (signal) => openai(KEYS.half).chat.completions.create(body, { signal }));
    // The gateway stopped the upstream call.
    await waitFor(() => half.requests[0]?.aborted === true);
    expect(half.requests).toEqual([{ sentHead: true, aborted: true }]);
    const [span] = await spansOf('half', 1);
    await expectCharged('half', expectAbandoned(span!, body));
  });
});

describe('what is not estimated', () => {
  it('a stream the provider refused (400): no usage, nothing charged', async () => {
    const error = await openai(KEYS.refused)
      .chat.completions.create({
        model: 'gpt-4o-mini',
        stream: true,
        messages: [{ role: 'user', content: 'refuse this stream [sim:status=400]' }],
      })
      .catch((caught: unknown) => caught);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    const [span] = await spansOf('refused', 1);
    expect(usageOf(span!)).toEqual({
      type: '400',
      source: undefined,
      input: undefined,
      output: undefined,
    });
    await expectUncharged('refused');
  });
});

describe('a cascade the app abandons', () => {
  it("the answered voter keeps the provider's usage; the one in flight is estimated", async () => {
    // claude-haiku-4-5 answers at once; gpt-4o-mini takes 4 s.
    sim.setModel('gpt-4o-mini', { latency: SLOW });
    try {
      const body = {
        model: 'route:voters',
        max_tokens: 64,
        messages: [{ role: 'user' as const, content: 'vote then abandon' }],
      };
      await abandon(800, (signal) => openai(KEYS.plan).chat.completions.create(body, { signal }));
      const spans = await spansOf('plan', 2);
      const by = (model: string) =>
        spans.find((span) => span.attributes['gen_ai.request.model'] === model)!;
      const answered = by('claude-haiku-4-5');
      const abandoned = by('gpt-4o-mini');
      expect(answered.status.code ?? 0).not.toBe(2);
      expect(answered.attributes['error.type']).toBeUndefined();
      expect(answered.attributes['gen_ai.usage.cost.source']).toBe('local');
      expect(Number(answered.attributes['gen_ai.usage.output_tokens'])).toBeGreaterThan(0);
      const estimated = expectAbandoned(abandoned, body);
      await waitFor(() => sdk.receiver.spans.some((span) => span.name === 'route voters'));
      const route = sdk.receiver.spans.find((span) => span.name === 'route voters')!;
      expect(route.attributes['error.type']).toBe('client_aborted');
      // With the app gone, the plan calls no one else: no escalation to gpt-4o.
      const models = sdk.receiver.spans.map((span) => span.attributes['gen_ai.request.model']);
      expect(models).not.toContain('gpt-4o');
      const billed = Number(answered.attributes['gen_ai.usage.cost.amount']);
      expect(billed).toBeGreaterThan(0);
      await expectCharged('plan', billed + estimated);
    } finally {
      sim.setModel('gpt-4o-mini', { latency: { ttftMs: 0, perTokenMs: 0, sigma: 0 } });
    }
  });
  it('with both voters in flight: each is estimated and nothing escalates', async () => {
    sim.setModel('gpt-4o-mini', { latency: SLOW });
    sim.setModel('claude-haiku-4-5', { latency: SLOW });
    try {
      const body = {
        model: 'route:voters',
        max_tokens: 64,
        messages: [{ role: 'user' as const, content: 'both voters then abandon' }],
      };
      await abandon(400, (signal) =>
        openai(KEYS.planGone).chat.completions.create(body, { signal }),
      );
      await waitFor(() => sdk.receiver.spans.some((span) => span.name === 'route voters'));
      const spans = await spansOf('planGone', 2);
      const models = sdk.receiver.spans.map((span) => span.attributes['gen_ai.request.model']);
      expect(models).not.toContain('gpt-4o');
      expect(spans.map((span) => span.attributes['gen_ai.request.model']).sort()).toEqual([
        'claude-haiku-4-5',
        'gpt-4o-mini',
      ]);
      let total = 0;
      for (const span of spans) total += expectAbandoned(span, body);
      await expectCharged('planGone', total);
    } finally {
      const quick = { latency: { ttftMs: 0, perTokenMs: 0, sigma: 0 } };
      sim.setModel('gpt-4o-mini', quick);
      sim.setModel('claude-haiku-4-5', quick);
    }
  });
});
