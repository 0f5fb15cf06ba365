import { SpanStatusCode } from '@opentelemetry/api';
import * as openaiModule from 'openai';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { instrumentOpenAI } from '../src/index.js';
import {
  expectedCost,
  openaiUsageAttributes,
  serverAttributesOf,
  streamedResponse,
} from './support/expected.js';
import { useTestBed, waitFor } from './support/tracing.js';

const bed = useTestBed({ seed: 11 });
let client: OpenAI;

beforeAll(() => {
  instrumentOpenAI(openaiModule);
  client = new OpenAI({ baseURL: bed.sim.openaiBaseURL, apiKey: 'test-key', maxRetries: 0 });
});

function base(operation: string, model: string, stream?: boolean) {
  return {
    'gen_ai.operation.name': operation,
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': model,
    ...(stream === undefined ? {} : { 'gen_ai.request.stream': stream }),
    ...serverAttributesOf(bed.sim.openaiBaseURL),
  };
}

async function settled(count: number) {
  await waitFor(() => bed.tracing.spans().length >= count);
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(bed.tracing.spans()).toHaveLength(count);
  return bed.tracing.spans();
}

describe('responses API', () => {
  it('records a plain call', async () => {
    const response = await client.responses.create({
      model: 'gpt-4o',
      input: 'Tell me about ClickHouse.',
      instructions: 'Be brief.',
      max_output_tokens: 300,
      temperature: 0.5,
    });
    expect(response.output_text.length).toBeGreaterThan(0);
    const [span] = await settled(1);
    expect(span?.name).toBe('chat gpt-4o');
    expect(span?.attributes).toEqual({
      ...base('chat', 'gpt-4o', false),
      'gen_ai.request.max_tokens': 300,
      'gen_ai.request.temperature': 0.5,
      'gen_ai.response.model': response.model,
      'gen_ai.response.id': response.id,
      'gen_ai.response.finish_reasons': ['stop'],
      ...openaiUsageAttributes(response.model, response.usage!),
    });
  });

  it('records a stream: true call from its final event', async () => {
    const stream = await client.responses.create({
      model: 'gpt-4o-mini',
      input: 'Stream a reply.',
      stream: true,
    });
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream)
      if (event.type === 'response.completed') completed = event.response;
    expect(completed).toBeDefined();
    const [span] = await settled(1);
    expect(span?.attributes).toEqual({
      ...base('chat', 'gpt-4o-mini', true),
      ...streamedResponse(
        completed!.model,
        completed!.id,
        ['stop'],
        openaiUsageAttributes(completed!.model, completed!.usage!),
      ),
    });
  });

  it('records the responses.stream() helper as one span, helper API intact', async () => {
    const runner = client.responses.stream({
      model: 'gpt-4o',
      input: 'Answer as JSON with a key "city".',
      text: { format: { type: 'json_object' } },
    });
    let text = '';
    runner.on('response.output_text.delta', (event) => (text += event.delta));
    const final = await runner.finalResponse();
    // The final response's message text (read from `output`: openai < 6.45 has no `output_text` on it).
    const outputText = final.output
      .flatMap((item) => (item.type === 'message' ? item.content : []))
      .map((part) => (part.type === 'output_text' ? part.text : ''))
      .join('');
    expect(outputText).not.toBe('');
    expect(text).toBe(outputText);
    const [span] = await settled(1);
    expect(span?.attributes).toEqual({
      ...base('chat', 'gpt-4o', true),
      'gen_ai.output.type': 'json',
      ...streamedResponse(
        final.model,
        final.id,
        ['stop'],
        openaiUsageAttributes(final.model, final.usage!),
      ),
    });
    const json = span?.events.find(
      (event) => event.attributes?.['gen_ai.evaluation.name'] === 'modelmaxx.invalid_json',
    );
    expect(json?.attributes?.['gen_ai.evaluation.score.value']).toBe(1);
  });

  it('records responses.parse() as one span', async () => {
    const parsed = await client.responses.parse({
      model: 'gpt-4o-mini',
      input: 'A city as JSON.',
      text: {
        format: {
          type: 'json_schema',
          name: 'city',
          strict: true,
          schema: {
            type: 'object',
            properties: { name: { type: 'string' } },
            required: ['name'],
            additionalProperties: false,
          },
        },
      },
    });
    expect(parsed.output_parsed).toBeTypeOf('object');
    const [span] = await settled(1);
    expect(span?.attributes['gen_ai.response.id']).toBe(parsed.id);
    expect(span?.attributes['gen_ai.output.type']).toBe('json');
  });
});

describe('embeddings', () => {
  it('records a float call', async () => {
    const result = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['one', 'two'],
      encoding_format: 'float',
    });
    expect(Array.isArray(result.data[0]?.embedding)).toBe(true);
    const [span] = await settled(1);
    expect(span?.name).toBe('embeddings text-embedding-3-small');
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.attributes).toEqual({
      ...base('embeddings', 'text-embedding-3-small'),
      'gen_ai.request.encoding_formats': ['float'],
      'gen_ai.response.model': result.model,
      'gen_ai.usage.input_tokens': result.usage.prompt_tokens,
      ...expectedCost('openai', result.model, { inputTokens: result.usage.prompt_tokens }),
    });
    expect(span?.events).toEqual([]);
  });

  it('records the default (base64 on the wire, floats for the app) call', async () => {
    const result = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: 'hello',
    });
    expect(Array.isArray(result.data[0]?.embedding)).toBe(true);
    expect(typeof result.data[0]?.embedding[0]).toBe('number');
    const [span] = await settled(1);
    expect(span?.attributes).toEqual({
      ...base('embeddings', 'text-embedding-3-small'),
      'gen_ai.response.model': result.model,
      'gen_ai.usage.input_tokens': result.usage.prompt_tokens,
      ...expectedCost('openai', result.model, { inputTokens: result.usage.prompt_tokens }),
    });
  });
});
