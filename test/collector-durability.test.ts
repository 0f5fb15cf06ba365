/**
 * Durability end to end (SPEC: "a span the collector acknowledged is not lost"):
 * - the standalone collector process is killed with SIGKILL right after an acknowledged export
 *   (real OTLP/protobuf exporter, concurrent senders), restarted on the same data folder, and
 *   every acknowledged span is in ClickHouse exactly once (otel_traces and llm_calls);
 * - ClickHouse refuses inserts for a while under load (the `otel_traces` table really detached):
 *   the collector keeps acknowledging into its spool, says 503 + Retry-After when the spool is
 *   full, shows it in /metrics, and after recovery holds every acknowledged span exactly once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, startCollector } from '@modelmaxx/collector';
import { spawnCollector, type CollectorProcess } from './support/collector-process.js';
import { readMetrics, sqlRows } from './support/collector-sql.js';
import { otlpJsonBody, recordGenAiSpans } from './support/collector-spans.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-collector-durability-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const SQL_MAX_ROWS = 1_000_000;

// The collectors here allow SQL_MAX_ROWS rows: how many spans a run acknowledges depends on the
// machine's speed, and a truncated id list would read as lost spans.
const sql = (url: string, query: string) => sqlRows(url, query, SQL_MAX_ROWS);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Makes ClickHouse refuse the span inserts for real (the table detached), or take them again. */
const insertOutage = (store: Awaited<ReturnType<typeof openStore>>, outage: boolean) =>
  store.engine.command(`${outage ? 'DETACH' : 'ATTACH'} TABLE ${store.database}.otel_traces`);

/** Waits until `ready` holds, polling every 100 ms. */
async function until(ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** `ExportResultCode.SUCCESS` of `@opentelemetry/core`. */
const SUCCESS = 0;

function exportSpans(
  exporter: OTLPTraceExporter,
  spans: ReadableSpan[],
): Promise<{ code: number; error?: Error }> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

describe('collector durability', () => {
  it('keeps every acknowledged span across kill -9 right after an acknowledgement and a restart', async () => {
    const dataDir = await tempDir();
    const spawnOptions = { env: { MODELMAXX_SQL_MAX_ROWS: String(SQL_MAX_ROWS) } };
    let collector: CollectorProcess = await spawnCollector(dataDir, spawnOptions);
    cleanups.push(() => collector.kill9());

    const BATCH = 250;
    const SENDERS = 4;
    const KILL_AFTER = 12; // acknowledged requests
    const sentIds = new Set<string>();
    const acknowledged = new Set<string>();
    let acknowledgedRequests = 0;
    let killed: Promise<void> | undefined;
    let next = 0;
    const exporters: OTLPTraceExporter[] = [];

    const sender = async () => {
      const exporter = new OTLPTraceExporter({
        url: `${collector.url}/v1/traces`,
        timeoutMillis: 5_000,
      });
      exporters.push(exporter);
      while (killed === undefined) {
        const spans = recordGenAiSpans(BATCH, next);
        next += BATCH;
        for (const span of spans) sentIds.add(span.spanContext().spanId);
        const result = await exportSpans(exporter, spans);
        if (result.code !== SUCCESS) continue;
        // A 200 from the collector: these spans are acknowledged, whenever the callback runs.
        for (const span of spans) acknowledged.add(span.spanContext().spanId);
        acknowledgedRequests += 1;
        if (acknowledgedRequests === KILL_AFTER) killed = collector.kill9();
      }
    };
    await Promise.all(Array.from({ length: SENDERS }, sender));
    await killed;
    await Promise.all(
      exporters.map((exporter) => Promise.race([exporter.shutdown(), sleep(2_000)])),
    );
    expect(await collector.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(acknowledged.size).toBeGreaterThanOrEqual(KILL_AFTER * BATCH);

    collector = await spawnCollector(dataDir, spawnOptions);
    // The restarted collector replays what the killed one had only in its spool.
    await until(async () => {
      const metrics = await readMetrics(collector.url);
      return metrics['modelmaxx_store_spool_bytes'] === 0;
    }, 150_000);
    const metrics = await readMetrics(collector.url);
    expect(metrics['modelmaxx_store_replayed_segments_total']).toBeGreaterThan(0);
    expect(metrics['modelmaxx_spans_stored_total']).toBeGreaterThan(0);

    const [totals] = await sql(
      collector.url,
      `SELECT count() AS rows, uniqExact(SpanId) AS spans FROM modelmaxx.otel_traces`,
    );
    expect(Number(totals!.rows)).toBe(Number(totals!.spans)); // nothing twice
    const stored = new Set(
      (await sql(collector.url, 'SELECT SpanId FROM modelmaxx.otel_traces')).map((row) =>
        String(row.SpanId),
      ),
    );
    const missing = [...acknowledged].filter((id) => !stored.has(id));
    expect(missing).toEqual([]); // nothing acknowledged lost
    expect([...stored].filter((id) => !sentIds.has(id))).toEqual([]);
    // The views saw each stored span once too.
    const [calls] = await sql(
      collector.url,
      `SELECT count() AS rows, uniqExact(SpanId) AS spans FROM modelmaxx.llm_calls`,
    );
    expect({ rows: Number(calls!.rows), spans: Number(calls!.spans) }).toEqual({
      rows: stored.size,
      spans: stored.size,
    });
    await collector.stop();
    expect((await collector.exited).code).toBe(0);
  }, 300_000);

  it('spools while ClickHouse refuses inserts under load, says 503 + Retry-After when full, and loses nothing', async () => {
    const dir = await tempDir();
    const store = await openStore({
      dataDir: join(dir, 'data'),
      spoolDir: join(dir, 'spool'),
      maxSpoolBytes: 4 * 1024 * 1024,
      retryMinMs: 50,
      retryMaxMs: 250,
    });
    cleanups.push(() => store.close());
    const collector = await startCollector({
      store,
      config: { port: 0, sqlMaxRows: SQL_MAX_ROWS },
    });
    cleanups.push(() => collector.close());

    const BATCH = 100;
    const acknowledged: string[] = [];
    const refusals: { status: number; retryAfter: string | null }[] = [];
    let stopping = false;
    let next = 0;
    const sender = async () => {
      while (!stopping) {
        const { body, spanIds } = otlpJsonBody(1, next, BATCH);
        next += BATCH;
        // Like an OTLP exporter: the same request again after Retry-After until it is taken.
        for (;;) {
          const response = await fetch(`${collector.url}/v1/traces`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          });
          await response.arrayBuffer();
          if (response.status === 200) {
            acknowledged.push(...spanIds);
            break;
          }
          refusals.push({
            status: response.status,
            retryAfter: response.headers.get('retry-after'),
          });
          expect([429, 503]).toContain(response.status);
          await sleep(Math.min(Number(response.headers.get('retry-after') ?? 1), 2) * 1000);
        }
      }
    };
    const senders = Array.from({ length: 3 }, sender);

    await sleep(1_000);
    await insertOutage(store, true);
    const refusalsBefore = refusals.length;
    await sleep(2_000);
    const during = await readMetrics(collector.url);
    await sleep(2_000);
    const later = await readMetrics(collector.url);
    // Nothing reaches ClickHouse while the table is gone; the spool holds what is acknowledged.
    expect(later['modelmaxx_spans_stored_total']).toBe(during['modelmaxx_spans_stored_total']);
    expect(later['modelmaxx_store_insert_errors_total']).toBeGreaterThan(
      during['modelmaxx_store_insert_errors_total']!,
    );
    expect(later['modelmaxx_store_spool_bytes']).toBeGreaterThan(0);
    expect(later['modelmaxx_spans_accepted_total']).toBeGreaterThan(
      later['modelmaxx_spans_stored_total']!,
    );
    // Backpressure: the spool filled up and the collector said so instead of dropping.
    expect(later['modelmaxx_spans_refused_total']).toBeGreaterThan(0);
    expect(later['modelmaxx_http_requests_total{route="/v1/traces",code="503"}']).toBeGreaterThan(
      0,
    );
    const refused503 = refusals.slice(refusalsBefore).filter((refusal) => refusal.status === 503);
    expect(refused503.length).toBeGreaterThan(0);
    for (const refusal of refused503) expect(Number(refusal.retryAfter)).toBeGreaterThanOrEqual(1);

    await insertOutage(store, false);
    await sleep(1_000);
    stopping = true;
    await Promise.all(senders);
    expect(await store.flush(120_000)).toBe(true);

    const after = await readMetrics(collector.url);
    expect(after['modelmaxx_store_spool_bytes']).toBe(0);
    expect(after['modelmaxx_spans_accepted_total']).toBe(acknowledged.length);
    const [totals] = await sql(
      collector.url,
      'SELECT count() AS rows, uniqExact(SpanId) AS spans FROM modelmaxx.otel_traces',
    );
    expect({ rows: Number(totals!.rows), spans: Number(totals!.spans) }).toEqual({
      rows: acknowledged.length,
      spans: acknowledged.length,
    });
    const stored = new Set(
      (await sql(collector.url, 'SELECT SpanId FROM modelmaxx.otel_traces')).map((row) =>
        String(row.SpanId),
      ),
    );
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    const [calls] = await sql(
      collector.url,
      'SELECT count() AS rows, uniqExact(SpanId) AS spans FROM modelmaxx.llm_calls',
    );
    expect({ rows: Number(calls!.rows), spans: Number(calls!.spans) }).toEqual({
      rows: acknowledged.length,
      spans: acknowledged.length,
    });
  }, 180_000);
});
