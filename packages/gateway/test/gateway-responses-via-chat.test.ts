/**
 * `/v1/responses` to an OpenAI-compatible upstream without the Responses API (`responsesApi:
 * "chat"`, the default for `openai-compatible`): the real `openai` SDK against llm-sim behind a
 * recording proxy, which proves the gateway called `/v1/chat/completions` (llm-sim serves
 * `/v1/responses` too: the same upstream with `responsesApi: "native"` gets it, and its own
 * Responses stream is the reference for the translated one). Plain, streamed (`responses.create`
 * and `responses.stream`), a function call round trip, an upstream 429, refusals, the config
 * field and its defaults.
 */
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GatewayConfigError, resolveConfig } from '../src/index.js';
import { startRecordingProxy, startSdkGateway } from './helpers.js';
import type { RecordingProxy, SdkGateway } from './helpers.js';

const MODEL = 'llama-3.1-8b-instant';
/** The same upstream declared as serving the Responses API (forwarded as is). */
const NATIVE = `native/${MODEL}`;

let sim: LlmSim;
let proxy: RecordingProxy;
let sdk: SdkGateway;
let openai: OpenAI;

beforeAll(async () => {
  sim = await startLlmSim({ seed: 11 });
  proxy = await startRecordingProxy(new URL(sim.openaiBaseURL).origin);
  const baseURL = `${proxy.origin}/v1`;
  const config = resolveConfig(
    {
      upstreams: {
        local: { kind: 'openai-compatible', baseURL, models: ['llama-*'] },
        native: { kind: 'openai-compatible', baseURL, models: [], responsesApi: 'native' },
      },
    },
    { env: {} },
  );
  sdk = await startSdkGateway(config, { seed: 5 });
  ({ openai } = sdk);
});

afterAll(async () => {
  await sdk?.close();
  await proxy?.close();
  await sim?.close();
});

beforeEach(async () => {
  await sdk.reset();
  proxy.requests.length = 0;
});

const weather: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};

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
    const read = async (model: string) => {
      const stream = await openai.responses.create({
        model,
        input: 'Tell me about tea.',
        max_output_tokens: 200,
        stream: true,
      });
      const types: string[] = [];
      const sequence: number[] = [];
      let text = '';
      let completed: OpenAI.Responses.Response | undefined;
      for await (const event of stream) {
        if (types.at(-1) !== event.type) types.push(event.type);
        sequence.push(event.sequence_number);
        if (event.type === 'response.output_text.delta') text += event.delta;
        if (event.type === 'response.completed') completed = event.response;
      }
      return { types, sequence, text, completed: completed! };
    };
    const translated = await read(MODEL);
    expect(translated.types).toEqual((await read(NATIVE)).types);
    expect(translated.sequence).toEqual(translated.sequence.map((_, index) => index));
    expect(translated.text.length).toBeGreaterThan(0);
    const whole = translated.completed.output
      .flatMap((item) => (item.type === 'message' ? item.content : []))
      .map((part) => (part.type === 'output_text' ? part.text : ''))
      .join('');
    expect(whole).toBe(translated.text);
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
    const helper = openai.responses.stream({
      model: MODEL,
      input: 'Tell me about coffee.',
      max_output_tokens: 200,
    });
    let deltas = '';
    helper.on('response.output_text.delta', (event) => (deltas += event.delta));
    const final = await helper.finalResponse();
    expect(deltas.length).toBeGreaterThan(0);
    expect(final.output_text).toBe(deltas);
    expect(final.status).toBe('completed');
    expect(final.usage!.output_tokens).toBeGreaterThan(0);
    expect(proxy.requests[2]!.path).toBe('/v1/chat/completions');
  });

  it('tools: a function call (plain and streamed), then its output sent back as a tool message', async () => {
    const response = await openai.responses.create({
      model: MODEL,
      input: 'Weather in Paris?',
      tools: [weather],
      tool_choice: { type: 'function', name: 'get_weather' },
      parallel_tool_calls: false,
      max_output_tokens: 200,
    });
    const call = response.output.find((item) => item.type === 'function_call');
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', status: 'completed' });
    const args = call?.type === 'function_call' ? call.arguments : '';
    expect(typeof (JSON.parse(args) as { city: unknown }).city).toBe('string');
    expect(proxy.requests[0]!.body).toMatchObject({
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Weather in a city',
            parameters: weather.parameters,
          },
        },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
    });

    const helper = openai.responses.stream({
      model: MODEL,
      input: 'Weather in Oslo?',
      tools: [weather],
      tool_choice: 'required',
      max_output_tokens: 200,
    });
    let streamedArgs = '';
    helper.on('response.function_call_arguments.delta', (event) => (streamedArgs += event.delta));
    const streamed = await helper.finalResponse();
    const streamedCall = streamed.output.find((item) => item.type === 'function_call');
    expect(streamedCall?.type === 'function_call' && streamedCall.name).toBe('get_weather');
    expect(streamedCall?.type === 'function_call' && streamedCall.arguments).toBe(streamedArgs);
    expect(proxy.requests[1]!.body['tool_choice']).toBe('required');

    const answer = await openai.responses.create({
      model: MODEL,
      tools: [weather],
      max_output_tokens: 200,
      input: [
        { role: 'user', content: 'Weather in Paris?' },
        ...(response.output as OpenAI.Responses.ResponseInputItem[]),
        { type: 'function_call_output', call_id: call!.call_id, output: '18 C, sunny' },
      ],
    });
    expect(answer.output_text.length).toBeGreaterThan(0);
    const messages = proxy.requests[2]!.body['messages'] as Record<string, unknown>[];
    expect(messages[0]).toEqual({ role: 'user', content: 'Weather in Paris?' });
    expect(messages.at(-2)).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: [
        {
          id: call!.call_id,
          type: 'function',
          function: { name: 'get_weather', arguments: args },
        },
      ],
    });
    expect(messages.at(-1)).toEqual({
      role: 'tool',
      tool_call_id: call!.call_id,
      content: '18 C, sunny',
    });
  });

  it('parallel tool calls, their chunks interleaved in the chat stream: one function_call item each', async () => {
    const time: OpenAI.Responses.FunctionTool = {
      type: 'function',
      name: 'get_time',
      parameters: { type: 'object', properties: { zone: { type: 'string' } } },
      strict: false,
    };
    const ask = (directive: string) => ({
      model: MODEL,
      input: `Weather and time in Rome [sim:parallel-tools=2${directive}]`,
      tools: [weather, time],
      tool_choice: 'required' as const,
      max_output_tokens: 300,
    });
    const calls = (response: OpenAI.Responses.Response) =>
      response.output.flatMap((item) =>
        item.type === 'function_call' ? [[item.name, item.arguments]] : [],
      );
    const whole = await openai.responses.create(ask(''));
    expect(calls(whole).map(([name]) => name)).toEqual(['get_weather', 'get_time']);
    const streamed = await openai.responses.stream(ask(' interleave-tools')).finalResponse();
    expect(calls(streamed)).toEqual(calls(whole));
    expect(new Set(streamed.output.map((item) => item.id)).size).toBe(streamed.output.length);
  });

  it("errors: the upstream's 429 passed back (status, body, retry-after); a stream error as the SDK's APIError", async () => {
    const limited = (await openai.responses
      .create({ model: MODEL, input: 'Hi [sim:status=429 retry-after=6]' })
      .catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.RateLimitError>;
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('6');
    expect(limited.message.length).toBeGreaterThan('429 '.length);
    expect(proxy.requests[0]!.path).toBe('/v1/chat/completions');
    const [span] = await sdk.chatSpans(1);
    expect(span!.attributes['error.type']).toBe('429');

    const stream = await openai.responses.create({
      model: MODEL,
      input: 'Tell me a story [sim:stream-error]',
      max_output_tokens: 200,
      stream: true,
    });
    const read = (async () => {
      for await (const event of stream) void event;
    })();
    await expect(read).rejects.toBeInstanceOf(OpenAI.APIError);
  });

  it('refuses what has no Chat Completions counterpart with a 400 naming it; nothing goes upstream', async () => {
    for (const [extra, named] of [
      [{ previous_response_id: 'resp_1' }, '"previous_response_id"'],
      [{ tools: [{ type: 'web_search' }] }, 'a "web_search" tool'],
      [{ include: ['message.output_text.logprobs'] }, '"include"'],
      [{ reasoning: { effort: 'low', summary: 'auto' } }, '"reasoning.summary"'],
    ] as const) {
      const error = (await openai.responses
        .create({
          model: MODEL,
          input: 'Hi',
          ...(extra as object),
        } as OpenAI.Responses.ResponseCreateParamsNonStreaming)
        .catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.BadRequestError>;
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect(error.message).toContain(named);
      expect(error.message).toContain('cannot be translated to OpenAI Chat Completions');
    }
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
