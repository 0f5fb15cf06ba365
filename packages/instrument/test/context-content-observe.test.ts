import * as openaiModule from 'openai';
import OpenAI from 'openai';
import * as anthropicModule from '@anthropic-ai/sdk';
import Anthropic from '@anthropic-ai/sdk';
import type { TracerProvider as TracerProviderApi } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  configureInstrumentation,
  instrumentAnthropic,
  instrumentOpenAI,
  observe,
  withLlmContext,
  withRouteAttributes,
} from '../src/index.js';
import { resetInstrumentationConfig } from '../src/config.js';
import {
  anthropicUsageAttributes,
  openaiUsageAttributes,
  serverAttributesOf,
} from './support/expected.js';
import { useTestBed, waitFor } from './support/tracing.js';

const bed = useTestBed({ seed: 9 });
let client: OpenAI;

beforeAll(() => {
  instrumentOpenAI(openaiModule);
  instrumentAnthropic(anthropicModule);
  client = new OpenAI({ baseURL: bed.sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
});
afterEach(() => {
  delete process.env['OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT'];
  resetInstrumentationConfig();
});

async function spansAfter(count: number) {
  await waitFor(() => bed.tracing.spans().length >= count);
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(bed.tracing.spans()).toHaveLength(count);
  return bed.tracing.spans();
}

/** The whole attribute map of a plain chat-completions span, plus `extra`. */
function chatAttributes(
  completion: OpenAI.Chat.Completions.ChatCompletion,
  extra: Record<string, unknown> = {},
) {
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': 'gpt-4o-mini',
    'gen_ai.request.stream': false,
    ...serverAttributesOf(bed.sim.openaiBaseURL),
    'gen_ai.response.model': completion.model,
    'gen_ai.response.id': completion.id,
    'gen_ai.response.finish_reasons': completion.choices.map((choice) => choice.finish_reason),
    ...openaiUsageAttributes(completion.model, completion.usage!),
    ...extra,
  };
}

const ask = (content: string, options?: unknown) =>
  client.chat.completions.create(
    { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] },
    options as OpenAI.RequestOptions,
  );

describe('app context', () => {
  it('makes the LLM span a child of the active span', async () => {
    const tracer = bed.tracing.provider.getTracer('app');
    const completion = await tracer.startActiveSpan('handle request', async (parent) => {
      try {
        return await ask('nested');
      } finally {
        parent.end();
      }
    });
    const spans = await spansAfter(2);
    const parent = spans.find((span) => span.name === 'handle request');
    const child = spans.find((span) => span.name === 'chat gpt-4o-mini');
    expect(child?.parentSpanContext?.spanId).toBe(parent?.spanContext().spanId);
    expect(child?.spanContext().traceId).toBe(parent?.spanContext().traceId);
    expect(child?.attributes).toEqual(chatAttributes(completion));
  });

  it('makes the LLM span the active span inside the SDK call (HTTP spans nest under it)', async () => {
    const tracer = bed.tracing.provider.getTracer('app');
    // A fetch that traces itself, as HTTP client instrumentation would.
    const tracedFetch = (async (...args: Parameters<typeof fetch>) => {
      const http = tracer.startSpan('POST /chat/completions');
      try {
        return await fetch(...args);
      } finally {
        http.end();
      }
    }) as typeof fetch;
    const traced = new OpenAI({
      baseURL: bed.sim.openaiBaseURL,
      apiKey: 'k',
      maxRetries: 0,
      fetch: tracedFetch,
    });
    await tracer.startActiveSpan('handle request', async (parent) => {
      try {
        return await traced.chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: 'nested fetch' }],
        });
      } finally {
        parent.end();
      }
    });
    const spans = await spansAfter(3);
    const parent = spans.find((span) => span.name === 'handle request');
    const llm = spans.find((span) => span.name === 'chat gpt-4o-mini');
    const http = spans.find((span) => span.name === 'POST /chat/completions');
    expect(llm?.parentSpanContext?.spanId).toBe(parent?.spanContext().spanId);
    expect(http?.parentSpanContext?.spanId).toBe(llm?.spanContext().spanId);
    expect(http?.spanContext().traceId).toBe(parent?.spanContext().traceId);
  });

  it('records withLlmContext attributes, nested values merging', async () => {
    const completion = await withLlmContext(
      { task: 'summarize', feature: 'inbox', userId: 'user-1' },
      () => withLlmContext({ conversationId: 'conv-9', task: 'classify' }, () => ask('context')),
    );
    const [span] = await spansAfter(1);
    expect(span?.attributes).toEqual(
      chatAttributes(completion, {
        'modelmaxx.task': 'classify',
        'modelmaxx.feature': 'inbox',
        'enduser.id': 'user-1',
        'gen_ai.conversation.id': 'conv-9',
      }),
    );
  });

  it('takes a per-call modelmaxx request option and strips it before the SDK sees it', async () => {
    let sentHeaders: Headers | undefined;
    const spy = new OpenAI({
      baseURL: bed.sim.openaiBaseURL,
      apiKey: 'k',
      maxRetries: 0,
      fetch: async (url, init) => {
        sentHeaders = new Headers(init?.headers);
        return fetch(url, init);
      },
    });
    const completion = await withLlmContext({ task: 'outer', feature: 'f' }, () =>
      spy.chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'per call' }] },
        {
          modelmaxx: { task: 'inner', userId: 'u-2' },
          headers: { 'x-app': 'yes' },
        } as OpenAI.RequestOptions,
      ),
    );
    expect(sentHeaders?.get('x-app')).toBe('yes');
    const [span] = await spansAfter(1);
    expect(span?.attributes).toEqual(
      chatAttributes(completion, {
        'modelmaxx.task': 'inner',
        'modelmaxx.feature': 'f',
        'enduser.id': 'u-2',
      }),
    );
  });

  it('records route attributes a router put in context', async () => {
    const completion = await withRouteAttributes(
      {
        'modelmaxx.route.policy': 'cheap-first',
        'modelmaxx.route.model': 'gpt-4o-mini',
        'modelmaxx.route.weight': 0.8,
      },
      () => ask('routed'),
    );
    const [span] = await spansAfter(1);
    expect(span?.attributes).toEqual(
      chatAttributes(completion, {
        'modelmaxx.route.policy': 'cheap-first',
        'modelmaxx.route.model': 'gpt-4o-mini',
        'modelmaxx.route.weight': 0.8,
      }),
    );
  });
});

describe('message content', () => {
  it('is not captured by default', async () => {
    const completion = await ask('secret prompt');
    const [span] = await spansAfter(1);
    expect(span?.attributes).toEqual(chatAttributes(completion));
  });

  it('is captured with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true, in the semconv shape', async () => {
    process.env['OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT'] = 'true';
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Be nice.' },
        { role: 'user', content: 'Hello there' },
      ],
    });
    const [span] = await spansAfter(1);
    expect(span?.attributes).toEqual(
      chatAttributes(completion, {
        'gen_ai.input.messages': expect.any(String),
        'gen_ai.output.messages': expect.any(String),
      }),
    );
    expect(JSON.parse(String(span?.attributes['gen_ai.input.messages']))).toEqual([
      { role: 'system', parts: [{ type: 'text', content: 'Be nice.' }] },
      { role: 'user', parts: [{ type: 'text', content: 'Hello there' }] },
    ]);
    expect(JSON.parse(String(span?.attributes['gen_ai.output.messages']))).toEqual([
      {
        role: 'assistant',
        parts: [{ type: 'text', content: completion.choices[0]?.message.content }],
        finish_reason: 'stop',
      },
    ]);
  });

  it('passes content through the redaction hook; a throwing hook drops the content', async () => {
    configureInstrumentation({
      captureMessageContent: true,
      redact: (messages, { kind }) =>
        messages.map((message) => ({
          ...message,
          parts: message.parts.map((part) =>
            part.type === 'text' ? { ...part, content: `[${kind} redacted]` } : part,
          ),
        })),
    });
    const anthropic = new Anthropic({
      baseURL: bed.sim.anthropicBaseURL,
      apiKey: 'k',
      maxRetries: 0,
    });
    const message = await anthropic.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 64,
      system: 'Top secret system prompt',
      messages: [{ role: 'user', content: 'my phone is 555-0100' }],
    });
    const [span] = await spansAfter(1);
    expect(span?.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'anthropic',
      'gen_ai.request.model': 'claude-haiku-4-5',
      'gen_ai.request.stream': false,
      'gen_ai.request.max_tokens': 64,
      ...serverAttributesOf(bed.sim.anthropicBaseURL),
      'gen_ai.response.model': message.model,
      'gen_ai.response.id': message.id,
      'gen_ai.response.finish_reasons': [message.stop_reason],
      ...anthropicUsageAttributes(message.model, message.usage),
      'gen_ai.input.messages': expect.any(String),
      'gen_ai.system_instructions': expect.any(String),
      'gen_ai.output.messages': expect.any(String),
    });
    expect(JSON.parse(String(span?.attributes['gen_ai.input.messages']))).toEqual([
      { role: 'user', parts: [{ type: 'text', content: '[input redacted]' }] },
    ]);
    expect(JSON.parse(String(span?.attributes['gen_ai.system_instructions']))).toEqual([
      { type: 'text', content: '[system redacted]' },
    ]);
    expect(JSON.parse(String(span?.attributes['gen_ai.output.messages']))).toEqual([
      {
        role: 'assistant',
        parts: [{ type: 'text', content: '[output redacted]' }],
        finish_reason: message.stop_reason,
      },
    ]);

    bed.tracing.reset();
    configureInstrumentation({
      captureMessageContent: true,
      redact: () => {
        throw new Error('redactor bug');
      },
    });
    const completion = await ask('my card is 4111');
    expect(completion.choices[0]?.message.content).toBeTruthy();
    const [second] = await spansAfter(1);
    expect(second?.attributes).toEqual(chatAttributes(completion));
  });
});

describe('observe() with prototype patching', () => {
  it('makes exactly one span per call, whichever layer is outermost', async () => {
    const observed = observe(
      new OpenAI({ baseURL: bed.sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 }),
    );
    expect(observe(observed)).toBe(observed);
    await observed.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'one' }],
    });
    const stream = await observed.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'two' }],
      stream: true,
    });
    for await (const chunk of stream) void chunk;
    await observed.embeddings.create({ model: 'text-embedding-3-small', input: 'three' });
    const anthropic = observe(
      new Anthropic({ baseURL: bed.sim.anthropicBaseURL, apiKey: 'k', maxRetries: 0 }),
    );
    await anthropic.messages
      .stream({
        model: 'claude-haiku-4-5',
        max_tokens: 32,
        messages: [{ role: 'user', content: 'four' }],
      })
      .finalMessage();
    const spans = await spansAfter(4);
    expect(spans.map((span) => span.name)).toEqual([
      'chat gpt-4o',
      'chat gpt-4o',
      'embeddings text-embedding-3-small',
      'chat claude-haiku-4-5',
    ]);
    expect(spans.every((span) => span.instrumentationScope.name === '@modelmaxx/instrument')).toBe(
      true,
    );
  });
});

describe('sampling', () => {
  it('leaves an unsampled call exactly as the app made it', async () => {
    const bodies: string[] = [];
    const spy = new OpenAI({
      baseURL: bed.sim.openaiBaseURL,
      apiKey: 'k',
      maxRetries: 0,
      fetch: async (url, init) => {
        bodies.push(String(init?.body));
        return fetch(url, init);
      },
    });
    const exporter = new InMemorySpanExporter();
    configureInstrumentation({
      tracerProvider: new TracerProvider({
        sampler: new AlwaysOffSampler(),
        spanProcessors: [new SimpleSpanProcessor({ exporter })],
      }),
    });
    const stream = await spy.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'unsampled' }],
      stream: true,
    });
    for await (const chunk of stream) void chunk;
    await spy.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'sampled' }],
    });
    expect(JSON.parse(bodies[0]!)).not.toHaveProperty('stream_options');
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(bed.tracing.spans()).toEqual([]);

    resetInstrumentationConfig();
    const sampled = await spy.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'sampled' }],
      stream: true,
    });
    for await (const chunk of sampled) void chunk;
    expect(JSON.parse(bodies[2]!)).toHaveProperty('stream_options', { include_usage: true });
    await spansAfter(1);
  });
});

describe('telemetry never breaks the app', () => {
  it('calls the SDK untouched when the span cannot start', async () => {
    const broken = {
      getTracer() {
        throw new Error('tracer provider bug');
      },
    } as unknown as TracerProviderApi;
    configureInstrumentation({ tracerProvider: broken });
    const completion = await ask('no telemetry');
    expect(completion.choices[0]?.message.content).toBeTruthy();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(bed.tracing.spans()).toEqual([]);
  });
});
