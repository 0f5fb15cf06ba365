/**
 * Review of the `/v1/responses` translations and the chat → Anthropic stream converter: the real
 * `openai` SDK against llm-sim (behind a recording proxy) through a chat-only OpenAI-style
 * upstream and an Anthropic one, and the converter fed chat chunks an OpenAI-compatible server
 * may send. Each case failed before its fix:
 * - parallel function_call items sent back go to Chat Completions as ONE assistant message with
 *   both tool calls, each answered by a tool message after it (they were two assistant messages,
 *   the first not followed by its tool message, which OpenAI's chat API refuses);
 * - a chat upstream's reasoning tokens reach `usage.output_tokens_details.reasoning_tokens`
 *   (always 0 before), plain and streamed;
 * - Anthropic's `refusal` stop (its safety classifier) is an incomplete response with
 *   `incomplete_details.reason: content_filter` (as chat's `content_filter`), not `completed`;
 * - a tool call whose name comes after its first chunk is not opened nameless; a held call gets
 *   its block as soon as the open call's arguments are whole.
 */
import OpenAI from 'openai';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChatToAnthropic } from '../src/translate/streams.js';
import { startProxiedSim, useProxiedSim } from './helpers.js';
import type { RecordingProxy, SdkGateway } from './helpers.js';
import { forcedCall, weather } from './responses-sdk.js';

const CHAT_MODEL = 'llama-3.1-8b-instant';
const REASONING_MODEL = 'o3-mini';

const rig = useProxiedSim(() =>
  startProxiedSim(13, 2, [], (origin) => ({
    local: { kind: 'openai-compatible', baseURL: `${origin}/v1`, models: ['llama-*'] },
    chat: { kind: 'openai', baseURL: `${origin}/v1`, models: ['o3-*'], responsesApi: 'chat' },
    anthropic: { kind: 'anthropic', baseURL: origin },
  })),
);
let sim: LlmSim;
let proxy: RecordingProxy;
let sdk: SdkGateway;
let openai: OpenAI;

beforeAll(() => {
  ({ sim, proxy, sdk } = rig());
  ({ openai } = sdk);
});

/** llm-sim asked directly (what the upstream answers the gateway's request). */
const direct = () => new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'sim', maxRetries: 0 });

const time: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_time',
  parameters: { type: 'object', properties: { zone: { type: 'string' } } },
  strict: false,
};

describe('/v1/responses over a chat-only upstream', () => {
  it('parallel function_call items sent back: one assistant message with both calls, then a tool message each', async () => {
    const first = await openai.responses.create({
      model: CHAT_MODEL,
      input: 'Weather and time in Rome [sim:parallel-tools=2]',
      tools: [weather, time],
      tool_choice: 'required',
      max_output_tokens: 300,
    });
    const calls = first.output.filter((item) => item.type === 'function_call');
    expect(calls).toHaveLength(2);
    proxy.requests.length = 0;
    const answer = await openai.responses.create({
      model: CHAT_MODEL,
      tools: [weather, time],
      max_output_tokens: 200,
      input: [
        { role: 'user', content: 'Weather and time in Rome' },
        ...(first.output as OpenAI.Responses.ResponseInputItem[]),
        ...calls.map((call) => ({
          type: 'function_call_output' as const,
          call_id: call.call_id,
          output: `result of ${call.name}`,
        })),
      ],
    });
    expect(answer.status).toBe('completed');
    const messages = proxy.requests[0]!.body['messages'] as Record<string, unknown>[];
    expect(messages.map((message) => message['role'])).toEqual([
      'user',
      'assistant',
      'tool',
      'tool',
    ]);
    expect(messages[1]).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: calls.map((call) => ({
        id: call.call_id,
        type: 'function',
        function: { name: call.name, arguments: call.arguments },
      })),
    });
    expect(messages.slice(2).map((message) => message['tool_call_id'])).toEqual(
      calls.map((call) => call.call_id),
    );
  });

  it('an assistant text item then its call: the call joins that assistant message', async () => {
    await openai.responses.create({
      model: CHAT_MODEL,
      max_output_tokens: 100,
      input: [
        { role: 'user', content: 'Weather in Oslo?' },
        {
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          status: 'completed',
          content: [{ type: 'output_text', text: 'Let me look.', annotations: [] }],
        },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{}' },
        { type: 'function_call_output', call_id: 'call_1', output: 'cold' },
      ],
    });
    const messages = proxy.requests[0]!.body['messages'] as Record<string, unknown>[];
    expect(messages.map((message) => message['role'])).toEqual(['user', 'assistant', 'tool']);
    expect(messages[1]).toMatchObject({
      content: [{ type: 'text', text: 'Let me look.' }],
      tool_calls: [{ id: 'call_1', function: { name: 'get_weather', arguments: '{}' } }],
    });
  });

  it("the upstream's reasoning tokens in usage.output_tokens_details, plain and streamed", async () => {
    const ask = {
      model: REASONING_MODEL,
      input: 'Prove that 17 is prime.',
      max_output_tokens: 4000,
    };
    const plain = await openai.responses.create(ask);
    // What the upstream's chat usage says for the same request (llm-sim is deterministic).
    const upstream = await direct().chat.completions.create({
      model: REASONING_MODEL,
      messages: [{ role: 'user', content: ask.input }],
      max_completion_tokens: ask.max_output_tokens,
    });
    const reasoning = upstream.usage!.completion_tokens_details!.reasoning_tokens!;
    expect(reasoning).toBeGreaterThan(0);
    expect(plain.usage!.output_tokens_details.reasoning_tokens).toBe(reasoning);
    expect(proxy.requests[0]!.path).toBe('/v1/chat/completions');

    const streamed = await openai.responses.stream(ask).finalResponse();
    expect(streamed.usage!.output_tokens_details.reasoning_tokens).toBe(reasoning);
    expect(streamed.usage!.output_tokens).toBe(plain.usage!.output_tokens);
  });
  it("a call's arguments that do not parse come back as written, plain as streamed (not `{}`)", async () => {
    const ask = {
      model: CHAT_MODEL,
      input: 'Weather in Lima [sim:bad-tool-args]',
      tools: [weather],
      tool_choice: 'required' as const,
      max_output_tokens: 200,
    };
    const argsOf = (response: OpenAI.Responses.Response) =>
      response.output.flatMap((item) => (item.type === 'function_call' ? [item.arguments] : []));
    const plain = argsOf(await openai.responses.create(ask));
    const streamed = argsOf(await openai.responses.stream(ask).finalResponse());
    expect(plain).toHaveLength(1);
    expect(() => JSON.parse(plain[0]!) as unknown).toThrow();
    expect(plain).toEqual(streamed);
  });

  it("the upstream's refusal is a refusal part (not output_text), plain and streamed", async () => {
    const ask = { model: CHAT_MODEL, input: 'Hi [sim:refusal]', max_output_tokens: 200 };
    const upstream = await direct().chat.completions.create({
      model: CHAT_MODEL,
      messages: [{ role: 'user', content: ask.input }],
      max_tokens: ask.max_output_tokens,
    });
    const refusal = upstream.choices[0]!.message.refusal!;
    expect(refusal.length).toBeGreaterThan(0);
    const contentOf = (response: OpenAI.Responses.Response) =>
      response.output.flatMap((item) => (item.type === 'message' ? item.content : []));
    const plain = await openai.responses.create(ask);
    expect(contentOf(plain)).toEqual([{ type: 'refusal', refusal }]);
    expect(plain.output_text).toBe('');
    const helper = openai.responses.stream(ask);
    let deltas = '';
    helper.on('response.refusal.delta', (event) => (deltas += event.delta));
    const streamed = await helper.finalResponse();
    expect(deltas).toBe(refusal);
    // (The SDK's stream helper adds `parsed: null` to each part.)
    expect(contentOf(streamed)).toMatchObject([{ type: 'refusal', refusal }]);
    expect(streamed.output_text).toBe('');
  });

  it('tool_choice and parallel_tool_calls without tools (or with tools: []) are not sent: chat and Anthropic refuse them', async () => {
    for (const model of [CHAT_MODEL, 'claude-haiku-4-5']) {
      proxy.requests.length = 0;
      const response = await openai.responses.create({
        model,
        input: 'Hi',
        tools: [],
        tool_choice: 'auto',
        parallel_tool_calls: false,
        max_output_tokens: 50,
      });
      expect(response.output_text.length).toBeGreaterThan(0);
      const body = proxy.requests[0]!.body;
      expect([body['tools'], body['tool_choice'], body['parallel_tool_calls']]).toEqual([
        undefined,
        undefined,
        undefined,
      ]);
    }
    // With a tool, both go.
    proxy.requests.length = 0;
    await forcedCall(openai, CHAT_MODEL);
    expect(proxy.requests[0]!.body).toMatchObject({ parallel_tool_calls: false });
  });

  it('an input item that is not an object: a 400 saying so (not a translation limit)', async () => {
    const error = (await openai.responses
      .create({ model: CHAT_MODEL, input: ['Hi'] as unknown as OpenAI.Responses.ResponseInput })
      .catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.message).toContain('"input[0]" must be an input item object');
    expect(proxy.requests).toHaveLength(0);
  });
});

describe('/v1/responses over an Anthropic upstream', () => {
  it("a refusal stop (Anthropic's classifier) is incomplete for content_filter, plain and streamed", async () => {
    const ask = { model: 'claude-haiku-4-5', input: 'Hi [sim:refusal]', max_output_tokens: 200 };
    const plain = await openai.responses.create(ask);
    expect(proxy.requests[0]!.path).toBe('/v1/messages');
    expect([plain.status, plain.incomplete_details]).toEqual([
      'incomplete',
      { reason: 'content_filter' },
    ]);
    const stream = await openai.responses.create({ ...ask, stream: true });
    let last: OpenAI.Responses.ResponseStreamEvent | undefined;
    for await (const event of stream) last = event;
    expect(last?.type).toBe('response.incomplete');
    const final = (last as OpenAI.Responses.ResponseIncompleteEvent).response;
    expect([final.status, final.incomplete_details]).toEqual([
      'incomplete',
      { reason: 'content_filter' },
    ]);
    // A cut answer stays incomplete for max_output_tokens.
    const cut = await openai.responses.create({ ...ask, input: 'Tell me about tea. [sim:length]' });
    expect(cut.incomplete_details).toEqual({ reason: 'max_output_tokens' });
  });
});

describe('/v1/responses stream errors', () => {
  it('the error event is numbered after the events before it (sequence_number), both upstreams', async () => {
    for (const model of [CHAT_MODEL, 'claude-haiku-4-5']) {
      const answer = await fetch(`${sdk.url}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model,
          input: 'Tell me a story [sim:stream-error]',
          max_output_tokens: 200,
          stream: true,
        }),
      });
      const data = (await answer.text())
        .split('\n\n')
        .filter((event) => event.includes('data: '))
        .map((event) => JSON.parse(event.split('data: ')[1]!) as Record<string, unknown>);
      const error = data.at(-1)!;
      expect(error).toMatchObject({ type: 'error', code: expect.any(String) as unknown });
      expect(data.map((event) => event['sequence_number'])).toEqual(data.map((_, index) => index));
    }
  });
});

/** A chat chunk with one tool call delta (SSE event text without its blank line). */
const chunk = (call: Record<string, unknown>, finish: string | null = null): string =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-1',
    model: 'm',
    choices: [{ index: 0, delta: { tool_calls: [call] }, finish_reason: finish }],
  })}`;

/** Anthropic events written by the converter, parsed (type and data). */
const events = (sse: string) =>
  sse
    .split('\n\n')
    .filter((event) => event.startsWith('event: '))
    .map((event) => JSON.parse(event.split('\ndata: ')[1]!) as Record<string, unknown>);

const fn = (name: string | undefined, args: string) =>
  name === undefined ? { arguments: args } : { name, arguments: args };

describe('chat chunks → Anthropic events: held tool calls', () => {
  it('a call whose first chunks lack its name waits for it (no nameless block)', () => {
    const converter = new ChatToAnthropic();
    let out = '';
    // Call 1's arguments come before its id and name; call 0 comes whole after.
    out += converter.event(chunk({ index: 1, function: fn(undefined, '{"zone":') }));
    out += converter.event(
      chunk({ index: 1, id: 'call_b', type: 'function', function: fn('get_time', '') }),
    );
    out += converter.event(
      chunk({
        index: 0,
        id: 'call_a',
        type: 'function',
        function: fn('get_weather', '{"city":"Rome"}'),
      }),
    );
    out += converter.event(chunk({ index: 1, function: fn(undefined, '"CET"}') }, 'tool_calls'));
    out += converter.end();
    const starts = events(out).filter((event) => event['type'] === 'content_block_start');
    expect(starts.map((event) => event['content_block'])).toEqual([
      { type: 'tool_use', id: 'call_b', name: 'get_time', input: {} },
      { type: 'tool_use', id: 'call_a', name: 'get_weather', input: {} },
    ]);
    const args = new Map<unknown, string>();
    for (const event of events(out)) {
      const delta = event['delta'] as Record<string, unknown> | undefined;
      if (delta?.['type'] === 'input_json_delta')
        args.set(event['index'], (args.get(event['index']) ?? '') + String(delta['partial_json']));
    }
    expect([...args.values()].map((text) => JSON.parse(text) as unknown)).toEqual([
      { zone: 'CET' },
      { city: 'Rome' },
    ]);
  });

  it('a held call gets its block as soon as the open call is whole (not at the finish)', () => {
    const converter = new ChatToAnthropic();
    converter.event(
      chunk({ index: 0, id: 'call_a', type: 'function', function: fn('get_weather', '{"ci') }),
    );
    converter.event(
      chunk({
        index: 1,
        id: 'call_b',
        type: 'function',
        function: fn('get_time', '{"zone":"CET"}'),
      }),
    );
    converter.event(
      chunk({
        index: 2,
        id: 'call_c',
        type: 'function',
        function: fn('get_news', '{"topic":"x"}'),
      }),
    );
    const completing = events(
      converter.event(chunk({ index: 0, function: fn(undefined, 'ty":"Rome"}') })),
    );
    expect(completing.map((event) => [event['type'], event['index']])).toEqual([
      ['content_block_delta', 0],
      ['content_block_stop', 0],
      ['content_block_start', 1],
      ['content_block_delta', 1],
      ['content_block_stop', 1],
      ['content_block_start', 2],
      ['content_block_delta', 2],
    ]);
  });

  it('the open call cut short (max_tokens): the held calls still come, each whole, stop max_tokens', () => {
    const converter = new ChatToAnthropic();
    let out = converter.event(
      chunk({
        index: 0,
        id: 'call_a',
        type: 'function',
        function: fn('get_weather', '{"city":"Ro'),
      }),
    );
    out += converter.event(
      chunk({ index: 1, id: 'call_b', type: 'function', function: fn('get_time', '{}') }),
    );
    out += converter.event(
      chunk(
        { index: 2, id: 'call_c', type: 'function', function: fn('get_news', '{"topic":"x"}') },
        'length',
      ),
    );
    out += converter.end();
    const parsed = events(out);
    expect(
      parsed
        .filter((event) => event['type'] === 'content_block_start')
        .map((event) => (event['content_block'] as { id: string }).id),
    ).toEqual(['call_a', 'call_b', 'call_c']);
    expect(parsed.filter((event) => event['type'] === 'content_block_stop')).toHaveLength(3);
    expect(parsed.find((event) => event['type'] === 'message_delta')?.['delta']).toEqual({
      stop_reason: 'max_tokens',
      stop_sequence: null,
    });
  });
});
