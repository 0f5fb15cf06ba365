/**
 * The stream relay (src/relay.ts) on a real node:http response: a chat stream whose app did not
 * ask for usage reaches it without the usage chunk, and the span's summary (model, id, finish
 * reason, usage) is read in full, whether the whole stream comes in one chunk (a fast upstream)
 * or event by event split anywhere. The relay scans events after they are sent; these check
 * that nothing is lost or reordered by that.
 */
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { relay } from '../src/relay.js';
import type { RelayResult } from '../src/relay.js';
import { UpstreamAnswer } from '../src/upstream-answer.js';
import { afterEach, describe, expect, it } from 'vitest';

const chunk = (body: object) => `data: ${JSON.stringify(body)}\n\n`;
const base = { id: 'chatcmpl-9', object: 'chat.completion.chunk', model: 'gpt-4o-mini-2024' };
const CONTENT = [
  chunk({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] }),
  chunk({ ...base, choices: [{ index: 0, delta: { content: '1776' } }] }),
  chunk({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }),
].join('');
const USAGE = chunk({
  ...base,
  choices: [],
  usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
});
const STREAM = `${CONTENT}${USAGE}data: [DONE]\n\n`;

let server: Server | undefined;

afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** Relays `pieces` (the upstream's body chunks) to a real app connection. */
async function relayed(
  pieces: string[],
  hideUsage: boolean,
): Promise<{ body: string; result: RelayResult }> {
  let result: Promise<RelayResult> | undefined;
  server = createServer((_request, response) => {
    const answer = new UpstreamAnswer(200, { 'content-type': 'text/event-stream' }, () => {});
    result = relay(answer, response, {
      wire: 'chat',
      upstreamWire: 'chat',
      hideUsage,
      includeUsage: false,
      extraHeaders: {},
      idleTimeoutMs: 10_000,
    });
    answer.flow();
    for (const piece of pieces) answer.push(Buffer.from(piece));
    answer.end();
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const body = await new Promise<string>((resolve, reject) => {
    const call = request({ port, method: 'POST', path: '/' }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (part: string) => (text += part));
      response.on('end', () => resolve(text));
    });
    call.on('error', reject);
    call.end();
  });
  return { body, result: await result! };
}

function expectSummary(result: RelayResult): void {
  expect(result.complete).toBe(true);
  expect(result.summary).toEqual({
    model: 'gpt-4o-mini-2024',
    id: 'chatcmpl-9',
    finishReasons: ['stop'],
    usage: { inputTokens: 12, outputTokens: 3 },
    // '1776': what an estimate would count had the usage chunk not come.
    outputChars: 4,
  });
}

describe('stream relay', () => {
  it('leaves the usage chunk out of a whole stream in one chunk, and reads all of it', async () => {
    const { body, result } = await relayed([STREAM], true);
    expect(body).toBe(`${CONTENT}data: [DONE]\n\n`);
    expectSummary(result);
  });

  it('does the same for a stream split inside events', async () => {
    const pieces: string[] = [];
    for (let at = 0; at < STREAM.length; at += 37) pieces.push(STREAM.slice(at, at + 37));
    const { body, result } = await relayed(pieces, true);
    expect(body).toBe(`${CONTENT}data: [DONE]\n\n`);
    expectSummary(result);
  });

  it('passes every byte through when the app asked for usage', async () => {
    const { body, result } = await relayed([CONTENT, USAGE, 'data: [DONE]\n\n'], false);
    expect(body).toBe(STREAM);
    expectSummary(result);
  });

  it('says a stream cut before its end ended early', async () => {
    const cut = CONTENT.indexOf('\n\n') + 20; // The first event and part of the second.
    const { body, result } = await relayed([CONTENT.slice(0, cut)], true);
    expect(body).toBe(CONTENT.slice(0, cut));
    expect(result.summary.model).toBe('gpt-4o-mini-2024');
    expect(result.summary.streamError).toBeDefined();
  });
});
