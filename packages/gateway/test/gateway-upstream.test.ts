/**
 * The upstream client (undici, src/upstream.ts): an https upstream, response headers merged as
 * node:http merges them, informational (1xx) heads before the answer, and an error answer passed
 * through as the upstream sent it.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { resolveConfig } from '../src/index.js';
import { mergedHeaders } from '../src/upstream-answer.js';
import { startSdkGateway } from './helpers.js';
import type { SdkGateway } from './helpers.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const fixture = (name: string) => readFileSync(new URL(`fixtures/${name}`, import.meta.url));

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

const COMPLETION = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
});

/** A raw HTTP/1.1 upstream that answers every request with `head` + `body` as bytes. */
async function rawUpstream(head: string, body: string): Promise<{ port: number; server: Server }> {
  const server = createNetServer((socket) => {
    let seen = '';
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      const end = seen.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(seen.slice(0, end))?.[1];
      if (end < 0 || seen.length < end + 4 + Number(length ?? 0)) return;
      seen = '';
      socket.write(`${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
  });
  return { port: await listen(server), server };
}

describe('upstream client', () => {
  let sim: LlmSim;
  const servers: Server[] = [];
  const gateways: SdkGateway[] = [];

  beforeAll(async () => {
    sim = await startLlmSim({ seed: 1 });
  });

  afterAll(async () => {
    for (const gateway of gateways) await gateway.close();
    for (const server of servers) server.close();
    await sim.close();
  });

  async function gatewayOn(baseURL: string): Promise<SdkGateway> {
    const config = resolveConfig({}, { upstreamFlags: [`openai=${baseURL}`], env: {} });
    const gateway = await startSdkGateway(config);
    gateways.push(gateway);
    return gateway;
  }

  it('calls an https upstream, whole and streamed', async () => {
    const cert = fixture('localhost-cert.pem');
    // The test's own CA trusted as the system's would be (no option of the gateway's).
    setDefaultCACertificates([...getCACertificates('default'), cert.toString('utf8')]);
    const front = createHttpsServer({ cert, key: fixture('localhost-key.pem') }, (req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (chunk: Buffer) => parts.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(parts);
        const url = new URL(`${sim.openaiBaseURL}${req.url!.replace(/^\/v1/, '')}`);
        const headers = { 'content-type': 'application/json', 'content-length': body.length };
        const call = httpRequest(url, { method: 'POST', headers }, (answer: IncomingMessage) => {
          res.writeHead(answer.statusCode!, { 'content-type': answer.headers['content-type']! });
          answer.pipe(res);
        });
        call.end(body);
      });
    });
    servers.push(front);
    const port = await listen(front);
    const { openai, chatSpans } = await gatewayOn(`https://localhost:${port}/v1`);
    const messages = [{ role: 'user' as const, content: 'What is 37 * 48?' }];
    const whole = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(whole.choices[0]?.message.content).toBeTruthy();
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBeTruthy();
    const spans = await chatSpans(2);
    expect(spans.map((span) => span.attributes['server.address'])).toEqual([
      'localhost',
      'localhost',
    ]);
  });

  it('merges repeated response headers as node:http does', async () => {
    const head =
      'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-type: text/plain\r\n' +
      'Set-Cookie: a=1\r\nset-cookie: b=2\r\nX-RateLimit-Remaining-Requests: 1\r\n' +
      'x-ratelimit-remaining-requests: 2\r\nretry-after: 3\r\nretry-after: 4\r\n' +
      'cookie: c=1\r\ncookie: d=2\r\nx-single: só\r\n__proto__: x\r\n';
    const { port, server } = await rawUpstream(head, COMPLETION);
    servers.push(server);
    const message = await new Promise<IncomingMessage>((resolve) => {
      httpRequest(
        `http://127.0.0.1:${port}/`,
        { method: 'POST', headers: { 'content-length': 0 } },
        (answer) => {
          answer.resume();
          resolve(answer);
        },
      ).end();
    });
    const merged = mergedHeaders(message.rawHeaders);
    expect(merged).toEqual({ ...message.headers });
    expect(merged['x-ratelimit-remaining-requests']).toBe('1, 2');
    expect(merged['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(merged['retry-after']).toBe('3');
  });

  it('skips a 1xx head and passes a 429 through with its body and retry-after', async () => {
    const early = await rawUpstream(
      'HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\n',
      COMPLETION,
    );
    const error = JSON.stringify({ error: { message: 'slow down', type: 'rate_limit' } });
    const limited = await rawUpstream(
      'HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 7\r\n' +
        'x-ratelimit-remaining-requests: 0\r\nx-ratelimit-remaining-requests: 5\r\n',
      error,
    );
    servers.push(early.server, limited.server);
    const body = JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'x' }],
    });
    const post = async (port: number) => {
      const { url } = await gatewayOn(`http://127.0.0.1:${port}/v1`);
      return fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    };
    const answered = await post(early.port);
    expect(answered.status).toBe(200);
    expect(await answered.text()).toBe(COMPLETION);
    const refused = await post(limited.port);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('7');
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0, 5');
    expect(await refused.text()).toBe(error);
  });
});
