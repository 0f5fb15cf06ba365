/**
 * `/v1/responses` to an OpenAI-compatible upstream without the Responses API (`responsesApi:
 * "chat"`, the default for `openai-compatible`): the real `openai` SDK against llm-sim behind a
 * recording proxy, which proves the gateway called `/v1/chat/completions` (llm-sim serves
 * `/v1/responses` too: the same upstream with `responsesApi: "native"` gets it, and its own
 * Responses stream is the reference for the translated one). Plain, streamed (`responses.create`
 * and `responses.stream`), a function call round trip, an upstream 429, refusals, the config
 * field and its defaults.
 */
import type OpenAI from 'openai';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { GatewayConfigError, resolveConfig } from '../src/index.js';
import { startProxiedSim, useProxiedSim } from './helpers.js';
import type { RecordingProxy, SdkGateway } from './helpers.js';
import * as ask from './responses-sdk.js';

const MODEL = 'llama-3.1-8b-instant';
/** The same upstream declared as serving the Responses API (forwarded as is). */
const NATIVE = `native/${MODEL}`;

const rig = useProxiedSim(() =>
  startProxiedSim(
    11,
    5,
    [
      {
        name: 'mixed',
        exploration: 0,
        candidates: [
          { model: 'gpt-4o-mini', client: 'openai' },
          { model: MODEL, client: 'local' },
        ],
        fallback: { maxAttempts: 2, cooldownMs: 1, timeoutMs: 10_000 },
      },
    ],
    (origin) => {
      const baseURL = `${origin}/v1`;
      return {
        local: { kind: 'openai-compatible', baseURL, models: ['llama-*'] },
        native: { kind: 'openai-compatible', baseURL, models: [], responsesApi: 'native' },
        openai: { kind: 'openai', baseURL },
      };
    },
  ),
);
let sim: LlmSim;
let proxy: RecordingProxy;
let sdk: SdkGateway;
let openai: OpenAI;

beforeAll(() => {
  ({ sim, proxy, sdk } = rig());
  ({ openai } = sdk);
});

/** The catalog's price of the model (Groq's llama-3.1-8b-instant: $0.05 / $0.08 per MTok). */
const priced = (input: number, output: number) => (input * 0.05 + output * 0.08) / 1e6;

describe('OpenAI responses on an OpenAI-compatible upstream without the Responses API', () => {
  it('plain: the chat counterpart goes to /v1/chat/completions; the answer is a response; the span names the chat API and prices the usage', async () => {
    const response = await openai.responses.create({
      model: MODEL,
      instructions: 'Be brief.',
      input: [
        { role: 'developer', content: 'Answer in English.' },
        { role: 'user', content: [{ type: 'input_text', text: 'What is 6 * 7?' }] },
      ],
      max_output_tokens: 120,
      temperature: 1.3,
      user: 'u-7',
      store: false,
    });
    expect(response).toMatchObject({ object: 'response', status: 'completed', model: MODEL });
    expect(response.output_text.length).toBeGreaterThan(0);
    expect(response.output.map((item) => [item.type, 'role' in item && item.role])).toEqual([
      ['message', 'assistant'],
    ]);
    const usage = response.usage!;
    expect([usage.input_tokens > 0, usage.output_tokens > 0, usage.total_tokens]).toEqual([
      true,
      true,
      usage.input_tokens + usage.output_tokens,
    ]);
    expect(proxy.requests).toEqual([
      {
        path: '/v1/chat/completions',
        body: {
          model: MODEL,
          messages: [
            { role: 'system', content: 'Be brief.' },
            { role: 'system', content: 'Answer in English.' },
            { role: 'user', content: [{ type: 'text', text: 'What is 6 * 7?' }] },
          ],
          // Not OpenAI's own API: max_tokens, as these servers know it.
          max_tokens: 120,
          temperature: 1.3,
          user: 'u-7',
        },
      },
    ]);
    const [span] = await sdk.chatSpans(1);
    expect(span!.attributes).toMatchObject({
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': MODEL,
      'modelmaxx.gateway.upstream': 'local',
      'modelmaxx.gateway.upstream_api': 'chat',
      'gen_ai.response.id': response.id,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': usage.input_tokens,
      'gen_ai.usage.output_tokens': usage.output_tokens,
      'gen_ai.usage.cost.source': 'local',
    });
    expect(span!.attributes['gen_ai.usage.cost.amount']).toBeCloseTo(
      priced(usage.input_tokens, usage.output_tokens),
      12,
    );

    // The same upstream declared native gets the Responses request as it is.
    const native = await openai.responses.create({ model: NATIVE, input: 'What is 6 * 7?' });
    expect(native.output_text.length).toBeGreaterThan(0);
    expect(proxy.requests.map((request) => request.path)).toEqual([
      '/v1/chat/completions',
      '/v1/responses',
    ]);
    const spans = await sdk.chatSpans(2);
    expect(spans[1]!.attributes['modelmaxx.gateway.upstream_api']).toBe('responses');
  });

  it('an input_image part as an image_url part, its detail kept', async () => {
    const url = `data:image/png;base64,${Buffer.from('not really a png').toString('base64')}`;
    const response = await openai.responses.create({
      model: MODEL,
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'What is in this picture?' },
            { type: 'input_image', image_url: url, detail: 'low' },
          ],
        },
      ],
    });
    expect(response.output_text.length).toBeGreaterThan(0);
    expect(proxy.requests[0]!.body['messages']).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in this picture?' },
          { type: 'image_url', image_url: { url, detail: 'low' } },
        ],
      },
    ]);
  });

  it('a cut answer is incomplete (max_output_tokens)', async () => {
    const response = await openai.responses.create({
      model: MODEL,
      input: 'Tell me about tea.',
      max_output_tokens: 3,
    });
    expect(response.status).toBe('incomplete');
    expect(response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
  });

  it("streamed: the upstream's chat chunks as the Responses events of llm-sim's own Responses stream, usage included", async () => {
    const translated = await ask.readResponsesStream(openai, MODEL);
    expect(translated.types).toEqual((await ask.readResponsesStream(openai, NATIVE)).types);
    const usage = translated.completed.usage!;
    expect(usage.input_tokens).toBeGreaterThan(0);
    expect(usage.output_tokens).toBeGreaterThan(0);
    expect(proxy.requests.map((request) => request.path)).toEqual([
      '/v1/chat/completions',
      '/v1/responses',
    ]);
    expect(proxy.requests[0]!.body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
    const [span] = await sdk.chatSpans(1);
    expect(span!.attributes).toMatchObject({
      'modelmaxx.gateway.upstream_api': 'chat',
      'gen_ai.request.stream': true,
      'gen_ai.usage.input_tokens': usage.input_tokens,
      'gen_ai.usage.output_tokens': usage.output_tokens,
    });
    expect(span!.attributes['gen_ai.usage.cost.amount']).toBeCloseTo(
      priced(usage.input_tokens, usage.output_tokens),
      12,
    );
    expect(span!.attributes['gen_ai.response.time_to_first_chunk']).toBeGreaterThan(0);

    // responses.stream(): the SDK's accumulating helper and its final response.
    const final = await ask.streamHelperAnswer(openai, MODEL);
    expect(final.usage!.output_tokens).toBeGreaterThan(0);
    expect(proxy.requests[2]!.path).toBe('/v1/chat/completions');
  });

  it('tools: a function call (plain and streamed), then its output sent back as a tool message', async () => {
    const called = await ask.forcedCall(openai, MODEL);
    const { call, args } = called;
    expect(proxy.requests[0]!.body).toMatchObject({
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Weather in a city',
            parameters: ask.weather.parameters,
          },
        },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
    });

    await ask.streamedCall(openai, MODEL);
    expect(proxy.requests[1]!.body['tool_choice']).toBe('required');

    await ask.answerAfterCall(openai, MODEL, called);
    const messages = proxy.requests[2]!.body['messages'] as Record<string, unknown>[];
    expect(messages[0]).toEqual({ role: 'user', content: 'Weather in Paris?' });
    expect(messages.at(-2)).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: [
        {
          id: call.call_id,
          type: 'function',
          function: { name: 'get_weather', arguments: args },
        },
      ],
    });
    expect(messages.at(-1)).toEqual({
      role: 'tool',
      tool_call_id: call.call_id,
      content: '18 C, sunny',
    });
  });

  it('parallel tool calls, their chunks interleaved in the chat stream: one function_call item each', async () => {
    await ask.parallelCalls(openai, MODEL, ' interleave-tools');
  });

  it("errors: the upstream's 429 passed back (status, body, retry-after); a stream error as the SDK's APIError", async () => {
    await ask.expectErrors(openai, MODEL);
    expect(proxy.requests[0]!.path).toBe('/v1/chat/completions');
    const [span] = await sdk.chatSpans(1);
    expect(span!.attributes).toMatchObject({
      'error.type': '429',
      'modelmaxx.gateway.upstream_api': 'chat',
    });
  });

  it('refuses what has no Chat Completions counterpart with a 400 naming it; nothing goes upstream', async () => {
    await ask.expectRefused(
      openai,
      MODEL,
      [
        [{ previous_response_id: 'resp_1' }, '"previous_response_id"'],
        [{ tools: [{ type: 'web_search' }] }, 'a "web_search" tool'],
        [{ include: ['message.output_text.logprobs'] }, '"include"'],
        [{ reasoning: { effort: 'low', summary: 'auto' } }, '"reasoning.summary"'],
      ],
      'OpenAI Chat Completions',
    );
    expect(proxy.requests).toHaveLength(0);
  });

  it('structured output and reasoning effort have chat counterparts: response_format, reasoning_effort', async () => {
    const schema = {
      type: 'object',
      properties: { answer: { type: 'string' } },
      required: ['answer'],
      additionalProperties: false,
    };
    const response = await openai.responses.create({
      model: MODEL,
      input: 'Answer in JSON.',
      text: { format: { type: 'json_schema', name: 'reply', schema, strict: true } },
      reasoning: { effort: 'low' },
      max_output_tokens: 200,
    });
    expect(typeof (JSON.parse(response.output_text) as { answer: unknown }).answer).toBe('string');
    expect(proxy.requests[0]!.body).toMatchObject({
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'reply', schema, strict: true },
      },
      reasoning_effort: 'low',
    });
  });
});

describe('a route: policy over a native and a chat-only candidate', () => {
  /** A routed request answered while `failing` answers 500: who answered, what was called. */
  const routed = async (failing: string, extra: object = {}) => {
    sim.setModel(failing, { failure: { rate500: 1 } });
    try {
      proxy.requests.length = 0;
      const { data, response } = await openai.responses
        .create({ model: 'route:mixed', input: 'Hello there', max_output_tokens: 50, ...extra })
        .withResponse();
      expect(data.output_text.length).toBeGreaterThan(0);
      const paths = proxy.requests.map((request) => request.path);
      return { model: response.headers.get('x-modelmaxx-model'), paths };
    } finally {
      sim.setModel(failing, { failure: { rate500: 0 } });
    }
  };

  it('each candidate gets /v1/responses in its own way: the chat-only one translated, the other as is', async () => {
    const byChat = await routed('gpt-4o-mini');
    expect(byChat.model).toBe(MODEL);
    expect(byChat.paths.at(-1)).toBe('/v1/chat/completions');
    const native = await routed(MODEL);
    expect(native.model).toBe('gpt-4o-mini');
    expect(native.paths.at(-1)).toBe('/v1/responses');
  });

  it('a field the chat-only candidate cannot take leaves it out; the other answers it', async () => {
    // top_logprobs has no Chat Completions counterpart here: only gpt-4o-mini is asked.
    const answered = await routed(MODEL, { top_logprobs: 2 });
    expect(answered).toEqual({ model: 'gpt-4o-mini', paths: ['/v1/responses'] });
  });
});

describe('the responsesApi upstream field', () => {
  const upstreamOf = (input: unknown, name: string) =>
    resolveConfig(input, { env: {} }).upstreams.get(name)!;

  it('defaults: native for openai, chat for openai-compatible and openrouter; a setting wins', () => {
    const config = {
      upstreams: {
        openai: { kind: 'openai' },
        openrouter: { kind: 'openrouter' },
        vllm: { kind: 'openai-compatible', baseURL: 'http://127.0.0.1:8000/v1' },
        groq: {
          kind: 'openai-compatible',
          baseURL: 'http://127.0.0.1:8001/v1',
          responsesApi: 'native',
        },
        proxy: { kind: 'openai', baseURL: 'http://127.0.0.1:8002/v1', responsesApi: 'chat' },
      },
    };
    expect(
      ['openai', 'openrouter', 'vllm', 'groq', 'proxy'].map(
        (name) => upstreamOf(config, name).responsesApi,
      ),
    ).toEqual(['native', 'chat', 'chat', 'native', 'chat']);
  });

  it('refused: a value other than native / chat (naming the path), and on an anthropic upstream', () => {
    expect(() =>
      resolveConfig({ upstreams: { vllm: { kind: 'openai', responsesApi: 'yes' } } }),
    ).toThrow(/upstreams\.vllm\.responsesApi/);
    expect(() =>
      resolveConfig({ upstreams: { anthropic: { kind: 'anthropic', responsesApi: 'chat' } } }),
    ).toThrow(GatewayConfigError);
    expect(() => resolveConfig({ upstreams: { anthropic: { responsesApi: 'native' } } })).toThrow(
      /responsesApi is for OpenAI-style upstreams/,
    );
  });
});
