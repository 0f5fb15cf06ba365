/**
 * `/v1/responses` answered by an Anthropic upstream, with the real `openai` SDK against llm-sim
 * (behind a proxy that records what the upstream was sent): plain, streamed (`responses.create`
 * with `stream: true` and `responses.stream`), a function call round trip, errors, what is
 * refused, a `route:` policy whose Anthropic candidate now serves the endpoint, and embeddings to
 * an Anthropic model refused with a clear error.
 */
import OpenAI from 'openai';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { crossPolicy, startProxiedSim, useProxiedSim } from './helpers.js';
import type { RecordingProxy, SdkGateway } from './helpers.js';
import {
  answerAfterCall,
  expectErrors,
  expectRefused,
  forcedCall,
  parallelCalls,
  readResponsesStream,
  streamHelperAnswer,
  streamedCall,
  weather,
} from './responses-sdk.js';

const rig = useProxiedSim(() =>
  startProxiedSim(7, 3, [crossPolicy('cross', ['gpt-4o-mini', 'claude-haiku-4-5'])]),
);
let sim: LlmSim;
let proxy: RecordingProxy;
let sdk: SdkGateway;
let openai: OpenAI;

beforeAll(() => {
  ({ sim, proxy, sdk } = rig());
  ({ openai } = sdk);
});

describe('OpenAI responses answered by an Anthropic upstream', () => {
  it('plain: instructions, input, answer, status, usage; the span names anthropic', async () => {
    const response = await openai.responses.create({
      model: 'claude-haiku-4-5',
      instructions: 'Be brief.',
      input: 'What is 6 * 7?',
      max_output_tokens: 120,
      temperature: 0.3,
      top_p: 0.9,
      user: 'u-5',
      store: false,
    });
    expect(response).toMatchObject({ object: 'response', status: 'completed' });
    expect(response.output_text.length).toBeGreaterThan(0);
    expect(response.output.map((item) => [item.type, 'role' in item && item.role])).toEqual([
      ['message', 'assistant'],
    ]);
    const { input_tokens: input, output_tokens: output, total_tokens: total } = response.usage!;
    expect([input > 0, output > 0, total]).toEqual([true, true, input + output]);
    expect(proxy.requests).toEqual([
      {
        path: '/v1/messages',
        body: {
          model: 'claude-haiku-4-5',
          max_tokens: 120,
          system: 'Be brief.',
          temperature: 0.3,
          top_p: 0.9,
          metadata: { user_id: 'u-5' },
          messages: [{ role: 'user', content: [{ type: 'text', text: 'What is 6 * 7?' }] }],
        },
      },
    ]);
    const [span] = await sdk.chatSpans(1);
    expect(span!.attributes).toMatchObject({
      'gen_ai.provider.name': 'anthropic',
      'gen_ai.request.model': 'claude-haiku-4-5',
      'gen_ai.response.finish_reasons': ['end_turn'],
      'gen_ai.response.id': response.id,
      'gen_ai.usage.output_tokens': response.usage!.output_tokens,
      'gen_ai.usage.input_tokens': response.usage!.input_tokens,
    });
  });

  it('a cut answer is incomplete (max_output_tokens)', async () => {
    const response = await openai.responses.create({
      model: 'claude-haiku-4-5',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Tell me about tea.' }] }],
      max_output_tokens: 3,
    });
    expect(response.status).toBe('incomplete');
    expect(response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
  });

  it('streamed: the Responses events the SDK accumulates, text and usage as the whole answer', async () => {
    const translated = await readResponsesStream(openai, 'claude-haiku-4-5');
    // The same events, in the same order, as OpenAI's own Responses stream of a text answer.
    expect(translated.types).toEqual((await readResponsesStream(openai, 'gpt-4o-mini')).types);
    expect(translated.completed.usage!.output_tokens).toBeGreaterThan(0);
    expect(proxy.requests[0]!.body['stream']).toBe(true);
    expect(proxy.requests[1]!.path).toBe('/v1/responses');

    // responses.stream(): the SDK's accumulating helper and its final response.
    const final = await streamHelperAnswer(openai, 'claude-haiku-4-5');
    const recorded = await sdk.chatSpans(3);
    expect(recorded[2]!.attributes['gen_ai.usage.output_tokens']).toBe(final.usage!.output_tokens);
    expect(recorded[2]!.attributes['gen_ai.response.time_to_first_chunk']).toBeGreaterThan(0);
  });

  it('tools: a function call (plain and streamed), then its output sent back as a tool_result', async () => {
    const called = await forcedCall(openai, 'claude-haiku-4-5');
    const { response, call, args } = called;
    expect(proxy.requests[0]!.body).toMatchObject({
      tools: [
        {
          name: 'get_weather',
          description: 'Weather in a city',
          input_schema: weather.parameters,
        },
      ],
      tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
    });

    await streamedCall(openai, 'claude-haiku-4-5');
    expect(proxy.requests[1]!.body['tool_choice']).toEqual({ type: 'any' });

    await answerAfterCall(openai, 'claude-haiku-4-5', called);
    const preface = response.output.find((item) => item.type === 'message');
    const prefaceText =
      preface?.type === 'message' && preface.content[0]?.type === 'output_text'
        ? preface.content[0].text
        : '';
    expect(proxy.requests[2]!.body['messages']).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
      {
        role: 'assistant',
        content: [
          ...(prefaceText === '' ? [] : [{ type: 'text', text: prefaceText }]),
          { type: 'tool_use', id: call.call_id, name: 'get_weather', input: JSON.parse(args) },
        ],
      },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: call.call_id, content: '18 C, sunny' }],
      },
    ]);
  });

  it('parallel tool_use blocks: one function_call item each, streamed and whole alike', async () => {
    await parallelCalls(openai, 'claude-haiku-4-5');
  });

  it("errors: the upstream's 429 in OpenAI's shape, a stream error event as the SDK's APIError", async () => {
    await expectErrors(openai, 'claude-haiku-4-5');
  });

  it('refuses what has no Anthropic counterpart with a 400 naming it; nothing goes upstream', async () => {
    await expectRefused(
      openai,
      'claude-haiku-4-5',
      [
        [{ previous_response_id: 'resp_1' }, '"previous_response_id"'],
        [{ text: { format: { type: 'json_object' } } }, 'text.format "json_object"'],
        [{ reasoning: { effort: 'high' } }, '"reasoning"'],
        [{ tools: [{ type: 'web_search' }] }, 'a "web_search" tool'],
        [
          { input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file-1' }] }] },
          'an input content part of type "input_file"',
        ],
        [{ temperature: 1.5 }, '"temperature" above 1'],
      ],
      'Anthropic Messages',
    );
    expect(proxy.requests).toHaveLength(0);
  });
});

describe('route: policies and endpoints Anthropic cannot serve', () => {
  it("a route: policy's Anthropic candidate answers /v1/responses when the OpenAI one fails", async () => {
    sim.setModel('gpt-4o-mini', { failure: { rate500: 1 } });
    try {
      const { data, response } = await openai.responses
        .create({ model: 'route:cross', input: 'Hello there', max_output_tokens: 50 })
        .withResponse();
      expect(response.headers.get('x-modelmaxx-model')).toBe('claude-haiku-4-5');
      expect(data.output_text.length).toBeGreaterThan(0);
      expect(proxy.requests.map((request) => request.path)).toContain('/v1/messages');
    } finally {
      sim.setModel('gpt-4o-mini', { failure: { rate500: 0 } });
    }
  });

  it('embeddings for an Anthropic model: a 400 saying Anthropic has no embeddings API', async () => {
    const error = (await openai.embeddings
      .create({ model: 'claude-haiku-4-5', input: 'hello' })
      .catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.message).toContain('Anthropic has no embeddings API');
    expect(error.code).toBe('unsupported_endpoint');
    expect(proxy.requests).toHaveLength(0);
  });
});
