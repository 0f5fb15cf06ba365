import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAnswer, embeddingOf, generateTask, startLlmSim } from '../src/index.js';
import type { LlmSim } from '../src/index.js';

let sim: LlmSim;
let client: OpenAI;

beforeAll(async () => {
  sim = await startLlmSim({ seed: 5 });
  client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'test', maxRetries: 0 });
});
afterAll(async () => {
  await sim.close();
});

describe('responses API', () => {
  it('answers plain requests with output items and usage details', async () => {
    const task = generateTask({ kind: 'reverse', difficulty: 'easy', seed: 2 });
    const response = await client.responses.create({
      model: 'gpt-4o',
      instructions: 'Be brief.',
      input: `${task.prompt} [sim:correct]`,
    });
    expect(response.id).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(response.object).toBe('response');
    expect(response.status).toBe('completed');
    expect(response.model).toBe('gpt-4o-2024-08-06');
    expect(checkAnswer(task, response.output_text)).toBe(true);
    expect(response.output).toHaveLength(1);
    expect(response.output[0]).toMatchObject({
      type: 'message',
      role: 'assistant',
      status: 'completed',
    });
    expect(response.usage).toEqual({
      input_tokens: response.usage?.input_tokens,
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens: Math.ceil(response.output_text.length / 4),
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens:
        (response.usage?.input_tokens ?? 0) + Math.ceil(response.output_text.length / 4),
    });
    expect(response.usage?.input_tokens).toBeGreaterThan(5);
  });

  it('adds a reasoning item and reasoning tokens for reasoning models', async () => {
    const response = await client.responses.create({
      model: 'o3-mini',
      input: 'Summarise the plan.',
      reasoning: { effort: 'high' },
    });
    expect(response.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    const reasoning = response.usage?.output_tokens_details.reasoning_tokens ?? 0;
    expect(reasoning).toBeGreaterThan(250);
    expect(response.usage?.output_tokens).toBe(
      reasoning + Math.ceil(response.output_text.length / 4),
    );
  });

  it('streams a reasoning model: reasoning item first, same result as the plain call', async () => {
    const params = { model: 'o3-mini', input: 'What is (15 * 15 + 110) * 4 - 321?' };
    const streamed = await client.responses.stream(params).finalResponse();
    const plain = await client.responses.create(params);
    expect(streamed.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(streamed.output_text).toBe(plain.output_text);
    expect(streamed.usage).toEqual(plain.usage);
  });

  it('streams typed events that the SDK assembles into the same response', async () => {
    const stream = client.responses.stream({ model: 'gpt-4o-mini', input: 'Describe the sea.' });
    const types: string[] = [];
    const sequence: number[] = [];
    let deltas = '';
    stream.on('event', (event) => {
      types.push(event.type);
      sequence.push(event.sequence_number);
      if (event.type === 'response.output_text.delta') deltas += event.delta;
    });
    const final = await stream.finalResponse();
    expect(types.slice(0, 4)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
    ]);
    expect(types.slice(-4)).toEqual([
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(sequence).toEqual(sequence.map((_, index) => index));
    expect(final.output_text).toBe(deltas);
    expect(final.usage?.output_tokens).toBe(Math.ceil(deltas.length / 4));
    const plain = await client.responses.create({
      model: 'gpt-4o-mini',
      input: 'Describe the sea.',
    });
    expect(plain.output_text).toBe(final.output_text);
  });

  it('streams function calls and ends incomplete at max_output_tokens', async () => {
    const stream = client.responses.stream({
      model: 'gpt-4o',
      input: [{ role: 'user', content: 'Find flights to Osaka' }],
      tools: [
        {
          type: 'function',
          name: 'search_flights',
          strict: true,
          parameters: {
            type: 'object',
            properties: { destination: { type: 'string' } },
            required: ['destination'],
            additionalProperties: false,
          },
        },
      ],
    });
    const final = await stream.finalResponse();
    const call = final.output[0];
    expect(call?.type).toBe('function_call');
    if (call?.type !== 'function_call') throw new Error('expected a function call');
    expect(call.name).toBe('search_flights');
    expect(JSON.parse(call.arguments)).toEqual({ destination: 'Osaka' });

    const incomplete = await client.responses.create({
      model: 'gpt-4o',
      input: 'Write an essay.',
      max_output_tokens: 16,
    });
    expect(incomplete.status).toBe('incomplete');
    expect(incomplete.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(incomplete.usage?.output_tokens).toBe(16);
  });

  it('returns a refusal content part with the refusal directive', async () => {
    const response = await client.responses.create({
      model: 'gpt-4o',
      input: 'Do it [sim:refusal]',
    });
    const message = response.output[0];
    if (message?.type !== 'message') throw new Error('expected a message');
    expect(message.content[0]).toEqual({
      type: 'refusal',
      refusal: "I'm sorry, but I can't help with that request.",
    });
  });
});

describe('embeddings', () => {
  it('returns float embeddings when asked', async () => {
    const result = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['hello world', 'goodbye'],
      encoding_format: 'float',
      dimensions: 8,
    });
    expect(result.object).toBe('list');
    expect(result.model).toBe('text-embedding-3-small');
    expect(result.data.map((item) => item.index)).toEqual([0, 1]);
    expect(result.data[0]?.embedding).toEqual(Array.from(embeddingOf('hello world', 8)));
    const norm = Math.hypot(...(result.data[0]?.embedding ?? []));
    expect(norm).toBeCloseTo(1, 5);
    expect(result.usage).toEqual({ prompt_tokens: 3 + 2, total_tokens: 5 });
  });

  it('serves base64, which the SDK requests by default and decodes', async () => {
    const response = await fetch(`${sim.openaiBaseURL}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'text-embedding-3-small',
        input: 'hello world',
        encoding_format: 'base64',
      }),
    });
    const body = (await response.json()) as { data: { embedding: string }[] };
    expect(typeof body.data[0]?.embedding).toBe('string');
    const decoded = new Float32Array(
      new Uint8Array(Buffer.from(body.data[0]?.embedding ?? '', 'base64')).buffer,
    );
    expect(decoded).toHaveLength(1536);

    const viaSdk = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: 'hello world',
    });
    expect(Array.from(viaSdk.data[0]?.embedding ?? [])).toEqual(Array.from(decoded));
  });

  it('rejects chat models on the embeddings endpoint and embedding models on chat', async () => {
    await expect(client.embeddings.create({ model: 'gpt-4o', input: 'x' })).rejects.toBeInstanceOf(
      OpenAI.BadRequestError,
    );
    await expect(
      client.chat.completions.create({
        model: 'text-embedding-3-small',
        messages: [{ role: 'user', content: 'x' }],
      }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });
});
