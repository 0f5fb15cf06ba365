/**
 * `clickhouseStatsSource`: the router's stats straight from ClickHouse. Against the embedded
 * store in this process it returns what `GET /api/stats?groupBy=model,task` returns for the same
 * data (same query layer); against a data folder no one else has open it reads the same rows;
 * against a ClickHouse server it sends the stats query (read-only) with the credentials.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { StatsResponseSchema } from '@modelmaxx/semconv/schemas';
import type { StatsResponse } from '@modelmaxx/semconv/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '../src/index.js';
import type { RunningCollector } from '../src/index.js';
import { clickhouseStatsSource } from '../src/stats-source.js';
import { openStore } from '../src/store/open-store.js';
import type { ClickHouseStore } from '../src/store/clickhouse-store.js';
import type { SpanRow } from '../src/store/span-store.js';
import { llmSpan, nanos, tempDir } from './store-fixtures.js';

const dir = tempDir('mm-stats-source-');
let store: ClickHouseStore;
let collector: RunningCollector;

function scored(span: SpanRow, score: number): SpanRow {
  span.Events.Timestamp.push(nanos(Date.now() - 200));
  span.Events.Name.push('gen_ai.evaluation.result');
  span.Events.Attributes.push({
    'gen_ai.evaluation.name': 'app.correct',
    'gen_ai.evaluation.score.value': String(score),
  });
  return span;
}

/** Calls of two models on two tasks (and one task-less call), with costs, errors and scores. */
function traffic(): SpanRow[] {
  const spans: SpanRow[] = [];
  for (let index = 0; index < 12; index++) {
    spans.push(
      scored(
        llmSpan({
          model: 'gpt-4o-mini',
          task: 'easy',
          costUsd: 0.0002,
          durationMs: 300 + index * 10,
        }),
        index % 6 === 0 ? 0 : 1,
      ),
      scored(
        llmSpan({ model: 'gpt-4o-mini', task: 'hard', costUsd: 0.0003, durationMs: 500 }),
        index % 2,
      ),
      scored(
        llmSpan({ model: 'gpt-4o', task: 'hard', costUsd: 0.004, durationMs: 900 + index }),
        index === 0 ? 0 : 1,
      ),
    );
  }
  spans.push(
    llmSpan({ model: 'gpt-4o', task: 'easy', costUsd: 0.003, error: 'RateLimitError' }),
    llmSpan({ model: 'gpt-4o', costUsd: 0.003, service: 'batch-job' }),
  );
  return spans;
}

/**
 * Rows without latency percentiles (ClickHouse merges t-digest states in no fixed order, so two
 * reads of the same data may differ a little there), which must be close instead.
 */
function expectSameRows(actual: StatsResponse['rows'], expected: StatsResponse['rows']): void {
  const strip = (rows: StatsResponse['rows']) =>
    rows.map(({ latencyP50Ms: _p50, latencyP95Ms: _p95, latencyP99Ms: _p99, ...rest }) => rest);
  expect(strip(actual)).toEqual(strip(expected));
  for (const [index, row] of actual.entries()) {
    const other = expected[index]!;
    if (row.latencyP95Ms === null) expect(other.latencyP95Ms).toBeNull();
    else expect(row.latencyP95Ms).toBeCloseTo(other.latencyP95Ms!, -1);
  }
}

async function apiStats(query: string): Promise<StatsResponse> {
  // The stats source leaves out the separate quality figures (one query, over the rollup).
  const response = await fetch(`${collector.url}/api/stats?${query}&quality=false`);
  expect(response.status).toBe(200);
  return StatsResponseSchema.parse(await response.json());
}

beforeAll(async () => {
  store = await openStore({ dataDir: join(dir.path, 'data'), batch: { maxDelayMs: 20 } });
  collector = await startCollector({ config: { port: 0, dataDir: dir.path }, store });
  expect(await store.write(traffic())).toMatchObject({ status: 'ok' });
  expect(await store.flush(30_000)).toBe(true);
});

afterAll(async () => {
  await collector?.close();
  await store?.close().catch(() => undefined);
  dir.remove();
});

describe('clickhouseStatsSource', () => {
  it('over the store of this process: the same rows as GET /api/stats?groupBy=model,task', async () => {
    const source = clickhouseStatsSource({ store, window: '1h' });
    const direct = await source();
    const viaApi = await apiStats('window=1h&groupBy=model,task');
    expect(StatsResponseSchema.parse(direct)).toEqual(direct);
    expect(direct.groupBy).toEqual(['model', 'task']);
    expectSameRows(direct.rows, viaApi.rows);
    expect(direct.from).toBe(viaApi.from);
    const row = (model: string, task: string) =>
      direct.rows.find((entry) => entry.model === model && entry.task === task);
    expect(row('gpt-4o-mini', 'easy')).toMatchObject({ calls: 12, errors: 0, scoreCount: 12 });
    expect(row('gpt-4o-mini', 'easy')!.meanScore).toBeCloseTo(10 / 12, 12);
    expect(row('gpt-4o-mini', 'easy')!.costPerCallUsd).toBeCloseTo(0.0002, 12);
    expect(row('gpt-4o-mini', 'hard')!.meanScore).toBeCloseTo(0.5, 12);
    expect(row('gpt-4o', 'hard')!.meanScore).toBeCloseTo(11 / 12, 12);
    expect(row('gpt-4o', 'hard')!.latencyP95Ms).toBeGreaterThan(900);
    expect(row('gpt-4o', 'easy')).toMatchObject({ calls: 1, errors: 1, scoreCount: 0 });
    expect(row('gpt-4o', '')).toMatchObject({ calls: 1 });
    await source.close();
    await expect(source()).rejects.toThrow(/closed/);
    // The store is the caller's: closing the source leaves it open.
    expectSameRows((await clickhouseStatsSource({ store })()).rows, direct.rows);
  });

  it('counts only the named scores like /api/stats?scores=', async () => {
    const named = await clickhouseStatsSource({ store, window: '30m', scores: ['app.correct'] })();
    expectSameRows(
      named.rows,
      (await apiStats('window=30m&groupBy=model,task&scores=app.correct')).rows,
    );
    // Every score in this traffic is app.correct: the same means as without the filter.
    expectSameRows(named.rows, (await clickhouseStatsSource({ store, window: '30m' })()).rows);
    const other = await clickhouseStatsSource({ store, window: '30m', scores: ['user.thumbs'] })();
    expect(other.rows.length).toBe(named.rows.length);
    for (const row of other.rows) expect(row).toMatchObject({ scoreCount: 0, meanScore: null });
    expect(other.rows.some((row) => row.calls > 0)).toBe(true);
  });

  it('filters by service like /api/stats?service=', async () => {
    const source = clickhouseStatsSource({ store, window: '30m', service: 'batch-job' });
    const direct = await source();
    expectSameRows(
      direct.rows,
      (await apiStats('window=30m&groupBy=model,task&service=batch-job')).rows,
    );
    expect(direct.rows).toHaveLength(1);
    expect(direct.rows[0]).toMatchObject({ model: 'gpt-4o', task: '', calls: 1 });
  });

  it('refuses a bad window and anything but exactly one place to read from', () => {
    expect(() => clickhouseStatsSource({ store, window: 'an hour' })).toThrow(/window/);
    expect(() => clickhouseStatsSource({})).toThrow(/exactly one of store, clickhouseUrl, dataDir/);
    expect(() => clickhouseStatsSource({ store, clickhouseUrl: 'http://127.0.0.1:8123' })).toThrow(
      /\(got 2\)/,
    );
  });

  it('over a chDB data folder once no collector has it open: the same rows', async () => {
    const source = clickhouseStatsSource({ store, window: '1h' });
    const before = (await source()).rows;
    await collector.close();
    await store.close();
    const fromFolder = clickhouseStatsSource({ dataDir: join(dir.path, 'data'), window: '1h' });
    try {
      expectSameRows((await fromFolder()).rows, before);
    } finally {
      await fromFolder.close();
    }
  });
});

describe('clickhouseStatsSource over a ClickHouse server', () => {
  let server: Server;
  let url: string;
  const seen: { params: Record<string, string>; authorization: string | undefined; sql: string }[] =
    [];

  beforeAll(async () => {
    server = createServer((incoming: IncomingMessage, response: ServerResponse) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () => {
        const params = Object.fromEntries(new URL(incoming.url ?? '/', 'http://x').searchParams);
        const sql = params.query ?? Buffer.concat(chunks).toString('utf8');
        seen.push({ params, authorization: incoming.headers.authorization, sql });
        response.writeHead(200, {
          'Content-Type': 'application/json',
          'X-ClickHouse-Format': 'JSON',
        });
        response.end(
          JSON.stringify({
            meta: [],
            data: [
              {
                model: 'gpt-4o',
                task: 'hard',
                calls: '40',
                errors: '2',
                cost: 0.16,
                costCalls: '40',
                inputTokens: '4000',
                outputTokens: '800',
                latency: [700, 1200, 1500],
                scoreSum: 36,
                scoreCount: '40',
              },
            ],
            rows: 1,
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('runs the stats query over the rollup with the credentials, and nothing else', async () => {
    const source = clickhouseStatsSource({
      clickhouseUrl: url,
      username: 'router',
      password: 'r3ad',
      database: 'obs',
      window: '15m',
      service: 'support-bot',
    });
    try {
      const stats = await source();
      expect(seen).toHaveLength(1);
      const [request] = seen;
      expect(request!.authorization).toBe(`Basic ${Buffer.from('router:r3ad').toString('base64')}`);
      expect(request!.sql).toMatch(/^SELECT\b/);
      expect(request!.sql).toContain('FROM obs.llm_rollup_1m\n');
      expect(request!.sql).toMatch(/GROUP BY model, task/);
      // Values travel as query parameters, never inside the SQL text.
      expect(request!.params.param_service).toBe('support-bot');
      expect(request!.sql).not.toContain('support-bot');
      const to = Number(request!.params.param_to);
      expect(to - Number(request!.params.param_from)).toBe(15 * 60);
      expect(stats.groupBy).toEqual(['model', 'task']);
      expect(stats.rows).toEqual([
        {
          model: 'gpt-4o',
          task: 'hard',
          calls: 40,
          errors: 2,
          errorRate: 0.05,
          costUsd: 0.16,
          costPerCallUsd: 0.004,
          meanInputTokens: 100,
          meanOutputTokens: 20,
          latencyP50Ms: 700,
          latencyP95Ms: 1200,
          latencyP99Ms: 1500,
          meanScore: 0.9,
          scoreCount: 40,
        },
      ]);
    } finally {
      await source.close();
    }
  });
});
