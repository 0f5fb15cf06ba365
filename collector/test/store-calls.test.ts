import {
  costOf,
  normalizeModelName,
  normalizeProviderName,
  PriceCatalog,
  PROVIDER_ALIASES,
} from '@modelmaxx/pricing';
import { describe, expect, it } from 'vitest';
import { modelNameSqlExpression, providerNameSqlExpression } from '../src/schema/model-name.js';
import type { SpanRow } from '../src/store/span-store.js';
import { llmSpan, nanos, spanRow } from './store-fixtures.js';
import { useTestStore } from './support/test-store.js';

const db = useTestStore('mm-calls-', { spoolDir: false, batch: { maxDelayMs: 10 } });

const catalog = PriceCatalog.default();

/** Model names as spans carry them: catalog ids, aliases, dated snapshots, routing and Bedrock/Vertex forms. */
function modelNames(): string[] {
  const names = new Set<string>([
    'gpt-4o-2024-08-06',
    'GPT-4o-Mini',
    '  gpt-4o  ',
    'openai/gpt-4o-mini',
    'openrouter/openai/gpt-4o',
    'claude-sonnet-4-5-20250929',
    'claude-3-5-sonnet-latest',
    'claude-3-5-sonnet@20240620',
    'us.anthropic.claude-3-5-sonnet-20241022-v2:0',
    'anthropic.claude-v2:1',
    'gemini-2.0-flash-001',
    'models/gemini-1.5-pro',
    'gpt-4-0613',
    'gpt-3.5-turbo-1106',
    'mistral-large-2411',
    'together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo',
    'meta-llama/Llama-3.3-70B-Instruct-Turbo',
    'no-such-model',
    'unknown/provider/model-20240101',
    '',
    '/',
    'a/',
  ]);
  for (const entry of catalog.entries()) {
    names.add(entry.model);
    for (const alias of entry.aliases ?? []) names.add(alias);
    names.add(`${entry.model}-2025-01-31`);
    names.add(`${entry.model}-20250131`);
    names.add(`${entry.provider}/${entry.model}`);
    names.add(`${entry.model.toUpperCase()}-latest`);
  }
  return [...names];
}

describe('model and provider names in SQL', () => {
  it('normalise exactly like @modelmaxx/pricing', async () => {
    const names = modelNames();
    const [row] = await db.query<{ normalized: string[] }>(
      `SELECT arrayMap(m -> ${modelNameSqlExpression('m')}, {names:Array(String)}) AS normalized`,
      { names },
    );
    expect(row?.normalized).toEqual(names.map(normalizeModelName));
    expect(names.length).toBeGreaterThan(100);
    // Every spelling of pricing's own alias table (what normalizeProviderName reads).
    const spellings = Object.keys(PROVIDER_ALIASES);
    const providers = [
      ...spellings,
      ...spellings.map((name) => `${name}.chat`),
      ' OpenAI ',
      'AWS.Bedrock',
      'someone-else',
      'openai.responses',
      'google.vertex.chat',
      'some.new.provider',
      'openai.',
      '.openai',
      'a..b',
      '',
    ];
    const [providerRow] = await db.query<{ normalized: string[] }>(
      `SELECT arrayMap(p -> ${providerNameSqlExpression('p')}, {providers:Array(String)}) AS normalized`,
      { providers },
    );
    expect(providerRow?.normalized).toEqual(providers.map(normalizeProviderName));
  });
});

interface CallRow {
  SpanId: string;
  CostUSD: number | null;
  CostSource: string;
  PricingModel: string;
}

describe('llm_calls', () => {
  it('prices spans without a cost from llm_prices exactly like costOf, and marks unknown models', async () => {
    const usages = [
      { input: 1200, output: 300 },
      { input: 5000, output: 800, cacheRead: 3000, cacheWrite: 1000, reasoning: 500 },
      { input: 10, output: 0, cacheRead: 20 },
    ];
    const providers = ['openai', 'anthropic', 'google', 'aws.bedrock', 'azure.ai.openai', ''];
    const spans: {
      span: SpanRow;
      provider: string;
      model: string;
      usage: (typeof usages)[number];
    }[] = [];
    let index = 0;
    for (const model of modelNames()) {
      const usage = usages[index % usages.length] ?? { input: 1, output: 1 };
      const provider = providers[index % providers.length] ?? '';
      index++;
      const span = llmSpan({ model, provider, ...usage });
      if (provider === '') delete span.SpanAttributes['gen_ai.provider.name'];
      spans.push({ span, provider, model, usage });
    }
    expect(await db.store.write(spans.map((item) => item.span))).toMatchObject({ status: 'ok' });
    const rows = await db.query<CallRow>(
      'SELECT SpanId, CostUSD, CostSource, PricingModel FROM modelmaxx.llm_calls WHERE SpanId IN {ids:Array(String)}',
      { ids: spans.map((item) => item.span.SpanId) },
    );
    const bySpan = new Map(rows.map((row) => [row.SpanId, row]));
    let known = 0;
    for (const { span, provider, model, usage } of spans) {
      const row = bySpan.get(span.SpanId);
      const expected = costOf({
        ...(provider === '' ? {} : { provider }),
        model,
        usage: {
          inputTokens: usage.input,
          outputTokens: usage.output,
          cacheReadTokens: usage.cacheRead ?? 0,
          cacheWriteTokens: usage.cacheWrite ?? 0,
          reasoningTokens: usage.reasoning ?? 0,
        },
      });
      if (model.trim() === '') {
        // Not an LLM call without a model: no row at all.
        expect(row, model).toBeUndefined();
        continue;
      }
      if (expected.known) {
        known++;
        expect({
          model,
          provider,
          source: row?.CostSource,
          pricingModel: row?.PricingModel,
        }).toEqual({
          model,
          provider,
          source: 'catalog',
          pricingModel: expected.model,
        });
        expect(row?.CostUSD, `${provider} ${model}`).toBeCloseTo(expected.amount, 12);
      } else {
        expect({ model, source: row?.CostSource, cost: row?.CostUSD }).toEqual({
          model,
          source: 'unknown',
          cost: null,
        });
      }
    }
    expect(known).toBeGreaterThan(100);
  });

  it('takes the span cost when it is in USD, reads cache_write like cache_creation and gen_ai.system like provider', async () => {
    const withCost = llmSpan({ model: 'gpt-4o', costUsd: 0.0123, input: 1000, output: 10 });
    const euro = llmSpan({
      model: 'gpt-4o',
      input: 1000,
      output: 10,
      extra: { 'gen_ai.usage.cost.amount': '9.99', 'gen_ai.usage.cost.currency': 'EUR' },
    });
    const anthropicSdk = llmSpan({
      model: 'claude-sonnet-4-5-20250929',
      provider: 'anthropic',
      input: 2000,
      output: 100,
      cacheRead: 500,
      extra: {
        'gen_ai.usage.cache_write.input_tokens': '700',
        'gen_ai.response.finish_reasons': 'end_turn',
        'gen_ai.request.stream': 'true',
        'gen_ai.response.time_to_first_chunk': '0.25',
        'gen_ai.conversation.id': 'conv-1',
        'enduser.id': 'user-7',
        'modelmaxx.route.policy': 'balanced',
        'modelmaxx.route.reason': 'cheapest within 2% of best',
      },
      task: 'summarize',
      feature: 'inbox',
      service: 'mail',
      durationMs: 1234.5,
    });
    delete anthropicSdk.SpanAttributes['gen_ai.provider.name'];
    anthropicSdk.SpanAttributes['gen_ai.system'] = 'Anthropic';
    const failed = llmSpan({
      model: 'no-such-model',
      error: 'RateLimitError',
      input: 0,
      output: 0,
    });
    const tool = llmSpan({ model: 'gpt-4o', extra: { 'gen_ai.operation.name': 'execute_tool' } });
    expect(await db.store.write([withCost, euro, anthropicSdk, failed, tool])).toMatchObject({
      status: 'ok',
    });

    const rows = await db.query<Record<string, unknown>>(
      `SELECT * EXCEPT (Timestamp), toString(toUnixTimestamp64Nano(Timestamp)) AS Timestamp
       FROM modelmaxx.llm_calls WHERE SpanId IN {ids:Array(String)}`,
      { ids: [withCost, euro, anthropicSdk, failed, tool].map((span) => span.SpanId) },
    );
    const bySpan = new Map(rows.map((row) => [row.SpanId, row]));
    expect(rows).toHaveLength(4);
    expect(bySpan.get(withCost.SpanId)).toMatchObject({
      CostUSD: 0.0123,
      CostSource: 'span',
      PricingModel: '',
    });
    const gpt4o = costOf({
      provider: 'openai',
      model: 'gpt-4o',
      usage: { inputTokens: 1000, outputTokens: 10 },
    });
    expect(gpt4o.known).toBe(true);
    expect(bySpan.get(euro.SpanId)).toMatchObject({ CostSource: 'catalog' });
    expect(bySpan.get(euro.SpanId)?.CostUSD).toBeCloseTo(
      gpt4o.known ? gpt4o.amount : Number.NaN,
      12,
    );
    const claude = costOf({
      provider: 'anthropic',
      model: 'claude-sonnet-4-5-20250929',
      usage: { inputTokens: 2000, outputTokens: 100, cacheReadTokens: 500, cacheWriteTokens: 700 },
    });
    expect(claude.known).toBe(true);
    const anthropicRow = bySpan.get(anthropicSdk.SpanId);
    expect(anthropicRow?.CostUSD).toBeCloseTo(claude.known ? claude.amount : Number.NaN, 12);
    expect({ ...anthropicRow, CostUSD: undefined }).toEqual({
      Timestamp: anthropicSdk.Timestamp,
      TraceId: anthropicSdk.TraceId,
      SpanId: anthropicSdk.SpanId,
      ParentSpanId: '',
      ServiceName: 'mail',
      Provider: 'anthropic',
      Operation: 'chat',
      RequestModel: 'claude-sonnet-4-5-20250929',
      ResponseModel: 'claude-sonnet-4-5-20250929',
      Model: 'claude-sonnet-4-5',
      ResponseId: anthropicSdk.SpanAttributes['gen_ai.response.id'],
      InputTokens: 2000,
      OutputTokens: 100,
      CacheReadTokens: 500,
      CacheWriteTokens: 700,
      ReasoningTokens: 0,
      CostUSD: undefined,
      CostSource: 'catalog',
      PricingModel: claude.known ? claude.model : '',
      DurationMs: 1234.5,
      TimeToFirstChunkMs: 250,
      StatusCode: 'Unset',
      ErrorType: '',
      FinishReasons: ['end_turn'],
      Stream: true,
      Task: 'summarize',
      Feature: 'inbox',
      UserId: 'user-7',
      ConversationId: 'conv-1',
      RoutePolicy: 'balanced',
      RouteReason: 'cheapest within 2% of best',
      Purpose: 'app',
      RouteClass: '',
      RouteModel: '',
      RouteReferenceModel: '',
    });
    expect(bySpan.get(failed.SpanId)).toMatchObject({
      CostUSD: null,
      CostSource: 'unknown',
      StatusCode: 'Error',
      ErrorType: 'RateLimitError',
    });
  });
});

/**
 * Spans of other GenAI instrumentations, with the attribute names and values the real packages
 * emitted against llm-sim (recorded with an in-memory exporter; the end-to-end tests in
 * test/foreign-instrumentations.test.ts send them through the real exporters).
 */
describe('llm_calls from other instrumentations', () => {
  type Case = {
    name: string;
    span: SpanRow;
    /** Undefined: the span is not an LLM call (a wrapper of one). */
    expected?: Record<string, unknown>;
    usage?: { model: string; provider: string; usage: Parameters<typeof costOf>[0]['usage'] };
  };
  const span = (
    name: string,
    attributes: Record<string, string>,
    extra: Partial<SpanRow> = {},
  ): SpanRow =>
    spanRow({ SpanName: name, SpanKind: 'Client', SpanAttributes: attributes, ...extra });
  const errorEvent = (type: string): Partial<SpanRow> => ({
    StatusCode: 'Error',
    Events: {
      Timestamp: [nanos(Date.now())],
      Name: ['exception'],
      Attributes: [{ 'exception.type': type, 'exception.message': 'boom' }],
    },
  });
  const cases: Case[] = [
    {
      name: 'OpenInference chat (@arizeai/openinference-instrumentation-openai 4.2.7)',
      span: span('OpenAI Chat Completions', {
        'openinference.span.kind': 'LLM',
        'llm.model_name': 'gpt-4o-2024-08-06',
        'llm.invocation_parameters': '{"model":"gpt-4o","max_tokens":50}',
        'llm.system': 'openai',
        'llm.finish_reason': 'length',
        'llm.token_count.completion': '54',
        'llm.token_count.prompt': '1884',
        'llm.token_count.total': '1938',
        'llm.token_count.prompt_details.cache_read': '1792',
        'llm.token_count.completion_details.reasoning': '0',
      }),
      expected: {
        Provider: 'openai',
        Operation: 'chat',
        RequestModel: 'gpt-4o',
        ResponseModel: 'gpt-4o-2024-08-06',
        Model: 'gpt-4o',
        InputTokens: 1884,
        OutputTokens: 54,
        CacheReadTokens: 1792,
        ReasoningTokens: 0,
        CostSource: 'catalog',
        PricingModel: 'gpt-4o',
        FinishReasons: ['length'],
        Stream: false,
      },
      usage: {
        provider: 'openai',
        model: 'gpt-4o-2024-08-06',
        usage: { inputTokens: 1884, outputTokens: 54, cacheReadTokens: 1792 },
      },
    },
    {
      name: 'OpenInference stream: no usage recorded, so unpriced (not $0)',
      span: span('OpenAI Chat Completions', {
        'openinference.span.kind': 'LLM',
        'llm.model_name': 'gpt-4o-mini',
        'llm.invocation_parameters':
          '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}',
        'llm.system': 'openai',
        'llm.provider': 'azure',
        'llm.finish_reason': 'stop',
      }),
      expected: {
        Provider: 'openai',
        RequestModel: 'gpt-4o-mini',
        ResponseModel: '',
        Model: 'gpt-4o-mini',
        InputTokens: 0,
        CostUSD: null,
        CostSource: 'unknown',
        Stream: true,
      },
    },
    {
      name: 'OpenInference reasoning tokens and instrumentation-reported cost',
      span: span('OpenAI Chat Completions', {
        'openinference.span.kind': 'LLM',
        'llm.model_name': 'o3-mini-2025-01-31',
        'llm.invocation_parameters': '{"model":"o3-mini","max_completion_tokens":2000}',
        'llm.system': 'openai',
        'llm.token_count.completion': '155',
        'llm.token_count.prompt': '12',
        'llm.token_count.completion_details.reasoning': '150',
        'llm.cost.total': '0.000695',
      }),
      expected: {
        RequestModel: 'o3-mini',
        ResponseModel: 'o3-mini-2025-01-31',
        Model: 'o3-mini',
        ReasoningTokens: 150,
        CostUSD: 0.000695,
        CostSource: 'span',
        PricingModel: '',
      },
    },
    {
      name: 'OpenInference embedding',
      span: span('OpenAI Embeddings', {
        'openinference.span.kind': 'EMBEDDING',
        'embedding.model_name': 'text-embedding-3-small',
        'llm.system': 'openai',
      }),
      expected: {
        Operation: 'embeddings',
        RequestModel: 'text-embedding-3-small',
        CostSource: 'unknown',
      },
    },
    {
      name: 'OpenInference chain span: not a call',
      span: span('RunnableSequence', {
        'openinference.span.kind': 'CHAIN',
        'llm.model_name': 'gpt-4o',
      }),
    },
    {
      name: 'OpenLLMetry / older OTel GenAI names',
      span: span('openai.chat', {
        'gen_ai.system': 'OpenAI',
        'llm.request.type': 'chat',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
        'gen_ai.usage.prompt_tokens': '120',
        'gen_ai.usage.completion_tokens': '30',
        'llm.usage.total_tokens': '150',
        'gen_ai.usage.cache_read_input_tokens': '64',
        'llm.is_streaming': 'true',
      }),
      expected: {
        Provider: 'openai',
        Operation: 'chat',
        RequestModel: 'gpt-4o-mini',
        ResponseModel: 'gpt-4o-mini-2024-07-18',
        Model: 'gpt-4o-mini',
        InputTokens: 120,
        OutputTokens: 30,
        CacheReadTokens: 64,
        Stream: true,
        CostSource: 'catalog',
      },
      usage: {
        provider: 'openai',
        model: 'gpt-4o-mini-2024-07-18',
        usage: { inputTokens: 120, outputTokens: 30, cacheReadTokens: 64 },
      },
    },
    {
      name: 'OpenLLMetry workflow span: not a call',
      span: span('joke.workflow', {
        'traceloop.span.kind': 'workflow',
        'gen_ai.request.model': 'gpt-4o',
      }),
    },
    {
      name: 'Anthropic cache names of OpenLLMetry',
      span: span('anthropic.chat', {
        'gen_ai.system': 'anthropic',
        'gen_ai.request.model': 'claude-haiku-4-5',
        'gen_ai.response.model': 'claude-haiku-4-5-20251001',
        'gen_ai.usage.input_tokens': '3000',
        'gen_ai.usage.output_tokens': '40',
        'gen_ai.usage.cache_read_input_tokens': '1000',
        'gen_ai.usage.cache_creation_input_tokens': '1500',
      }),
      expected: {
        Provider: 'anthropic',
        Model: 'claude-haiku-4-5',
        CacheReadTokens: 1000,
        CacheWriteTokens: 1500,
        CostSource: 'catalog',
      },
      usage: {
        provider: 'anthropic',
        model: 'claude-haiku-4-5-20251001',
        usage: {
          inputTokens: 3000,
          outputTokens: 40,
          cacheReadTokens: 1000,
          cacheWriteTokens: 1500,
        },
      },
    },
    {
      name: '@opentelemetry/instrumentation-openai failed call',
      span: span(
        'chat gpt-4o',
        {
          'gen_ai.operation.name': 'chat',
          'gen_ai.request.model': 'gpt-4o',
          'gen_ai.system': 'openai',
          'error.type': 'InternalServerError',
        },
        { StatusCode: 'Error' },
      ),
      expected: {
        Provider: 'openai',
        RequestModel: 'gpt-4o',
        ResponseModel: '',
        Model: 'gpt-4o',
        StatusCode: 'Error',
        ErrorType: 'InternalServerError',
        CostUSD: 0,
        CostSource: 'catalog',
      },
    },
    {
      name: 'a provider-reported cost keeps its source',
      span: span('chat gpt-4o', {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'openai/gpt-4o',
        'gen_ai.usage.input_tokens': '10',
        'gen_ai.usage.output_tokens': '10',
        'gen_ai.usage.cost.amount': '0.5',
        'gen_ai.usage.cost.currency': 'USD',
        'gen_ai.usage.cost.source': 'provider',
      }),
      expected: { CostUSD: 0.5, CostSource: 'provider', Model: 'gpt-4o' },
    },
    {
      name: "the gateway's estimate (a stream that ended before the provider's usage) says so",
      span: span('chat gpt-4o', {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.usage.input_tokens': '27',
        'gen_ai.usage.output_tokens': '11',
        'gen_ai.usage.cost.amount': '0.00001065',
        'gen_ai.usage.cost.currency': 'USD',
        'gen_ai.usage.cost.source': 'estimate',
      }),
      expected: { CostUSD: 0.00001065, CostSource: 'estimate', Model: 'gpt-4o' },
    },
    {
      name: 'AI SDK 5 doGenerate (ai.usage.promptTokens, gen_ai.system openai.chat)',
      span: span('ai.generateText.doGenerate', {
        'operation.name': 'ai.generateText.doGenerate',
        'ai.operationId': 'ai.generateText.doGenerate',
        'ai.model.provider': 'openai.chat',
        'ai.model.id': 'gpt-4o',
        'gen_ai.system': 'openai.chat',
        'gen_ai.request.model': 'gpt-4o',
        'ai.response.finishReason': 'stop',
        'ai.response.id': 'chatcmpl-cjX9',
        'ai.response.model': 'gpt-4o-2024-08-06',
        'ai.usage.promptTokens': '11',
        'ai.usage.completionTokens': '63',
        'gen_ai.response.finish_reasons': '["stop"]',
        'gen_ai.response.id': 'chatcmpl-cjX9',
        'gen_ai.response.model': 'gpt-4o-2024-08-06',
        'gen_ai.usage.input_tokens': '11',
        'gen_ai.usage.output_tokens': '63',
      }),
      expected: {
        Provider: 'openai',
        Operation: 'chat',
        RequestModel: 'gpt-4o',
        ResponseModel: 'gpt-4o-2024-08-06',
        Model: 'gpt-4o',
        ResponseId: 'chatcmpl-cjX9',
        InputTokens: 11,
        OutputTokens: 63,
        Stream: false,
        FinishReasons: ['stop'],
      },
      usage: {
        provider: 'openai',
        model: 'gpt-4o-2024-08-06',
        usage: { inputTokens: 11, outputTokens: 63 },
      },
    },
    {
      name: 'AI SDK outer ai.generateText span: not a call',
      span: span('ai.generateText', {
        'operation.name': 'ai.generateText',
        'ai.operationId': 'ai.generateText',
        'ai.model.provider': 'openai.chat',
        'ai.model.id': 'gpt-4o',
        'ai.usage.promptTokens': '11',
        'ai.usage.completionTokens': '63',
      }),
    },
    {
      name: 'AI SDK doStream (ai 5+ names, time to first chunk in ms)',
      span: span('ai.streamText.doStream', {
        'ai.operationId': 'ai.streamText.doStream',
        'ai.model.provider': 'openai.responses',
        'ai.model.id': 'gpt-4o',
        'ai.response.model': 'gpt-4o-2024-08-06',
        'ai.response.msToFirstChunk': '39.5',
        'ai.response.finishReason': 'stop',
        'ai.usage.inputTokens': '10',
        'ai.usage.outputTokens': '67',
        'ai.usage.cachedInputTokens': '4',
        'ai.usage.reasoningTokens': '2',
      }),
      expected: {
        Provider: 'openai',
        Operation: 'chat',
        RequestModel: 'gpt-4o',
        ResponseModel: 'gpt-4o-2024-08-06',
        InputTokens: 10,
        OutputTokens: 67,
        CacheReadTokens: 4,
        ReasoningTokens: 2,
        Stream: true,
        TimeToFirstChunkMs: 39.5,
        FinishReasons: ['stop'],
      },
      usage: {
        provider: 'openai',
        model: 'gpt-4o-2024-08-06',
        usage: { inputTokens: 10, outputTokens: 67, cacheReadTokens: 4, reasoningTokens: 2 },
      },
    },
    {
      name: 'AI SDK doEmbed (ai.usage.tokens)',
      span: span('ai.embed.doEmbed', {
        'ai.operationId': 'ai.embed.doEmbed',
        'ai.model.provider': 'openai.embedding',
        'ai.model.id': 'text-embedding-3-small',
        'ai.usage.tokens': '2',
      }),
      expected: {
        Provider: 'openai',
        Operation: 'embeddings',
        RequestModel: 'text-embedding-3-small',
        InputTokens: 2,
      },
      usage: {
        provider: 'openai',
        model: 'text-embedding-3-small',
        usage: { inputTokens: 2 },
      },
    },
    {
      name: 'AI SDK failed doGenerate: error type from the exception event',
      span: span(
        'ai.generateText.doGenerate',
        {
          'ai.operationId': 'ai.generateText.doGenerate',
          'ai.model.provider': 'openai.chat',
          'ai.model.id': 'gpt-4o',
          'gen_ai.system': 'openai.chat',
          'gen_ai.request.model': 'gpt-4o',
        },
        errorEvent('AI_APICallError'),
      ),
      expected: {
        RequestModel: 'gpt-4o',
        Model: 'gpt-4o',
        StatusCode: 'Error',
        ErrorType: 'AI_APICallError',
      },
    },
    {
      name: '@ai-sdk/otel invoke_agent root: not a call',
      span: span('invoke_agent gpt-4o', {
        'gen_ai.operation.name': 'invoke_agent',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.usage.input_tokens': '11',
        'gen_ai.usage.output_tokens': '63',
      }),
    },
    {
      name: '@ai-sdk/otel chat span (streamed: time to first chunk in s)',
      span: span('chat gpt-4o', {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.client.operation.time_to_first_chunk': '0.05',
        'gen_ai.response.model': 'gpt-4o-2024-08-06',
        'gen_ai.usage.input_tokens': '10',
        'gen_ai.usage.output_tokens': '67',
        'gen_ai.usage.cache_read.input_tokens': '0',
      }),
      expected: { Model: 'gpt-4o', TimeToFirstChunkMs: 50, Stream: true },
      usage: {
        provider: 'openai',
        model: 'gpt-4o-2024-08-06',
        usage: { inputTokens: 10, outputTokens: 67 },
      },
    },
    {
      name: '@ai-sdk/otel outer embeddings span (no usage): not a call',
      span: span('embeddings text-embedding-3-small', {
        'gen_ai.operation.name': 'embeddings',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'text-embedding-3-small',
      }),
    },
    {
      name: '@ai-sdk/otel inner embeddings span',
      span: span('embeddings text-embedding-3-small', {
        'gen_ai.operation.name': 'embeddings',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'text-embedding-3-small',
        'gen_ai.usage.input_tokens': '2',
      }),
      expected: { Operation: 'embeddings', InputTokens: 2 },
      usage: {
        provider: 'openai',
        model: 'text-embedding-3-small',
        usage: { inputTokens: 2 },
      },
    },
  ];

  it('maps each source onto the same columns, prices it like costOf, and skips wrapper spans', async () => {
    expect(await db.store.write(cases.map((item) => item.span))).toMatchObject({ status: 'ok' });
    const rows = await db.query<Record<string, unknown>>(
      'SELECT * FROM modelmaxx.llm_calls WHERE SpanId IN {ids:Array(String)}',
      { ids: cases.map((item) => item.span.SpanId) },
    );
    const bySpan = new Map(rows.map((row) => [row.SpanId, row]));
    for (const item of cases) {
      const row = bySpan.get(item.span.SpanId);
      if (item.expected === undefined) {
        expect(row, item.name).toBeUndefined();
        continue;
      }
      expect(row, item.name).toBeDefined();
      const picked = Object.fromEntries(Object.keys(item.expected).map((key) => [key, row?.[key]]));
      expect({ name: item.name, ...picked }).toEqual({ name: item.name, ...item.expected });
      if (item.usage !== undefined) {
        const cost = costOf(item.usage);
        expect(cost.known, item.name).toBe(true);
        expect({ name: item.name, source: row?.CostSource }).toEqual({
          name: item.name,
          source: 'catalog',
        });
        expect(row?.CostUSD, item.name).toBeCloseTo(cost.known ? cost.amount : Number.NaN, 12);
      }
    }
    expect(rows).toHaveLength(cases.filter((item) => item.expected !== undefined).length);
  });
});
