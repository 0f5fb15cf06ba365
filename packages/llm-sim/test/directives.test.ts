import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFUSAL_TEXT, parseDirectiveList, startLlmSim } from '../src/index.js';
import type { LlmSim } from '../src/index.js';

let sim: LlmSim;
let openai: OpenAI;
let anthropic: Anthropic;
beforeAll(async () => {
  sim = await startLlmSim();
  openai = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: sim.anthropicBaseURL, apiKey: 'k', maxRetries: 0 });
});
afterAll(async () => {
  await sim.close();
});

const chat = (
  content: string,
  extra: Partial<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming> = {},
) =>
  openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content }],
    ...extra,
  });

describe('directives', () => {
  it('parses directive lists', () => {
    expect(parseDirectiveList('status=429 retry-after=2, times=1 length')).toEqual({
      status: 429,
      retryAfter: 2,
      times: 1,
      length: true,
    });
    expect(parseDirectiveList('timeout=250 slow-first=10 tokens=5 unknown')).toEqual({
      timeout: true,
      timeoutMs: 250,
      slowFirstMs: 10,
      tokens: 5,
    });
  });

  it('forces finish_reason length', async () => {
    const completion = await chat('Tell me about the sea [sim:length]');
    expect(completion.choices[0]?.finish_reason).toBe('length');
    const message = await anthropic.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Tell me about the sea [sim:length]' }],
    });
    expect(message.stop_reason).toBe('max_tokens');
  });

  it('returns empty output', async () => {
    const completion = await chat('Anything [sim:empty]');
    expect(completion.choices[0]?.message.content).toBe('');
    expect(completion.usage?.completion_tokens).toBe(0);
    const message = await anthropic.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Anything [sim:empty]' }],
    });
    expect(message.content).toEqual([]);
  });

  it('refuses in each provider shape, streamed too', async () => {
    const completion = await chat('Do something bad [sim:refusal]');
    expect(completion.choices[0]?.message).toEqual({
      role: 'assistant',
      content: null,
      refusal: REFUSAL_TEXT,
      annotations: [],
    });
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Do something bad [sim:refusal]' }],
      stream: true,
    });
    let refusal = '';
    for await (const chunk of stream) refusal += chunk.choices[0]?.delta.refusal ?? '';
    expect(refusal).toBe(REFUSAL_TEXT);
    const message = await anthropic.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Do something bad [sim:refusal]' }],
    });
    expect(message.stop_reason).toBe('refusal');
    expect(message.stop_details).toEqual({ type: 'refusal', category: null, explanation: null });
    const streamed = await anthropic.messages
      .stream({
        model: 'claude-haiku-4-5',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'Do something bad [sim:refusal]' }],
      })
      .finalMessage();
    expect(streamed.stop_reason).toBe('refusal');
    expect(streamed.stop_details).toEqual({ type: 'refusal', category: null, explanation: null });
  });

  it('returns invalid JSON when JSON was requested', async () => {
    const completion = await chat('What is 2 + 3? [sim:invalid-json]', {
      response_format: { type: 'json_object' },
    });
    const text = completion.choices[0]?.message.content ?? '';
    expect(text.startsWith('{')).toBe(true);
    expect(() => JSON.parse(text)).toThrow(SyntaxError);
  });

  it('calls a tool with arguments that do not parse', async () => {
    const completion = await chat('Weather in Oslo [sim:bad-tool-args]', {
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            parameters: { type: 'object', properties: { city: { type: 'string' } } },
          },
        },
      ],
    });
    const call = completion.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(() => JSON.parse(call.function.arguments)).toThrow(SyntaxError);
  });

  it('makes parallel tool calls, streamed one after the other or interleaved', async () => {
    const tools = ['get_weather', 'get_time'].map((name) => ({
      type: 'function' as const,
      function: { name, parameters: { type: 'object', properties: { city: { type: 'string' } } } },
    }));
    const ask = (directives: string) =>
      openai.chat.completions.create({
        model: 'gpt-4o-mini',
        stream: true,
        tools,
        tool_choice: 'required',
        messages: [{ role: 'user', content: `Weather and time in Oslo [sim:${directives}]` }],
      });
    const whole = await chat('Weather and time in Oslo [sim:parallel-tools=2]', {
      tools,
      tool_choice: 'required',
    });
    const calls = whole.choices[0]!.message.tool_calls!;
    expect(calls.map((call) => call.type === 'function' && call.function.name)).toEqual([
      'get_weather',
      'get_time',
    ]);
    expect(new Set(calls.map((call) => call.id)).size).toBe(2);
    for (const [directives, order] of [
      ['parallel-tools=2', [0, 1]],
      ['parallel-tools=2 interleave-tools', [0, 1, 0, 1]],
    ] as const) {
      const indices: number[] = [];
      const args = ['', ''];
      for await (const chunk of await ask(directives)) {
        for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
          if (indices.at(-1) !== call.index) indices.push(call.index);
          args[call.index] += call.function?.arguments ?? '';
        }
      }
      // Runs of chunks per call index: one run each, or alternating runs.
      expect(indices.slice(0, 4)).toEqual(order);
      expect(args.map((text) => JSON.parse(text) as unknown)).toEqual(
        calls.map((call) => call.type === 'function' && JSON.parse(call.function.arguments)),
      );
    }
  });

  it('takes directives from the x-sim-directives header', async () => {
    const error = await openai.chat.completions
      .create(
        { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'x-sim-directives': 'status=503 retry-after=9' } },
      )
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after')).toBe('9');
  });

  it('produces a reply of exactly N tokens', async () => {
    const completion = await chat('Say something [sim:tokens=37]');
    expect(completion.usage?.completion_tokens).toBe(37);
  });
});

describe('smaller endpoints', () => {
  it('streams unparseable tool arguments on the Responses API too', async () => {
    const response = await openai.responses.create({
      model: 'gpt-4o',
      input: 'Weather in Oslo [sim:bad-tool-args]',
      tools: [
        {
          type: 'function',
          name: 'get_weather',
          strict: false,
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      ],
    });
    const call = response.output[0];
    if (call?.type !== 'function_call') throw new Error('expected a function call');
    expect(() => JSON.parse(call.arguments)).toThrow(SyntaxError);
  });

  it('counts Anthropic tokens and answers health checks', async () => {
    const count = await anthropic.messages.countTokens({
      model: 'claude-haiku-4-5',
      messages: [{ role: 'user', content: 'Hello there' }],
    });
    expect(count).toEqual({ input_tokens: Math.ceil('user: Hello there\n'.length / 4) + 3 });
    const health = await fetch(`${sim.url}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok' });
    const models = await fetch(`${sim.url}/v1/models`, {
      headers: { 'anthropic-version': '2023-06-01' },
    });
    const list = (await models.json()) as {
      data: { type: string; id: string }[];
      has_more: boolean;
    };
    expect(list.has_more).toBe(false);
    expect(list.data[0]).toEqual({
      type: 'model',
      id: 'gpt-4o',
      display_name: 'gpt-4o',
      created_at: '2025-01-01T00:00:00Z',
    });
  });
});

describe('broken streams', () => {
  it('sends an error event mid-stream that each SDK raises', async () => {
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Tell me a story [sim:stream-error tokens=30]' }],
      stream: true,
    });
    let received = '';
    const error = await (async () => {
      for await (const chunk of stream) received += chunk.choices[0]?.delta.content ?? '';
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(received.length).toBeGreaterThan(0);
    expect(received.length).toBeLessThan(30 * 4);

    const responses = openai.responses.stream({
      model: 'gpt-4o',
      input: 'Story [sim:stream-error tokens=30]',
    });
    await expect(responses.finalResponse()).rejects.toBeInstanceOf(OpenAI.APIError);

    const messages = anthropic.messages.stream({
      model: 'claude-haiku-4-5',
      max_tokens: 200,
      messages: [{ role: 'user', content: 'Story [sim:stream-error tokens=30]' }],
    });
    const anthropicError = await messages.finalMessage().catch((caught: unknown) => caught);
    expect(anthropicError).toBeInstanceOf(Anthropic.APIError);
    expect((anthropicError as InstanceType<typeof Anthropic.APIError>).error).toEqual({
      type: 'error',
      error: { type: 'overloaded_error', message: 'Overloaded' },
    });
  });

  it('drops the connection part-way with abort', async () => {
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Tell me a story [sim:abort-after=3 tokens=30]' }],
      stream: true,
    });
    let chunks = 0;
    const error = await (async () => {
      for await (const _chunk of stream) chunks++;
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    expect(chunks).toBe(3);
  });

  it('ends the body cleanly part-way, without a terminator, with end-after', async () => {
    const chat = await fetch(`${sim.openaiBaseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Tell me a story [sim:end-after=3 tokens=30]' }],
        stream: true,
      }),
    });
    const events = (await chat.text()).split('\n\n').filter((event) => event !== '');
    expect(events).toHaveLength(3);
    expect(events.join('')).not.toContain('[DONE]');
    expect(events.join('')).not.toContain('"finish_reason":"stop"');

    const messages = await fetch(`${sim.anthropicBaseURL}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model: 'claude-haiku-4-5',
        max_tokens: 200,
        messages: [{ role: 'user', content: 'Tell me a story [sim:end-early tokens=30]' }],
        stream: true,
      }),
    });
    const text = await messages.text();
    expect(text).toContain('event: content_block_delta');
    expect(text).not.toContain('message_stop');
  });
});
