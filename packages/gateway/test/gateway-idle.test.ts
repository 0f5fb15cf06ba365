/**
 * The stream idle timeout: an upstream whose answer goes silent is cut after
 * `streamIdleTimeoutMs`. After part of the answer reached the app, the app gets an error event in
 * its own format (openai and anthropic SDKs, translated or not) and the span says
 * `stream_idle_timeout`; before anything reached it, a `route:` policy falls back, else a 504.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/index.js';
import { startSdkGateway, waitFor } from './helpers.js';
import type { SdkGateway } from './helpers.js';

const IDLE_MS = 400;

interface Seen {
  model: string;
  stall: string | undefined;
  closedEarly: boolean;
}

/**
 * An OpenAI-compatible upstream whose streams stall on request: `x-stall: before` sends the
 * headers and then nothing, `after` one chunk and then nothing, `before-once` stalls only the
 * first such request; otherwise a short stream.
 */
async function startStallingUpstream(): Promise<{ baseURL: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  let stalledOnce = false;
  const server = createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on('data', (chunk: Buffer) => parts.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { model: string };
      const stallHeader = request.headers['x-stall'];
      const entry: Seen = {
        model: body.model,
        stall: typeof stallHeader === 'string' ? stallHeader : undefined,
        closedEarly: false,
      };
      seen.push(entry);
      response.on('close', () => {
        if (!response.writableFinished) entry.closedEarly = true;
      });
      const chunk = (delta: Record<string, unknown>, finish: string | null) =>
        `data: ${JSON.stringify({
          id: 'chatcmpl-stall',
          object: 'chat.completion.chunk',
          created: 1,
          model: body.model,
          choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        })}\n\n`;
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.flushHeaders();
      let stall = entry.stall;
      if (stall === 'before-once') {
        stall = stalledOnce ? undefined : 'before';
        stalledOnce = true;
      }
      if (stall === 'before') return;
      response.write(chunk({ role: 'assistant', content: 'partial ' }, null));
      if (stall === 'after') return;
      response.write(chunk({ content: 'answer' }, null));
      response.write(chunk({}, 'stop'));
      response.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return { baseURL: `http://127.0.0.1:${port}/v1`, seen, server };
}

let upstream: Awaited<ReturnType<typeof startStallingUpstream>>;
let sdk: SdkGateway;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  upstream = await startStallingUpstream();
  const config = resolveConfig(
    {
      upstreams: {
        stall: {
          kind: 'openai-compatible',
          baseURL: upstream.baseURL,
          models: ['stall-*'],
          streamIdleTimeoutMs: IDLE_MS,
        },
      },
      policies: [
        {
          name: 'idle',
          exploration: 0,
          candidates: [
            { model: 'stall-a', client: 'stall' },
            { model: 'stall-b', client: 'stall' },
          ],
          fallback: { maxAttempts: 2, cooldownMs: 50, timeoutMs: 10_000 },
        },
      ],
    },
    { env: {} },
  );
  sdk = await startSdkGateway(config);
  ({ openai, anthropic } = sdk);
});

afterAll(async () => {
  await sdk?.close();
  await new Promise<void>((resolve) => {
    upstream?.server.close(() => resolve());
    upstream?.server.closeAllConnections();
  });
});

beforeEach(async () => {
  await sdk.reset();
  upstream.seen.length = 0;
});

const spans = (count: number) => sdk.chatSpans(count);

describe('stream idle timeout', () => {
  it('the default is 300 s, per upstream or under limits', () => {
    const config = resolveConfig(
      { upstreams: { a: { kind: 'openai' }, b: { kind: 'openai', streamIdleTimeoutMs: 5000 } } },
      { env: {} },
    );
    expect(config.upstreams.get('a')!.streamIdleTimeoutMs).toBe(300_000);
    expect(config.upstreams.get('b')!.streamIdleTimeoutMs).toBe(5000);
    const limited = resolveConfig(
      { upstreams: { a: { kind: 'openai' } }, limits: { streamIdleTimeoutMs: 9000 } },
      { env: {} },
    );
    expect(limited.upstreams.get('a')!.streamIdleTimeoutMs).toBe(9000);
  });

  it('openai SDK: a stream that goes silent ends with an error event; the span says so', async () => {
    const started = Date.now();
    const stream = await openai.chat.completions.create(
      { model: 'stall-a', stream: true, messages: [{ role: 'user', content: 'Hi' }] },
      { headers: { 'x-stall': 'after' } },
    );
    let text = '';
    const read = (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })();
    const error = (await read.catch((caught: unknown) => caught)) as InstanceType<
      typeof OpenAI.APIError
    >;
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error.message).toContain('sent nothing for 0.4 s');
    expect(text).toBe('partial ');
    expect(Date.now() - started).toBeLessThan(10_000);
    const [span] = await spans(1);
    expect(span!.attributes['error.type']).toBe('stream_idle_timeout');
    expect(span!.status.code).toBe(2);
    await waitFor(() => upstream.seen[0]?.closedEarly === true);
  });

  it('anthropic SDK (translated from the OpenAI upstream): an Anthropic error event', async () => {
    const stream = anthropic.messages.stream(
      { model: 'stall-a', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] },
      { headers: { 'x-stall': 'after' } },
    );
    let text = '';
    stream.on('text', (delta) => (text += delta));
    const error = (await stream.finalMessage().catch((caught: unknown) => caught)) as Error;
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(error.message).toContain('sent nothing for 0.4 s');
    expect(text).toBe('partial ');
    const [span] = await spans(1);
    expect(span!.attributes['error.type']).toBe('stream_idle_timeout');
  });

  it('openai SDK on /v1/responses (translated from chat): response.failed, then a numbered error event', async () => {
    const stream = await openai.responses.create(
      { model: 'stall-a', stream: true, input: 'Hi', temperature: 0.2 },
      { headers: { 'x-stall': 'after' } },
    );
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    const read = (async () => {
      for await (const event of stream) events.push(event);
    })();
    const error = (await read.catch((caught: unknown) => caught)) as Error;
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error.message).toContain('sent nothing for 0.4 s');
    const last = events.at(-1);
    expect(last?.type).toBe('response.failed');
    const failed = last?.type === 'response.failed' ? last.response : undefined;
    expect([failed?.status, failed?.temperature]).toEqual(['failed', 0.2]);
    expect(failed?.error?.message).toContain('sent nothing for 0.4 s');
    expect(events.map((event) => event.sequence_number)).toEqual(events.map((_, index) => index));
    const [span] = await spans(1);
    expect(span!.attributes['error.type']).toBe('stream_idle_timeout');
  });

  it('silent before the first byte: a route: policy falls back to the next candidate', async () => {
    const { data: stream, response } = await openai.chat.completions
      .create(
        { model: 'route:idle', stream: true, messages: [{ role: 'user', content: 'Hi' }] },
        { headers: { 'x-stall': 'before-once' } },
      )
      .withResponse();
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('partial answer');
    expect(upstream.seen).toHaveLength(2);
    expect(response.headers.get('x-modelmaxx-model')).toBe(upstream.seen[1]!.model);
    const [failed, answered] = await spans(2);
    expect(failed!.attributes['error.type']).toBe('stream_idle_timeout');
    expect(failed!.attributes['gen_ai.request.model']).toBe(upstream.seen[0]!.model);
    expect(answered!.attributes['error.type']).toBeUndefined();
    expect(answered!.attributes['modelmaxx.route.attempt']).toBe(2);
  });

  it('silent before the first byte without a fallback: a clean 504 in the endpoint shape', async () => {
    const error = (await openai.chat.completions
      .create(
        { model: 'stall-a', stream: true, messages: [{ role: 'user', content: 'Hi' }] },
        { headers: { 'x-stall': 'before' } },
      )
      .catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.APIError>;
    expect(error.status).toBe(504);
    expect(error.type).toBe('timeout');
    expect(error.message).toContain('sent nothing for 0.4 s');
    const anthropicError = (await anthropic.messages
      .create(
        {
          model: 'stall-a',
          max_tokens: 20,
          stream: true,
          messages: [{ role: 'user', content: 'Hi' }],
        },
        { headers: { 'x-stall': 'before' } },
      )
      .catch((caught: unknown) => caught)) as InstanceType<typeof Anthropic.APIError>;
    expect(anthropicError.status).toBe(504);
    expect((anthropicError.error as { type: string }).type).toBe('error');
    const recorded = await spans(2);
    expect(recorded.map((span) => span.attributes['error.type'])).toEqual([
      'stream_idle_timeout',
      'stream_idle_timeout',
    ]);
  });
});
