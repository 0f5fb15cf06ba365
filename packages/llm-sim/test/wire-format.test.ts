import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLlmSim } from '../src/index.js';
import type { LlmSim } from '../src/index.js';
import { expectedChatUsage } from './support/usage.js';

let sim: LlmSim;
beforeAll(async () => {
  sim = await startLlmSim({ seed: 2 });
});
afterAll(async () => {
  await sim.close();
});

async function post(path: string, body: unknown): Promise<Response> {
  return fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** `data:` payloads of an SSE body, with their `event:` names. */
function frames(text: string): { event: string | undefined; data: string }[] {
  return text
    .split('\n\n')
    .filter((frame) => frame.trim() !== '')
    .map((frame) => {
      const lines = frame.split('\n');
      const event = lines.find((line) => line.startsWith('event: '))?.slice('event: '.length);
      const data = lines.find((line) => line.startsWith('data: '))?.slice('data: '.length) ?? '';
      return { event, data };
    });
}

describe('wire format, field for field', () => {
  it('chat stream with include_usage: role chunk, content chunks, finish chunk, usage chunk, [DONE]', async () => {
    const response = await post('/v1/chat/completions', {
      model: 'gpt-4o',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'What is 6 * 7? [sim:correct]' }],
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const list = frames(await response.text());
    expect(list[list.length - 1]).toEqual({ event: undefined, data: '[DONE]' });
    const chunks = list
      .slice(0, -1)
      .map((frame) => JSON.parse(frame.data) as Record<string, unknown>);
    const envelope = {
      id: chunks[0]?.['id'],
      object: 'chat.completion.chunk',
      created: chunks[0]?.['created'],
      model: 'gpt-4o-2024-08-06',
      service_tier: 'default',
      system_fingerprint: chunks[0]?.['system_fingerprint'],
    };
    expect(chunks[0]).toEqual({
      ...envelope,
      choices: [
        {
          index: 0,
          delta: { role: 'assistant', content: '', refusal: null },
          logprobs: null,
          finish_reason: null,
        },
      ],
      usage: null,
    });
    const pieces = chunks.slice(1, -2);
    expect(pieces.map((chunk) => chunk['choices'])).toEqual(
      ['The', ' answer', ' is', ' 42.'].map((content) => [
        { index: 0, delta: { content }, logprobs: null, finish_reason: null },
      ]),
    );
    expect(chunks[chunks.length - 2]).toEqual({
      ...envelope,
      choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }],
      usage: null,
    });
    expect(chunks[chunks.length - 1]).toEqual({
      ...envelope,
      choices: [],
      usage: expectedChatUsage('user: What is 6 * 7? [sim:correct]\n', 1, 5),
    });
  });

  it('responses stream of a function call: the typed event sequence', async () => {
    const response = await post('/v1/responses', {
      model: 'gpt-4o-mini',
      stream: true,
      input: 'Book a table in Turin',
      tools: [
        {
          type: 'function',
          name: 'book',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      ],
    });
    const list = frames(await response.text());
    const events = list.map((frame) => JSON.parse(frame.data) as Record<string, unknown>);
    for (const [index, frame] of list.entries()) {
      expect(events[index]?.['type']).toBe(frame.event);
      expect(events[index]?.['sequence_number']).toBe(index);
    }
    const types = list.map((frame) => frame.event);
    expect(types[0]).toBe('response.created');
    expect(types[1]).toBe('response.in_progress');
    expect(types[2]).toBe('response.output_item.added');
    expect(new Set(types.slice(3, -3))).toEqual(
      new Set(['response.function_call_arguments.delta']),
    );
    expect(types.slice(-3)).toEqual([
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const item = (events[events.length - 2] as { item: Record<string, unknown> }).item;
    expect(item).toEqual({
      id: item['id'],
      type: 'function_call',
      status: 'completed',
      arguments: '{"city":"Turin"}',
      call_id: item['call_id'],
      name: 'book',
    });
    expect(item['id']).toMatch(/^fc_[0-9a-f]{48}$/);
    expect(item['call_id']).toMatch(/^call_[A-Za-z0-9]{24}$/);
    const created = (events[0] as { response: Record<string, unknown> }).response;
    expect(created).toMatchObject({ status: 'in_progress', output: [], usage: null });
  });

  it('anthropic message, non-streamed', async () => {
    const response = await post('/v1/messages', {
      model: 'claude-haiku-4-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Reverse the word "lemon". [sim:correct]' }],
    });
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toEqual({
      id: body['id'],
      type: 'message',
      role: 'assistant',
      model: 'claude-haiku-4-5-20251001',
      content: [{ type: 'text', text: 'The word reversed is "nomel".' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: Math.ceil('user: Reverse the word "lemon". [sim:correct]\n'.length / 4) + 3,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
        output_tokens: Math.ceil('The word reversed is "nomel".'.length / 4),
        service_tier: 'standard',
      },
    });
    expect(response.headers.get('request-id')).toMatch(/^req_/);
  });
});
