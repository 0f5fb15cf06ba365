import { SpanStatusCode } from '@opentelemetry/api';
import * as openaiModule from 'openai';
import OpenAI from 'openai';
import * as anthropicModule from '@anthropic-ai/sdk';
import Anthropic from '@anthropic-ai/sdk';
import { startLlmSim } from '@modelmaxx/llm-sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { instrumentAnthropic, instrumentOpenAI } from '../src/index.js';
import {
  anthropicUsageAttributes,
  openaiUsageAttributes,
  serverAttributesOf,
  streamedResponse,
} from './support/expected.js';
import { useTestBed, waitFor } from './support/tracing.js';
import { requireSdk } from './support/sdk.js';

const bed = useTestBed({ seed: 13 });
let client: OpenAI;
let anthropic: Anthropic;

beforeAll(() => {
  instrumentOpenAI(openaiModule);
  instrumentAnthropic(anthropicModule);
  client = new OpenAI({ baseURL: bed.sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: bed.sim.anthropicBaseURL, apiKey: 'k', maxRetries: 0 });
});

async function onlySpan() {
  await waitFor(() => bed.tracing.spans().length >= 1);
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(bed.tracing.spans()).toHaveLength(1);
  return bed.tracing.spans()[0]!;
}

const streamChat = (content: string) =>
  client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content }],
    stream: true,
    stream_options: { include_usage: true },
  });

type Chunk = OpenAI.Chat.Completions.ChatCompletionChunk;

function base(provider: 'openai' | 'anthropic', model: string, stream: boolean) {
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': provider,
    'gen_ai.request.model': model,
    'gen_ai.request.stream': stream,
    ...serverAttributesOf(provider === 'openai' ? bed.sim.openaiBaseURL : bed.sim.anthropicBaseURL),
  };
}

/** The whole attribute map of a completed chat stream, from the chunks the app read. */
function streamedChatAttributes(chunks: Chunk[]) {
  const usageChunk = chunks.find((chunk) => chunk.usage);
  return {
    ...base('openai', 'gpt-4o-mini', true),
    ...streamedResponse(
      chunks[0]?.model,
      chunks[0]?.id,
      ['stop'],
      openaiUsageAttributes(usageChunk!.model, usageChunk!.usage!),
    ),
  };
}

describe('the stream object the app gets', () => {
  it('tee(): both branches read everything, one span with usage', async () => {
    const stream = await streamChat('tee me');
    const [left, right] = stream.tee();
    const read = async (branch: typeof left) => {
      const chunks: Chunk[] = [];
      for await (const chunk of branch) chunks.push(chunk);
      return chunks;
    };
    const [a, b] = await Promise.all([read(left), read(right)]);
    expect(a.length).toBeGreaterThan(1);
    expect(b).toEqual(a);
    const span = await onlySpan();
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.attributes).toEqual(streamedChatAttributes(a));
  });

  it('toReadableStream(): reading it to the end ends the span', async () => {
    const stream = await streamChat('readable');
    const reader = stream.toReadableStream().getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value as Uint8Array);
    }
    const lines = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Chunk);
    expect(lines.length).toBeGreaterThan(1);
    const span = await onlySpan();
    expect(span.attributes).toEqual(streamedChatAttributes(lines));
  });

  it('an abort before the response arrives is recorded as APIUserAbortError', async () => {
    const controller = new AbortController();
    const pending = client.chat.completions.create(
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'slow [sim:slow-first=2000]' }] },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 30);
    const error = await pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.APIUserAbortError);
    const span = await onlySpan();
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes).toEqual({
      ...base('openai', 'gpt-4o', false),
      'error.type': 'APIUserAbortError',
    });
  });

  it('anthropic: break ends the span, abort records APIUserAbortError', async () => {
    const stream = await anthropic.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 400,
      messages: [{ role: 'user', content: 'long [sim:tokens=300]' }],
      stream: true,
    });
    let events = 0;
    let start: Anthropic.Messages.Message | undefined;
    for await (const event of stream) {
      if (event.type === 'message_start') start = event.message;
      if (++events === 3) break;
    }
    const broken = await onlySpan();
    expect(broken.status.code).toBe(SpanStatusCode.UNSET);
    // No output count arrived, so no output tokens and no cost: only what message_start said.
    const { 'gen_ai.usage.output_tokens': _output, ...usage } = anthropicUsageAttributes(
      start!.model,
      {
        ...start!.usage,
      },
    );
    void _output;
    expect(broken.attributes).toEqual({
      ...base('anthropic', 'claude-haiku-4-5', true),
      'gen_ai.request.max_tokens': 400,
      'gen_ai.response.model': start!.model,
      'gen_ai.response.id': start!.id,
      'gen_ai.response.time_to_first_chunk': expect.any(Number),
      'gen_ai.usage.input_tokens': usage['gen_ai.usage.input_tokens'],
      'gen_ai.usage.cache_read.input_tokens': usage['gen_ai.usage.cache_read.input_tokens'],
      'gen_ai.usage.cache_creation.input_tokens': usage['gen_ai.usage.cache_creation.input_tokens'],
    });
    bed.tracing.reset();

    // Real pacing (latencyScale 1), so the abort lands while tokens are still coming.
    const paced = await startLlmSim({ seed: 13, latencyScale: 1 });
    const pacedClient = new Anthropic({
      baseURL: paced.anthropicBaseURL,
      apiKey: 'k',
      maxRetries: 0,
    });
    const runner = pacedClient.messages.stream({
      model: 'claude-haiku-4-5',
      max_tokens: 400,
      messages: [{ role: 'user', content: 'long again [sim:tokens=300]' }],
    });
    let texts = 0;
    runner.on('text', () => {
      if (++texts === 2) runner.abort();
    });
    const error = await runner.finalMessage().catch((e: unknown) => e);
    await paced.close();
    expect(error).toBeInstanceOf(Anthropic.APIUserAbortError);
    const aborted = await onlySpan();
    expect(aborted.status.code).toBe(SpanStatusCode.ERROR);
    expect(aborted.attributes).toEqual({
      ...base('anthropic', 'claude-haiku-4-5', true),
      ...serverAttributesOf(paced.anthropicBaseURL),
      'gen_ai.request.max_tokens': 400,
      'gen_ai.response.model': expect.any(String),
      'gen_ai.response.id': expect.stringMatching(/^msg_/),
      'gen_ai.response.time_to_first_chunk': expect.any(Number),
      'gen_ai.usage.input_tokens': expect.any(Number),
      'gen_ai.usage.cache_read.input_tokens': 0,
      'gen_ai.usage.cache_creation.input_tokens': 0,
      'error.type': 'APIUserAbortError',
    });
  });
});

describe('module copies', () => {
  it('patches the CJS copy of openai as well as the ESM one', async () => {
    const cjs = requireSdk('openai') as typeof openaiModule;
    expect(instrumentOpenAI(cjs)).toBe(true);
    expect(instrumentOpenAI(cjs)).toBe(false);
    const CjsOpenAI = (cjs as unknown as { OpenAI: typeof OpenAI }).OpenAI;
    expect(CjsOpenAI).not.toBe(OpenAI);
    const cjsClient = new CjsOpenAI({ baseURL: bed.sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
    const completion = await cjsClient.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'from cjs' }],
    });
    const span = await onlySpan();
    expect(span.attributes).toEqual({
      ...base('openai', 'gpt-4o-mini', false),
      'gen_ai.response.model': completion.model,
      'gen_ai.response.id': completion.id,
      'gen_ai.response.finish_reasons': ['stop'],
      ...openaiUsageAttributes(completion.model, completion.usage!),
    });
  });
});
