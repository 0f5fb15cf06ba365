import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAnswer, generateTask, startLlmSim } from '../src/index.js';
import type { LlmSim } from '../src/index.js';
import { expectedChatUsage } from './support/usage.js';

let sim: LlmSim;
let client: OpenAI;

/** A one-message chat request with `params` is refused with a 400. */
async function expectBadRequest(
  params: Partial<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming> & { model: string },
): Promise<void> {
  await expect(
    client.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], ...params }),
  ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
}

beforeAll(async () => {
  sim = await startLlmSim({ seed: 7 });
  client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'test', maxRetries: 0 });
});
afterAll(async () => {
  await sim.close();
});

describe('chat completions', () => {
  it('answers a plain request with the OpenAI wire shape and usage', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'What is 37 * 48?' }] })
      .withResponse();
    expect(data.id).toMatch(/^chatcmpl-[A-Za-z0-9]{29}$/);
    expect(data.object).toBe('chat.completion');
    expect(data.model).toBe('gpt-4o-2024-08-06');
    expect(response.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{24}$/);
    const [choice] = data.choices;
    expect(choice?.message.role).toBe('assistant');
    expect(choice?.message.refusal).toBeNull();
    expect(choice?.finish_reason).toBe('stop');
    const text = choice?.message.content ?? '';
    expect(/\d+/.test(text)).toBe(true);
    expect(data.usage).toEqual(
      expectedChatUsage('user: What is 37 * 48?\n', 1, Math.ceil(text.length / 4)),
    );
  });

  it('streams without usage unless include_usage is set', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Tell me something.' }],
      stream: true,
    });
    let text = '';
    let chunks = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      chunks++;
      expect('usage' in chunk).toBe(false);
      expect(chunk.choices).toHaveLength(1);
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(chunks).toBeGreaterThan(3);
    expect(finish).toBe('stop');
    const plain = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Tell me something.' }],
    });
    expect(text).toBe(plain.choices[0]?.message.content);
  });

  it('streams usage: null on every chunk and one final usage-only chunk with include_usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Reverse the word "piano".' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const usageChunks = chunks.filter((chunk) => chunk.usage !== null);
    expect(usageChunks).toHaveLength(1);
    const last = chunks[chunks.length - 1];
    expect(last).toBe(usageChunks[0]);
    expect(last?.choices).toEqual([]);
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk.usage).toBeNull();
      expect(chunk.choices).toHaveLength(1);
    }
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    expect(last?.usage?.completion_tokens).toBe(Math.ceil(text.length / 4));
    expect(last?.usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it('works with the SDK stream helper and include_usage', async () => {
    const stream = client.chat.completions.stream({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'What is 21 + 21?' }],
      stream_options: { include_usage: true },
    });
    const final = await stream.finalChatCompletion();
    const text = final.choices[0]?.message.content ?? '';
    expect(final.usage).toMatchObject({
      completion_tokens: Math.ceil(text.length / 4),
      prompt_tokens: 12,
    });
    expect(final.choices[0]?.finish_reason).toBe('stop');
  });

  it('streams tool-call deltas that the SDK reassembles', async () => {
    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          parameters: {
            type: 'object',
            properties: { city: { type: 'string' }, days: { type: 'integer' } },
            required: ['city', 'days'],
          },
        },
      },
    ];
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'What is the weather in Lisbon for 3 days?' },
    ];
    const stream = client.chat.completions.stream({ model: 'gpt-4o', messages, tools });
    const raw: OpenAI.Chat.ChatCompletionChunk[] = [];
    stream.on('chunk', (chunk) => raw.push(chunk));
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(call?.type).toBe('function');
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.id).toMatch(/^call_/);
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Lisbon', days: 3 });
    // First delta names the call, later ones carry only argument pieces.
    const deltas = raw.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? []);
    expect(deltas[0]).toMatchObject({
      index: 0,
      id: call.id,
      type: 'function',
      function: { name: 'get_weather', arguments: '' },
    });
    expect(deltas.length).toBeGreaterThan(2);
    for (const delta of deltas.slice(1)) {
      expect(delta.id).toBeUndefined();
      expect(delta.function?.name).toBeUndefined();
    }
    // After the tool result the model answers in text.
    const answer = await client.chat.completions.create({
      model: 'gpt-4o',
      tools,
      messages: [
        ...messages,
        final.choices[0]?.message as OpenAI.Chat.ChatCompletionMessageParam,
        { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' },
      ],
    });
    expect(answer.choices[0]?.finish_reason).toBe('stop');
    expect(answer.choices[0]?.message.tool_calls).toBeUndefined();
  });

  it('returns structured output that matches a json_schema', async () => {
    const task = generateTask({ kind: 'json', difficulty: 'hard', seed: 3 });
    const completion = await client.chat.completions.parse({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: `${task.prompt} [sim:correct]` }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'person',
          strict: true,
          schema: {
            type: 'object',
            additionalProperties: false,
            properties: {
              name: { type: 'string' },
              age: { type: 'integer' },
              city: { type: 'string' },
              email: { type: 'string' },
              tags: { type: 'array', items: { type: 'string' } },
            },
            required: ['name', 'age', 'city', 'email', 'tags'],
          },
        },
      },
    });
    const parsed = completion.choices[0]?.message.parsed as Record<string, unknown>;
    expect(parsed).toEqual({ ...(JSON.parse(task.answer) as object), tags: ['example'] });
    expect(checkAnswer(task, completion.choices[0]?.message.content)).toBe(true);
  });

  it('fills schemas with bounds, nullables, enums, nested objects and recursive $refs', async () => {
    const schema = {
      type: 'object',
      additionalProperties: false,
      required: ['score', 'level', 'note', 'kind', 'count', 'tree'],
      properties: {
        score: { type: 'number', minimum: 0, maximum: 1 },
        level: { type: 'integer', exclusiveMinimum: 100 },
        note: { anyOf: [{ type: 'string', minLength: 10 }, { type: 'null' }] },
        kind: { type: 'string', enum: ['alpha', 'beta'] },
        count: { const: 3 },
        tree: { $ref: '#/$defs/node' },
      },
      $defs: {
        node: {
          type: 'object',
          additionalProperties: false,
          required: ['label', 'children'],
          properties: {
            label: { type: 'string' },
            children: { type: 'array', items: { $ref: '#/$defs/node' } },
          },
        },
      },
    };
    const completion = await client.chat.completions.parse({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Rate item 42 please.' }],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'rating', strict: true, schema },
      },
    });
    expect(completion.choices[0]?.message.parsed).toEqual({
      score: 1,
      level: 101,
      note: 'examplexxx',
      kind: 'alpha',
      count: 3,
      tree: {
        label: 'example',
        children: [{ label: 'example', children: [] }],
      },
    });
  });

  it('answers json_object requests with JSON', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'What is 12 + 30? Reply in JSON. [sim:correct]' }],
      response_format: { type: 'json_object' },
    });
    expect(JSON.parse(completion.choices[0]?.message.content ?? '')).toEqual({ answer: 42 });
  });

  it('returns n choices and finish_reason length under max_completion_tokens', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Write a long story.' }],
      n: 3,
      max_completion_tokens: 4,
    });
    expect(completion.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    for (const choice of completion.choices) {
      expect(choice.finish_reason).toBe('length');
      expect((choice.message.content ?? '').length).toBeLessThanOrEqual(16);
    }
    expect(completion.usage?.completion_tokens).toBe(12);
  });

  it('reports reasoning tokens for reasoning models and rejects max_tokens there', async () => {
    const completion = await client.chat.completions.create({
      model: 'o3-mini',
      messages: [{ role: 'user', content: 'What is (12 * 34 + 100) * 3 - 7?' }],
    });
    const usage = completion.usage;
    const text = completion.choices[0]?.message.content ?? '';
    expect(usage?.completion_tokens_details?.reasoning_tokens).toBeGreaterThan(100);
    expect(usage?.completion_tokens).toBe(
      (usage?.completion_tokens_details?.reasoning_tokens ?? 0) + Math.ceil(text.length / 4),
    );
    const starved = await client.chat.completions.create({
      model: 'o3-mini',
      messages: [{ role: 'user', content: 'What is (12 * 34 + 100) * 3 - 7?' }],
      max_completion_tokens: 20,
    });
    expect(starved.choices[0]?.finish_reason).toBe('length');
    expect(starved.choices[0]?.message.content).toBe('');
    expect(starved.usage?.completion_tokens_details?.reasoning_tokens).toBe(20);
    await expectBadRequest({ model: 'o3-mini', max_tokens: 10 });
  });

  it('caches repeated long prompt prefixes in 128-token blocks', async () => {
    const system = 'You are a careful assistant. '.repeat(200); // ~1450 tokens
    const ask = (question: string) =>
      client.chat.completions.create({
        model: 'gpt-4o',
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: question },
        ],
      });
    const first = await ask('What is 2 + 2?');
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    const second = await ask('What is 3 + 3?');
    const cached = second.usage?.prompt_tokens_details?.cached_tokens ?? 0;
    expect(cached).toBeGreaterThanOrEqual(1024);
    expect(cached % 128).toBe(0);
    expect(cached).toBeLessThanOrEqual(second.usage?.prompt_tokens ?? 0);
  });

  it('rejects stream_options without stream and out-of-range temperature, like the API', async () => {
    const error = await client.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
        stream_options: { include_usage: true },
      })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('stream_options');
    await expectBadRequest({ model: 'gpt-4o-mini', temperature: 3 });
  });

  it('lists the models', async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(sim.models().map((model) => model.name));
  });
});
