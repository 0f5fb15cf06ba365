/**
 * Budgets and rate limits as the SDKs see them, through an in-process gateway in front of llm-sim:
 * the 429's machine-readable fields read by the real `openai` and `@anthropic-ai/sdk` clients,
 * and budget reservations released however a request ends.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccess, resolveConfig } from '../src/index.js';
import type { AccessLayer } from '../src/index.js';
import { windowOf } from '../src/access/index.js';
import { startSdkGateway, startSlowUpstream, waitFor } from './helpers.js';
import type { SdkGateway, SlowUpstream } from './helpers.js';

let sim: LlmSim;
let slow: SlowUpstream;
let access: AccessLayer;
let sdk: SdkGateway;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  sim = await startLlmSim({ seed: 3, timeoutHoldMs: 20_000 });
  slow = await startSlowUpstream(100, 100);
  const config = resolveConfig(
    {
      upstreams: {
        slow: { kind: 'openai-compatible', models: ['slow-model'], timeoutMs: 1000 },
      },
    },
    {
      upstreamFlags: [
        `openai=${sim.openaiBaseURL}`,
        `anthropic=${sim.anthropicBaseURL}`,
        `slow=${slow.baseURL}`,
      ],
      env: {},
    },
  );
  access = createAccess({
    budgets: [
      // Smaller than any request's estimate: every request of feature "tiny" is refused.
      { name: 'tiny-daily', scope: 'feature', match: 'tiny', period: 'day', limitUsd: 0.000001 },
      // Room for everything the tests send: its reservations are watched.
      { name: 'watched', scope: 'feature', match: 'watched', period: 'month', limitUsd: 100 },
    ],
    rateLimits: [{ name: 'one-per-minute', scope: 'user', match: 'hasty', requestsPerMinute: 1 }],
  });
  sdk = await startSdkGateway(config, { access });
  ({ openai, anthropic } = sdk);
});

afterAll(async () => {
  await sdk?.close();
  await sim?.close();
  await slow?.close();
});

interface BudgetFields {
  name: string;
  scope: string;
  id: string;
  period: string;
  limit_usd: number;
  spent_usd: number;
  reserved_usd: number;
  request_estimate_usd: number;
  resets_at: string;
  retry_after_seconds: number;
}

function expectBudgetFields(fields: BudgetFields | undefined, retryAfter: string | null): void {
  const resetsAt = windowOf('day', Date.now()).end;
  expect(fields).toMatchObject({
    name: 'tiny-daily',
    scope: 'feature',
    id: 'tiny',
    period: 'day',
    limit_usd: 0.000001,
    spent_usd: 0,
    reserved_usd: 0,
    resets_at: new Date(resetsAt).toISOString(),
  });
  expect(fields!.request_estimate_usd).toBeGreaterThan(0.000001);
  // The header and the body say the same wait, the seconds to the window's end.
  expect(fields!.retry_after_seconds).toBe(Number(retryAfter));
  const expected = (resetsAt - Date.now()) / 1000;
  expect(Math.abs(fields!.retry_after_seconds - expected)).toBeLessThan(120);
}

describe('429 bodies carry which budget or limit, machine-readable', () => {
  it('openai SDK: error.budget in the OpenAI error object, code budget_exceeded, retry-after', async () => {
    const error = await openai.chat.completions
      .create(
        { model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] },
        { headers: { 'x-modelmaxx-feature': 'tiny' } },
      )
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const rateLimit = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rateLimit.status).toBe(429);
    expect(rateLimit.code).toBe('budget_exceeded');
    expect(rateLimit.type).toBe('budget_exceeded');
    const body = rateLimit.error as { budget?: BudgetFields; message: string };
    expectBudgetFields(body.budget, rateLimit.headers.get('retry-after'));
    expect(body.message).toContain('budget "tiny-daily"');
  });

  it('anthropic SDK: error.error.budget in the Anthropic error object', async () => {
    const error = await anthropic.messages
      .create(
        { model: 'claude-haiku-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] },
        { headers: { 'x-modelmaxx-feature': 'tiny' } },
      )
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    const rateLimit = error as InstanceType<typeof Anthropic.RateLimitError>;
    expect(rateLimit.type).toBe('budget_exceeded');
    const body = rateLimit.error as { type: string; error: { budget?: BudgetFields } };
    expect(body.type).toBe('error');
    expectBudgetFields(body.error.budget, rateLimit.headers.get('retry-after'));
  });

  it('a rate limit: error.rate_limit names the limit, its subject and the wait', async () => {
    const ask = () =>
      openai.chat.completions.create({
        model: 'gpt-4o-mini',
        max_tokens: 20,
        user: 'hasty',
        messages: [{ role: 'user', content: 'Hi' }],
      });
    await ask();
    const error = (await ask().catch((caught: unknown) => caught)) as InstanceType<
      typeof OpenAI.RateLimitError
    >;
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.code).toBe('rate_limited');
    const fields = (error.error as { rate_limit?: Record<string, unknown> }).rate_limit;
    expect(fields).toMatchObject({
      name: 'one-per-minute',
      scope: 'user',
      id: 'hasty',
      kind: 'requests',
      per_minute: 1,
    });
    expect(fields!['retry_after_seconds']).toBe(Number(error.headers.get('retry-after')));
    expect(Date.parse(String(fields!['resets_at']))).toBeGreaterThan(Date.now());
  });
});

describe('budget reservations are released however a request ends', () => {
  const watched = { headers: { 'x-modelmaxx-feature': 'watched' } };
  const reserved = () =>
    access.budgetStatus().find((window) => window.budget === 'watched')?.reservedUsd ?? 0;
  async function released(): Promise<void> {
    await waitFor(() => access.inFlight === 0 && reserved() === 0);
  }

  it('success, plain and streamed; the spend is charged', async () => {
    await openai.chat.completions.create(
      { model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] },
      watched,
    );
    await released();
    const stream = await openai.chat.completions.create(
      {
        model: 'gpt-4o-mini',
        max_tokens: 50,
        stream: true,
        messages: [{ role: 'user', content: 'Hi' }],
      },
      watched,
    );
    for await (const chunk of stream) void chunk;
    await released();
    const spent = access.budgetStatus().find((window) => window.budget === 'watched')?.spentUsd;
    expect(spent).toBeGreaterThan(0);
  });

  it('an upstream error and an upstream timeout', async () => {
    const failed = await openai.chat.completions
      .create(
        {
          model: 'gpt-4o-mini',
          max_tokens: 50,
          messages: [{ role: 'user', content: 'Hi [sim:status=500]' }],
        },
        watched,
      )
      .catch((caught: unknown) => caught);
    expect(failed).toBeInstanceOf(OpenAI.InternalServerError);
    await released();
    const timedOut = await openai.chat.completions
      .create(
        { model: 'slow-model', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] },
        { headers: { ...watched.headers, 'x-slow-ms': '5000' } },
      )
      .catch((caught: unknown) => caught);
    expect((timedOut as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    await released();
  });

  it('a client that aborts mid-stream', async () => {
    const controller = new AbortController();
    const stream = await openai.chat.completions.create(
      {
        model: 'slow-model',
        max_tokens: 50,
        stream: true,
        messages: [{ role: 'user', content: 'Hi' }],
      },
      { ...watched, signal: controller.signal },
    );
    let chunks = 0;
    try {
      for await (const chunk of stream) {
        void chunk;
        chunks += 1;
        if (chunks === 2) controller.abort();
      }
    } catch {
      // The SDK may end the iteration or throw on abort.
    }
    expect(chunks).toBe(2);
    await released();
  });

  it('a body the gateway refuses after admission (a route with no candidate left)', async () => {
    const response = await fetch(`${openai.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-modelmaxx-feature': 'watched' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [null, 5] }),
    });
    await response.arrayBuffer();
    await released();
  });
});
