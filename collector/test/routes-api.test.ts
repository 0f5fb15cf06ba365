/**
 * `/v1/feedback`, `/api/stats`, `/api/sql`, `/healthz` and `/metrics` against a
 * running collector on the embedded ClickHouse, with both tokens set.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatsResponseSchema } from '@modelmaxx/semconv/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '../src/index.js';
import { recordSpans, toProtobuf } from './support/otlp-fixtures.js';

const INGEST = 'ingest-api';
const READ = 'read-api';

let collector: RunningCollector;
let dataDir: string;
/** Spans this file sent to /v1/traces, for the /metrics check. */
let spansSent = 0;
let traceRequests = 0;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-routes-api-'));
  collector = await startCollector({
    config: { port: 0, dataDir, ingestToken: INGEST, readToken: READ, sqlMaxRows: 50 },
  });
});

afterAll(async () => {
  await collector?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const authorized = (token: string, headers: Record<string, string> = {}) => ({
  authorization: `Bearer ${token}`,
  ...headers,
});

async function sendSpans(): Promise<Awaited<ReturnType<typeof recordSpans>>> {
  const spans = await recordSpans();
  const response = await fetch(`${collector.url}/v1/traces`, {
    method: 'POST',
    headers: authorized(INGEST, { 'content-type': 'application/x-protobuf' }),
    body: toProtobuf(spans),
  });
  expect(response.status).toBe(200);
  spansSent += spans.length;
  traceRequests += 1;
  return spans;
}

async function sql(body: unknown, token = READ) {
  const response = await fetch(`${collector.url}/api/sql`, {
    method: 'POST',
    headers: authorized(token, { 'content-type': 'application/json' }),
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function waitForRows(query: string, count: number): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const result = await sql({ sql: query });
    expect(result.status).toBe(200);
    const rows = result.body.rows as Record<string, unknown>[];
    if (rows.length >= count || Date.now() > deadline) return rows;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('/healthz and unknown routes', () => {
  it('answers /healthz without a token', async () => {
    const response = await fetch(`${collector.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz when ClickHouse answers', async () => {
    const response = await fetch(`${collector.url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
  });

  it('answers 404 with a JSON error for unknown routes', async () => {
    const response = await fetch(`${collector.url}/nope`);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: 'no route for GET /nope' });
  });
});

describe('POST /api/sql', () => {
  it('runs a SELECT and returns columns and rows', async () => {
    const result = await sql({ sql: 'SELECT 1 AS one, toString(2) AS two' });
    expect(result).toEqual({
      status: 200,
      body: {
        columns: [
          { name: 'one', type: 'UInt8' },
          { name: 'two', type: 'String' },
        ],
        rows: [{ one: 1, two: '2' }],
        truncated: false,
      },
    });
  });

  it('takes the query as text/plain too', async () => {
    const response = await fetch(`${collector.url}/api/sql`, {
      method: 'POST',
      headers: authorized(READ, { 'content-type': 'text/plain' }),
      body: 'SELECT 40 + 2 AS answer',
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { rows: unknown[] }).rows).toEqual([{ answer: 42 }]);
  });

  it('cuts results at the row limit (the smaller of the config and the request)', async () => {
    const configured = await sql({ sql: 'SELECT number FROM system.numbers LIMIT 500' });
    expect(configured.status).toBe(200);
    expect(configured.body.truncated).toBe(true);
    expect(configured.body.rows).toHaveLength(50);
    const requested = await sql({ sql: 'SELECT number FROM numbers(100)', maxRows: 7 });
    expect(requested.body.truncated).toBe(true);
    expect(requested.body.rows).toHaveLength(7);
  });

  it('refuses writes and bad SQL with 400 and ClickHouse’s message', async () => {
    const insert = await sql({ sql: 'INSERT INTO modelmaxx.otel_traces (TraceId) VALUES (1)' });
    expect(insert.status).toBe(400);
    expect(insert.body.error).toMatch(/only SELECT, DESCRIBE, SHOW and EXISTS/);
    const drop = await sql({ sql: 'DROP TABLE modelmaxx.otel_traces' });
    expect(drop.status).toBe(400);
    const syntax = await sql({ sql: 'SELECT (1 + FROM' });
    expect(syntax.status).toBe(400);
    expect(syntax.body.error).toMatch(/Syntax error/i);
    const unknownTable = await sql({ sql: 'SELECT * FROM modelmaxx.no_such_table' });
    expect(unknownTable.status).toBe(400);
    expect(unknownTable.body.error).toMatch(/no_such_table/);
  });

  it('answers DESCRIBE, SHOW and EXISTS read-only, and refuses INTO OUTFILE', async () => {
    const describe = await sql({ sql: 'DESCRIBE TABLE llm_calls' });
    expect(describe.status).toBe(200);
    expect((describe.body.rows as { name: string }[]).map((row) => row.name)).toEqual(
      expect.arrayContaining(['TraceId', 'CostUSD']),
    );
    const tables = await sql({ sql: 'SHOW TABLES' });
    expect(tables.status).toBe(200);
    expect((tables.body.rows as { name: string }[]).map((row) => row.name)).toContain(
      'otel_traces',
    );
    const create = await sql({ sql: 'SHOW CREATE TABLE otel_traces' });
    expect(String((create.body.rows as { statement: string }[])[0]?.statement)).toMatch(
      /^CREATE TABLE modelmaxx\.otel_traces/,
    );
    const databases = await sql({ sql: 'SHOW DATABASES' });
    expect((databases.body.rows as { name: string }[]).map((row) => row.name)).toContain(
      'modelmaxx',
    );
    expect((await sql({ sql: 'EXISTS TABLE llm_scores' })).body.rows).toEqual([{ result: 1 }]);
    const outfile = await sql({ sql: `SHOW TABLES INTO OUTFILE '${join(dataDir, 'tables.txt')}'` });
    expect(outfile.status).toBe(400);
    expect(outfile.body.error).toMatch(/INTO OUTFILE/);
  });

  it('400 without a query, 415 for other types, 401 without the read token', async () => {
    expect(await sql({})).toEqual({
      status: 400,
      body: { error: 'invalid SQL request: sql: give the query as "sql"' },
    });
    const form = await fetch(`${collector.url}/api/sql`, {
      method: 'POST',
      headers: authorized(READ, { 'content-type': 'application/x-www-form-urlencoded' }),
      body: 'sql=SELECT+1',
    });
    expect(form.status).toBe(415);
    expect((await sql({ sql: 'SELECT 1' }, INGEST)).status).toBe(401);
    const none = await fetch(`${collector.url}/api/sql`, { method: 'POST' });
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({
      error: 'missing bearer token (Authorization: Bearer <read token>)',
    });
  });
});

describe('POST /v1/feedback', () => {
  it('stores a score linked to its span by gen_ai.response.id', async () => {
    const spans = await sendSpans();
    const root = spans.find((span) => span.name === 'chat gpt-4o-mini')!;
    const responseId = 'chatcmpl-feedback-1';
    // The fixture's span carries its response id on an event; send one whose
    // span attributes say it, as the instrumentation does.
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'fb' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: root.spanContext().traceId,
                  spanId: 'feedbac0feedbac0',
                  name: 'chat gpt-4o-mini',
                  kind: 3,
                  startTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n),
                  endTimeUnixNano: String(BigInt(Date.now() + 5) * 1_000_000n),
                  attributes: [
                    { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
                    { key: 'gen_ai.request.model', value: { stringValue: 'gpt-4o-mini' } },
                    { key: 'gen_ai.response.id', value: { stringValue: responseId } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    };
    const traces = await fetch(`${collector.url}/v1/traces`, {
      method: 'POST',
      headers: authorized(INGEST, { 'content-type': 'application/json' }),
      body: JSON.stringify(body),
    });
    expect(traces.status).toBe(200);
    spansSent += 1;
    traceRequests += 1;
    await waitForRows(
      `SELECT SpanId FROM modelmaxx.otel_traces WHERE SpanId = 'feedbac0feedbac0'`,
      1,
    );
    const response = await fetch(`${collector.url}/v1/feedback`, {
      method: 'POST',
      headers: authorized(INGEST, { 'content-type': 'application/json' }),
      body: JSON.stringify({ responseId, name: 'thumbs', score: 1, label: 'up', comment: 'great' }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
    const rows = await waitForRows(
      `SELECT TraceId, SpanId, ResponseId, Name, Score, Label, Explanation, Source
       FROM modelmaxx.llm_scores WHERE ResponseId = '${responseId}'`,
      1,
    );
    expect(rows).toEqual([
      {
        TraceId: root.spanContext().traceId,
        SpanId: 'feedbac0feedbac0',
        ResponseId: responseId,
        Name: 'thumbs',
        Score: 1,
        Label: 'up',
        Explanation: 'great',
        Source: 'feedback',
      },
    ]);
  });

  it('400 saying what is wrong with an invalid score, 401 without the ingest token', async () => {
    const invalid = await fetch(`${collector.url}/v1/feedback`, {
      method: 'POST',
      headers: authorized(INGEST, { 'content-type': 'application/json' }),
      body: JSON.stringify({ name: 'thumbs', score: 'high' }),
    });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: string }).error).toMatch(
      /^invalid feedback: score: .*expected number/i,
    );
    const unauthorized = await fetch(`${collector.url}/v1/feedback`, {
      method: 'POST',
      headers: authorized(READ, { 'content-type': 'application/json' }),
      body: JSON.stringify({ responseId: 'x', name: 'thumbs', score: 1 }),
    });
    expect(unauthorized.status).toBe(401);
  });

  it('stores a lone surrogate in a text field as U+FFFD (before: a 500 from the insert)', async () => {
    const traceId = 'feedbac1feedbac1feedbac1feedbac1';
    // JSON's \ud800 escape parses to a string no UTF-8 encoder can write.
    const body = `{"traceId":"${traceId}","name":"lone\\ud800","score":0.5,"label":"\\udfffL","comment":"a\\ud800b \\ud83d\\ude00"}`;
    expect(JSON.parse(body)).toMatchObject({ comment: 'a\ud800b \u{1f600}' });
    const response = await fetch(`${collector.url}/v1/feedback`, {
      method: 'POST',
      headers: authorized(INGEST, { 'content-type': 'application/json' }),
      body,
    });
    expect(response.status).toBe(200);
    const rows = await waitForRows(
      `SELECT Name, Label, Explanation, hex(Explanation) AS Hex FROM modelmaxx.llm_scores
       WHERE TraceId = '${traceId}'`,
      1,
    );
    expect(rows).toEqual([
      {
        Name: 'lone\uFFFD',
        Label: '\uFFFDL',
        Explanation: 'a\uFFFDb \u{1f600}',
        // U+FFFD is EF BF BD; the surrogate pair (a real emoji) is kept.
        Hex: '61EFBFBD6220F09F9880',
      },
    ]);
  });

  it('400 for a timestamp outside what DateTime64(9) holds (before: a 500 from the insert)', async () => {
    for (const timestamp of [
      '0001-01-01T00:00:00Z',
      '9999-12-31T00:00:00Z',
      '1969-12-31T23:59:59Z',
    ]) {
      const response = await fetch(`${collector.url}/v1/feedback`, {
        method: 'POST',
        headers: authorized(INGEST, { 'content-type': 'application/json' }),
        body: JSON.stringify({ responseId: 'x', name: 'thumbs', score: 1, timestamp }),
      });
      expect(response.status, timestamp).toBe(400);
      expect(((await response.json()) as { error: string }).error, timestamp).toMatch(
        /timestamp must be between 1970-01-01 and 2262-04-11/,
      );
    }
  });
});

describe('GET /api/stats', () => {
  it('answers the shared StatsResponse schema with the calls just sent', async () => {
    await sendSpans();
    const deadline = Date.now() + 30_000;
    let stats;
    for (;;) {
      const response = await fetch(`${collector.url}/api/stats?window=1h&groupBy=model,service`, {
        headers: authorized(READ),
      });
      expect(response.status).toBe(200);
      stats = StatsResponseSchema.parse(await response.json());
      if (stats.rows.some((row) => row.model === 'gpt-4o-mini') || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(stats.groupBy).toEqual(['model', 'service']);
    const row = stats.rows.find((candidate) => candidate.model === 'gpt-4o-mini');
    expect(row).toBeDefined();
    expect(row!.calls).toBeGreaterThanOrEqual(1);
  });

  it('400 for a bad window or group key, 401 without the read token', async () => {
    const badWindow = await fetch(`${collector.url}/api/stats?window=soon`, {
      headers: authorized(READ),
    });
    expect(badWindow.status).toBe(400);
    expect(((await badWindow.json()) as { error: string }).error).toBe(
      'invalid stats query: window: window is a number followed by s, m, h or d, e.g. 1h',
    );
    const badGroup = await fetch(`${collector.url}/api/stats?groupBy=color`, {
      headers: authorized(READ),
    });
    expect(badGroup.status).toBe(400);
    expect(((await badGroup.json()) as { error: string }).error).toMatch(
      /unknown group key "color"/,
    );
    const unauthorized = await fetch(`${collector.url}/api/stats`);
    expect(unauthorized.status).toBe(401);
  });
});

describe('Jaeger query API (mounted behind the read token)', () => {
  it('lists the services that sent spans, and needs the read token', async () => {
    await sendSpans();
    const unauthorized = await fetch(`${collector.url}/api/services`);
    expect(unauthorized.status).toBe(401);
    const deadline = Date.now() + 30_000;
    let body: { data: string[] } = { data: [] };
    while (!body.data.includes('checkout') && Date.now() < deadline) {
      const response = await fetch(`${collector.url}/api/services`, { headers: authorized(READ) });
      expect(response.status).toBe(200);
      body = (await response.json()) as { data: string[] };
      if (!body.data.includes('checkout')) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(body.data).toContain('checkout');
  });
});

describe('GET /metrics', () => {
  it('exposes Prometheus counters that follow what was received', async () => {
    await sendSpans();
    const unauthorized = await fetch(`${collector.url}/metrics`);
    expect(unauthorized.status).toBe(401);
    const response = await fetch(`${collector.url}/metrics`, { headers: authorized(READ) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    for (const name of [
      'modelmaxx_spans_received_total',
      'modelmaxx_spans_rejected_total',
      'modelmaxx_spans_stored_total',
      'modelmaxx_spans_spooled_total',
    ]) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} counter`);
    }
    expect(text).toContain('# TYPE modelmaxx_batch_duration_seconds summary');
    expect(text).toContain(`\nmodelmaxx_spans_received_total ${spansSent}\n`);
    expect(text).toContain(`\nmodelmaxx_spans_accepted_total ${spansSent}\n`);
    expect(text).toContain(`\nmodelmaxx_spans_rejected_total 0\n`);
    expect(text).toContain(
      `\nmodelmaxx_http_requests_total{route="/v1/traces",code="200"} ${traceRequests}\n`,
    );
    expect(text).toContain(`\nmodelmaxx_ingest_write_duration_seconds_count ${traceRequests}\n`);
    // Every sample line is `name{labels} number`.
    for (const line of text.trim().split('\n')) {
      if (line.startsWith('#')) continue;
      expect(line).toMatch(
        /^[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$|^[a-z_]+(\{[^}]*\})? (NaN|[+-]Inf)$/,
      );
    }
  });
});
