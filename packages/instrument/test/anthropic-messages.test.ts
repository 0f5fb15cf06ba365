import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import * as anthropicModule from '@anthropic-ai/sdk';
import Anthropic from '@anthropic-ai/sdk';
import { beforeAll, describe, expect, it } from 'vitest';
import { instrumentAnthropic, uninstrumentAnthropic } from '../src/index.js';
import {
  anthropicUsageAttributes,
  serverAttributesOf,
  streamedResponse,
} from './support/expected.js';
import { useTestBed, waitFor } from './support/tracing.js';

const bed = useTestBed({ seed: 5 });
let client: Anthropic;

beforeAll(() => {
  // The SDK's own tracing stays at its default (on), so these tests see whether it is suppressed.
  delete process.env['ANTHROPIC_OPEN_TELEMETRY'];
  expect(instrumentAnthropic(anthropicModule)).toBe(true);
  client = new Anthropic({ baseURL: bed.sim.anthropicBaseURL, apiKey: 'test-key', maxRetries: 0 });
});

function base(model: string, stream: boolean) {
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'anthropic',
    'gen_ai.request.model': model,
    'gen_ai.request.stream': stream,
    ...serverAttributesOf(bed.sim.anthropicBaseURL),
  };
}

async function settled(count: number) {
  await waitFor(() => bed.tracing.spans().length >= count);
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(bed.tracing.spans()).toHaveLength(count);
  return bed.tracing.spans();
}

describe('anthropic messages', () => {
  it('records a plain call as exactly one span (the SDK span is suppressed)', async () => {
    const message = await client.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 256,
      stop_sequences: ['END'],
      system: 'You are terse.',
      messages: [{ role: 'user', content: 'Describe bed.tracing.' }],
    });
    const [span] = await settled(1);
    expect(span?.instrumentationScope.name).toBe('@modelmaxx/instrument');
    expect(span?.name).toBe('chat claude-sonnet-4-5');
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.attributes).toEqual({
      ...base('claude-sonnet-4-5', false),
      'gen_ai.request.max_tokens': 256,
      'gen_ai.request.stop_sequences': ['END'],
      'gen_ai.response.model': message.model,
      'gen_ai.response.id': message.id,
      'gen_ai.response.finish_reasons': [message.stop_reason],
      ...anthropicUsageAttributes(message.model, message.usage),
    });
  });

  it('counts cache reads and writes into input tokens', async () => {
    const longSystem = 'Reference material about observability. '.repeat(600);
    const request = {
      model: 'claude-haiku-4-5',
      max_tokens: 64,
      system: [
        { type: 'text' as const, text: longSystem, cache_control: { type: 'ephemeral' as const } },
      ],
      messages: [{ role: 'user' as const, content: 'Summarize.' }],
    };
    const first = await client.messages.create(request);
    const second = await client.messages.create(request);
    expect(first.usage.cache_creation_input_tokens).toBeGreaterThan(0);
    expect(second.usage.cache_read_input_tokens).toBeGreaterThan(0);
    const spans = await settled(2);
    expect(spans[0]?.attributes).toEqual({
      ...base('claude-haiku-4-5', false),
      'gen_ai.request.max_tokens': 64,
      'gen_ai.response.model': first.model,
      'gen_ai.response.id': first.id,
      'gen_ai.response.finish_reasons': [first.stop_reason],
      ...anthropicUsageAttributes(first.model, first.usage),
    });
    expect(spans[1]?.attributes).toEqual({
      ...base('claude-haiku-4-5', false),
      'gen_ai.request.max_tokens': 64,
      'gen_ai.response.model': second.model,
      'gen_ai.response.id': second.id,
      'gen_ai.response.finish_reasons': [second.stop_reason],
      ...anthropicUsageAttributes(second.model, second.usage),
    });
  });

  it('records thinking tokens as reasoning tokens, plain and streamed', async () => {
    const request = {
      model: 'claude-sonnet-4-5',
      max_tokens: 4096,
      thinking: { type: 'enabled' as const, budget_tokens: 2048 },
      messages: [{ role: 'user' as const, content: 'Is 91 prime? Think first.' }],
    };
    const message = await client.messages.create(request);
    expect(message.usage.output_tokens_details?.thinking_tokens).toBeGreaterThan(0);
    const [span] = await settled(1);
    expect(span?.attributes).toEqual({
      ...base('claude-sonnet-4-5', false),
      'gen_ai.request.max_tokens': 4096,
      'gen_ai.response.model': message.model,
      'gen_ai.response.id': message.id,
      'gen_ai.response.finish_reasons': [message.stop_reason],
      ...anthropicUsageAttributes(message.model, message.usage),
    });
    bed.tracing.reset();
    const final = await client.messages.stream(request).finalMessage();
    expect(final.usage.output_tokens_details?.thinking_tokens).toBeGreaterThan(0);
    const [streamed] = await settled(1);
    expect(streamed?.attributes).toEqual({
      ...base('claude-sonnet-4-5', true),
      'gen_ai.request.max_tokens': 4096,
      ...streamedResponse(
        final.model,
        final.id,
        [final.stop_reason],
        anthropicUsageAttributes(final.model, final.usage),
      ),
    });
  });

  it('records a stream: true call', async () => {
    const stream = await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 128,
      messages: [{ role: 'user', content: 'Stream please.' }],
      stream: true,
    });
    expect(typeof stream.controller.abort).toBe('function');
    let start: Anthropic.Messages.Message | undefined;
    let delta: Anthropic.Messages.RawMessageDeltaEvent | undefined;
    for await (const event of stream) {
      if (event.type === 'message_start') start = event.message;
      if (event.type === 'message_delta') delta = event;
    }
    const [span] = await settled(1);
    const usage = {
      input_tokens: delta?.usage.input_tokens ?? start!.usage.input_tokens,
      output_tokens: delta!.usage.output_tokens,
      cache_read_input_tokens:
        delta?.usage.cache_read_input_tokens ?? start!.usage.cache_read_input_tokens,
      cache_creation_input_tokens:
        delta?.usage.cache_creation_input_tokens ?? start!.usage.cache_creation_input_tokens,
    };
    expect(span?.attributes).toEqual({
      ...base('claude-haiku-4-5', true),
      'gen_ai.request.max_tokens': 128,
      ...streamedResponse(
        start!.model,
        start!.id,
        [delta!.delta.stop_reason],
        anthropicUsageAttributes(start!.model, usage),
      ),
    });
  });

  it('records the messages.stream() helper as one span, helper API intact', async () => {
    const runner = client.messages.stream({
      model: 'claude-sonnet-4-5',
      max_tokens: 128,
      messages: [{ role: 'user', content: 'Helper stream.' }],
    });
    let text = '';
    runner.on('text', (delta) => (text += delta));
    const final = await runner.finalMessage();
    expect(text.length).toBeGreaterThan(0);
    const [span] = await settled(1);
    expect(span?.instrumentationScope.name).toBe('@modelmaxx/instrument');
    expect(span?.attributes).toEqual({
      ...base('claude-sonnet-4-5', true),
      'gen_ai.request.max_tokens': 128,
      ...streamedResponse(
        final.model,
        final.id,
        [final.stop_reason],
        anthropicUsageAttributes(final.model, final.usage),
      ),
    });
  });

  it('records an error status and rethrows the same error', async () => {
    const error = await client.messages
      .create({
        model: 'claude-sonnet-4-5',
        max_tokens: 32,
        messages: [{ role: 'user', content: 'x [sim:529]' }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    const [span] = await settled(1);
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes).toEqual({
      ...base('claude-sonnet-4-5', false),
      'gen_ai.request.max_tokens': 32,
      'error.type': (error as object).constructor.name,
    });
  });

  it('without our patch the SDK makes its own span (control for the suppression tests)', async (ctx) => {
    // @anthropic-ai/sdk < 0.133 has no tracing of its own: nothing to suppress (SDK matrix in .ci/run).
    if ((client as unknown as { _tracer?: unknown })._tracer === undefined) ctx.skip();
    expect(uninstrumentAnthropic(anthropicModule)).toBe(true);
    try {
      await client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'control' }],
      });
      const [span] = await settled(1);
      expect(span?.instrumentationScope.name).toBe('com.anthropic.sdk.typescript');
    } finally {
      expect(instrumentAnthropic(anthropicModule)).toBe(true);
    }
  });
});
