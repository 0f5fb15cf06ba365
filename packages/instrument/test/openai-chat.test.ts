import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import * as openaiModule from 'openai';
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { instrumentOpenAI } from '../src/index.js';
import { openaiUsageAttributes, serverAttributesOf, streamedResponse } from './support/expected.js';
import { useTestBed, waitFor } from './support/tracing.js';

const bed = useTestBed({ seed: 7, timeoutHoldMs: 2_000 });
let client: OpenAI;

beforeAll(() => {
  expect(instrumentOpenAI(openaiModule)).toBe(true);
  client = new OpenAI({ baseURL: bed.sim.openaiBaseURL, apiKey: 'test-key', maxRetries: 0 });
});

const chatSpans = () => bed.tracing.spans().filter((span) => span.name.startsWith('chat '));

function base(model: string, stream: boolean) {
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': model,
    'gen_ai.request.stream': stream,
    ...serverAttributesOf(bed.sim.openaiBaseURL),
  };
}

describe('chat completions', () => {
  it('records a plain call with usage, cost and request parameters', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Say something about spans.' }],
      max_completion_tokens: 200,
      temperature: 0.3,
      top_p: 0.9,
      frequency_penalty: 0.1,
      presence_penalty: 0.2,
      stop: ['###'],
      seed: 42,
      n: 1,
    });
    await waitFor(() => chatSpans().length === 1);
    const [span] = chatSpans();
    expect(span?.name).toBe('chat gpt-4o');
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.attributes).toEqual({
      ...base('gpt-4o', false),
      'gen_ai.request.max_tokens': 200,
      'gen_ai.request.temperature': 0.3,
      'gen_ai.request.top_p': 0.9,
      'gen_ai.request.frequency_penalty': 0.1,
      'gen_ai.request.presence_penalty': 0.2,
      'gen_ai.request.stop_sequences': ['###'],
      'gen_ai.request.seed': 42,
      'gen_ai.response.model': completion.model,
      'gen_ai.response.id': completion.id,
      'gen_ai.response.finish_reasons': completion.choices.map((choice) => choice.finish_reason),
      ...openaiUsageAttributes(completion.model, completion.usage!),
    });
  });

  it('records several choices', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Two takes please.' }],
      n: 2,
    });
    expect(completion.choices).toHaveLength(2);
    await waitFor(() => chatSpans().length === 1);
    expect(chatSpans()[0]?.attributes).toEqual({
      ...base('gpt-4o-mini', false),
      'gen_ai.request.choice.count': 2,
      'gen_ai.response.model': completion.model,
      'gen_ai.response.id': completion.id,
      'gen_ai.response.finish_reasons': completion.choices.map((choice) => choice.finish_reason),
      ...openaiUsageAttributes(completion.model, completion.usage!),
    });
  });

  it('records reasoning tokens (o3-mini) and prices them', async () => {
    const completion = await client.chat.completions.create({
      model: 'o3-mini',
      messages: [{ role: 'user', content: 'Prove that 17 is prime.' }],
    });
    expect(completion.usage?.completion_tokens_details?.reasoning_tokens).toBeGreaterThan(0);
    await waitFor(() => chatSpans().length === 1);
    expect(chatSpans()[0]?.attributes).toEqual({
      ...base('o3-mini', false),
      'gen_ai.response.model': completion.model,
      'gen_ai.response.id': completion.id,
      'gen_ai.response.finish_reasons': ['stop'],
      ...openaiUsageAttributes(completion.model, completion.usage!),
    });
  });

  it('keeps .withResponse() and .asResponse() working', async () => {
    const { data, response, request_id } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'with response' }] })
      .withResponse();
    expect(response.status).toBe(200);
    expect(data.id).toMatch(/^chatcmpl-/);
    expect(request_id === null || typeof request_id === 'string').toBe(true);
    const raw = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'raw response' }] })
      .asResponse();
    const body = (await raw.json()) as { id: string };
    expect(body.id).toMatch(/^chatcmpl-/);
    await waitFor(() => chatSpans().length === 2);
    const [parsed, rawSpan] = chatSpans();
    expect(parsed?.attributes['gen_ai.response.id']).toBe(data.id);
    // A raw response is never parsed by the SDK: the span ends with the request attributes only.
    expect(rawSpan?.attributes).toEqual(base('gpt-4o-mini', false));
  });

  it('streams without caller usage: adds include_usage, hides the usage chunk, records usage', async () => {
    const prompt = 'Stream me a short answer.';
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: prompt }],
      stream: true,
    });
    expect(typeof stream.controller.abort).toBe('function');
    expect(typeof stream.tee).toBe('function');
    expect(typeof stream.toReadableStream).toBe('function');
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((chunk) => chunk.choices.length > 0)).toBe(true);
    expect(chunks.every((chunk) => !('usage' in chunk))).toBe(true);
    await waitFor(() => chatSpans().length === 1);

    // The same request, with usage asked for, against a fresh simulator with the same seed.
    const twin = await startLlmSim({ seed: 7, latencyScale: 0 });
    try {
      const twinClient = new OpenAI({ baseURL: twin.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
      const twinStream = await twinClient.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: prompt }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let usage: OpenAI.Completions.CompletionUsage | undefined | null;
      for await (const chunk of twinStream) if (chunk.usage) usage = chunk.usage;
      const span = chatSpans()[0];
      expect(span?.attributes).toEqual({
        ...base('gpt-4o', true),
        ...streamedResponse(
          chunks[0]?.model,
          chunks[0]?.id,
          ['stop'],
          openaiUsageAttributes(chunks[0]!.model, usage!),
        ),
      });
      expect(span?.attributes['gen_ai.response.time_to_first_chunk']).toBeGreaterThanOrEqual(0);
    } finally {
      await twin.close();
    }
  });

  it('streams with caller usage: the app keeps its usage chunk', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'usage please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const usageChunk = chunks.find((chunk) => chunk.choices.length === 0 && chunk.usage);
    expect(usageChunk).toBeDefined();
    await waitFor(() => chatSpans().length === 1);
    expect(chatSpans()[0]?.attributes).toEqual({
      ...base('gpt-4o-mini', true),
      ...streamedResponse(
        usageChunk!.model,
        usageChunk!.id,
        ['stop'],
        openaiUsageAttributes(usageChunk!.model, usageChunk!.usage!),
      ),
    });
  });

  it('records tool calls', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            parameters: {
              type: 'object',
              properties: { city: { type: 'string' } },
              required: ['city'],
            },
          },
        },
      ],
    });
    const call = completion.choices[0]?.message.tool_calls?.[0];
    expect(call?.type).toBe('function');
    await waitFor(() => chatSpans().length === 1);
    const span = chatSpans()[0];
    expect(span?.attributes).toEqual({
      ...base('gpt-4o', false),
      'gen_ai.response.model': completion.model,
      'gen_ai.response.id': completion.id,
      'gen_ai.response.finish_reasons': ['tool_calls'],
      ...openaiUsageAttributes(completion.model, completion.usage!),
    });
    const names = span?.events.map((event) => event.attributes?.['gen_ai.evaluation.name']);
    expect(names).toContain('modelmaxx.invalid_tool_arguments');
  });

  it('records structured output through parse() with one span', async () => {
    const completion = await client.chat.completions.parse({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Give me a city as JSON.' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'city',
          strict: true,
          schema: {
            type: 'object',
            properties: { name: { type: 'string' } },
            required: ['name'],
            additionalProperties: false,
          },
        },
      },
    });
    expect(completion.choices[0]?.message.parsed).toBeTypeOf('object');
    await waitFor(() => chatSpans().length === 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(chatSpans()).toHaveLength(1);
    const span = chatSpans()[0];
    expect(span?.attributes).toEqual({
      ...base('gpt-4o', false),
      'gen_ai.output.type': 'json',
      'gen_ai.response.model': completion.model,
      'gen_ai.response.id': completion.id,
      'gen_ai.response.finish_reasons': ['stop'],
      ...openaiUsageAttributes(completion.model, completion.usage!),
    });
    const json = span?.events.find(
      (event) => event.attributes?.['gen_ai.evaluation.name'] === 'modelmaxx.invalid_json',
    );
    expect(json?.attributes?.['gen_ai.evaluation.score.value']).toBe(1);
  });

  it('records the chat.completions.stream() helper as one span, helper API intact', async () => {
    const runner = client.chat.completions.stream({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'stream helper' }],
    });
    const deltas: string[] = [];
    runner.on('content', (delta) => deltas.push(delta));
    const final = await runner.finalChatCompletion();
    expect(deltas.join('')).toBe(final.choices[0]?.message.content);
    expect(final.usage ?? undefined).toBeUndefined();
    await waitFor(() => chatSpans().length === 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(chatSpans()).toHaveLength(1);
    const attributes = chatSpans()[0]?.attributes;
    expect(attributes?.['gen_ai.request.stream']).toBe(true);
    expect(attributes?.['gen_ai.response.id']).toBe(final.id);
    expect(attributes?.['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
    expect(attributes?.['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
  });

  it('records each request of runTools() as its own span', async () => {
    const calls: string[] = [];
    const runner = client.chat.completions.runTools({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'What is the weather in Lisbon?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Current weather in a city',
            parameters: { type: 'object', properties: { city: { type: 'string' } } },
            function: (args: string) => {
              calls.push(args);
              return 'sunny';
            },
            parse: (input: string) => input,
          },
        },
      ],
    });
    const final = await runner.finalChatCompletion();
    expect(calls.length).toBeGreaterThan(0);
    const completions = runner.allChatCompletions();
    await waitFor(() => chatSpans().length === completions.length);
    expect(chatSpans().map((span) => span.attributes['gen_ai.response.id'])).toEqual(
      completions.map((completion) => completion.id),
    );
    expect(chatSpans().at(-1)?.attributes['gen_ai.response.id']).toBe(final.id);
  });

  it('ends the span when the app breaks out of the stream', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'A long answer please [sim:tokens=200]' }],
      stream: true,
    });
    let seen = 0;
    for await (const chunk of stream) {
      seen += chunk.choices.length;
      if (seen >= 3) break;
    }
    await waitFor(() => chatSpans().length === 1);
    const span = chatSpans()[0];
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.attributes).toEqual({
      ...base('gpt-4o', true),
      'gen_ai.response.model': expect.any(String),
      'gen_ai.response.id': expect.any(String),
      'gen_ai.response.time_to_first_chunk': expect.any(Number),
    });
    // No evaluations on a partial answer.
    expect(span?.events).toEqual([]);
  });

  it('ends the span with APIUserAbortError when the app aborts the stream', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Abort me [sim:tokens=300]' }],
      stream: true,
    });
    let seen = 0;
    for await (const chunk of stream) {
      seen += chunk.choices.length;
      if (seen === 2) stream.controller.abort();
    }
    await waitFor(() => chatSpans().length === 1);
    const span = chatSpans()[0];
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes).toEqual({
      ...base('gpt-4o', true),
      'gen_ai.response.model': expect.any(String),
      'gen_ai.response.id': expect.any(String),
      'gen_ai.response.time_to_first_chunk': expect.any(Number),
      'error.type': 'APIUserAbortError',
    });
  });

  it('keeps one span across the SDK retrying a 429', async () => {
    const retrying = new OpenAI({ baseURL: bed.sim.openaiBaseURL, apiKey: 'k', maxRetries: 2 });
    const before = bed.sim.requestCount();
    const completion = await retrying.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Retry me [sim:429 retry-after=0 times=1]' }],
    });
    expect(bed.sim.requestCount() - before).toBe(2);
    await waitFor(() => chatSpans().length === 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(chatSpans()).toHaveLength(1);
    expect(chatSpans()[0]?.attributes).toEqual({
      ...base('gpt-4o-mini', false),
      'gen_ai.response.model': completion.model,
      'gen_ai.response.id': completion.id,
      'gen_ai.response.finish_reasons': ['stop'],
      ...openaiUsageAttributes(completion.model, completion.usage!),
    });
  });

  it('records a 500 as error.type and rethrows the same error object', async () => {
    let caught: unknown;
    try {
      await client.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'fail [sim:500]' }],
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(OpenAI.InternalServerError);
    await waitFor(() => chatSpans().length === 1);
    const span = chatSpans()[0];
    expect(span?.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: (caught as Error).message,
    });
    expect(span?.attributes).toEqual({
      ...base('gpt-4o', false),
      'error.type': 'InternalServerError',
    });
  });

  it('records the same error object for a caught APIPromise', async () => {
    const promise = client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'rate limited [sim:429]' }],
    });
    const error = await promise.catch((e: unknown) => e);
    const again = await promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(again).toBe(error);
    await waitFor(() => chatSpans().length === 1);
    expect(chatSpans()[0]?.attributes['error.type']).toBe('RateLimitError');
  });

  it('records a timeout', async () => {
    const impatient = new OpenAI({
      baseURL: bed.sim.openaiBaseURL,
      apiKey: 'k',
      maxRetries: 0,
      timeout: 150,
    });
    const error = await impatient.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'slow [sim:timeout]' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    await waitFor(() => chatSpans().length === 1);
    expect(chatSpans()[0]?.attributes).toEqual({
      ...base('gpt-4o', false),
      'error.type': 'APIConnectionTimeoutError',
    });
  });

  it('patches idempotently', () => {
    expect(instrumentOpenAI(openaiModule)).toBe(false);
  });
});
