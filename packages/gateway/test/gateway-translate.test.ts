/**
 * Provider-format translation through the gateway, with the real `openai` and `@anthropic-ai/sdk`
 * SDKs against llm-sim (behind a proxy that records what each upstream was sent): chat
 * completions answered by an Anthropic upstream and Anthropic messages answered by an OpenAI one,
 * plain, streamed, with tools and images, errors both ways, what is refused, and `route:` policies
 * picking a candidate of either provider.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { crossPolicy, startProxiedSim } from './helpers.js';
import type { ProxiedSim, ReceivedSpan, RecordingProxy, SdkGateway } from './helpers.js';

let rig: ProxiedSim;
let sim: LlmSim;
let proxy: RecordingProxy;
let sdk: SdkGateway;
let openai: OpenAI;
let anthropic: Anthropic;

// A 1x1 PNG.
const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

beforeAll(async () => {
  rig = await startProxiedSim(5, 3, [crossPolicy('cross', ['claude-haiku-4-5', 'gpt-4o-mini'])]);
  ({ sim, proxy, sdk } = rig);
  ({ openai, anthropic } = sdk);
});

afterAll(async () => {
  await rig?.close();
});

beforeEach(async () => {
  await sdk.reset();
  proxy.requests.length = 0;
});

const spans = (count: number) => sdk.chatSpans(count);

const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

describe('OpenAI chat completions answered by an Anthropic upstream', () => {
  it('plain: system prompt, answer, finish reason, usage; the span names anthropic', async () => {
    const completion = await openai.chat.completions.create({
      model: 'claude-haiku-4-5',
      max_tokens: 120,
      temperature: 0.3,
      stop: ['STOP'],
      user: 'u-7',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'What is 6 * 7?' },
      ],
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]?.message.content).toBeTruthy();
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(completion.usage!.total_tokens).toBe(
      completion.usage!.prompt_tokens + completion.usage!.completion_tokens,
    );
    const [sent] = proxy.requests;
    expect(sent!.path).toBe('/v1/messages');
    expect(sent!.body).toEqual({
      model: 'claude-haiku-4-5',
      max_tokens: 120,
      system: 'Be brief.',
      temperature: 0.3,
      stop_sequences: ['STOP'],
      metadata: { user_id: 'u-7' },
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is 6 * 7?' }] }],
    });
    const [span] = await spans(1);
    expect(span!.attributes).toMatchObject({
      'gen_ai.provider.name': 'anthropic',
      'gen_ai.request.model': 'claude-haiku-4-5',
      'gen_ai.response.finish_reasons': ['end_turn'],
      'gen_ai.usage.output_tokens': completion.usage!.completion_tokens,
      'modelmaxx.gateway.upstream': 'anthropic',
    });
    expect(span!.attributes['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
  });

  it('streamed: chunks as chat.completion.chunk, usage chunk only when asked', async () => {
    const stream = await openai.chat.completions.create({
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      stream: true,
      messages: [{ role: 'user', content: 'Tell me about tea.' }],
    });
    let text = '';
    const finishes: string[] = [];
    let usageChunks = 0;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.choices[0]?.finish_reason) finishes.push(chunk.choices[0].finish_reason);
      if (chunk.usage) usageChunks += 1;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(finishes).toEqual(['stop']);
    expect(usageChunks).toBe(0);
    expect(proxy.requests[0]!.body['stream']).toBe(true);

    const withUsage = await openai.chat.completions.create({
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Tell me about tea.' }],
    });
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of withUsage) usage = chunk.usage ?? usage;
    expect(usage!.completion_tokens).toBeGreaterThan(0);
    const recorded = await spans(2);
    expect(recorded[1]!.attributes['gen_ai.usage.output_tokens']).toBe(usage!.completion_tokens);
    expect(recorded[1]!.attributes['gen_ai.response.time_to_first_chunk']).toBeGreaterThan(0);
  });

  it('tools: a tool call (plain and streamed), then its result sent back as a tool_result', async () => {
    const completion = await openai.chat.completions.create({
      model: 'claude-haiku-4-5',
      max_tokens: 200,
      tools: [weather],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    });
    const call = completion.choices[0]?.message.tool_calls?.[0];
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    expect(call?.type).toBe('function');
    expect(call?.type === 'function' && call.function.name).toBe('get_weather');
    expect(() =>
      JSON.parse(call?.type === 'function' ? call.function.arguments : ''),
    ).not.toThrow();
    expect(proxy.requests[0]!.body).toMatchObject({
      tools: [
        {
          name: 'get_weather',
          description: 'Weather in a city',
          input_schema: weather.function.parameters,
        },
      ],
      tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
    });

    const streamed = await openai.chat.completions
      .stream({
        model: 'claude-haiku-4-5',
        max_tokens: 200,
        tools: [weather],
        tool_choice: 'required',
        messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      })
      .finalChatCompletion();
    const streamedCall = streamed.choices[0]?.message.tool_calls?.[0];
    expect(streamed.choices[0]?.finish_reason).toBe('tool_calls');
    expect(streamedCall?.type === 'function' && streamedCall.function.name).toBe('get_weather');

    const answer = await openai.chat.completions.create({
      model: 'claude-haiku-4-5',
      max_tokens: 200,
      tools: [weather],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [call!] },
        { role: 'tool', tool_call_id: call!.id, content: '18 C, sunny' },
      ],
    });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    expect(proxy.requests[2]!.body['messages']).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
      {
        role: 'assistant',
        content: [
          {
            type: 'tool_use',
            id: call!.id,
            name: 'get_weather',
            input: JSON.parse(call?.type === 'function' ? call.function.arguments : '{}'),
          },
        ],
      },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: call!.id, content: '18 C, sunny' }],
      },
    ]);
  });

  it('image parts: a data URL becomes a base64 source, an https URL a url source', async () => {
    await openai.chat.completions.create({
      model: 'claude-haiku-4-5',
      max_tokens: 50,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in these?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          ],
        },
      ],
    });
    expect(proxy.requests[0]!.body['messages']).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in these?' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
        ],
      },
    ]);
  });

  it("errors: the Anthropic upstream's 429 and 529 in OpenAI's shape, retry-after kept", async () => {
    const limited = (await openai.chat.completions
      .create({
        model: 'claude-haiku-4-5',
        max_tokens: 50,
        messages: [{ role: 'user', content: 'Hi [sim:status=429 retry-after=9]' }],
      })
      .catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.RateLimitError>;
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect(limited.headers.get('retry-after')).toBe('9');
    expect(limited.type).toBe('rate_limit_error');
    expect(limited.message.length).toBeGreaterThan(10);
    const overloaded = (await openai.chat.completions
      .create({
        model: 'claude-haiku-4-5',
        max_tokens: 50,
        messages: [{ role: 'user', content: 'Hi [sim:status=529]' }],
      })
      .catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.APIError>;
    expect(overloaded.status).toBe(529);
    expect(overloaded.type).toBe('overloaded_error');
    const [span] = await spans(2);
    expect(span!.attributes['error.type']).toBe('429');
  });

  it('an error event inside the Anthropic stream reaches the app as an OpenAI stream error', async () => {
    const stream = await openai.chat.completions.create({
      model: 'claude-haiku-4-5',
      max_tokens: 200,
      stream: true,
      messages: [{ role: 'user', content: 'Tell me a story [sim:stream-error]' }],
    });
    const read = (async () => {
      for await (const chunk of stream) void chunk;
    })();
    await expect(read).rejects.toBeInstanceOf(OpenAI.APIError);
    const [span] = await spans(1);
    expect(span!.attributes['error.type']).toBe('stream_error');
  });

  it('refuses what has no Anthropic counterpart with a 400 naming it', async () => {
    for (const [extra, named] of [
      [{ n: 2 }, '"n" other than 1'],
      [{ logprobs: true }, '"logprobs"'],
      [{ response_format: { type: 'json_object' } }, 'response_format "json_object"'],
      [{ temperature: 1.5 }, '"temperature" above 1'],
      [{ audio: { voice: 'alloy', format: 'mp3' } }, '"audio"'],
    ] as const) {
      const error = (await openai.chat.completions
        .create({
          model: 'claude-haiku-4-5',
          messages: [{ role: 'user', content: 'Hi' }],
          ...(extra as object),
        } as OpenAI.ChatCompletionCreateParamsNonStreaming)
        .catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.BadRequestError>;
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect(error.message).toContain(named);
      expect(error.message).toContain('cannot be translated to Anthropic Messages');
    }
    expect(proxy.requests).toHaveLength(0);
  });
});

describe('Anthropic messages answered by an OpenAI upstream', () => {
  it('plain and streamed: text, stop reason, usage; the span names openai', async () => {
    const message = await anthropic.messages.create({
      model: 'gpt-4o-mini',
      max_tokens: 120,
      system: [{ type: 'text', text: 'Be brief.' }],
      stop_sequences: ['STOP'],
      metadata: { user_id: 'u-9' },
      messages: [{ role: 'user', content: 'What is 6 * 7?' }],
    });
    expect(message.type).toBe('message');
    expect(message.content[0]?.type).toBe('text');
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage.output_tokens).toBeGreaterThan(0);
    expect(proxy.requests[0]!.path).toBe('/v1/chat/completions');
    expect(proxy.requests[0]!.body).toEqual({
      model: 'gpt-4o-mini',
      max_completion_tokens: 120,
      stop: ['STOP'],
      user: 'u-9',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'What is 6 * 7?' },
      ],
    });

    const stream = anthropic.messages.stream({
      model: 'gpt-4o-mini',
      max_tokens: 120,
      messages: [{ role: 'user', content: 'Tell me about tea.' }],
    });
    let text = '';
    stream.on('text', (delta) => (text += delta));
    const final = await stream.finalMessage();
    expect(text.length).toBeGreaterThan(0);
    expect(final.content[0]?.type === 'text' && final.content[0].text).toBe(text);
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.output_tokens).toBeGreaterThan(0);
    expect(final.usage.input_tokens).toBeGreaterThan(0);
    expect(proxy.requests[1]!.body['stream_options']).toEqual({ include_usage: true });
    const recorded = await spans(2);
    expect(recorded.map((span) => span.attributes['gen_ai.provider.name'])).toEqual([
      'openai',
      'openai',
    ]);
    expect(recorded[1]!.attributes['gen_ai.usage.output_tokens']).toBe(final.usage.output_tokens);
    expect(recorded[1]!.attributes['gen_ai.response.finish_reasons']).toEqual(['stop']);
  });

  it('tools: tool_use blocks (plain and streamed), then a tool_result sent back as a tool message', async () => {
    const tools: Anthropic.Tool[] = [
      {
        name: 'get_weather',
        description: 'Weather in a city',
        input_schema: { type: 'object', properties: { city: { type: 'string' } } },
      },
    ];
    const message = await anthropic.messages.create({
      model: 'gpt-4o-mini',
      max_tokens: 200,
      tools,
      tool_choice: { type: 'any' },
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    });
    expect(message.stop_reason).toBe('tool_use');
    const use = message.content.find((block) => block.type === 'tool_use');
    expect(use?.type === 'tool_use' && use.name).toBe('get_weather');
    expect(typeof (use?.type === 'tool_use' && use.input)).toBe('object');
    expect(proxy.requests[0]!.body).toMatchObject({
      tools: [
        { type: 'function', function: { name: 'get_weather', description: 'Weather in a city' } },
      ],
      tool_choice: 'required',
    });

    const streamed = await anthropic.messages
      .stream({
        model: 'gpt-4o-mini',
        max_tokens: 200,
        tools,
        tool_choice: { type: 'tool', name: 'get_weather' },
        messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      })
      .finalMessage();
    expect(streamed.stop_reason).toBe('tool_use');
    const streamedUse = streamed.content.find((block) => block.type === 'tool_use');
    expect(streamedUse?.type === 'tool_use' && streamedUse.name).toBe('get_weather');
    expect(typeof (streamedUse?.type === 'tool_use' && streamedUse.input)).toBe('object');

    const id = use?.type === 'tool_use' ? use.id : '';
    const answer = await anthropic.messages.create({
      model: 'gpt-4o-mini',
      max_tokens: 200,
      tools,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: message.content },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: id, content: '18 C, sunny' },
            { type: 'text', text: 'And tomorrow?' },
          ],
        },
      ],
    });
    expect(answer.content.length).toBeGreaterThan(0);
    const sent = proxy.requests[2]!.body['messages'] as Record<string, unknown>[];
    expect(sent.slice(1)).toMatchObject([
      {
        role: 'assistant',
        tool_calls: [{ id, type: 'function', function: { name: 'get_weather' } }],
      },
      { role: 'tool', tool_call_id: id, content: '18 C, sunny' },
      { role: 'user', content: [{ type: 'text', text: 'And tomorrow?' }] },
    ]);
  });

  it('parallel tool calls whose stream deltas interleave come out as one tool_use block each', async () => {
    const tools: Anthropic.Tool[] = [
      {
        name: 'get_weather',
        input_schema: { type: 'object', properties: { city: { type: 'string' } } },
      },
      {
        name: 'get_time',
        input_schema: {
          type: 'object',
          properties: { zone: { type: 'string' }, hours: { type: 'integer' } },
        },
      },
      {
        name: 'get_news',
        input_schema: { type: 'object', properties: { topic: { type: 'string' } } },
      },
    ];
    const ask = {
      model: 'gpt-4o-mini',
      max_tokens: 400,
      tools,
      tool_choice: { type: 'any' as const },
      messages: [
        {
          role: 'user' as const,
          content: 'Weather, time and news in Paris [sim:parallel-tools=3 interleave-tools]',
        },
      ],
    };
    // The same calls, whole: what the stream must add up to.
    const whole = await anthropic.messages.create(ask);
    const expected = whole.content.map((block) =>
      block.type === 'tool_use' ? { name: block.name, input: block.input } : block,
    );
    expect(expected.map((block) => 'name' in block && block.name)).toEqual([
      'get_weather',
      'get_time',
      'get_news',
    ]);

    // Interleaved, and one call after the other (each streamed live once the previous is whole).
    for (const directives of ['parallel-tools=3 interleave-tools', 'parallel-tools=3']) {
      const content = `Weather, time and news in Paris [sim:${directives}]`;
      const stream = anthropic.messages.stream({ ...ask, messages: [{ role: 'user', content }] });
      const events: Anthropic.MessageStreamEvent[] = [];
      stream.on('streamEvent', (event) => events.push(event));
      const final = await stream.finalMessage();
      expect(final.stop_reason).toBe('tool_use');
      expect(
        final.content.map((block) =>
          block.type === 'tool_use' ? { name: block.name, input: block.input } : block,
        ),
      ).toEqual(expected);
      const ids = final.content.map((block) => (block.type === 'tool_use' ? block.id : ''));
      expect(new Set(ids).size).toBe(3);
      expect(ids.every((id) => id.startsWith('call_'))).toBe(true);
      // One block open at a time: every start is followed by its own stop before the next start.
      const order = events
        .filter(
          (event) => event.type === 'content_block_start' || event.type === 'content_block_stop',
        )
        .map(
          (event) => `${event.type === 'content_block_start' ? 'start' : 'stop'} ${event.index}`,
        );
      expect(order).toEqual(['start 0', 'stop 0', 'start 1', 'stop 1', 'start 2', 'stop 2']);
      const deltas = events.filter((event) => event.type === 'content_block_delta').length;
      expect(deltas).toBeGreaterThanOrEqual(3);
    }
    // The upstream really interleaves: asked directly, its chunks alternate between the calls.
    const direct = await new OpenAI({
      baseURL: sim.openaiBaseURL,
      apiKey: 'sim',
    }).chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      tool_choice: 'required',
      tools: tools.map((tool) => ({
        type: 'function' as const,
        function: { name: tool.name, parameters: tool.input_schema },
      })),
      messages: [{ role: 'user', content: ask.messages[0]!.content }],
    });
    const indices: number[] = [];
    for await (const chunk of direct)
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) indices.push(call.index);
    expect(indices.slice(0, 6)).toEqual([0, 1, 2, 0, 1, 2]);
  });

  it('a base64 image becomes a data URL image_url part', async () => {
    await anthropic.messages.create({
      model: 'gpt-4o-mini',
      max_tokens: 50,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
            { type: 'text', text: 'What is this?' },
          ],
        },
      ],
    });
    expect(proxy.requests[0]!.body['messages']).toEqual([
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
          { type: 'text', text: 'What is this?' },
        ],
      },
    ]);
  });

  it("errors in Anthropic's shape, and a 400 for what has no OpenAI counterpart", async () => {
    const limited = (await anthropic.messages
      .create({
        model: 'gpt-4o-mini',
        max_tokens: 50,
        messages: [{ role: 'user', content: 'Hi [sim:status=429 retry-after=4]' }],
      })
      .catch((caught: unknown) => caught)) as InstanceType<typeof Anthropic.RateLimitError>;
    expect(limited).toBeInstanceOf(Anthropic.RateLimitError);
    expect(limited.headers.get('retry-after')).toBe('4');
    expect((limited.error as { type: string; error: { type: string } }).error.type).toBe(
      'rate_limit_error',
    );
    proxy.requests.length = 0;
    for (const [extra, named] of [
      [{ thinking: { type: 'enabled', budget_tokens: 1024 } }, '"thinking"'],
      [{ top_k: 5 }, '"top_k"'],
      [{ tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, 'server tool'],
    ] as const) {
      const error = (await anthropic.messages
        .create({
          model: 'gpt-4o-mini',
          max_tokens: 2000,
          messages: [{ role: 'user', content: 'Hi' }],
          ...(extra as object),
        } as Anthropic.MessageCreateParamsNonStreaming)
        .catch((caught: unknown) => caught)) as InstanceType<typeof Anthropic.BadRequestError>;
      expect(error).toBeInstanceOf(Anthropic.BadRequestError);
      expect(error.apiMessage).toContain(named);
      expect(error.apiMessage).toContain('cannot be translated to OpenAI Chat Completions');
    }
    expect(proxy.requests).toHaveLength(0);
  });
});

describe('route: policies pick a candidate of either provider whatever the format', () => {
  it('a failing candidate falls back to the other provider; each span names its provider', async () => {
    // The candidate in the other format fails every call; the engine picks per request, so ask
    // until it is picked first (deterministic: the gateway's random source is seeded).
    for (const [failing, ask] of [
      [
        'claude-haiku-4-5',
        (n: number) =>
          openai.chat.completions.create({
            model: 'route:cross',
            max_tokens: 50,
            messages: [{ role: 'user', content: `Hello ${n}` }],
          }),
      ],
      [
        'gpt-4o-mini',
        (n: number) =>
          anthropic.messages.create({
            model: 'route:cross',
            max_tokens: 50,
            messages: [{ role: 'user', content: `Hello ${n}` }],
          }),
      ],
    ] as const) {
      sim.setModel(failing, { failure: { rate500: 1 } });
      try {
        let fellBack: ReceivedSpan[] | undefined;
        for (let n = 0; n < 30 && fellBack === undefined; n += 1) {
          sdk.receiver.spans.length = 0;
          await ask(n);
          await new Promise((resolve) => setTimeout(resolve, 100)); // past the 50 ms cooldown
          const attempts = await spans(1);
          if (attempts[0]!.attributes['gen_ai.request.model'] === failing)
            fellBack = await spans(2);
        }
        expect(fellBack).toBeDefined();
        const [failed, answered] = fellBack!;
        expect(failed!.attributes['error.type']).toBe('500');
        expect(answered!.attributes['error.type']).toBeUndefined();
        expect(new Set(fellBack!.map((span) => span.attributes['gen_ai.provider.name']))).toEqual(
          new Set(['anthropic', 'openai']),
        );
      } finally {
        sim.setModel(failing, { failure: { rate500: 0 } });
      }
    }
  }, 60_000);

  it('a request one candidate cannot take goes to the other (n: 2 only on OpenAI)', async () => {
    const completion = await openai.chat.completions
      .create({
        model: 'route:cross',
        n: 2,
        max_tokens: 30,
        messages: [{ role: 'user', content: 'Two answers please' }],
      })
      .withResponse();
    expect(completion.response.headers.get('x-modelmaxx-model')).toBe('gpt-4o-mini');
    expect(completion.data.choices).toHaveLength(2);
  });
});

describe('curl', () => {
  const run = promisify(execFile);
  const curl = async (path: string, body: Record<string, unknown>) =>
    (
      await run('curl', [
        '-sS',
        '-N',
        '-i',
        '-H',
        'content-type: application/json',
        '--data-binary',
        JSON.stringify(body),
        `${sdk.url}${path}`,
      ])
    ).stdout;

  it('chat completions streamed from Anthropic, messages streamed from OpenAI, with the headers', async () => {
    const chat = await curl('/v1/chat/completions', {
      model: 'claude-haiku-4-5',
      stream: true,
      max_tokens: 40,
      messages: [{ role: 'user', content: 'curl translated' }],
    });
    expect(chat).toMatch(/content-type: text\/event-stream/i);
    expect(chat).toMatch(/x-modelmaxx-upstream: anthropic/i);
    expect(chat).toContain('"object":"chat.completion.chunk"');
    expect(chat).toContain('"finish_reason":"stop"');
    expect(chat.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(chat).not.toContain('event: ');

    const messages = await curl('/v1/messages', {
      model: 'gpt-4o-mini',
      stream: true,
      max_tokens: 40,
      messages: [{ role: 'user', content: 'curl translated' }],
    });
    expect(messages).toMatch(/x-modelmaxx-upstream: openai/i);
    const events = [...messages.matchAll(/^event: (\w+)$/gm)].map((match) => match[1]);
    expect(events[0]).toBe('message_start');
    expect(events).toContain('content_block_delta');
    expect(events.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(messages).not.toContain('[DONE]');
  });
});
