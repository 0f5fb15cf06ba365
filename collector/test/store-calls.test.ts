import {
  costOf,
  normalizeModelName,
  normalizeProviderName,
  PriceCatalog,
} from '@modelmaxx/pricing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/open-store.js';
import type { ClickHouseStore } from '../src/store/clickhouse-store.js';
import {
  modelNameSqlExpression,
  PROVIDER_SPELLINGS,
  providerNameSqlExpression,
} from '../src/schema/model-name.js';
import type { SpanRow } from '../src/store/span-store.js';
import { llmSpan, tempDir } from './store-fixtures.js';

const dir = tempDir('mm-calls-');
let store: ClickHouseStore;

beforeAll(async () => {
  store = await openStore({ dataDir: dir.path, spoolDir: false, batch: { maxDelayMs: 10 } });
});
afterAll(async () => {
  await store.close();
  dir.remove();
});

const query = async <Row = Record<string, unknown>>(
  sql: string,
  params?: Record<string, unknown>,
) => (await store.engine.query<Row>(sql, params)).data;

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
    const [row] = await query<{ normalized: string[] }>(
      `SELECT arrayMap(m -> ${modelNameSqlExpression('m')}, {names:Array(String)}) AS normalized`,
      { names },
    );
    expect(row?.normalized).toEqual(names.map(normalizeModelName));
    expect(names.length).toBeGreaterThan(100);
    const providers = [
      ...PROVIDER_SPELLINGS,
      ...PROVIDER_SPELLINGS.map((name) => `${name}.chat`),
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
    const [providerRow] = await query<{ normalized: string[] }>(
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
    expect(await store.write(spans.map((item) => item.span))).toMatchObject({ status: 'ok' });
    const rows = await query<CallRow>(
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
    expect(await store.write([withCost, euro, anthropicSdk, failed, tool])).toMatchObject({
      status: 'ok',
    });

    const rows = await query<Record<string, unknown>>(
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
    });
    expect(bySpan.get(failed.SpanId)).toMatchObject({
      CostUSD: null,
      CostSource: 'unknown',
      StatusCode: 'Error',
      ErrorType: 'RateLimitError',
    });
  });
});
