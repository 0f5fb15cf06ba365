/**
 * Apps instrumented by another GenAI instrumentation, end to end: a fixture app
 * (`fixtures/foreign-app.mjs`) runs the real npm package (OpenInference, OpenLLMetry, the
 * official `@opentelemetry/instrumentation-openai`, the Vercel AI SDK 5 and 7 with both of its
 * OpenTelemetry integrations) over the real openai SDK (or the AI SDK's OpenAI provider) against
 * llm-sim, and exports with the real OTLP/protobuf exporter to a collector with the embedded
 * ClickHouse. The test reads `llm_calls` and compares each row whole with what the app saw,
 * with the catalog cost computed independently by `costOf`.
 *
 * What each package reports differs (see docs/instrumenting.md, "Apps that already use another
 * instrumentation"); `SOURCES` says it per package, and the expected rows follow from it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '@modelmaxx/collector';
import { startLlmSim, type LlmSim } from '@modelmaxx/llm-sim';
import { reportSql } from '@modelmaxx/cli';
import { costOf, type TokenUsage } from '@modelmaxx/pricing';
import { runFixture } from './support/run-fixture.js';
import { sqlRows } from './support/collector-sql.js';
import type { Row } from './support/collector-sql.js';

interface Seen {
  id: string;
  model: string;
  finishReason: string | null;
  usage: { input: number; output: number; cacheRead: number; reasoning: number } | null;
}
interface AppOutput {
  calls: {
    prime: Seen;
    cached: Seen;
    reasoning: Seen;
    stream: Seen;
    error?: { status?: number; name?: string };
  };
  spans: { name: string; spanId: string; status: number; attributes: Record<string, unknown> }[];
}

type CallName = 'prime' | 'cached' | 'reasoning' | 'stream';

interface Source {
  /** The spans that are provider calls (one `llm_calls` row each); every other span is a wrapper. */
  callSpan: RegExp;
  /** The package records cached input tokens (else the row says 0). */
  cacheRead: boolean | ((call: CallName) => boolean);
  /** The package records reasoning tokens. */
  reasoning: boolean | ((call: CallName) => boolean);
  /** Stream: `usage` = the response's usage; `estimate` = the package's own count; `none`. */
  streamUsage: 'usage' | 'estimate' | 'none';
  /** The row's `Stream` for the streamed call. */
  streamFlag: boolean;
  /** The stream's time to first chunk is recorded. */
  timeToFirstChunk: boolean;
  /** Response ids are recorded. */
  responseId: boolean;
  /** A failed call: its row's ErrorType, or `none` (the package exports no span for it). */
  error: string | 'none' | 'not-called';
}

const SOURCES: Record<string, Source> = {
  openinference: {
    callSpan: /^OpenAI Chat Completions$/,
    cacheRead: true,
    reasoning: true,
    streamUsage: 'none',
    streamFlag: true,
    timeToFirstChunk: false,
    responseId: false,
    error: 'none',
  },
  traceloop: {
    callSpan: /^chat /,
    cacheRead: false,
    reasoning: false,
    streamUsage: 'estimate',
    streamFlag: false,
    timeToFirstChunk: false,
    responseId: true,
    error: 'not-called',
  },
  contrib: {
    callSpan: /^chat /,
    cacheRead: false,
    reasoning: false,
    streamUsage: 'usage',
    streamFlag: false,
    timeToFirstChunk: false,
    responseId: true,
    error: 'InternalServerError',
  },
  'ai-sdk-legacy': {
    callSpan: /\.do(Generate|Stream)$/,
    cacheRead: true,
    reasoning: true,
    streamUsage: 'usage',
    streamFlag: true,
    timeToFirstChunk: true,
    responseId: true,
    error: 'AI_APICallError',
  },
  'ai-sdk-otel': {
    callSpan: /^chat /,
    cacheRead: true,
    reasoning: false,
    streamUsage: 'usage',
    streamFlag: true,
    timeToFirstChunk: true,
    responseId: true,
    error: 'AI_APICallError',
  },
  'ai-sdk-5': {
    callSpan: /\.do(Generate|Stream)$/,
    // ai 5 records only promptTokens / completionTokens on doGenerate; doStream has the details.
    cacheRead: (call) => call === 'stream',
    reasoning: (call) => call === 'stream',
    streamUsage: 'usage',
    streamFlag: true,
    timeToFirstChunk: true,
    responseId: true,
    error: 'AI_APICallError',
  },
};

const REQUEST_MODELS: Record<CallName, string> = {
  prime: 'gpt-4o',
  cached: 'gpt-4o',
  reasoning: 'o3-mini',
  stream: 'gpt-4o-mini',
};

let sim: LlmSim;
let collector: RunningCollector;
let dataDir: string;
const outputs = new Map<string, AppOutput>();

const sql = (query: string) => sqlRows(collector.url, query);

const COLUMNS = `ServiceName, Provider, Operation, RequestModel, ResponseModel, Model, ResponseId,
  toUInt32(InputTokens) AS InputTokens, toUInt32(OutputTokens) AS OutputTokens,
  toUInt32(CacheReadTokens) AS CacheReadTokens, toUInt32(CacheWriteTokens) AS CacheWriteTokens,
  toUInt32(ReasoningTokens) AS ReasoningTokens, CostUSD, CostSource, PricingModel, StatusCode,
  ErrorType, FinishReasons, Stream, Task, Feature, UserId, ConversationId, RoutePolicy, RouteReason,
  DurationMs, TimeToFirstChunkMs, TraceId, SpanId`;

async function rowsOf(source: string, count: number): Promise<Row[]> {
  const query = `SELECT ${COLUMNS} FROM modelmaxx.llm_calls WHERE ServiceName = '${source}-app' ORDER BY Timestamp`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const rows = await sql(query);
    if (rows.length >= count || Date.now() > deadline) return rows;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const has = (flag: boolean | ((call: CallName) => boolean), call: CallName) =>
  typeof flag === 'function' ? flag(call) : flag;

/** A foreign instrumentation's call carries no modelmaxx app context and no route. */
const NO_APP_CONTEXT = {
  Task: '',
  Feature: '',
  UserId: '',
  ConversationId: '',
  RoutePolicy: '',
  RouteReason: '',
};

const ANY_IDS = {
  TraceId: expect.stringMatching(/^[0-9a-f]{32}$/),
  SpanId: expect.stringMatching(/^[0-9a-f]{16}$/),
};

function expectedRow(source: string, spec: Source, output: AppOutput, call: CallName): Row {
  const seen = output.calls[call];
  const isStream = call === 'stream';
  let usage: Required<TokenUsage> | undefined;
  if (!isStream || spec.streamUsage === 'usage') {
    if (seen.usage === null) throw new Error(`${source}: the app saw no usage for ${call}`);
    usage = {
      inputTokens: seen.usage.input,
      outputTokens: seen.usage.output,
      cacheReadTokens: has(spec.cacheRead, call) ? seen.usage.cacheRead : 0,
      cacheWriteTokens: 0,
      reasoningTokens: has(spec.reasoning, call) ? seen.usage.reasoning : 0,
    };
  } else if (spec.streamUsage === 'estimate') {
    // The package's own token count (tiktoken), as its span says.
    const span = output.spans.find((item) => item.name === 'chat gpt-4o-mini');
    usage = {
      inputTokens: Number(span?.attributes['gen_ai.usage.input_tokens']),
      outputTokens: Number(span?.attributes['gen_ai.usage.output_tokens']),
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
    };
    expect(usage.inputTokens, `${source} stream estimate`).toBeGreaterThan(0);
  }
  const requestModel = REQUEST_MODELS[call];
  // Without usage the package left llm.model_name at the request model and recorded no response.
  const responseModel = usage === undefined ? '' : seen.model;
  const cost =
    usage === undefined
      ? undefined
      : costOf({ provider: 'openai', model: responseModel || requestModel, usage });
  if (cost !== undefined && !cost.known) throw new Error(cost.reason);
  return {
    ServiceName: `${source}-app`,
    Provider: 'openai',
    Operation: 'chat',
    RequestModel: requestModel,
    ResponseModel: responseModel,
    Model: requestModel,
    ResponseId: spec.responseId ? seen.id : '',
    InputTokens: usage?.inputTokens ?? 0,
    OutputTokens: usage?.outputTokens ?? 0,
    CacheReadTokens: usage?.cacheReadTokens ?? 0,
    CacheWriteTokens: 0,
    ReasoningTokens: usage?.reasoningTokens ?? 0,
    CostUSD: cost?.known ? expect.closeTo(cost.amount, 15) : null,
    CostSource: cost?.known ? 'catalog' : 'unknown',
    PricingModel: cost?.known ? cost.model : '',
    StatusCode: expect.stringMatching(/^(Unset|Ok)$/),
    ErrorType: '',
    FinishReasons: [seen.finishReason],
    Stream: isStream && spec.streamFlag,
    ...NO_APP_CONTEXT,
    DurationMs: expect.any(Number),
    TimeToFirstChunkMs: isStream && spec.timeToFirstChunk ? expect.any(Number) : null,
    ...ANY_IDS,
  };
}

function errorRow(source: string, errorType: string): Row {
  const cost = costOf({ provider: 'openai', model: 'gpt-4o', usage: {} });
  return {
    ServiceName: `${source}-app`,
    Provider: 'openai',
    Operation: 'chat',
    RequestModel: 'gpt-4o',
    ResponseModel: '',
    Model: 'gpt-4o',
    ResponseId: '',
    InputTokens: 0,
    OutputTokens: 0,
    CacheReadTokens: 0,
    CacheWriteTokens: 0,
    ReasoningTokens: 0,
    // A failed call is priced at its usage (none): $0 from the catalog, not unpriced.
    CostUSD: cost.known ? cost.amount : null,
    CostSource: 'catalog',
    PricingModel: 'gpt-4o',
    StatusCode: 'Error',
    ErrorType: errorType,
    FinishReasons: [],
    Stream: false,
    ...NO_APP_CONTEXT,
    DurationMs: expect.any(Number),
    TimeToFirstChunkMs: null,
    ...ANY_IDS,
  };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-foreign-'));
  sim = await startLlmSim({ seed: 11, latencyScale: 0 });
  collector = await startCollector({ config: { port: 0, dataDir } });
  // One app after the other: each is a separate process with its own SDK and instrumentation.
  for (const source of Object.keys(SOURCES)) {
    const run = await runFixture('foreign-app.mjs', {
      env: {
        FOREIGN_SOURCE: source,
        OPENAI_BASE_URL: sim.openaiBaseURL,
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      },
      timeoutMs: 90_000,
    });
    expect({ source, code: run.code, stderr: run.stderr }).toEqual({ source, code: 0, stderr: '' });
    outputs.set(source, JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as AppOutput);
  }
}, 600_000);

afterAll(async () => {
  await collector?.close();
  await sim?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

describe.each(Object.entries(SOURCES))('%s', (source, spec) => {
  it('becomes one priced llm_calls row per provider call, compared whole', async () => {
    const output = outputs.get(source);
    expect(output, `${source} ran`).toBeDefined();
    if (output === undefined) return;
    const calls: CallName[] = ['prime', 'cached', 'reasoning', 'stream'];
    const expected = calls.map((call) => expectedRow(source, spec, output, call));
    if (spec.error !== 'none' && spec.error !== 'not-called') {
      expect(output.calls.error?.status).toBe(500);
      expected.push(errorRow(source, spec.error));
    }
    if (spec.error === 'none') expect(output.calls.error?.status).toBe(500);
    const rows = await rowsOf(source, expected.length);
    expect(rows).toEqual(expected);
    // The rows are exactly the provider-call spans: no wrapper span became a row.
    const callSpans = output.spans.filter((span) => spec.callSpan.test(span.name));
    expect(callSpans.length).toBe(expected.length);
    expect(new Set(rows.map((row) => row.SpanId))).toEqual(
      new Set(callSpans.map((span) => span.spanId)),
    );
    // The cached call read the cache (so a source that records it is checked on a real count).
    expect(output.calls.cached.usage?.cacheRead).toBeGreaterThan(1000);
  });
});

describe('modelmaxx report --by model', () => {
  it('counts answers from gpt-4o-2024-08-06 and failed gpt-4o calls under one model, gpt-4o', async () => {
    const rows = await sql(reportSql({ by: 'model', sinceSeconds: 3600 }));
    const byModel = new Map(rows.map((row) => [String(row['model']), row]));
    expect([...byModel.keys()].sort()).toEqual(['gpt-4o', 'gpt-4o-mini', 'o3-mini']);
    const sources = Object.values(SOURCES);
    const failed = sources.filter((spec) => !['none', 'not-called'].includes(spec.error)).length;
    const gpt4o = 2 * sources.length + failed;
    expect(byModel.get('gpt-4o')).toMatchObject({
      calls: gpt4o,
      error_rate: Math.round((failed / gpt4o) * 10_000) / 10_000,
    });
    expect(byModel.get('o3-mini')).toMatchObject({ calls: sources.length, error_rate: 0 });
  });
});
