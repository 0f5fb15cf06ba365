/**
 * The Jaeger query APIs (v1 and v3) over a real embedded store: seeded traces
 * with parents, children, links, events, errors and several services, read
 * back in the JSON shapes the Jaeger UI (`src/types/trace.tsx`) and Grafana's
 * Jaeger data source read.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGoDuration, parseTags, normalizeTraceId } from '../src/jaeger/jaeger-query.js';
import { typedTag } from '../src/jaeger/jaeger-model.js';
import { jaegerRouter } from '../src/routes/jaeger.js';
import type { ClickHouseStore } from '../src/store/clickhouse-store.js';
import { openStore } from '../src/store/open-store.js';
import type { SpanRow } from '../src/store/span-store.js';

const TRACE_A = '0af7651916cd43dd8448eb211c80319c';
const TRACE_B = '1bf7651916cd43dd8448eb211c80319d';
const TRACE_C = '2cf7651916cd43dd8448eb211c80319e';
const TRACE_D = '000000000000000000000000000000ad';

/** A whole millisecond ten minutes ago: every seeded span is inside a one-hour lookback. */
const BASE_MS = Math.floor(Date.now() / 1000) * 1000 - 10 * 60_000;
const BASE_US = BASE_MS * 1000;
const ns = (offsetUs: number) => (BigInt(BASE_US + offsetUs) * 1000n).toString();

const noEvents = { Timestamp: [], Name: [], Attributes: [] };
const noLinks = { TraceId: [], SpanId: [], TraceState: [], Attributes: [] };

function row(overrides: Partial<SpanRow> & Pick<SpanRow, 'TraceId' | 'SpanId'>): SpanRow {
  return {
    Timestamp: ns(0),
    ParentSpanId: '',
    TraceState: '',
    SpanName: 'op',
    SpanKind: 'Internal',
    ServiceName: 'shop',
    ResourceAttributes: { 'service.name': 'shop', 'host.name': 'web-1' },
    ScopeName: 'modelmaxx-test',
    ScopeVersion: '1.0.0',
    SpanAttributes: {},
    Duration: '1000000',
    StatusCode: 'Unset',
    StatusMessage: '',
    Events: noEvents,
    Links: noLinks,
    ...overrides,
  };
}

const SPANS: SpanRow[] = [
  // Trace A: shop GET /checkout → route auto → chat gpt-4o-mini (evaluated) ; payments charge (error)
  row({
    TraceId: TRACE_A,
    SpanId: 'a000000000000001',
    SpanName: 'GET /checkout',
    SpanKind: 'Server',
    TraceState: 'vendor=1',
    SpanAttributes: { 'http.request.method': 'GET', 'http.response.status_code': '200' },
    Duration: '250000000',
    StatusCode: 'Ok',
  }),
  row({
    TraceId: TRACE_A,
    SpanId: 'a000000000000002',
    ParentSpanId: 'a000000000000001',
    Timestamp: ns(1000),
    SpanName: 'route auto',
    SpanAttributes: {
      'modelmaxx.route.policy': 'auto',
      'modelmaxx.route.model': 'gpt-4o-mini',
      'modelmaxx.route.weight': '0.75',
      'modelmaxx.route.attempt': '1',
    },
    Duration: '200000000',
  }),
  row({
    TraceId: TRACE_A,
    SpanId: 'a000000000000003',
    ParentSpanId: 'a000000000000002',
    Timestamp: ns(2000),
    SpanName: 'chat gpt-4o-mini',
    SpanKind: 'Client',
    SpanAttributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.request.stream': 'true',
      'gen_ai.response.finish_reasons': '["stop"]',
      'gen_ai.usage.input_tokens': '120',
      'gen_ai.response.id': '00123',
    },
    Duration: '180000000',
    Events: {
      Timestamp: [ns(150_000)],
      Name: ['gen_ai.evaluation.result'],
      Attributes: [
        { 'gen_ai.evaluation.name': 'relevance', 'gen_ai.evaluation.score.value': '0.9' },
      ],
    },
  }),
  row({
    TraceId: TRACE_A,
    SpanId: 'a000000000000004',
    ParentSpanId: 'a000000000000001',
    Timestamp: ns(200_000),
    SpanName: 'charge',
    SpanKind: 'Server',
    ServiceName: 'payments',
    ResourceAttributes: { 'service.name': 'payments', 'service.version': '2.1.0' },
    ScopeName: '',
    ScopeVersion: '',
    SpanAttributes: { 'error.type': 'CardDeclined' },
    Duration: '30000000',
    StatusCode: 'Error',
    StatusMessage: 'card declined',
  }),
  // Trace B: a short health check, 5 minutes later.
  row({
    TraceId: TRACE_B,
    SpanId: 'b000000000000001',
    Timestamp: ns(300_000_000),
    SpanName: 'GET /health',
    SpanKind: 'Server',
    SpanAttributes: { 'http.request.method': 'GET' },
    Duration: '2000000',
  }),
  // Trace C: a worker job linked to trace A, kind unspecified.
  row({
    TraceId: TRACE_C,
    SpanId: 'c000000000000001',
    Timestamp: ns(60_000_000),
    SpanName: 'job',
    SpanKind: 'Unspecified',
    ServiceName: 'worker',
    ResourceAttributes: { 'service.name': 'worker' },
    Duration: '1500000000',
    Links: {
      TraceId: [TRACE_A],
      SpanId: ['a000000000000003'],
      TraceState: [''],
      Attributes: [{}],
    },
  }),
  // Trace D: only a child whose parent never arrived (an orphan), plus its child.
  row({
    TraceId: TRACE_D,
    SpanId: 'd000000000000002',
    ParentSpanId: 'd000000000000001',
    Timestamp: ns(120_000_000),
    SpanName: 'GET /checkout',
    SpanKind: 'Server',
    SpanAttributes: { 'http.request.method': 'POST' },
    Duration: '40000000',
  }),
  row({
    TraceId: TRACE_D,
    SpanId: 'd000000000000003',
    ParentSpanId: 'd000000000000002',
    Timestamp: ns(120_001_000),
    SpanName: 'db query',
    SpanKind: 'Client',
    Duration: '10000000',
    StatusCode: 'Error',
  }),
];

let store: ClickHouseStore;
let dataDir: string;
let server: Server;
let base: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-jaeger-'));
  store = await openStore({ dataDir, spoolDir: false });
  const result = await store.write(SPANS);
  expect(result.status).toBe('ok');
  const app = express();
  app.use(jaegerRouter({ reader: store }));
  server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The rows are inserted once `write` resolves; wait until they are all readable.
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const count = await store.engine.query<{ n: string }>(
      'SELECT count() AS n FROM modelmaxx.otel_traces',
    );
    if (Number(count.data[0]?.n) === SPANS.length) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await store?.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** The parts of the answers the tests look into (whole answers are compared with toEqual). */
interface Answer {
  data:
    | {
        traceID: string;
        spans: { spanID: string; references: unknown; tags: unknown }[];
        processes: unknown;
      }[]
    | null;
  total?: number;
  errors?: { code: number; msg: string }[] | null;
  summaries?: { traceId: string }[];
}

async function get(path: string): Promise<{ status: number; body: Answer }> {
  const response = await fetch(`${base}${path}`);
  return { status: response.status, body: (await response.json()) as Answer };
}

const wrapped = (data: unknown[]) => ({
  data,
  total: data.length,
  limit: 0,
  offset: 0,
  errors: null,
});
const traceIdsOf = (body: Answer) => (body.data ?? []).map((trace) => trace.traceID);

const string = (key: string, value: string) => ({ key, type: 'string', value });

describe('Jaeger v1 API', () => {
  it('lists services and operations', async () => {
    expect(await get('/api/services')).toEqual({
      status: 200,
      body: wrapped(['payments', 'shop', 'worker']),
    });
    expect(await get('/api/services/shop/operations')).toEqual({
      status: 200,
      body: wrapped(['GET /checkout', 'GET /health', 'chat gpt-4o-mini', 'db query', 'route auto']),
    });
    expect(await get('/api/operations?service=shop')).toEqual({
      status: 200,
      body: wrapped([
        { name: 'GET /checkout', spanKind: 'server' },
        { name: 'GET /health', spanKind: 'server' },
        { name: 'chat gpt-4o-mini', spanKind: 'client' },
        { name: 'db query', spanKind: 'client' },
        { name: 'route auto', spanKind: 'internal' },
      ]),
    });
    expect((await get('/api/operations?service=shop&spanKind=client')).body).toEqual(
      wrapped([
        { name: 'chat gpt-4o-mini', spanKind: 'client' },
        { name: 'db query', spanKind: 'client' },
      ]),
    );
    expect((await get('/api/operations?service=worker')).body).toEqual(
      wrapped([{ name: 'job', spanKind: '' }]),
    );
    expect((await get('/api/services/nobody/operations')).body).toEqual(wrapped([]));
    const missing = await get('/api/operations');
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({
      data: null,
      total: 0,
      limit: 0,
      offset: 0,
      errors: [{ code: 400, msg: 'parameter "service" is required' }],
    });
  });

  it('lists service dependencies (parent service → child service)', async () => {
    const endTs = Math.floor(BASE_US / 1000) + 3_600_000;
    expect(await get(`/api/dependencies?endTs=${endTs}&lookback=7200000`)).toEqual({
      status: 200,
      body: wrapped([{ parent: 'shop', child: 'payments', callCount: 1 }]),
    });
    // A window that ends before anything was stored.
    expect(
      (await get(`/api/dependencies?endTs=${Math.floor(BASE_US / 1000) - 1000}&lookback=60000`))
        .body,
    ).toEqual(wrapped([]));
    expect((await get('/api/dependencies?lookback=soon')).status).toBe(400);
  });

  it('returns a whole trace in Jaeger JSON', async () => {
    const { status, body } = await get(`/api/traces/${TRACE_A}`);
    expect(status).toBe(200);
    const shopProcess = {
      serviceName: 'shop',
      tags: [string('host.name', 'web-1')],
    };
    const scope = [
      string('otel.scope.name', 'modelmaxx-test'),
      string('otel.scope.version', '1.0.0'),
    ];
    expect(body).toEqual(
      wrapped([
        {
          traceID: TRACE_A,
          processes: {
            p1: shopProcess,
            p2: { serviceName: 'payments', tags: [string('service.version', '2.1.0')] },
          },
          warnings: null,
          spans: [
            {
              traceID: TRACE_A,
              spanID: 'a000000000000001',
              flags: 1,
              operationName: 'GET /checkout',
              references: [],
              startTime: BASE_US,
              duration: 250_000,
              tags: [
                string('http.request.method', 'GET'),
                { key: 'http.response.status_code', type: 'int64', value: 200 },
                string('span.kind', 'server'),
                string('otel.status_code', 'OK'),
                ...scope,
                string('w3c.tracestate', 'vendor=1'),
              ],
              logs: [],
              processID: 'p1',
              warnings: null,
            },
            {
              traceID: TRACE_A,
              spanID: 'a000000000000002',
              flags: 1,
              operationName: 'route auto',
              references: [{ refType: 'CHILD_OF', traceID: TRACE_A, spanID: 'a000000000000001' }],
              startTime: BASE_US + 1000,
              duration: 200_000,
              tags: [
                { key: 'modelmaxx.route.attempt', type: 'int64', value: 1 },
                string('modelmaxx.route.model', 'gpt-4o-mini'),
                string('modelmaxx.route.policy', 'auto'),
                { key: 'modelmaxx.route.weight', type: 'float64', value: 0.75 },
                string('span.kind', 'internal'),
                ...scope,
              ],
              logs: [],
              processID: 'p1',
              warnings: null,
            },
            {
              traceID: TRACE_A,
              spanID: 'a000000000000003',
              flags: 1,
              operationName: 'chat gpt-4o-mini',
              references: [{ refType: 'CHILD_OF', traceID: TRACE_A, spanID: 'a000000000000002' }],
              startTime: BASE_US + 2000,
              duration: 180_000,
              tags: [
                string('gen_ai.operation.name', 'chat'),
                string('gen_ai.provider.name', 'openai'),
                string('gen_ai.request.model', 'gpt-4o-mini'),
                { key: 'gen_ai.request.stream', type: 'bool', value: true },
                string('gen_ai.response.finish_reasons', '["stop"]'),
                string('gen_ai.response.id', '00123'),
                { key: 'gen_ai.usage.input_tokens', type: 'int64', value: 120 },
                string('span.kind', 'client'),
                ...scope,
              ],
              logs: [
                {
                  timestamp: BASE_US + 150_000,
                  fields: [
                    string('event', 'gen_ai.evaluation.result'),
                    string('gen_ai.evaluation.name', 'relevance'),
                    { key: 'gen_ai.evaluation.score.value', type: 'float64', value: 0.9 },
                  ],
                },
              ],
              processID: 'p1',
              warnings: null,
            },
            {
              traceID: TRACE_A,
              spanID: 'a000000000000004',
              flags: 1,
              operationName: 'charge',
              references: [{ refType: 'CHILD_OF', traceID: TRACE_A, spanID: 'a000000000000001' }],
              startTime: BASE_US + 200_000,
              duration: 30_000,
              tags: [
                string('error.type', 'CardDeclined'),
                string('span.kind', 'server'),
                string('otel.status_code', 'ERROR'),
                { key: 'error', type: 'bool', value: true },
                string('otel.status_description', 'card declined'),
              ],
              logs: [],
              processID: 'p2',
              warnings: null,
            },
          ],
        },
      ]),
    );
  });

  it('maps links to FOLLOWS_FROM and leaves span.kind out when unspecified', async () => {
    const { body } = await get(`/api/traces/${TRACE_C}`);
    const [span] = body.data![0]!.spans;
    expect(span!.references).toEqual([
      { refType: 'FOLLOWS_FROM', traceID: TRACE_A, spanID: 'a000000000000003' },
    ]);
    expect(span!.tags).toEqual([
      string('otel.scope.name', 'modelmaxx-test'),
      string('otel.scope.version', '1.0.0'),
    ]);
    expect(body.data![0]!.processes).toEqual({ p1: { serviceName: 'worker', tags: [] } });
  });

  it('finds a trace by a short (64-bit) id and answers 404 / 400 in Jaeger error shape', async () => {
    const short = await get('/api/traces/ad');
    expect(short.status).toBe(200);
    expect(traceIdsOf(short.body)).toEqual([TRACE_D]);
    expect(await get('/api/traces/ffffffffffffffffffffffffffffffff')).toEqual({
      status: 404,
      body: {
        data: null,
        total: 0,
        limit: 0,
        offset: 0,
        errors: [{ code: 404, msg: 'trace not found' }],
      },
    });
    const bad = await get('/api/traces/not-hex');
    expect(bad.status).toBe(400);
    expect(bad.body.errors![0]!.code).toBe(400);
  });

  it('searches by service within the window, newest first, with a limit', async () => {
    const window = `start=${BASE_US - 1_000_000}&end=${BASE_US + 3_600_000_000}`;
    expect(traceIdsOf((await get(`/api/traces?service=shop&${window}`)).body)).toEqual([
      TRACE_B,
      TRACE_D,
      TRACE_A,
    ]);
    expect(traceIdsOf((await get(`/api/traces?service=shop&${window}&limit=2`)).body)).toEqual([
      TRACE_B,
      TRACE_D,
    ]);
    expect(traceIdsOf((await get(`/api/traces?service=payments&${window}`)).body)).toEqual([
      TRACE_A,
    ]);
    // A window that ends before trace B and D started.
    expect(
      traceIdsOf(
        (await get(`/api/traces?service=shop&start=${BASE_US}&end=${BASE_US + 60_000_000}`)).body,
      ),
    ).toEqual([TRACE_A]);
    // Lookback from "now" (everything was seeded 10 minutes ago or later).
    expect(traceIdsOf((await get('/api/traces?service=shop&lookback=1h')).body)).toEqual([
      TRACE_B,
      TRACE_D,
      TRACE_A,
    ]);
    expect(traceIdsOf((await get('/api/traces?service=shop&lookback=1m')).body)).toEqual([]);
    const found = (await get(`/api/traces?service=shop&${window}`)).body;
    expect(found.total).toBe(3);
    expect(found.errors).toBeNull();
    // Whole traces come back, including the spans of other services.
    expect(found.data![2]!.spans.map((span: { spanID: string }) => span.spanID)).toEqual([
      'a000000000000001',
      'a000000000000002',
      'a000000000000003',
      'a000000000000004',
    ]);
  });

  it('filters by operation, duration and tags', async () => {
    const window = `service=shop&start=${BASE_US - 1_000_000}&end=${BASE_US + 3_600_000_000}`;
    const ids = async (query: string) =>
      traceIdsOf((await get(`/api/traces?${window}&${query}`)).body);
    expect(await ids(`operation=${encodeURIComponent('GET /checkout')}`)).toEqual([
      TRACE_D,
      TRACE_A,
    ]);
    expect(await ids('minDuration=100ms')).toEqual([TRACE_A]);
    expect(await ids('minDuration=30ms&maxDuration=0.05s')).toEqual([TRACE_D]);
    expect(await ids('maxDuration=2ms')).toEqual([TRACE_B]);
    const json = (tags: Record<string, string>) =>
      `tags=${encodeURIComponent(JSON.stringify(tags))}`;
    expect(await ids(json({ 'http.request.method': 'GET' }))).toEqual([TRACE_B, TRACE_A]);
    expect(await ids(json({ 'http.request.method': 'GET', 'span.kind': 'server' }))).toEqual([
      TRACE_B,
      TRACE_A,
    ]);
    expect(await ids(json({ 'gen_ai.request.model': 'gpt-4o-mini' }))).toEqual([TRACE_A]);
    expect(await ids(json({ 'host.name': 'web-1', 'http.request.method': 'POST' }))).toEqual([
      TRACE_D,
    ]);
    expect(await ids(json({ 'gen_ai.evaluation.name': 'relevance' }))).toEqual([TRACE_A]);
    expect(await ids(json({ error: 'true' }))).toEqual([TRACE_D]);
    expect(
      await ids(`tags=${encodeURIComponent('http.request.method="POST" span.kind=server')}`),
    ).toEqual([TRACE_D]);
    expect(await ids('tag=http.request.method:GET&tag=span.kind:server')).toEqual([
      TRACE_B,
      TRACE_A,
    ]);
    // All tags must hold on one span: the GET span is not the chat span.
    expect(
      await ids(json({ 'http.request.method': 'GET', 'gen_ai.request.model': 'gpt-4o-mini' })),
    ).toEqual([]);
    const payments = `service=payments&start=${BASE_US - 1_000_000}&end=${BASE_US + 3_600_000_000}`;
    expect(
      traceIdsOf(
        (await get(`/api/traces?${payments}&${json({ 'otel.status_code': 'ERROR' })}`)).body,
      ),
    ).toEqual([TRACE_A]);
  });

  it('fetches several traces by traceID and refuses bad search parameters', async () => {
    expect(
      traceIdsOf((await get(`/api/traces?traceID=${TRACE_C}&traceID=${TRACE_B}`)).body),
    ).toEqual([TRACE_C, TRACE_B]);
    for (const query of [
      'start=1',
      'service=shop&minDuration=fast',
      'service=shop&start=abc',
      'service=shop&tags=%7Bnot-json',
      'service=shop&start=20&end=10',
    ]) {
      const { status, body } = await get(`/api/traces?${query}`);
      expect(status, query).toBe(400);
      expect(body.data, query).toBeNull();
      expect(body.errors![0]!.code, query).toBe(400);
    }
  });
});

describe('Jaeger v3 API', () => {
  const iso = (offsetUs: number) => new Date((BASE_US + offsetUs) / 1000).toISOString();

  it('lists services and operations', async () => {
    expect(await get('/api/v3/services')).toEqual({
      status: 200,
      body: { services: ['payments', 'shop', 'worker'] },
    });
    expect((await get('/api/v3/operations?service=payments')).body).toEqual({
      operations: [{ name: 'charge', spanKind: 'server' }],
    });
    expect((await get('/api/v3/operations?service=shop&spanKind=internal')).body).toEqual({
      operations: [{ name: 'route auto', spanKind: 'internal' }],
    });
    expect(await get('/api/v3/operations')).toEqual({
      status: 400,
      body: { error: { httpCode: 400, message: 'parameter "service" is required' } },
    });
  });

  it('summarizes the traces it finds', async () => {
    const window = `query.startTimeMin=${iso(-1_000_000)}&query.startTimeMax=${iso(3_600_000_000)}`;
    const { status, body } = await get(`/api/v3/trace-summaries?query.serviceName=shop&${window}`);
    expect(status).toBe(200);
    expect(body).toEqual({
      summaries: [
        {
          traceId: TRACE_B,
          minStartTimeUnixNano: ns(300_000_000),
          maxEndTimeUnixNano: ns(300_002_000),
          rootServiceName: 'shop',
          rootOperationName: 'GET /health',
          spanCount: 1,
          errorSpanCount: 0,
          orphanSpanCount: 0,
          services: [{ name: 'shop', spanCount: 1, errorSpanCount: 0 }],
        },
        {
          traceId: TRACE_D,
          minStartTimeUnixNano: ns(120_000_000),
          maxEndTimeUnixNano: ns(120_040_000),
          rootServiceName: 'shop',
          rootOperationName: 'GET /checkout',
          spanCount: 2,
          errorSpanCount: 1,
          orphanSpanCount: 1,
          services: [{ name: 'shop', spanCount: 2, errorSpanCount: 1 }],
        },
        {
          traceId: TRACE_A,
          minStartTimeUnixNano: ns(0),
          maxEndTimeUnixNano: ns(250_000),
          rootServiceName: 'shop',
          rootOperationName: 'GET /checkout',
          spanCount: 4,
          errorSpanCount: 1,
          orphanSpanCount: 0,
          services: [
            { name: 'payments', spanCount: 1, errorSpanCount: 1 },
            { name: 'shop', spanCount: 3, errorSpanCount: 0 },
          ],
        },
      ],
    });
    const ids = async (query: string) =>
      (
        await get(`/api/v3/trace-summaries?query.serviceName=shop&${window}&${query}`)
      ).body.summaries!.map((summary) => summary.traceId);
    expect(await ids('query.searchDepth=1')).toEqual([TRACE_B]);
    expect(await ids(`query.operationName=${encodeURIComponent('db query')}`)).toEqual([TRACE_D]);
    expect(await ids('query.durationMin=0.1s')).toEqual([TRACE_A]);
    expect(await ids('query.durationMax=5ms')).toEqual([TRACE_B]);
    expect(
      await ids(
        `query.attributes=${encodeURIComponent(JSON.stringify({ 'http.request.method': 'POST' }))}`,
      ),
    ).toEqual([TRACE_D]);
    expect(await ids(`${encodeURIComponent('query.attributes[http.request.method]')}=GET`)).toEqual(
      [TRACE_B, TRACE_A],
    );
    const narrowed = await get(
      `/api/v3/trace-summaries?query.serviceName=shop&query.startTimeMin=${iso(100_000_000)}&query.startTimeMax=${iso(200_000_000)}`,
    );
    expect(narrowed.body.summaries!.map((summary) => summary.traceId)).toEqual([TRACE_D]);
    expect((await get('/api/v3/trace-summaries')).body).toEqual({
      error: { httpCode: 400, message: 'parameter "query.serviceName" is required' },
    });
    expect(
      (await get('/api/v3/trace-summaries?query.serviceName=shop&query.startTimeMin=yesterday'))
        .status,
    ).toBe(400);
  });
});

describe('Jaeger answers like Jaeger (prettyPrint, metrics, bad input)', () => {
  it('indents a reply by four spaces with prettyPrint=true, and not with prettyPrint=false', async () => {
    const pretty = await fetch(`${base}/api/services?prettyPrint=true`);
    expect(pretty.headers.get('content-type')).toMatch(/^application\/json/);
    const text = await pretty.text();
    expect(text).toBe(JSON.stringify(wrapped(['payments', 'shop', 'worker']), null, 4));
    expect(text).toContain('\n    "data": [\n        "payments"');
    const v3 = await (await fetch(`${base}/api/v3/services?prettyPrint=1`)).text();
    expect(v3).toBe(JSON.stringify({ services: ['payments', 'shop', 'worker'] }, null, 4));
    const notFound = await (
      await fetch(`${base}/api/traces/${'f'.repeat(32)}?prettyPrint=true`)
    ).text();
    expect(notFound).toContain('\n    "errors": [');
    for (const flat of ['prettyPrint=false', 'prettyPrint=', 'other=1']) {
      const body = await (await fetch(`${base}/api/services?${flat}`)).text();
      expect(body, flat).toBe(JSON.stringify(wrapped(['payments', 'shop', 'worker'])));
    }
  });

  it('answers /api/metrics/* with 501 in the v1 error shape (no metrics backend)', async () => {
    for (const path of [
      '/api/metrics/calls?service=shop&endTs=1&lookback=3600000&step=60000&ratePer=600000',
      '/api/metrics/latencies?service=shop&quantile=0.95',
      '/api/metrics/errors?service=shop',
      '/api/metrics/minstep',
    ]) {
      expect(await get(path), path).toEqual({
        status: 501,
        body: {
          data: null,
          total: 0,
          limit: 0,
          offset: 0,
          errors: [
            {
              code: 501,
              msg: 'trace metrics are currently disabled - no metrics backend configured',
            },
          ],
        },
      });
    }
  });

  it('answers bad percent-encoding in a path parameter with 400 in the v1 error shape', async () => {
    for (const path of [
      '/api/traces/%zz',
      '/api/traces/%E0%A4%A',
      '/api/services/%zz/operations',
    ]) {
      const { status, body } = await get(path);
      expect(status, path).toBe(400);
      expect(body.data, path).toBeNull();
      expect(body.errors![0]!.code, path).toBe(400);
      expect(body.errors![0]!.msg, path).toMatch(/percent-encoding/);
    }
    // A well-encoded name still reads.
    expect((await get(`/api/services/${encodeURIComponent('shop')}/operations`)).status).toBe(200);
  });
});

describe('Jaeger parameter parsing', () => {
  it('parses Go durations', () => {
    expect(parseGoDuration('10ms')).toBe(10_000_000n);
    expect(parseGoDuration('1.5s')).toBe(1_500_000_000n);
    expect(parseGoDuration('1h30m')).toBe(5_400_000_000_000n);
    expect(parseGoDuration('250us')).toBe(250_000n);
    expect(parseGoDuration('2d')).toBe(172_800_000_000_000n);
    for (const bad of ['', '10', 'ms', '10 ms', '1x']) expect(() => parseGoDuration(bad)).toThrow();
  });

  it('parses tags as JSON, logfmt and key:value', () => {
    expect(parseTags('{"a":"1","b":true,"c":2}', undefined)).toEqual({ a: '1', b: 'true', c: '2' });
    expect(parseTags('a=1 b="two words" c=', undefined)).toEqual({ a: '1', b: 'two words', c: '' });
    expect(parseTags(undefined, ['a:1', 'url:http://x'])).toEqual({ a: '1', url: 'http://x' });
    expect(() => parseTags('{"a":{"b":1}}', undefined)).toThrow();
    expect(() => parseTags(undefined, ['nocolon'])).toThrow();
  });

  it('infers tag types from stored text', () => {
    expect(typedTag('k', 'true')).toEqual({ key: 'k', type: 'bool', value: true });
    expect(typedTag('k', '-42')).toEqual({ key: 'k', type: 'int64', value: -42 });
    expect(typedTag('k', '1e3')).toEqual({ key: 'k', type: 'float64', value: 1000 });
    expect(typedTag('k', '0.25')).toEqual({ key: 'k', type: 'float64', value: 0.25 });
    expect(typedTag('k', '007')).toEqual({ key: 'k', type: 'string', value: '007' });
    expect(typedTag('k', '9007199254740993')).toEqual({
      key: 'k',
      type: 'string',
      value: '9007199254740993',
    });
    expect(typedTag('k', '["a"]')).toEqual({ key: 'k', type: 'string', value: '["a"]' });
    expect(typedTag('k', 'NaN')).toEqual({ key: 'k', type: 'string', value: 'NaN' });
    expect(normalizeTraceId('ABC')).toBe('00000000000000000000000000000abc');
  });
});
