/**
 * Feedback that cannot land on the wrong call, and quality figures that do not mislead, against
 * a running collector on the embedded ClickHouse: `POST /v1/feedback` answers 404 for an unknown
 * response id and 409 for one two services share (unless `service`, or the trace and span,
 * say which call is meant); `/api/stats` and the dashboard give the checks' pass rate, the error
 * rate, judge and feedback scores as separate figures.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatsResponseSchema } from '@modelmaxx/semconv/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '../src/index.js';
import { otlpAttributes } from '../../test/support/otlp-json.js';

const INGEST = 'ingest-fb';
const READ = 'read-fb';

let collector: RunningCollector;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-feedback-scoping-'));
  collector = await startCollector({
    config: { port: 0, dataDir, ingestToken: INGEST, readToken: READ },
  });
});

afterAll(async () => {
  await collector?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const nanos = (ms: number) => String(BigInt(Math.round(ms)) * 1_000_000n);

type Value = string | number;

interface SpanSpec {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: Record<string, Value>;
  events?: Record<string, Value>[];
  error?: boolean;
}

/** One OTLP/JSON export of one service, as the instrumentation sends it. */
async function send(service: string, spans: SpanSpec[]): Promise<void> {
  const now = Date.now();
  const body = {
    resourceSpans: [
      {
        resource: { attributes: otlpAttributes({ 'service.name': service }) },
        scopeSpans: [
          {
            scope: { name: '@modelmaxx/instrument' },
            spans: spans.map((span) => ({
              traceId: span.traceId,
              spanId: span.spanId,
              ...(span.parentSpanId === undefined ? {} : { parentSpanId: span.parentSpanId }),
              name: span.name,
              kind: span.name.startsWith('chat') ? 3 : 1,
              startTimeUnixNano: nanos(now - 20),
              endTimeUnixNano: nanos(now),
              attributes: otlpAttributes(span.attributes),
              events: (span.events ?? []).map((event) => ({
                timeUnixNano: nanos(now),
                name: 'gen_ai.evaluation.result',
                attributes: otlpAttributes(event),
              })),
              status: span.error ? { code: 2, message: 'rate limited' } : { code: 1 },
            })),
          },
        ],
      },
    ],
  };
  const response = await fetch(`${collector.url}/v1/traces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INGEST}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
}

function chat(
  responseId: string,
  extra: Record<string, Value> = {},
  events: Record<string, Value>[] = [],
): SpanSpec {
  return {
    traceId: hex(16),
    spanId: hex(8),
    name: 'chat gpt-4o-mini',
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.id': responseId,
      'gen_ai.usage.input_tokens': 100,
      'gen_ai.usage.output_tokens': 20,
      ...extra,
    },
    events,
  };
}

const check = (name: string, passed: boolean) => ({
  'gen_ai.evaluation.name': name,
  'gen_ai.evaluation.score.value': passed ? 1 : 0,
  'gen_ai.evaluation.score.label': passed ? 'pass' : 'fail',
});

/** The judge's result span, as `judge()` emits it: a child of the judged call. */
function judgeResult(call: SpanSpec, score: number | undefined): SpanSpec {
  const result: Record<string, Value> = {
    'gen_ai.evaluation.name': 'modelmaxx.judge',
    'modelmaxx.evaluation.source': 'judge',
    'gen_ai.response.id': String(call.attributes['gen_ai.response.id']),
  };
  if (score === undefined) {
    result['gen_ai.evaluation.score.label'] = 'judge_error';
    result['gen_ai.evaluation.explanation'] = 'judge reply is no verdict: not JSON';
  } else {
    result['gen_ai.evaluation.score.value'] = score;
  }
  // The span carries the result; its event also names the scored call (model, provider).
  return {
    traceId: call.traceId,
    spanId: hex(8),
    parentSpanId: call.spanId,
    name: 'evaluate modelmaxx.judge',
    attributes: result,
    events: [
      { ...result, 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.provider.name': 'openai' },
    ],
  };
}

async function sql(query: string): Promise<Record<string, unknown>[]> {
  const response = await fetch(`${collector.url}/api/sql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${READ}`, 'content-type': 'application/json' },
    body: JSON.stringify({ sql: query }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { rows: Record<string, unknown>[] }).rows;
}

async function waitForRows(query: string, count: number): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const rows = await sql(query);
    if (rows.length >= count || Date.now() > deadline) return rows;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function postFeedback(body: Record<string, unknown>) {
  const response = await fetch(`${collector.url}/v1/feedback`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INGEST}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('POST /v1/feedback scoping', () => {
  it('404 for a response id no stored call has, unless the trace and span are named', async () => {
    const unknown = await postFeedback({
      responseId: 'chatcmpl-nowhere',
      name: 'thumbs',
      score: 1,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatch(
      /^no LLM call with response id "chatcmpl-nowhere"; feedback was not stored \(give traceId and spanId/,
    );
    const traceId = hex(16);
    const spanId = hex(8);
    const named = await postFeedback({
      responseId: 'chatcmpl-nowhere',
      traceId,
      spanId,
      name: 'thumbs',
      score: 1,
    });
    expect(named.status).toBe(200);
    const rows = await waitForRows(
      `SELECT TraceId, SpanId, ResponseId FROM modelmaxx.llm_scores WHERE ResponseId = 'chatcmpl-nowhere'`,
      1,
    );
    // Only the named one was stored.
    expect(rows).toEqual([{ TraceId: traceId, SpanId: spanId, ResponseId: 'chatcmpl-nowhere' }]);
  });

  it('two services with the same response id never get each other’s feedback', async () => {
    const responseId = `chatcmpl-dup-${hex(4)}`;
    const shop = chat(responseId);
    const search = chat(responseId);
    await send('shop', [shop]);
    await send('search', [search]);
    await waitForRows(
      `SELECT SpanId FROM modelmaxx.llm_calls WHERE ResponseId = '${responseId}'`,
      2,
    );
    // Before: stored against the newest call with the id, whichever service it was.
    const ambiguous = await postFeedback({ responseId, name: 'thumbs', score: 1 });
    expect(ambiguous.status).toBe(409);
    expect(ambiguous.body.error).toBe(
      `response id "${responseId}" names 2 LLM calls (services: search, shop); feedback was not stored: give service, or traceId and spanId`,
    );
    const toShop = await postFeedback({ responseId, service: 'shop', name: 'thumbs', score: 0 });
    expect(toShop.status).toBe(200);
    const toSearch = await postFeedback({
      traceId: search.traceId,
      spanId: search.spanId,
      name: 'thumbs',
      score: 1,
    });
    expect(toSearch.status).toBe(200);
    const elsewhere = await postFeedback({
      responseId,
      service: 'billing',
      name: 'thumbs',
      score: 1,
    });
    expect(elsewhere.status).toBe(404);
    expect(elsewhere.body.error).toMatch(/in service "billing"/);
    const rows = await waitForRows(
      `SELECT ServiceName, SpanId, Score FROM modelmaxx.llm_scores
       WHERE Name = 'thumbs' AND SpanId IN ('${shop.spanId}', '${search.spanId}')
       ORDER BY ServiceName`,
      2,
    );
    expect(rows).toEqual([
      { ServiceName: 'search', SpanId: search.spanId, Score: 1 },
      { ServiceName: 'shop', SpanId: shop.spanId, Score: 0 },
    ]);
  });
});

describe('quality figures', () => {
  it('/api/stats and the dashboard give checks, errors, judge and feedback scores apart', async () => {
    const service = 'quality-figures';
    const checks = (passed: boolean) => [
      check('modelmaxx.finish_length', passed),
      check('modelmaxx.empty_output', true),
      check('modelmaxx.refusal', true),
    ];
    const calls = [
      chat(`q-1-${hex(4)}`, {}, checks(true)),
      chat(`q-2-${hex(4)}`, {}, checks(true)),
      chat(`q-3-${hex(4)}`, {}, checks(true)),
      chat(`q-4-${hex(4)}`, {}, checks(false)),
    ];
    const failed: SpanSpec = { ...chat(`q-5-${hex(4)}`), error: true };
    // The judge's own call: evaluation work, with its cost.
    const judgeCall: SpanSpec = {
      ...chat(`q-judge-${hex(4)}`, {
        'modelmaxx.evaluation.role': 'judge',
        'modelmaxx.evaluation.target.span_id': calls[0]!.spanId,
        'gen_ai.usage.cost.amount': 0.25,
        'gen_ai.usage.cost.currency': 'USD',
      }),
    };
    await send(service, [
      ...calls,
      failed,
      judgeResult(calls[0]!, 1),
      judgeResult(calls[1]!, 0.5),
      judgeResult(calls[2]!, undefined),
    ]);
    await send(`${service}-judge`, [judgeCall]);
    await waitForRows(
      `SELECT SpanId FROM modelmaxx.llm_scores WHERE ServiceName = '${service}' AND Source = 'judge'`,
      3,
    );
    await waitForRows(
      `SELECT SpanId FROM modelmaxx.llm_calls WHERE ServiceName LIKE '${service}%'`,
      6,
    );
    const fb = await postFeedback({
      responseId: calls[3]!.attributes['gen_ai.response.id'],
      name: 'thumbs',
      score: 0,
    });
    expect(fb.status).toBe(200);

    let row: Record<string, unknown> | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const response = await fetch(
        `${collector.url}/api/stats?window=1h&service=${service}&quality=true`,
        {
          headers: { authorization: `Bearer ${READ}` },
        },
      );
      expect(response.status).toBe(200);
      const stats = StatsResponseSchema.parse(await response.json());
      row = stats.rows[0];
      if (row?.['calls'] === 5 && row['feedbackCount'] === 1 && row['judgeCount'] === 2) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(row).toMatchObject({
      model: 'gpt-4o-mini',
      calls: 5,
      errors: 1,
      errorRate: 0.2,
      // Four calls had checks; one failed its finish-length check.
      evaluatedCalls: 4,
      passRate: 0.75,
      // The judge error is no score.
      judgeScore: 0.75,
      judgeCount: 2,
      feedbackScore: 0,
      feedbackCount: 1,
    });
    // The mean of every score is what it was: checks, judge and feedback all in one.
    expect(row?.['scoreCount']).toBe(12 + 2 + 1);

    const overview = await fetch(`${collector.url}/api/dashboard/overview?minutes=60`, {
      headers: { authorization: `Bearer ${READ}` },
    });
    expect(overview.status).toBe(200);
    const totals = ((await overview.json()) as { totals: Record<string, unknown> }).totals;
    expect(totals).toMatchObject({
      evaluatedCalls: 4,
      passRate: 0.75,
      judgeScore: 0.75,
      judgeCount: 2,
    });
    // The judge's call is evaluation spend, apart from the app's.
    expect(totals).toMatchObject({ evaluationCalls: 1, evaluationUsd: 0.25 });
    // Feedback in this file: the shop call's (0), search's (1), and this one (0).
    expect(totals['feedbackCount']).toBe(3);
    expect(totals['feedbackScore']).toBeCloseTo(1 / 3, 12);

    // /api/stats counts only the app's calls (before: the judge's too, under its service).
    const judgeStats = await fetch(
      `${collector.url}/api/stats?window=1h&service=${service}-judge&quality=false`,
      { headers: { authorization: `Bearer ${READ}` } },
    );
    expect(((await judgeStats.json()) as { rows: unknown[] }).rows).toEqual([]);
    const purposes = await sql(
      `SELECT Purpose, round(sum(CostUSD), 6) AS usd FROM modelmaxx.llm_calls
       WHERE ServiceName LIKE '${service}%' GROUP BY Purpose ORDER BY Purpose`,
    );
    expect(purposes[1]).toEqual({ Purpose: 'evaluation', usd: 0.25 });
    expect(purposes[0]?.['Purpose']).toBe('app');
    // The same through the span attribute (what the column is made from).
    const spend = await sql(
      `SELECT
         sumIf(CostUSD, (TraceId, SpanId) IN (SELECT TraceId, SpanId FROM modelmaxx.otel_traces WHERE SpanAttributes['modelmaxx.evaluation.role'] != '')) AS evaluationUsd,
         sumIf(CostUSD, (TraceId, SpanId) NOT IN (SELECT TraceId, SpanId FROM modelmaxx.otel_traces WHERE SpanAttributes['modelmaxx.evaluation.role'] != '')) AS appUsd
       FROM modelmaxx.llm_calls WHERE ServiceName LIKE '${service}%'`,
    );
    expect(spend[0]?.['evaluationUsd']).toBe(0.25);
    expect(spend[0]?.['appUsd']).toBeGreaterThan(0);
    expect(spend[0]?.['appUsd']).toBeLessThan(0.01);
  }, 90_000);
});
