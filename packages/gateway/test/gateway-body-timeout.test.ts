/**
 * A client that sends its request body slowly holds one of the gateway's request slots
 * (`limits.maxConcurrentRequests`) while it does: `limits.bodyTimeoutMs` bounds that time with a
 * 408 in the endpoint's shape and closes the connection, so a few slow senders cannot keep every
 * other app answered 503 for minutes (node:http's own backstop is 5 minutes).
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, resolveConfig } from '../src/index.js';
import type { Gateway } from '../src/index.js';
import { simUpstreams, waitFor } from './helpers.js';

const BODY_TIMEOUT_MS = 700;

let sim: LlmSim;
let gateway: Gateway;
let port: number;
let openai: OpenAI;

beforeAll(async () => {
  sim = await startLlmSim({ seed: 3 });
  const config = resolveConfig(
    { limits: { maxConcurrentRequests: 2, bodyTimeoutMs: BODY_TIMEOUT_MS } },
    simUpstreams(sim),
  );
  gateway = createGateway({
    config,
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const listening = await gateway.listen(0, '127.0.0.1');
  port = listening.port;
  openai = new OpenAI({ baseURL: `${listening.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await gateway?.close();
  await sim?.close();
});

interface SlowSender {
  readonly socket: Socket;
  /** Everything the gateway wrote back, once it closed the connection. */
  readonly answer: Promise<{ text: string; atMs: number }>;
}

/** Sends a request's head and the first `sent` bytes of a `declared`-byte body, then nothing. */
function slowSender(path: string, declared: number, sent: string, headers = ''): SlowSender {
  const started = performance.now();
  const socket = connect(port, '127.0.0.1');
  socket.write(
    `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n${headers}content-length: ${declared}\r\n\r\n${sent}`,
  );
  const answer = new Promise<{ text: string; atMs: number }>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.once('close', () =>
      resolve({
        text: Buffer.concat(chunks).toString('utf8'),
        atMs: performance.now() - started,
      }),
    );
  });
  return { socket, answer };
}

const chat = () =>
  openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hello' }],
  });

describe('a request body sent too slowly', () => {
  it('is answered 408 and its connection closed, freeing its slot for other apps', async () => {
    const senders = [
      slowSender('/v1/chat/completions', 300, '{"model":"gpt-4o-mini",'),
      slowSender('/v1/chat/completions', 300, '{"mod'),
    ];
    await waitFor(() => gateway.metrics().inFlight === 2);
    // Both slots are held by the slow senders: another app is refused for now.
    const busy = await chat().catch((error: unknown) => error);
    expect(busy).toBeInstanceOf(OpenAI.APIError);
    expect((busy as InstanceType<typeof OpenAI.APIError>).status).toBe(503);

    for (const { answer } of senders) {
      const { text, atMs } = await answer;
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
      expect(text.toLowerCase()).toContain('connection: close');
      const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as {
        error: { type: string; code: string; message: string };
      };
      expect(body.error.type).toBe('invalid_request_error');
      expect(body.error.code).toBe('request_timeout');
      expect(body.error.message).toContain(`within ${BODY_TIMEOUT_MS} ms`);
      expect(body.error.message).toContain('limits.bodyTimeoutMs');
      expect(atMs).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 50);
      expect(atMs).toBeLessThan(BODY_TIMEOUT_MS + 3000);
    }
    expect(gateway.metrics().inFlight).toBe(0);
    // The slots are free again: the same call is answered.
    const answered = await chat();
    expect(answered.choices[0]?.message.content).toBeTruthy();
  });

  it("answers in Anthropic's error shape on /v1/messages", async () => {
    const sender = slowSender(
      '/v1/messages',
      200,
      '{"model":',
      'anthropic-version: 2023-06-01\r\n',
    );
    const { text } = await sender.answer;
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as {
      type: string;
      error: { type: string; message: string };
    };
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toContain('request body not received');
  });

  it('lets a body that comes in pauses shorter than the bound through', async () => {
    const body = JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'in parts' }],
    });
    const parts = [body.slice(0, 10), body.slice(10, 30), body.slice(30)];
    const sender = slowSender('/v1/chat/completions', Buffer.byteLength(body), parts[0]!);
    for (const part of parts.slice(1)) {
      await new Promise((resolve) => setTimeout(resolve, BODY_TIMEOUT_MS / 4));
      sender.socket.write(part);
    }
    const answered = await new Promise<string>((resolve) => {
      let text = '';
      sender.socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        if (text.includes('"choices"') && text.trimEnd().endsWith('}')) resolve(text);
      });
    });
    sender.socket.destroy();
    expect(answered).toMatch(/^HTTP\/1\.1 200 /);
  });
});
