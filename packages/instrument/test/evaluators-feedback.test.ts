import { SpanStatusCode, trace } from '@opentelemetry/api';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { feedback, observe } from '../src/index.js';
import type { EvaluatorCall, InstrumentConfig } from '../src/index.js';
import { setupTracing, waitFor } from './support/tracing.js';
import type { TestTracing } from './support/tracing.js';

let tracing: TestTracing;
let sim: LlmSim;

beforeAll(async () => {
  tracing = setupTracing();
  sim = await startLlmSim({ seed: 3, latencyScale: 0 });
});

afterAll(async () => {
  await sim.close();
  await tracing.shutdown();
});

beforeEach(() => tracing.reset());

const openai = (config?: InstrumentConfig) =>
  observe(new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 }), config);

/**
 * A built-in evaluator's event on the evaluated span (which carries the response id itself; no
 * source: `evaluator` is what an event on the call's own span is read as). A passed check has
 * no explanation, a failed one says why.
 */
function evaluation(name: string, passed: boolean, explanation?: unknown) {
  return {
    'gen_ai.evaluation.name': name,
    'gen_ai.evaluation.score.value': passed ? 1 : 0,
    'gen_ai.evaluation.score.label': passed ? 'pass' : 'fail',
    ...(passed ? {} : { 'gen_ai.evaluation.explanation': explanation }),
  };
}

async function onlySpan() {
  await waitFor(() => tracing.spans().length >= 1);
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(tracing.spans()).toHaveLength(1);
  return tracing.spans()[0]!;
}

const eventsOf = (span: Awaited<ReturnType<typeof onlySpan>>) =>
  span.events.map((event) => ({ name: event.name, attributes: event.attributes }));

/** The attributes of the evaluation event named `name` on `span` (undefined when there is none). */
const evaluationOn = (span: Awaited<ReturnType<typeof onlySpan>>, name: string) =>
  eventsOf(span).find((e) => e.attributes?.['gen_ai.evaluation.name'] === name)?.attributes;

describe('built-in evaluators', () => {
  it('flags finish reason length', async () => {
    const completion = await openai().chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Cut me off [sim:length]' }],
    });
    expect(completion.choices[0]?.finish_reason).toBe('length');
    const span = await onlySpan();
    expect(eventsOf(span)).toEqual([
      {
        name: 'gen_ai.evaluation.result',
        attributes: evaluation('modelmaxx.finish_length', false, expect.stringContaining('length')),
      },
      {
        name: 'gen_ai.evaluation.result',
        attributes: evaluation('modelmaxx.empty_output', true),
      },
      {
        name: 'gen_ai.evaluation.result',
        attributes: evaluation('modelmaxx.refusal', true),
      },
    ]);
  });

  it('flags empty output', async () => {
    const completion = await openai().chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Nothing [sim:empty]' }],
    });
    expect(completion.choices[0]?.message.content ?? '').toBe('');
    const span = await onlySpan();
    expect(evaluationOn(span, 'modelmaxx.empty_output')).toEqual(
      evaluation('modelmaxx.empty_output', false, 'the response has no text and no tool calls'),
    );
  });

  it('flags an OpenAI refusal', async () => {
    const completion = await openai().chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Do something bad [sim:refusal]' }],
    });
    expect(completion.choices[0]?.message.refusal).toBeTruthy();
    const span = await onlySpan();
    expect(evaluationOn(span, 'modelmaxx.refusal')).toEqual(
      evaluation('modelmaxx.refusal', false, 'the provider marked the response as a refusal'),
    );
  });

  it('flags an Anthropic refusal', async () => {
    const client = observe(
      new Anthropic({ baseURL: sim.anthropicBaseURL, apiKey: 'k', maxRetries: 0 }),
    );
    const message = await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Do something bad [sim:refusal]' }],
    });
    expect(message.stop_reason).toBe('refusal');
    const span = await onlySpan();
    expect(evaluationOn(span, 'modelmaxx.refusal')).toEqual(
      evaluation('modelmaxx.refusal', false, 'the provider marked the response as a refusal'),
    );
  });

  it('flags invalid JSON when JSON was requested', async () => {
    const completion = await openai().chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'JSON please [sim:invalid-json]' }],
      response_format: { type: 'json_object' },
    });
    expect(() => JSON.parse(completion.choices[0]?.message.content ?? '')).toThrow();
    const span = await onlySpan();
    expect(evaluationOn(span, 'modelmaxx.invalid_json')).toEqual(
      evaluation('modelmaxx.invalid_json', false, expect.stringContaining('does not parse')),
    );
  });

  it('flags tool arguments that do not parse', async () => {
    const completion = await openai().chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Weather in Oslo [sim:bad-tool-args]' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            parameters: { type: 'object', properties: { city: { type: 'string' } } },
          },
        },
      ],
    });
    const call = completion.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && (() => JSON.parse(call.function.arguments))).toThrow();
    const span = await onlySpan();
    expect(evaluationOn(span, 'modelmaxx.invalid_tool_arguments')).toEqual(
      evaluation(
        'modelmaxx.invalid_tool_arguments',
        false,
        'arguments of get_weather do not parse as a JSON object',
      ),
    );
  });

  it('flags a Responses API refusal and bad function-call arguments', async () => {
    const refused = await openai().responses.create({
      model: 'gpt-4o',
      input: 'Bad thing [sim:refusal]',
    });
    const refusalPart = refused.output
      .flatMap((item) => (item.type === 'message' ? item.content : []))
      .find((part) => part.type === 'refusal');
    expect(refusalPart).toBeDefined();
    const span = await onlySpan();
    expect(evaluationOn(span, 'modelmaxx.refusal')).toEqual(
      evaluation('modelmaxx.refusal', false, 'the provider marked the response as a refusal'),
    );
    tracing.reset();

    const called = await openai().responses.create({
      model: 'gpt-4o',
      input: 'Weather in Rome [sim:bad-tool-args]',
      tools: [
        {
          type: 'function',
          name: 'get_weather',
          strict: false,
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      ],
    });
    expect(called.output.some((item) => item.type === 'function_call')).toBe(true);
    const toolSpan = await onlySpan();
    expect(toolSpan.attributes['gen_ai.response.finish_reasons']).toEqual(['tool_calls']);
    expect(evaluationOn(toolSpan, 'modelmaxx.invalid_tool_arguments')).toEqual(
      evaluation(
        'modelmaxx.invalid_tool_arguments',
        false,
        'arguments of get_weather do not parse as a JSON object',
      ),
    );
  });

  it('can be switched off', async () => {
    await openai({ builtinEvaluators: false }).chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'quiet [sim:length]' }],
    });
    expect((await onlySpan()).events).toEqual([]);
  });
});

describe('user evaluators', () => {
  it('records sync results on the span, with what the evaluator saw', async () => {
    const seen: EvaluatorCall[] = [];
    const client = openai({
      builtinEvaluators: false,
      evaluators: [
        (call) => {
          seen.push(call);
          return {
            name: 'app.mentions_paris',
            score: call.outputText.includes('Paris') ? 1 : 0,
            label: 'checked',
          };
        },
      ],
    });
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Where is the Louvre?' }],
    });
    const span = await onlySpan();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.outputText).toBe(completion.choices[0]?.message.content);
    expect(seen[0]?.response).toBe(completion);
    expect(seen[0]?.spanContext.spanId).toBe(span.spanContext().spanId);
    expect(eventsOf(span)).toEqual([
      {
        name: 'gen_ai.evaluation.result',
        attributes: {
          'gen_ai.evaluation.name': 'app.mentions_paris',
          'gen_ai.evaluation.score.value': completion.choices[0]?.message.content?.includes('Paris')
            ? 1
            : 0,
          'gen_ai.evaluation.score.label': 'checked',
        },
      },
    ]);
  });

  it('records async results on a linked child span without delaying the app', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const client = openai({
      builtinEvaluators: false,
      evaluators: [
        async () => {
          await gate;
          return [{ name: 'app.judge', score: 0.75, explanation: 'judged later' }];
        },
      ],
    });
    const completion = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'async evaluation' }],
    });
    // The app got its answer while the evaluator is still waiting.
    await waitFor(() => tracing.spans().length === 1);
    const llmSpan = tracing.spans()[0]!;
    expect(llmSpan.events).toEqual([]);
    release();
    await waitFor(() => tracing.spans().length === 2);
    const late = tracing.spans()[1]!;
    const attributes = {
      'gen_ai.evaluation.name': 'app.judge',
      'gen_ai.evaluation.score.value': 0.75,
      'gen_ai.evaluation.explanation': 'judged later',
      'gen_ai.response.id': completion.id,
      'modelmaxx.evaluation.source': 'evaluator',
    };
    expect(late.name).toBe('evaluate app.judge');
    expect(late.parentSpanContext?.spanId).toBe(llmSpan.spanContext().spanId);
    expect(late.spanContext().traceId).toBe(llmSpan.spanContext().traceId);
    expect(late.links.map((link) => link.context.spanId)).toEqual([llmSpan.spanContext().spanId]);
    // The span is no LLM call; its event names the scored call so the collector counts it there.
    expect(late.attributes).toEqual(attributes);
    expect(eventsOf(late as never)).toEqual([
      {
        name: 'gen_ai.evaluation.result',
        attributes: {
          ...attributes,
          'gen_ai.request.model': 'gpt-4o',
          'gen_ai.provider.name': 'openai',
        },
      },
    ]);
  });

  it('a throwing or rejecting evaluator costs only its result', async () => {
    const client = openai({
      evaluators: [
        () => {
          throw new Error('evaluator bug');
        },
        () => Promise.reject(new Error('async evaluator bug')),
        () => ({ nonsense: true }) as never,
      ],
    });
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'still fine' }],
    });
    expect(completion.choices[0]?.message.content).toBeTruthy();
    const span = await onlySpan();
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.events.map((event) => event.attributes?.['gen_ai.evaluation.name'])).toEqual([
      'modelmaxx.finish_length',
      'modelmaxx.empty_output',
      'modelmaxx.refusal',
    ]);
  });
});

describe('feedback', () => {
  it('finds the evaluated span by responseId and records a linked child span', async () => {
    const completion = await openai({ builtinEvaluators: false }).chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'rate me' }],
    });
    await waitFor(() => tracing.spans().length === 1);
    const llmSpan = tracing.spans()[0]!;
    feedback({
      responseId: completion.id,
      name: 'user.thumbs',
      score: 1,
      label: 'up',
      comment: 'helpful',
    });
    await waitFor(() => tracing.spans().length === 2);
    const span = tracing.spans()[1]!;
    const attributes = {
      'gen_ai.evaluation.name': 'user.thumbs',
      'gen_ai.evaluation.score.value': 1,
      'gen_ai.evaluation.score.label': 'up',
      'gen_ai.evaluation.explanation': 'helpful',
      'gen_ai.response.id': completion.id,
      'modelmaxx.evaluation.source': 'feedback',
    };
    expect(span.name).toBe('feedback user.thumbs');
    expect(span.parentSpanContext?.spanId).toBe(llmSpan.spanContext().spanId);
    expect(span.links.map((link) => link.context.spanId)).toEqual([llmSpan.spanContext().spanId]);
    expect(span.attributes).toEqual(attributes);
    expect(
      span.events.map((event) => ({ name: event.name, attributes: event.attributes })),
    ).toEqual([
      {
        name: 'gen_ai.evaluation.result',
        attributes: {
          ...attributes,
          'gen_ai.request.model': 'gpt-4o',
          'gen_ai.provider.name': 'openai',
        },
      },
    ]);
  });

  it('names the scored call’s task and feature in a late feedback event', async () => {
    const completion = await openai({ builtinEvaluators: false }).chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'rate me too' }] },
      { modelmaxx: { task: 'triage', feature: 'inbox' } } as never,
    );
    await waitFor(() => tracing.spans().length === 1);
    feedback({ responseId: completion.id, name: 'user.thumbs', score: 0 });
    await waitFor(() => tracing.spans().length === 2);
    const span = tracing.spans()[1]!;
    expect(span.attributes['modelmaxx.task']).toBeUndefined();
    expect(span.events[0]?.attributes).toMatchObject({
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.provider.name': 'openai',
      'modelmaxx.task': 'triage',
      'modelmaxx.feature': 'inbox',
    });
  });

  it('accepts a span, and records an unknown responseId without a parent', async () => {
    const tracer = trace.getTracer('test');
    const open = tracer.startSpan('app work');
    feedback({ span: open, name: 'test.verdict', score: 0 });
    open.end();
    feedback({ responseId: 'resp_elsewhere', name: 'judge.score', score: 0.5 });
    feedback({ name: 'broken', score: Number.NaN });
    await waitFor(() => tracing.spans().length === 2);
    const [appSpan, unknown] = tracing.spans();
    expect(appSpan?.events.map((event) => event.attributes)).toEqual([
      {
        'gen_ai.evaluation.name': 'test.verdict',
        'gen_ai.evaluation.score.value': 0,
        'modelmaxx.evaluation.source': 'feedback',
      },
    ]);
    expect(unknown?.name).toBe('feedback judge.score');
    expect(unknown?.parentSpanContext).toBeUndefined();
    expect(unknown?.attributes).toEqual({
      'gen_ai.evaluation.name': 'judge.score',
      'gen_ai.evaluation.score.value': 0.5,
      'gen_ai.response.id': 'resp_elsewhere',
      'modelmaxx.evaluation.source': 'feedback',
    });
  });
});
