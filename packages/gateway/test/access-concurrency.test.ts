/**
 * `concurrentRequests` rate limits: how many requests a key, user or team may have in flight at
 * once (a stream counts until its last chunk), so one subject's long streams cannot take every
 * request slot of the gateway. Driven by the real `openai` SDK through an in-process gateway in
 * front of an upstream that streams slowly.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccess, resolveConfig } from '../src/index.js';
import type { AccessLayer } from '../src/index.js';
import { startSdkGateway, startSlowUpstream, waitFor } from './helpers.js';
import type { SdkGateway, SlowUpstream } from './helpers.js';

let slow: SlowUpstream;
let access: AccessLayer;
let sdk: SdkGateway;
let openai: OpenAI;

beforeAll(async () => {
  // Ten chunks 100 ms apart: each stream stays in flight for about a second.
  slow = await startSlowUpstream(100, 10);
  const config = resolveConfig(
    { upstreams: { slow: { kind: 'openai-compatible', models: ['slow-model'] } } },
    { upstreamFlags: [`slow=${slow.baseURL}`], env: {} },
  );
  access = createAccess({
    rateLimits: [{ name: 'two-at-once', scope: 'user', concurrentRequests: 2 }],
  });
  sdk = await startSdkGateway(config, { access });
  ({ openai } = sdk);
});

afterAll(async () => {
  await sdk?.close();
  await slow?.close();
});

/** A stream for `user`, its first chunk read; `rest()` reads it to the end. */
async function openStream(user: string) {
  const stream = await openai.chat.completions.create({
    model: 'slow-model',
    stream: true,
    user,
    messages: [{ role: 'user', content: 'tell me slowly' }],
  });
  const chunks = stream[Symbol.asyncIterator]();
  await chunks.next();
  return {
    stream,
    async rest(): Promise<string> {
      let text = '';
      for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) {
        text += next.value.choices[0]?.delta.content ?? '';
      }
      return text;
    },
  };
}

const plain = (user: string) =>
  openai.chat.completions.create({
    model: 'slow-model',
    user,
    messages: [{ role: 'user', content: 'quick one' }],
  });

interface ConcurrencyFields {
  name: string;
  scope: string;
  id: string;
  kind: string;
  concurrent_requests: number;
  retry_after_seconds: number;
}

describe('concurrentRequests', () => {
  it("refuses a subject's request beyond its limit with a 429 naming it; others pass", async () => {
    const first = await openStream('alice');
    const second = await openStream('alice');
    const refused = await plain('alice').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    const error = refused as InstanceType<typeof OpenAI.RateLimitError>;
    expect(error.code).toBe('rate_limited');
    expect(error.headers.get('retry-after')).toBe('1');
    const body = error.error as { rate_limit?: ConcurrencyFields; message: string };
    expect(body.rate_limit).toMatchObject({
      name: 'two-at-once',
      scope: 'user',
      id: 'alice',
      kind: 'concurrent',
      concurrent_requests: 2,
      retry_after_seconds: 1,
    });
    expect(body.message).toContain('2 requests in flight at most');
    // Another user's request is not held back by alice's.
    const bob = await plain('bob');
    expect(bob.choices[0]?.message.content).toBe('slow');

    // Once alice's streams ended, her next request passes.
    expect(await first.rest()).toContain('w9');
    expect(await second.rest()).toContain('w9');
    const after = await plain('alice');
    expect(after.choices[0]?.message.content).toBe('slow');
  });

  it('gives the place back when the app abandons a stream', async () => {
    const kept = await openStream('carol');
    const abandoned = await openStream('carol');
    await expect(plain('carol')).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    abandoned.stream.controller.abort();
    await waitFor(() => access.inFlight === 1);
    const after = await plain('carol');
    expect(after.choices[0]?.message.content).toBe('slow');
    await kept.rest();
    await waitFor(() => access.inFlight === 0);
  });
});

describe('a request that never settles', () => {
  it('gives its place back when its reservation expires, and a late settle does not give it twice', async () => {
    let now = Date.UTC(2026, 11, 7, 12);
    const layer = createAccess(
      {
        reservationTtlSeconds: 60,
        rateLimits: [{ name: 'one', scope: 'key', concurrentRequests: 1 }],
      },
      { clock: () => now },
    );
    const request = {
      principal: { keyId: 'k1' },
      candidates: ['gpt-4o-mini'],
      estimatedCostUsd: { 'gpt-4o-mini': 0.001 },
      estimatedTokens: 100,
      at: now,
    };
    const leaked = await layer.admit(request);
    expect(leaked.ok).toBe(true);
    expect((await layer.admit(request)).ok).toBe(false);
    now += 61_000;
    const next = await layer.admit(request);
    expect(next.ok).toBe(true);
    // The leaked one settles late: the place held by `next` stays held.
    const settlement = {
      model: 'gpt-4o-mini',
      costUsd: 0.001,
      inputTokens: 10,
      outputTokens: 5,
      ok: true,
    };
    if (leaked.ok) layer.settle(leaked, settlement);
    expect((await layer.admit(request)).ok).toBe(false);
    if (next.ok) layer.settle(next, settlement);
    expect((await layer.admit(request)).ok).toBe(true);
    await layer.close();
  });
});

describe('the concurrentRequests field', () => {
  it('is enough on its own; a count that is not a whole number from 1 is refused', () => {
    expect(() =>
      createAccess({ rateLimits: [{ name: 'c', scope: 'key', concurrentRequests: 4 }] }),
    ).not.toThrow();
    for (const bad of [0, 1.5, -1]) {
      expect(() =>
        createAccess({ rateLimits: [{ name: 'c', scope: 'key', concurrentRequests: bad }] }),
      ).toThrow(/concurrentRequests/);
    }
    expect(() => createAccess({ rateLimits: [{ name: 'c', scope: 'key' }] })).toThrow(
      /requestsPerMinute, tokensPerMinute or concurrentRequests/,
    );
  });
});
