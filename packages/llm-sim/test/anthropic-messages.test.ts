import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAnswer, generateTask, startLlmSim } from '../src/index.js';
import type { LlmSim } from '../src/index.js';

interface WireEvent {
  type: string;
  message?: { usage: { input_tokens: number; output_tokens: number } };
  usage?: { output_tokens: number };
}

let sim: LlmSim;
let client: Anthropic;

beforeAll(async () => {
  sim = await startLlmSim({ seed: 11 });
  client = new Anthropic({ baseURL: sim.anthropicBaseURL, apiKey: 'test', maxRetries: 0 });
});
afterAll(async () => {
  await sim.close();
});

describe('anthropic messages', () => {
  it('answers with content blocks, stop_reason and usage', async () => {
    const task = generateTask({ kind: 'arithmetic', difficulty: 'easy', seed: 1 });
    const { data, response } = await client.messages
      .create({
        model: 'claude-haiku-4-5',
        max_tokens: 256,
        messages: [{ role: 'user', content: `${task.prompt} [sim:correct]` }],
      })
      .withResponse();
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    expect(data.id).toMatch(/^msg_01[A-Za-z0-9]{22}$/);
    expect(data.type).toBe('message');
    expect(data.role).toBe('assistant');
    expect(data.model).toBe('claude-haiku-4-5-20251001');
    expect(data.stop_reason).toBe('end_turn');
    const block = data.content[0];
    expect(block?.type).toBe('text');
    const text = block?.type === 'text' ? block.text : '';
    expect(checkAnswer(task, text)).toBe(true);
    expect(data.usage).toEqual({
      input_tokens: Math.ceil(`user: ${task.prompt} [sim:correct]\n`.length / 4) + 3,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
      output_tokens: Math.ceil(text.length / 4),
      service_tier: 'standard',
    });
  });

  it('streams message_start / content blocks / message_delta / message_stop that finalMessage() assembles', async () => {
    const params = {
      model: 'claude-haiku-4-5',
      max_tokens: 512,
      messages: [{ role: 'user' as const, content: 'Explain the weather.' }],
    };
    const stream = client.messages.stream(params);
    const events: string[] = [];
    stream.on('streamEvent', (event) => events.push(event.type));
    const final = await stream.finalMessage();
    expect(events[0]).toBe('message_start');
    expect(events.slice(-2)).toEqual(['message_delta', 'message_stop']);
    expect(events).toContain('content_block_delta');
    const plain = await client.messages.create(params);
    expect(final.content).toEqual(plain.content);
    expect(final.usage.output_tokens).toBe(plain.usage.output_tokens);
    expect(final.usage.input_tokens).toBe(plain.usage.input_tokens);
    expect(final.stop_reason).toBe('end_turn');
  });

  it('splits usage between message_start (input) and message_delta (output) on the wire', async () => {
    const response = await fetch(`${sim.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model: 'claude-haiku-4-5',
        max_tokens: 100,
        stream: true,
        messages: [{ role: 'user', content: 'Hello' }],
      }),
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await response.text();
    const events = text
      .trim()
      .split('\n\n')
      .map((frame) => {
        const [eventLine, dataLine] = frame.split('\n');
        return {
          event: eventLine?.slice('event: '.length),
          data: JSON.parse(dataLine?.slice('data: '.length) ?? '') as WireEvent,
        };
      });
    for (const event of events) expect(event.data.type).toBe(event.event);
    const start = events[0]?.data.message;
    expect(start?.usage.input_tokens).toBeGreaterThan(0);
    expect(start?.usage.output_tokens).toBe(1);
    const delta = events.find((event) => event.event === 'message_delta')?.data;
    expect(Object.keys(delta?.usage ?? {})).toEqual(['output_tokens']);
    expect(delta?.usage?.output_tokens).toBeGreaterThan(1);
  });

  it('calls tools with tool_use blocks, streamed as input_json_delta', async () => {
    const tools: Anthropic.Tool[] = [
      {
        name: 'lookup_order',
        description: 'Look up an order',
        input_schema: {
          type: 'object',
          properties: { order_id: { type: 'string' }, include_items: { type: 'boolean' } },
          required: ['order_id'],
        },
      },
    ];
    const params = {
      model: 'claude-haiku-4-5',
      max_tokens: 512,
      tools,
      messages: [{ role: 'user' as const, content: 'Where is my order?' }],
    };
    const plain = await client.messages.create(params);
    expect(plain.stop_reason).toBe('tool_use');
    const use = plain.content.find((block) => block.type === 'tool_use');
    expect(use).toMatchObject({
      type: 'tool_use',
      name: 'lookup_order',
      input: { order_id: 'example', include_items: true },
    });
    expect(use?.id).toMatch(/^toolu_01/);
    const streamed = await client.messages.stream(params).finalMessage();
    expect(streamed.content.map((block) => block.type)).toEqual(['text', 'tool_use']);
    expect(streamed.content[1]).toMatchObject({
      name: 'lookup_order',
      input: { order_id: 'example', include_items: true },
    });
    expect(streamed.stop_reason).toBe('tool_use');
  });

  it('answers in text after a tool_result, and follows tool_choice', async () => {
    const tools: Anthropic.Tool[] = [
      {
        name: 'get_time',
        input_schema: { type: 'object', properties: { city: { type: 'string' } } },
      },
    ];
    const first = await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 300,
      tools,
      tool_choice: { type: 'any' },
      messages: [{ role: 'user', content: 'What time is it in Quito?' }],
    });
    const use = first.content.find((block) => block.type === 'tool_use');
    if (use?.type !== 'tool_use') throw new Error('expected tool_use');
    expect(use.input).toEqual({ city: 'Quito' });
    const second = await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 300,
      tools,
      messages: [
        { role: 'user', content: 'What time is it in Quito?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '09:30' }] },
      ],
    });
    expect(second.stop_reason).toBe('end_turn');
    expect(second.content.map((block) => block.type)).toEqual(['text']);
    const none = await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 300,
      tools,
      tool_choice: { type: 'none' },
      messages: [{ role: 'user', content: 'What time is it in Quito?' }],
    });
    expect(none.stop_reason).toBe('end_turn');
  });

  it('stops with max_tokens', async () => {
    const message = await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 3,
      messages: [{ role: 'user', content: 'Tell me a long story.' }],
    });
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(3);
  });

  it('reads and writes the prompt cache at cache_control breakpoints', async () => {
    const system: Anthropic.TextBlockParam[] = [
      { type: 'text', text: 'Policy text. '.repeat(400), cache_control: { type: 'ephemeral' } },
    ];
    const first = await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      system,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(first.usage.cache_creation_input_tokens).toBeGreaterThan(1024);
    expect(first.usage.cache_read_input_tokens).toBe(0);
    const second = await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      system,
      messages: [{ role: 'user', content: 'Hello again' }],
    });
    expect(second.usage.cache_read_input_tokens).toBe(first.usage.cache_creation_input_tokens);
    expect(second.usage.cache_creation_input_tokens).toBe(0);
    expect(second.usage.input_tokens).toBeLessThan(20);
  });

  it('maps errors to the SDK classes in the Anthropic error shape', async () => {
    const missing = await client.messages
      .create({ model: 'claude-nope', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
    expect((missing as InstanceType<typeof Anthropic.NotFoundError>).error).toMatchObject({
      type: 'error',
      error: { type: 'not_found_error', message: 'model: claude-nope' },
    });
    const limited = await client.messages
      .create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'hi [sim:status=429 retry-after=7]' }],
      })
      .catch((error: unknown) => error);
    expect(limited).toBeInstanceOf(Anthropic.RateLimitError);
    expect(
      (limited as InstanceType<typeof Anthropic.RateLimitError>).headers.get('retry-after'),
    ).toBe('7');
    const overloaded = await client.messages
      .create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'hi [sim:status=529]' }],
      })
      .catch((error: unknown) => error);
    expect(overloaded).toBeInstanceOf(Anthropic.APIError);
    expect((overloaded as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    const invalid = await client.messages
      .create({
        model: 'claude-haiku-4-5',
        messages: [{ role: 'user', content: 'hi' }],
      } as unknown as Anthropic.MessageCreateParamsNonStreaming)
      .catch((error: unknown) => error);
    expect(invalid).toBeInstanceOf(Anthropic.BadRequestError);
  });
});

describe('extended thinking', () => {
  it('returns a thinking block and thinking tokens, streamed as thinking_delta / signature_delta', async () => {
    const params = {
      model: 'claude-haiku-4-5',
      max_tokens: 4000,
      thinking: { type: 'enabled' as const, budget_tokens: 2000 },
      messages: [
        { role: 'user' as const, content: 'What is (12 * 34 + 100) * 3 - 7? [sim:correct]' },
      ],
    };
    const plain = await client.messages.create(params);
    expect(plain.content.map((block) => block.type)).toEqual(['thinking', 'text']);
    const thinking = plain.usage.output_tokens_details?.thinking_tokens ?? 0;
    expect(thinking).toBeGreaterThan(300);
    const text = plain.content[1]?.type === 'text' ? plain.content[1].text : '';
    expect(plain.usage.output_tokens).toBe(thinking + Math.ceil(text.length / 4));
    expect(checkAnswer('What is (12 * 34 + 100) * 3 - 7?', text)).toBe(true);

    const deltas: string[] = [];
    const stream = client.messages.stream(params);
    stream.on('streamEvent', (event) => {
      if (event.type === 'content_block_delta') deltas.push(event.delta.type);
    });
    const final = await stream.finalMessage();
    expect(final.content).toEqual(
      plain.content.map((block) =>
        block.type === 'thinking' ? { ...block, signature: expect.any(String) } : block,
      ),
    );
    expect(deltas.slice(0, 2)).toEqual(['thinking_delta', 'signature_delta']);
    expect(final.usage.output_tokens).toBe(plain.usage.output_tokens);
    await expect(
      client.messages.create({ ...params, thinking: { type: 'enabled', budget_tokens: 100 } }),
    ).rejects.toBeInstanceOf(Anthropic.BadRequestError);
  });
});
