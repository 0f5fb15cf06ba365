/**
 * What a translated answer must say as the provider would (issue 14): the real `openai` and
 * `@anthropic-ai/sdk` SDKs against llm-sim behind a recording proxy, through a chat-only
 * OpenAI-style upstream, an Anthropic one, and the same llm-sim upstream declared as serving the
 * Responses API (its `response` objects, shaped as OpenAI's, are the reference). Each case
 * failed before its fix:
 * - a translated `response` (whole, `response.created`, `response.completed`) echoes the
 *   request's settings (`instructions`, `tools`, `tool_choice`, `temperature`, `metadata`…) with
 *   OpenAI's defaults for those not given (it had none of them, and `parallel_tool_calls: true`);
 * - a function tool's `strict` reaches the upstream (chat `function.strict`, Anthropic `strict`);
 * - a tool call cut at the token limit is an `incomplete` item (it read `completed`);
 * - a stream that ends without its terminator (no finish reason, `[DONE]` or `message_stop`) is
 *   an error the SDK throws, never a clean end.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { chatNativeAnthropicUpstreams, startProxiedSim, useProxiedSim } from './helpers.js';
import type { RecordingProxy } from './helpers.js';
import { weather } from './responses-sdk.js';

const CHAT_MODEL = 'llama-3.1-8b-instant';
const CLAUDE = 'claude-haiku-4-5';
/** The chat-only model's upstream declared as serving the Responses API (forwarded as is). */
const NATIVE = `native/${CHAT_MODEL}`;

const rig = useProxiedSim(() => startProxiedSim(17, 4, [], chatNativeAnthropicUpstreams));
let proxy: RecordingProxy;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(() => {
  ({ proxy } = rig());
  ({ openai, anthropic } = rig().sdk);
});

type Response = OpenAI.Responses.Response;

/** The request settings a `response` object echoes (those llm-sim's own responses echo too). */
const ECHOED = [
  'instructions',
  'max_output_tokens',
  'max_tool_calls',
  'metadata',
  'previous_response_id',
  'reasoning',
  'store',
  'temperature',
  'text',
  'tool_choice',
  'tools',
  'top_p',
  'truncation',
  'background',
] as const;

const echoOf = (response: Response) =>
  Object.fromEntries(
    ECHOED.map((field) => [field, (response as unknown as Record<string, unknown>)[field]]),
  );

const full = {
  instructions: 'Be brief.',
  input: 'Weather in Paris?',
  tools: [weather],
  tool_choice: 'auto' as const,
  parallel_tool_calls: false,
  temperature: 0.5,
  top_p: 0.8,
  max_output_tokens: 150,
  metadata: { trace: 't-1' },
  store: false,
  text: { format: { type: 'text' as const }, verbosity: 'medium' as const },
  truncation: 'disabled' as const,
  user: 'u-1',
};

/** The `response.created` and final responses of a `responses.create` stream. */
async function streamed(body: OpenAI.Responses.ResponseCreateParamsNonStreaming) {
  const stream = await openai.responses.create({ ...body, stream: true });
  let created: Response | undefined;
  let final: Response | undefined;
  for await (const event of stream) {
    if (event.type === 'response.created') created = event.response;
    if (event.type === 'response.completed' || event.type === 'response.incomplete')
      final = event.response;
  }
  return { created: created!, final: final! };
}

describe('a translated response echoes the request', () => {
  it.each([CHAT_MODEL, CLAUDE])(
    '%s: the settings given, and OpenAI defaults for the others, as the Responses API says them (whole and streamed)',
    async (model) => {
      const given = await openai.responses.create({ ...full, model });
      const reference = await openai.responses.create({ ...full, model: NATIVE });
      expect(echoOf(given)).toEqual(echoOf(reference));
      expect(echoOf(given)).toMatchObject({
        instructions: 'Be brief.',
        tools: [weather],
        tool_choice: 'auto',
        temperature: 0.5,
        top_p: 0.8,
        max_output_tokens: 150,
        metadata: { trace: 't-1' },
        store: false,
      });
      // llm-sim's own responses say these as they please: checked here.
      expect([given.parallel_tool_calls, given.user, given.top_logprobs]).toEqual([
        false,
        'u-1',
        0,
      ]);
      // Not a request setting, but always in OpenAI's response (nullable).
      expect(given.access_programs).toBeNull();

      const bare = await openai.responses.create({ model, input: 'Hi' });
      expect(echoOf(bare)).toEqual(
        echoOf(await openai.responses.create({ model: NATIVE, input: 'Hi' })),
      );
      expect(echoOf(bare)).toMatchObject({
        instructions: null,
        tools: [],
        tool_choice: 'auto',
        temperature: 1,
        top_p: 1,
        max_output_tokens: null,
        metadata: {},
        store: true,
        text: { format: { type: 'text' }, verbosity: 'medium' },
        truncation: 'disabled',
        previous_response_id: null,
      });
      expect([bare.parallel_tool_calls, bare.user]).toEqual([true, null]);

      const { created, final } = await streamed({ ...full, model });
      expect(echoOf(created)).toEqual(echoOf(given));
      expect(echoOf(final)).toEqual(echoOf(given));
      expect([created.parallel_tool_calls, final.user]).toEqual([false, 'u-1']);
    },
  );
});

const strictTool = (strict: boolean): OpenAI.Responses.FunctionTool => ({ ...weather, strict });

describe("a function tool's strict", () => {
  it('reaches a chat-only upstream as function.strict, an Anthropic one as strict', async () => {
    for (const strict of [true, false]) {
      await openai.responses.create({
        model: CHAT_MODEL,
        input: 'Weather in Oslo?',
        tools: [strictTool(strict)],
      });
      await openai.responses.create({
        model: CLAUDE,
        input: 'Weather in Oslo?',
        tools: [strictTool(strict)],
      });
    }
    const sent = proxy.requests.map(
      (request) => (request.body['tools'] as Record<string, unknown>[])[0],
    );
    expect(sent).toEqual([
      {
        type: 'function',
        function: expect.objectContaining({ name: 'get_weather', strict: true }),
      },
      expect.objectContaining({ name: 'get_weather', strict: true }),
      {
        type: 'function',
        function: expect.objectContaining({ name: 'get_weather', strict: false }),
      },
      expect.objectContaining({ name: 'get_weather', strict: false }),
    ]);
  });

  it('chat to Anthropic and Anthropic to chat keep it too; a tool without it gets none', async () => {
    const fn = { name: 'get_weather', parameters: weather.parameters! };
    await openai.chat.completions.create({
      model: CLAUDE,
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools: [
        { type: 'function', function: { ...fn, strict: true } },
        { type: 'function', function: { ...fn, name: 'plain' } },
      ],
    });
    await anthropic.messages.create({
      model: CHAT_MODEL,
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools: [
        { name: 'get_weather', input_schema: { type: 'object', properties: {} }, strict: true },
        { name: 'plain', input_schema: { type: 'object', properties: {} } },
      ],
    });
    const [toClaude, toChat] = proxy.requests.map(
      (request) => request.body['tools'] as Record<string, unknown>[],
    );
    expect(toClaude![0]).toMatchObject({ name: 'get_weather', strict: true });
    expect(toClaude![1]).not.toHaveProperty('strict');
    expect(toChat![0]).toMatchObject({ function: { name: 'get_weather', strict: true } });
    expect(toChat![1]!['function']).not.toHaveProperty('strict');
  });
});

/** The function_call items of a response: [name, status]. */
const callsOf = (response: Response) =>
  response.output.flatMap((item) =>
    item.type === 'function_call' ? [[item.name, item.status]] : [],
  );

describe('a tool call cut at the token limit', () => {
  it.each([CHAT_MODEL, CLAUDE])(
    '%s: the call item and the response are incomplete (max_output_tokens), whole and streamed',
    async (model) => {
      const ask = {
        model,
        input: 'Weather in Paris?',
        tools: [weather],
        tool_choice: 'required' as const,
        max_output_tokens: 2,
      };
      const whole = await openai.responses.create(ask);
      expect([whole.status, whole.incomplete_details]).toEqual([
        'incomplete',
        { reason: 'max_output_tokens' },
      ]);
      expect(callsOf(whole)).toEqual([['get_weather', 'incomplete']]);

      const stream = await openai.responses.create({ ...ask, stream: true });
      const done: unknown[] = [];
      let final: Response | undefined;
      for await (const event of stream) {
        if (event.type === 'response.output_item.done')
          done.push(event.item.type === 'function_call' ? event.item.status : event.item.type);
        if (event.type === 'response.incomplete' || event.type === 'response.completed')
          final = event.response;
      }
      expect(done).toEqual(['incomplete']);
      expect([final!.status, final!.incomplete_details]).toEqual([
        'incomplete',
        { reason: 'max_output_tokens' },
      ]);
      expect(callsOf(final!)).toEqual([['get_weather', 'incomplete']]);
    },
  );

  it('interleaved parallel calls cut: each unfinished call is incomplete, whole and streamed', async () => {
    const ask = {
      model: CHAT_MODEL,
      input: 'Weather and time in Rome [sim:parallel-tools=2 interleave-tools]',
      tools: [weather, { ...weather, name: 'get_time' }],
      tool_choice: 'required' as const,
      max_output_tokens: 3,
    };
    const whole = await openai.responses.create(ask);
    expect(callsOf(whole)).toEqual([
      ['get_weather', 'incomplete'],
      ['get_time', 'incomplete'],
    ]);
    const final = await openai.responses.stream(ask).finalResponse();
    expect(callsOf(final)).toEqual(callsOf(whole));
  });
});

describe('a stream that ends without its terminator', () => {
  it.each([CHAT_MODEL, CLAUDE])(
    '%s to /v1/responses: a response.failed event, then an error the SDK throws; never response.completed',
    async (model) => {
      const stream = await openai.responses.create({
        model,
        input: 'Tell me a story [sim:end-early tokens=40]',
        stream: true,
      });
      const types: string[] = [];
      const read = (async () => {
        for await (const event of stream) types.push(event.type);
      })();
      await expect(read).rejects.toBeInstanceOf(OpenAI.APIError);
      expect(types).toContain('response.output_text.delta');
      expect(types.at(-1)).toBe('response.failed');
      expect(types).not.toContain('response.completed');
      // The span too: a failed call, not a whole answer.
      const [span] = await rig().sdk.chatSpans(1);
      expect(span!.attributes['error.type']).toBe('stream_error');
      expect(span!.status.message).toContain('ended before the answer did');
    },
  );

  it.each([CHAT_MODEL, CLAUDE])(
    "%s: an upstream's error event also ends in response.failed, then the error",
    async (model) => {
      const stream = await openai.responses.create({
        model,
        input: 'Tell me a story [sim:stream-error tokens=40]',
        stream: true,
      });
      const events: OpenAI.Responses.ResponseStreamEvent[] = [];
      const read = (async () => {
        for await (const event of stream) events.push(event);
      })();
      await expect(read).rejects.toBeInstanceOf(OpenAI.APIError);
      const last = events.at(-1);
      expect(last?.type).toBe('response.failed');
      const failed = last?.type === 'response.failed' ? last.response : undefined;
      expect(failed?.status).toBe('failed');
      expect(failed?.error?.message).toEqual(expect.any(String));
      expect(failed?.temperature).toBe(1);
    },
  );

  it('a chat stream to /v1/messages: the Anthropic SDK throws, no message_stop', async () => {
    const stream = anthropic.messages.stream({
      model: CHAT_MODEL,
      max_tokens: 200,
      messages: [{ role: 'user', content: 'Tell me a story [sim:end-early tokens=40]' }],
    });
    const types: string[] = [];
    stream.on('streamEvent', (event) => types.push(event.type));
    await expect(stream.finalMessage()).rejects.toBeInstanceOf(Anthropic.APIError);
    expect(types).toContain('content_block_delta');
    expect(types).not.toContain('message_stop');
  });

  it('an Anthropic stream to /v1/chat/completions: the openai SDK throws, no finish chunk', async () => {
    const stream = await openai.chat.completions.create({
      model: CLAUDE,
      messages: [{ role: 'user', content: 'Tell me a story [sim:end-early tokens=40]' }],
      stream: true,
    });
    const finishes: unknown[] = [];
    const read = (async () => {
      for await (const chunk of stream) finishes.push(chunk.choices[0]?.finish_reason ?? null);
    })();
    await expect(read).rejects.toBeInstanceOf(OpenAI.APIError);
    expect(finishes.length).toBeGreaterThan(1);
    expect(finishes.filter((finish) => finish !== null)).toEqual([]);
  });
});
