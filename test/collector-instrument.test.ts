/**
 * Instrumentation end to end: a fixture app (real openai and @anthropic-ai/sdk against llm-sim)
 * runs under `node --import @modelmaxx/instrument/register` and exports over the real OTLP
 * exporter to a collector with the real embedded ClickHouse; the test reads `llm_calls`,
 * `llm_scores` (through `/api/sql`) and `/api/stats`, and checks them against what the app saw,
 * with costs computed independently by `@modelmaxx/pricing`'s `costOf`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '@modelmaxx/collector';
import { startLlmSim, type LlmSim } from '@modelmaxx/llm-sim';
import { costOf, type TokenUsage } from '@modelmaxx/pricing';
import type { CollectorAppOutput } from './support/collector-app.js';
import { REGISTER, runFixture } from './support/run-fixture.js';
import { rowsEventually, sqlRows } from './support/collector-sql.js';
import type { Row } from './support/collector-sql.js';

let sim: LlmSim;
let collector: RunningCollector;
let dataDir: string;
let app: CollectorAppOutput;

const sql = (query: string) => sqlRows(collector.url, query);

const waitForRows = (query: string, count: number, timeoutMs?: number) =>
  rowsEventually(collector.url, query, count, timeoutMs);

function expectedCost(provider: string, models: string[], usage: TokenUsage): number {
  for (const model of models) {
    const result = costOf({ provider, model, usage });
    if (result.known) return result.amount;
  }
  throw new Error(`no price for ${models.join(', ')}`);
}

interface ExpectedCall {
  provider: string;
  requestModel: string;
  responseModel: string;
  responseId: string;
  usage: Required<TokenUsage>;
  finishReasons: string[];
  stream: boolean;
  task: string;
  feature: string;
  userId: string;
  conversationId: string;
}

function expectedCalls(output: CollectorAppOutput): ExpectedCall[] {
  const chatUsage = (usage: CollectorAppOutput['chat']['usage']): Required<TokenUsage> => {
    if (usage === undefined) throw new Error('the app saw no usage');
    return {
      inputTokens: usage.prompt_tokens,
      outputTokens: usage.completion_tokens,
      cacheReadTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
      cacheWriteTokens: 0,
      reasoningTokens: usage.completion_tokens_details?.reasoning_tokens ?? 0,
    };
  };
  const anthropic = output.anthropic.usage;
  return [
    {
      provider: 'openai',
      requestModel: 'gpt-4o-mini',
      responseModel: output.chat.model,
      responseId: output.chat.id,
      usage: chatUsage(output.chat.usage),
      finishReasons: [output.chat.finishReason ?? ''],
      stream: false,
      task: 'summarize',
      feature: 'inbox',
      userId: 'user-7',
      conversationId: 'conv-1',
    },
    {
      provider: 'openai',
      requestModel: 'gpt-4o',
      responseModel: output.stream.model,
      responseId: output.stream.id,
      usage: chatUsage(output.stream.usage),
      finishReasons: [output.stream.finishReason ?? ''],
      stream: true,
      task: 'draft',
      feature: 'compose',
      userId: '',
      conversationId: '',
    },
    {
      provider: 'anthropic',
      requestModel: 'claude-haiku-4-5',
      responseModel: output.anthropic.model,
      responseId: output.anthropic.id,
      usage: {
        // OTel GenAI semantics: input includes the cached tokens.
        inputTokens:
          anthropic.input_tokens +
          (anthropic.cache_read_input_tokens ?? 0) +
          (anthropic.cache_creation_input_tokens ?? 0),
        outputTokens: anthropic.output_tokens,
        cacheReadTokens: anthropic.cache_read_input_tokens ?? 0,
        cacheWriteTokens: anthropic.cache_creation_input_tokens ?? 0,
        reasoningTokens: 0,
      },
      finishReasons: [output.anthropic.stopReason ?? ''],
      stream: false,
      task: 'classify',
      feature: '',
      userId: '',
      conversationId: '',
    },
  ];
}

/** The row `llm_calls` must hold for a call. */
function expectedRow(call: ExpectedCall): Row {
  return {
    ServiceName: 'inbox-app',
    Provider: call.provider,
    Operation: 'chat',
    RequestModel: call.requestModel,
    ResponseModel: call.responseModel,
    ResponseId: call.responseId,
    InputTokens: call.usage.inputTokens,
    OutputTokens: call.usage.outputTokens,
    CacheReadTokens: call.usage.cacheReadTokens,
    CacheWriteTokens: call.usage.cacheWriteTokens,
    ReasoningTokens: call.usage.reasoningTokens,
    CostUSD: expect.closeTo(
      expectedCost(call.provider, [call.responseModel, call.requestModel], call.usage),
      15,
    ),
    CostSource: 'span',
    PricingModel: '',
    StatusCode: 'Unset',
    ErrorType: '',
    FinishReasons: call.finishReasons,
    Stream: call.stream,
    Task: call.task,
    Feature: call.feature,
    UserId: call.userId,
    ConversationId: call.conversationId,
    RoutePolicy: '',
    RouteReason: '',
    DurationMs: expect.any(Number),
    TimeToFirstChunkMs: call.stream ? expect.any(Number) : null,
    TraceId: expect.stringMatching(/^[0-9a-f]{32}$/),
    SpanId: expect.stringMatching(/^[0-9a-f]{16}$/),
    ParentSpanId: '',
  };
}

const CALL_COLUMNS = `ServiceName, Provider, Operation, RequestModel, ResponseModel, ResponseId,
  toUInt32(InputTokens) AS InputTokens, toUInt32(OutputTokens) AS OutputTokens,
  toUInt32(CacheReadTokens) AS CacheReadTokens, toUInt32(CacheWriteTokens) AS CacheWriteTokens,
  toUInt32(ReasoningTokens) AS ReasoningTokens, CostUSD, CostSource, PricingModel, StatusCode,
  ErrorType, FinishReasons, Stream, Task, Feature, UserId, ConversationId, RoutePolicy, RouteReason,
  DurationMs, TimeToFirstChunkMs, TraceId, SpanId, ParentSpanId`;

async function callRows(): Promise<Row[]> {
  return waitForRows(`SELECT ${CALL_COLUMNS} FROM modelmaxx.llm_calls ORDER BY RequestModel`, 3);
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-collector-instrument-'));
  sim = await startLlmSim({ seed: 7, latencyScale: 0 });
  collector = await startCollector({ config: { port: 0, dataDir } });
  const run = await runFixture('../support/collector-app.ts', {
    nodeArgs: REGISTER,
    env: {
      OPENAI_BASE_URL: sim.openaiBaseURL,
      ANTHROPIC_BASE_URL: sim.anthropicBaseURL,
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_SERVICE_NAME: 'inbox-app',
      MODELMAXX_FLUSH_TIMEOUT_MS: '20000',
    },
    timeoutMs: 90_000,
  });
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  app = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as CollectorAppOutput;
}, 120_000);

afterAll(async () => {
  await collector?.close();
  await sim?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

describe('app → collector → ClickHouse', () => {
  it('stores one llm_calls row per call with tokens, the span cost (= costOf) and app context', async () => {
    const [chat, stream, anthropic] = expectedCalls(app);
    const rows = await callRows();
    expect(rows).toHaveLength(3);
    const byModel = Object.fromEntries(rows.map((row) => [String(row.RequestModel), row]));
    expect(byModel['gpt-4o']).toEqual(expectedRow(stream!));
    expect(byModel['claude-haiku-4-5']).toEqual(expectedRow(anthropic!));
    // withLlmContext() around the app's very first call (which starts the SDK) is kept too.
    expect(byModel['gpt-4o-mini']).toEqual(expectedRow(chat!));
    expect(Number(byModel['gpt-4o']!.TimeToFirstChunkMs)).toBeGreaterThan(0);
    for (const row of rows) expect(Number(row.DurationMs)).toBeGreaterThan(0);
    // Every call is its own trace root, and the Anthropic SDK's own span is not stored twice.
    const spans = await sql(
      `SELECT SpanName, SpanKind, ScopeName FROM modelmaxx.otel_traces WHERE SpanAttributes['gen_ai.request.model'] != '' ORDER BY SpanName`,
    );
    expect(spans).toEqual([
      { SpanName: 'chat claude-haiku-4-5', SpanKind: 'Client', ScopeName: '@modelmaxx/instrument' },
      { SpanName: 'chat gpt-4o', SpanKind: 'Client', ScopeName: '@modelmaxx/instrument' },
      { SpanName: 'chat gpt-4o-mini', SpanKind: 'Client', ScopeName: '@modelmaxx/instrument' },
    ]);
  });

  it('stores the built-in evaluators’ scores in llm_scores, linked to their call', async () => {
    const calls = await callRows();
    const scores = await waitForRows(
      `SELECT Name, Score, Label, Source, ResponseId, SpanId, TraceId, Model, Provider, Task, Feature
       FROM modelmaxx.llm_scores WHERE Source = 'evaluator' ORDER BY Model, Name`,
      9,
    );
    const expected: Row[] = [];
    for (const call of expectedCalls(app)) {
      const row = calls.find((candidate) => candidate.ResponseId === call.responseId)!;
      const cut = ['length', 'max_tokens'].includes(call.finishReasons[0] ?? '');
      const score = (name: string, value: number): Row => ({
        Name: name,
        Score: value,
        Label: value === 1 ? 'pass' : 'fail',
        Source: 'evaluator',
        ResponseId: call.responseId,
        SpanId: row.SpanId,
        TraceId: row.TraceId,
        Model: call.requestModel,
        Provider: call.provider,
        Task: row.Task,
        Feature: row.Feature,
      });
      expected.push(
        score('modelmaxx.empty_output', 1),
        score('modelmaxx.finish_length', cut ? 0 : 1),
        score('modelmaxx.refusal', 1),
      );
    }
    const key = (row: Row) => `${String(row.Model)}\u0000${String(row.Name)}`;
    expected.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    expect(scores).toEqual(expected);
    // The simulator really cut the gpt-4o stream at max_tokens: 5.
    expect(expectedCalls(app)[1]!.finishReasons).toEqual(['length']);
  });

  it('joins POST /v1/feedback by responseId onto the call, and /api/stats reflects calls, cost and scores', async () => {
    const calls = await callRows();
    const [, stream] = expectedCalls(app);
    const streamRow = calls.find((row) => row.ResponseId === stream!.responseId)!;
    const response = await fetch(`${collector.url}/v1/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        responseId: stream!.responseId,
        name: 'judge.quality',
        score: 0.25,
        label: 'weak',
        comment: 'cut off',
        source: 'judge',
      }),
    });
    expect(response.status).toBe(200);
    const feedback = await waitForRows(
      `SELECT Name, Score, Label, Explanation, Source, ResponseId, SpanId, TraceId, Model, Provider, Task, Feature
       FROM modelmaxx.llm_scores WHERE Name = 'judge.quality'`,
      1,
    );
    expect(feedback).toEqual([
      {
        Name: 'judge.quality',
        Score: 0.25,
        Label: 'weak',
        Explanation: 'cut off',
        Source: 'judge',
        ResponseId: stream!.responseId,
        SpanId: streamRow.SpanId,
        TraceId: streamRow.TraceId,
        Model: 'gpt-4o',
        Provider: 'openai',
        Task: 'draft',
        Feature: 'compose',
      },
    ]);

    const statsResponse = await fetch(
      `${collector.url}/api/stats?window=1h&groupBy=task,feature&quality=true`,
    );
    expect(statsResponse.status).toBe(200);
    const stats = (await statsResponse.json()) as { rows: Row[]; groupBy: string[] };
    expect(stats.groupBy).toEqual(['model', 'task', 'feature']);
    const byModel = Object.fromEntries(stats.rows.map((row) => [String(row.model), row]));
    expect(Object.keys(byModel).sort()).toEqual(['claude-haiku-4-5', 'gpt-4o', 'gpt-4o-mini']);
    for (const call of expectedCalls(app)) {
      const row = calls.find((candidate) => candidate.ResponseId === call.responseId)!;
      const cost = expectedCost(call.provider, [call.responseModel, call.requestModel], call.usage);
      const cut = ['length', 'max_tokens'].includes(call.finishReasons[0] ?? '');
      // Three evaluator scores, plus the judge's 0.25 on the gpt-4o call.
      const judged = call.requestModel === 'gpt-4o';
      const scoreSum = 2 + (cut ? 0 : 1) + (judged ? 0.25 : 0);
      const scoreCount = 3 + (judged ? 1 : 0);
      const latency = expect.closeTo(Number(row.DurationMs), 1);
      const expected: Row = {
        model: call.requestModel,
        task: row.Task,
        feature: row.Feature,
        calls: 1,
        errors: 0,
        errorRate: 0,
        costUsd: expect.closeTo(cost, 15),
        costPerCallUsd: expect.closeTo(cost, 15),
        meanInputTokens: call.usage.inputTokens,
        meanOutputTokens: call.usage.outputTokens,
        latencyP50Ms: latency,
        latencyP95Ms: latency,
        latencyP99Ms: latency,
        meanScore: expect.closeTo(scoreSum / scoreCount, 12),
        scoreCount,
        // The separate figures: the built-in checks' pass rate, judge and feedback scores.
        evaluatedCalls: 1,
        passRate: cut ? 0 : 1,
        judgeScore: judged ? 0.25 : null,
        judgeCount: judged ? 1 : 0,
        feedbackScore: null,
        feedbackCount: 0,
        pairwiseWins: 0,
        pairwiseTies: 0,
        pairwiseLosses: 0,
      };
      if (call.requestModel === 'gpt-4o-mini') {
        // Whether the app's in-process feedback() counts: see the known-bug test below.
        expected.meanScore = expect.any(Number);
        expected.scoreCount = expect.any(Number);
        expected.feedbackScore = expect.anything();
        expected.feedbackCount = expect.any(Number);
      }
      expect(byModel[call.requestModel]).toEqual(expected);
    }
  });

  it('resolves unqualified table names in the modelmaxx database on /api/sql', async () => {
    expect(await sql('SELECT count() AS calls FROM llm_calls')).toEqual([{ calls: 3 }]);
  });

  // Known gap (collector-storage, llm_scores_mv in collector/src/schema/schema.ts): the app's
  // feedback() arrives as a `feedback <name>` span, a child of the scored LLM span, carrying the
  // evaluation event. The view stores it with the feedback span's own SpanId and with empty
  // Model/Provider/Task/Feature, so the score is not linked to the call's span and never reaches
  // the rollup (/api/stats, the router's quality input). Flip to `it` once fixed.
  it('links the app’s feedback() score to the scored call and counts it in /api/stats', async () => {
    const calls = await callRows();
    const [chat] = expectedCalls(app);
    const chatRow = calls.find((row) => row.ResponseId === chat!.responseId)!;
    const rows = await waitForRows(
      `SELECT Name, Score, Label, Source, ResponseId, SpanId, TraceId, Model, Provider
       FROM modelmaxx.llm_scores WHERE Name = 'user.thumbs'`,
      1,
    );
    expect(rows).toEqual([
      {
        Name: 'user.thumbs',
        Score: 1,
        Label: 'up',
        Source: 'feedback',
        ResponseId: chat!.responseId,
        SpanId: chatRow.SpanId,
        TraceId: chatRow.TraceId,
        Model: 'gpt-4o-mini',
        Provider: 'openai',
      },
    ]);
    const stats = (await (await fetch(`${collector.url}/api/stats?window=1h`)).json()) as {
      rows: Row[];
    };
    expect(stats.rows.find((row) => row.model === 'gpt-4o-mini')?.scoreCount).toBe(4);
  });
});
