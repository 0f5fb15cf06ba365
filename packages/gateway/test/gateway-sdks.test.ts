/**
 * The gateway against llm-sim upstreams, driven by the real `openai` and `@anthropic-ai/sdk` SDKs
 * and curl: every endpoint, streams, tools, errors, fallbacks, aborts, spans over a real OTLP
 * exporter, provider-reported cost, and the safety bounds.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRandom } from '@modelmaxx/router';
import { GatewayConfigError, createGateway, resolveConfig } from '../src/index.js';
import type { Gateway } from '../src/index.js';
import { startSlowUpstream, startSpanReceiver, waitFor } from './helpers.js';
import type { ReceivedSpan, SlowUpstream } from './helpers.js';

const run = promisify(execFile);
const SLOW_KEY = 'sk-upstream-secret-0123456789';

let sim: LlmSim;
let slow: SlowUpstream;
let receiver: Awaited<ReturnType<typeof startSpanReceiver>>;
let gateway: Gateway;
let url: string;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  sim = await startLlmSim({ seed: 7, timeoutHoldMs: 20_000 });
  slow = await startSlowUpstream(100, 60);
  receiver = await startSpanReceiver();
  const config = resolveConfig(
    {
      upstreams: {
        slow: { kind: 'openai-compatible', models: ['slow-model'] },
      },
      policies: [
        {
          name: 'support',
          exploration: 0,
          candidates: [
            { model: 'gpt-4o-mini', client: 'openai' },
            { model: 'gpt-4o', client: 'openai' },
          ],
          fallback: { maxAttempts: 2, cooldownMs: 300, timeoutMs: 1500 },
        },
        {
          name: 'mixed',
          exploration: 0,
          candidates: [
            { model: 'claude-haiku-4-5', provider: 'anthropic', client: 'anthropic' },
            { model: 'gpt-4o-mini', client: 'openai' },
          ],
        },
      ],
      limits: { maxConcurrentRequests: 8, maxBodyBytes: 64 * 1024 },
    },
    {
      upstreamFlags: [
        `openai=${sim.openaiBaseURL}`,
        `anthropic=${sim.anthropicBaseURL}`,
        `slow=${slow.baseURL}`,
      ],
      env: { MODELMAXX_UPSTREAM_SLOW_KEY: SLOW_KEY },
    },
  );
  gateway = createGateway({
    config,
    spanExporter: new OTLPTraceExporter({ url: receiver.url }),
    serviceName: 'gateway-test',
    random: createRandom(11),
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  url = (await gateway.listen(0, '127.0.0.1')).url;
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'app-key', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: url, apiKey: 'app-key', maxRetries: 0 });
});

afterAll(async () => {
  await gateway?.close();
  await sim?.close();
  await slow?.close();
  await receiver?.close();
});

beforeEach(async () => {
  // Spans of the previous test that ended after it returned (a stream's span ends after the
  // client read the last chunk) must not count for this one.
  await new Promise((resolve) => setTimeout(resolve, 100));
  await gateway.forceFlush();
  receiver.spans.length = 0;
});

async function spans(count: number): Promise<ReceivedSpan[]> {
  await waitFor(() => {
    void gateway.forceFlush();
    return receiver.spans.length >= count;
  }, 15_000);
  return [...receiver.spans];
}

describe('OpenAI endpoints through the openai SDK', () => {
  it('chat completion: answer, headers and the span the instrumentation would record', async () => {
    const { data, response } = await openai.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'What is 37 * 48?' }],
        max_tokens: 200,
        temperature: 0.2,
      })
      .withResponse();
    expect(data.choices[0]?.message.content).toBeTruthy();
    expect(data.model).toBe('gpt-4o-mini-2024-07-18');
    expect(response.headers.get('x-modelmaxx-model')).toBe('gpt-4o-mini');
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    const [span] = await spans(1);
    expect(span!.name).toBe('chat gpt-4o-mini');
    expect(span!.service).toBe('gateway-test');
    expect(span!.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.request.max_tokens': 200,
      'gen_ai.request.temperature': 0.2,
      'gen_ai.request.stream': false,
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.response.id': data.id,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': data.usage!.prompt_tokens,
      'gen_ai.usage.output_tokens': data.usage!.completion_tokens,
      'gen_ai.usage.cost.currency': 'USD',
      'gen_ai.usage.cost.source': 'local',
      'server.address': '127.0.0.1',
      'modelmaxx.gateway.upstream': 'openai',
      'modelmaxx.gateway.key_id': 'anonymous',
    });
    const expected = (data.usage!.prompt_tokens * 0.15 + data.usage!.completion_tokens * 0.6) / 1e6;
    expect(span!.attributes['gen_ai.usage.cost.amount']).toBeCloseTo(expected, 12);
  });

  it('UPSTREAM/MODEL names the upstream; the upstream gets the bare model name', async () => {
    const { data, response } = await openai.chat.completions
      .create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'prefixed' }] })
      .withResponse();
    expect(data.model).toBe('gpt-4o-mini-2024-07-18');
    expect(response.headers.get('x-modelmaxx-upstream')).toBe('openai');
    const [span] = await spans(1);
    expect(span!.attributes['gen_ai.request.model']).toBe('gpt-4o-mini');
  });

  it('streams chunk by chunk; the usage chunk the gateway asked for stays hidden', async () => {
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'Say something long [sim:tokens=30]' }],
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks.every((chunk) => chunk.choices.length > 0)).toBe(true);
    expect(chunks.some((chunk) => chunk.usage !== undefined && chunk.usage !== null)).toBe(false);
    const [span] = await spans(1);
    expect(span!.attributes['gen_ai.request.stream']).toBe(true);
    expect(span!.attributes['gen_ai.usage.output_tokens']).toBe(30);
    expect(span!.attributes['gen_ai.response.time_to_first_chunk']).toBeGreaterThanOrEqual(0);
    expect(span!.attributes['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
  });

  it('streams with include_usage: the client that asked gets the usage chunk', async () => {
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Hello there' }],
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('tools: tool calls plain and streamed', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: {
          name: 'get_weather',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ];
    const plain = await openai.chat.completions.create({
      model: 'gpt-4o',
      tools,
      tool_choice: 'required',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    });
    expect(plain.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      type: 'function',
      function: { name: 'get_weather' },
    });
    const stream = openai.chat.completions.stream({
      model: 'gpt-4o',
      tools,
      tool_choice: 'required',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' ? call.function.name : undefined).toBe('get_weather');
    expect(JSON.parse(call?.type === 'function' ? call.function.arguments : 'null')).toBeTypeOf(
      'object',
    );
    const recorded = await spans(2);
    expect(recorded.map((span) => span.attributes['gen_ai.response.finish_reasons'])).toEqual([
      ['tool_calls'],
      ['tool_calls'],
    ]);
  });

  it('responses: plain and streamed', async () => {
    const response = await openai.responses.create({
      model: 'gpt-4o-mini',
      input: 'Reverse the word "piano".',
    });
    expect(response.output_text).toBeTruthy();
    const stream = await openai.responses.create({
      model: 'gpt-4o-mini',
      input: 'Hello',
      stream: true,
    });
    const types = new Set<string>();
    for await (const event of stream) types.add(event.type);
    expect(types.has('response.output_text.delta')).toBe(true);
    expect(types.has('response.completed')).toBe(true);
    const recorded = await spans(2);
    for (const span of recorded) {
      expect(span.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
      expect(span.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
      expect(span.attributes['gen_ai.response.finish_reasons']).toEqual(['completed']);
      expect(String(span.attributes['gen_ai.response.id'])).toMatch(/^resp_/);
    }
  });

  it('embeddings (the SDK asks for base64) and the model list', async () => {
    const result = await openai.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['one', 'two'],
      dimensions: 8,
    });
    expect(result.data).toHaveLength(2);
    expect(result.data[0]?.embedding).toHaveLength(8);
    const [span] = await spans(1);
    expect(span!.name).toBe('embeddings text-embedding-3-small');
    expect(span!.attributes['gen_ai.operation.name']).toBe('embeddings');
    expect(span!.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
    const models = [];
    for await (const model of openai.models.list()) models.push(model.id);
    expect(models).toEqual(expect.arrayContaining(['route:support', 'route:mixed', 'slow-model']));
  });
});

describe('Anthropic messages through @anthropic-ai/sdk', () => {
  it('plain, streamed and tool use', async () => {
    const message = await anthropic.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 200,
      messages: [{ role: 'user', content: 'What is 12 * 12?' }],
    });
    expect(message.content[0]?.type).toBe('text');
    const stream = anthropic.messages.stream({
      model: 'claude-haiku-4-5',
      max_tokens: 200,
      messages: [{ role: 'user', content: 'Hello' }],
    });
    const streamed = await stream.finalMessage();
    expect(streamed.usage.output_tokens).toBeGreaterThan(0);
    const tool = await anthropic.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 300,
      tools: [{ name: 'lookup', input_schema: { type: 'object', properties: {} } }],
      tool_choice: { type: 'tool', name: 'lookup' },
      messages: [{ role: 'user', content: 'Look it up' }],
    });
    expect(tool.content.some((block) => block.type === 'tool_use')).toBe(true);
    const recorded = await spans(3);
    expect(recorded.map((span) => span.attributes['gen_ai.provider.name'])).toEqual([
      'anthropic',
      'anthropic',
      'anthropic',
    ]);
    expect(recorded[1]!.attributes['gen_ai.usage.output_tokens']).toBe(
      streamed.usage.output_tokens,
    );
    expect(recorded[1]!.attributes['gen_ai.response.id']).toBe(streamed.id);
    expect(recorded[2]!.attributes['gen_ai.response.finish_reasons']).toEqual(['tool_use']);
    expect(recorded[0]!.attributes['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
  });

  it("lists the models in Anthropic's shape", async () => {
    const models = [];
    for await (const model of anthropic.models.list()) models.push(model.id);
    expect(models).toEqual(expect.arrayContaining(['route:support', 'slow-model']));
  });

  it('a route: policy on /v1/messages may pick a candidate of either provider (translated)', async () => {
    const message = await anthropic.messages
      .create({
        model: 'route:mixed',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'Hi' }],
      })
      .withResponse();
    expect(message.data.type).toBe('message');
    expect(['claude-haiku-4-5', 'gpt-4o-mini']).toContain(
      message.response.headers.get('x-modelmaxx-model'),
    );
  });
});

describe('errors come back faithfully', () => {
  it('a 429 from the upstream: status, body and retry-after (openai SDK)', async () => {
    const error = await openai.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Hi [sim:status=429 retry-after=7]' }],
      })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const rate = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rate.headers.get('retry-after')).toBe('7');
    expect(rate.code).toBe('rate_limit_exceeded');
    const [span] = await spans(1);
    expect(span!.attributes['error.type']).toBe('429');
    expect(span!.status.code).toBe(2);
  });

  it('a 529 overloaded from Anthropic (anthropic SDK)', async () => {
    const error = await anthropic.messages
      .create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'Hi [sim:status=529]' }],
      })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect(JSON.stringify((error as InstanceType<typeof Anthropic.APIError>).error)).toContain(
      'overloaded_error',
    );
  });

  it('unknown model and unknown policy: 404 model_not_found', async () => {
    const unknown = await openai.chat.completions
      .create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect((unknown as Error).message).toContain('no upstream serves model "no-such-model"');
    const policy = await openai.chat.completions
      .create({ model: 'route:nope', messages: [{ role: 'user', content: 'x' }] })
      .catch((caught: unknown) => caught);
    expect((policy as Error).message).toContain('no routing policy "nope"');
  });

  it('curl: bad JSON 400, no model 400, text/plain 415, an oversized body 413', async () => {
    const curl = async (body: string, type = 'application/json') => {
      const { stdout } = await run('curl', [
        '-sS',
        '-w',
        '\n%{http_code}',
        '-H',
        `content-type: ${type}`,
        '--data-binary',
        body,
        `${url}/v1/chat/completions`,
      ]);
      const lines = stdout.split('\n');
      return { status: Number(lines.at(-1)), body: lines.slice(0, -1).join('\n') };
    };
    const plain = await curl(
      JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'curl' }] }),
    );
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.body).choices[0].message.content).toBeTruthy();
    const bad = await curl('{not json');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.message).toContain('the request body is not valid JSON (');
    const noModel = await curl('{"messages":[]}');
    expect(noModel.status).toBe(400);
    expect(JSON.parse(noModel.body).error.message).toContain('"model" (a string) is required');
    expect((await curl('{"model":"gpt-4o-mini"}', 'text/plain')).status).toBe(415);
    const big = await curl(
      JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'x'.repeat(70_000) }],
      }),
    );
    expect(big.status).toBe(413);
  });
});

describe('route: policies fall back on 429, 5xx and timeouts, with cooldowns', () => {
  const failures = {
    '429': { rate429: 1, retryAfterSeconds: 0 },
    '500': { rate500: 1 },
    timeout: { rateTimeout: 1 },
  } as const;
  for (const what of ['429', '500', 'timeout'] as const) {
    it(`falls back after a ${what} to the other candidate and cools the failed one down`, async () => {
      // gpt-4o-mini fails every call; the engine picks per request, so ask until it picks
      // gpt-4o-mini first (deterministic: the gateway's random source is seeded).
      sim.setModel('gpt-4o-mini', { failure: failures[what] });
      try {
        let fallback: ReceivedSpan[] | undefined;
        for (let request = 0; request < 30 && fallback === undefined; request += 1) {
          receiver.spans.length = 0;
          const { data, response } = await openai.chat.completions
            .create(
              { model: 'route:support', messages: [{ role: 'user', content: `Hi ${request}` }] },
              { timeout: 20_000 },
            )
            .withResponse();
          expect(data.choices[0]?.message.content).toBeTruthy();
          expect(response.headers.get('x-modelmaxx-model')).toBe('gpt-4o');
          // The attempts' spans and their parent `route support` span.
          const recorded = await spans(2);
          const attempts = recorded.filter((span) => span.name.startsWith('chat '));
          if (attempts[0]!.attributes['modelmaxx.route.model'] === 'gpt-4o-mini') {
            const all = await spans(3);
            fallback = all.filter((span) => span.name.startsWith('chat '));
            const route = all.find((span) => span.name === 'route support')!;
            expect(route.attributes).toMatchObject({
              'modelmaxx.route.policy': 'support',
              'modelmaxx.route.model': 'gpt-4o',
              'modelmaxx.route.attempt': 2,
            });
            for (const span of fallback) expect(span.parentSpanId).toBe(route.spanId);
          }
          // Past the cooldown (300 ms; retry-after 0), so the next request may pick it again.
          await new Promise((resolve) => setTimeout(resolve, 350));
        }
        expect(fallback).toBeDefined();
        const [failed, answered] = fallback!;
        expect(failed!.attributes['modelmaxx.route.attempt']).toBe(1);
        expect(failed!.attributes['error.type']).toBe(what);
        expect(failed!.status.code).toBe(2);
        expect(answered!.attributes).toMatchObject({
          'modelmaxx.route.attempt': 2,
          'modelmaxx.route.model': 'gpt-4o',
          'modelmaxx.route.policy': 'support',
          'gen_ai.request.model': 'gpt-4o',
          'gen_ai.response.model': 'gpt-4o-2024-08-06',
        });
        expect(String(answered!.attributes['modelmaxx.route.reason'])).toMatch(/^fallback: /);
        expect(answered!.attributes['modelmaxx.route.class']).toBeTypeOf('string');
        expect(failed!.traceId).toBe(answered!.traceId);
        expect(gateway.cooldowns('support').has('gpt-4o-mini')).toBe(true);
      } finally {
        sim.setModel('gpt-4o-mini', { failure: { rate429: 0, rate500: 0, rateTimeout: 0 } });
      }
    }, 60_000);
  }

  it('a real model (no policy) does not fall back: the 5xx comes back as it was', async () => {
    const error = await openai.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x [sim:status=503]' }] })
      .catch((caught: unknown) => caught);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
  });
});

describe('streams and aborts', () => {
  it('a client that aborts mid-stream aborts the upstream call', async () => {
    const controller = new AbortController();
    const before = slow.requests.length;
    const stream = await openai.chat.completions.create(
      { model: 'slow-model', stream: true, messages: [{ role: 'user', content: 'long' }] },
      { signal: controller.signal },
    );
    let received = 0;
    try {
      for await (const chunk of stream) {
        expect(chunk.choices[0]?.delta.content).toMatch(/^w\d+ $/);
        received += 1;
        if (received === 3) controller.abort();
      }
    } catch (error) {
      expect((error as Error).name).toMatch(/Abort/);
    }
    expect(received).toBe(3);
    const request = slow.requests[before]!;
    await waitFor(() => request.aborted, 10_000);
    expect(request.finished).toBe(false);
    const [span] = await spans(1);
    expect(span!.attributes['error.type']).toBe('client_aborted');
    expect(gateway.metrics().clientAborts).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('chunks reach the client while the upstream is still streaming (no buffering)', async () => {
    const start = Date.now();
    const stream = await openai.chat.completions.create({
      model: 'slow-model',
      stream: true,
      messages: [{ role: 'user', content: 'first chunk fast' }],
    });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    const firstAt = Date.now() - start;
    expect(first.value?.choices[0]?.delta.content).toBe('w0 ');
    // The whole answer takes 60 × 100 ms = 6 s; the first chunk comes long before.
    expect(firstAt).toBeLessThan(4000);
    stream.controller.abort();
  });

  it('an error event inside a stream reaches the app and marks the span', async () => {
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'Fails half-way [sim:stream-error tokens=20]' }],
    });
    const error = await (async () => {
      for await (const chunk of stream) void chunk;
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    const [span] = await spans(1);
    expect(span!.attributes['error.type']).toBe('stream_error');
  });

  it('an upstream that drops the connection mid-stream: the app sees the cut, the span says so', async () => {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        stream: true,
        messages: [{ role: 'user', content: 'Cut [sim:abort-after=3 tokens=20]' }],
      }),
    });
    expect(response.status).toBe(200);
    const read = await response.text().then(
      (text) => ({ ok: true, text }),
      () => ({ ok: false, text: '' }),
    );
    expect(read.ok && read.text.includes('[DONE]')).toBe(false);
    const [span] = await spans(1);
    expect(span!.attributes['error.type']).toBe('stream_interrupted');
  });

  it('curl: Anthropic messages, plain and streamed', async () => {
    const body = (stream: boolean) =>
      JSON.stringify({
        model: 'claude-haiku-4-5',
        max_tokens: 50,
        stream,
        messages: [{ role: 'user', content: 'curl messages' }],
      });
    const args = (stream: boolean) => [
      '-sS',
      '-N',
      '-H',
      'content-type: application/json',
      '-H',
      'anthropic-version: 2023-06-01',
      '--data-binary',
      body(stream),
      `${url}/v1/messages`,
    ];
    const plain = JSON.parse((await run('curl', args(false))).stdout) as { type: string };
    expect(plain.type).toBe('message');
    const streamed = (await run('curl', args(true))).stdout;
    expect(streamed).toContain('event: message_start');
    expect(streamed).toContain('event: message_stop');
  });

  it('curl -N streams the same server-sent events', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '-N',
      '-H',
      'content-type: application/json',
      '--data-binary',
      JSON.stringify({
        model: 'gpt-4o-mini',
        stream: true,
        messages: [{ role: 'user', content: 'Hi' }],
      }),
      `${url}/v1/chat/completions`,
    ]);
    const events = stdout.split('\n\n').filter((event) => event.startsWith('data: '));
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(events.length).toBeGreaterThan(3);
    expect(stdout).not.toContain('"choices":[]');
  });
});

describe('traces and cost', () => {
  it('an incoming traceparent continues the app trace', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentId = '00f067aa0ba902b7';
    await openai.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'traced' }] },
      { headers: { traceparent: `00-${traceId}-${parentId}-01` } },
    );
    const [span] = await spans(1);
    expect(span!.traceId).toBe(traceId);
    expect(span!.parentSpanId).toBe(parentId);
  });

  it('provider-reported cost is the span cost, with the catalog figure and the disagreement', async () => {
    await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'priced [sim:cost]' }],
    });
    const disagreementsBefore = gateway.metrics().costDisagreements;
    await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'overcharged [sim:cost=0.5]' }],
    });
    const [agreeing, disagreeing] = await spans(2);
    expect(agreeing!.attributes['gen_ai.usage.cost.source']).toBe('provider');
    expect(agreeing!.attributes['gen_ai.usage.cost.amount']).toBeCloseTo(
      Number(agreeing!.attributes['modelmaxx.cost.catalog_usd']),
      12,
    );
    expect(agreeing!.attributes['modelmaxx.cost.disagreement']).toBeUndefined();
    expect(disagreeing!.attributes['gen_ai.usage.cost.source']).toBe('provider');
    expect(disagreeing!.attributes['gen_ai.usage.cost.amount']).toBe(0.5);
    expect(Number(disagreeing!.attributes['modelmaxx.cost.catalog_usd'])).toBeLessThan(0.01);
    expect(Number(disagreeing!.attributes['modelmaxx.cost.disagreement'])).toBeGreaterThan(0.9);
    expect(gateway.metrics().costDisagreements).toBe(disagreementsBefore + 1);
  });
});

describe('safe by default', () => {
  it('sends the upstream its own key, never the app key, and records neither', async () => {
    const before = slow.requests.length;
    await openai.chat.completions.create({
      model: 'slow-model',
      messages: [{ role: 'user', content: 'keys' }],
    });
    const seen = slow.requests[before]!.headers;
    expect(seen['authorization']).toBe(`Bearer ${SLOW_KEY}`);
    expect(JSON.stringify(seen)).not.toContain('app-key');
    await spans(1);
    await gateway.forceFlush();
    expect(receiver.bodies.join('')).not.toContain(SLOW_KEY);
    expect(receiver.bodies.join('')).not.toContain('app-key');
  });

  it('answers 503 beyond the concurrency bound', async () => {
    const requests = Array.from({ length: 12 }, () =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        // Each held 2 s upstream: all 12 are in flight together, even on a loaded machine.
        headers: { 'content-type': 'application/json', 'x-slow-ms': '2000' },
        body: JSON.stringify({ model: 'slow-model', messages: [{ role: 'user', content: 'x' }] }),
      }),
    );
    const statuses = await Promise.all(
      requests.map(async (request) => {
        const response = await request;
        await response.text();
        return response.status;
      }),
    );
    expect(statuses.filter((status) => status === 200)).toHaveLength(8);
    expect(statuses.filter((status) => status === 503)).toHaveLength(4);
  });

  it('refuses to listen beyond loopback without gateway keys', async () => {
    const other = createGateway({
      config: resolveConfig({}, { upstreamFlags: [`openai=${sim.openaiBaseURL}`] }),
    });
    await expect(other.listen(0, '0.0.0.0')).rejects.toThrow(GatewayConfigError);
    await other.close();
  });

  it('config errors name the field', () => {
    expect(() => resolveConfig({ upstreams: { x: { kind: 'azure' } } })).toThrow(
      /upstreams\.x\.kind/,
    );
    expect(() => resolveConfig({ upstreams: { local: { kind: 'openai-compatible' } } })).toThrow(
      /needs a baseURL/,
    );
    expect(() => resolveConfig({}, { upstreamFlags: ['openai'] })).toThrow(/NAME=BASE_URL/);
  });
});
