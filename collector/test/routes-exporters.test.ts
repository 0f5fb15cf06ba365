/**
 * The official OTLP exporters (protobuf and JSON, plain and gzip) sending real
 * SDK spans to a running collector on the embedded ClickHouse; the rows read back
 * from `otel_traces` must be what the OTel Collector ClickHouse exporter writes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OTLPTraceExporter as OTLPHttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '../src/index.js';
import type { SpanRow } from '../src/store/span-store.js';
import { expectedRow, recordSpans } from './support/otlp-fixtures.js';

type ExporterConfig = NonNullable<ConstructorParameters<typeof OTLPProtoExporter>[0]>;
const GZIP = 'gzip' as NonNullable<ExporterConfig['compression']>;

let collector: RunningCollector;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-routes-exporters-'));
  collector = await startCollector({
    config: { port: 0, dataDir, ingestToken: 'ingest-secret', readToken: 'read-secret' },
  });
});

afterAll(async () => {
  await collector?.close();
  await rm(dataDir, { recursive: true, force: true });
});

function exportSpans(exporter: SpanExporter, spans: ReadableSpan[]): Promise<void> {
  return new Promise((resolve, reject) => {
    exporter.export(spans, (result) => {
      if (result.code === 0) resolve();
      else reject(result.error ?? new Error(`export failed with code ${result.code}`));
    });
  });
}

/** Rows of `otel_traces` for these trace ids, polled until `count` are there (the writer batches). */
async function storedRows(traceIds: string[], count: number): Promise<SpanRow[]> {
  const list = traceIds.map((id) => `'${id.replace(/[^0-9a-f]/g, '')}'`).join(',');
  const sql = `SELECT toString(toUnixTimestamp64Nano(Timestamp)) AS Timestamp, TraceId, SpanId,
    ParentSpanId, TraceState, SpanName, SpanKind, ServiceName, ResourceAttributes, ScopeName,
    ScopeVersion, SpanAttributes, toString(Duration) AS Duration, StatusCode, StatusMessage,
    arrayMap(t -> toString(toUnixTimestamp64Nano(t)), Events.Timestamp) AS EventTimestamps,
    Events.Name AS EventNames, Events.Attributes AS EventAttributes, Links.TraceId AS LinkTraceIds,
    Links.SpanId AS LinkSpanIds, Links.TraceState AS LinkTraceStates,
    Links.Attributes AS LinkAttributes
    FROM modelmaxx.otel_traces WHERE TraceId IN (${list}) ORDER BY SpanId`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const result = await collector.store.querySql(sql, { maxRows: 1000, maxExecutionSeconds: 10 });
    if (result.rows.length >= count || Date.now() > deadline) {
      return result.rows.map((row) => ({
        Timestamp: row.Timestamp as string,
        TraceId: row.TraceId as string,
        SpanId: row.SpanId as string,
        ParentSpanId: row.ParentSpanId as string,
        TraceState: row.TraceState as string,
        SpanName: row.SpanName as string,
        SpanKind: row.SpanKind as string,
        ServiceName: row.ServiceName as string,
        ResourceAttributes: row.ResourceAttributes as Record<string, string>,
        ScopeName: row.ScopeName as string,
        ScopeVersion: row.ScopeVersion as string,
        SpanAttributes: row.SpanAttributes as Record<string, string>,
        Duration: row.Duration as string,
        StatusCode: row.StatusCode as string,
        StatusMessage: row.StatusMessage as string,
        Events: {
          Timestamp: row.EventTimestamps as string[],
          Name: row.EventNames as string[],
          Attributes: row.EventAttributes as Record<string, string>[],
        },
        Links: {
          TraceId: row.LinkTraceIds as string[],
          SpanId: row.LinkSpanIds as string[],
          TraceState: row.LinkTraceStates as string[],
          Attributes: row.LinkAttributes as Record<string, string>[],
        },
      }));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const cases: [name: string, make: (config: ExporterConfig) => SpanExporter][] = [
  ['exporter-trace-otlp-proto', (config) => new OTLPProtoExporter(config)],
  [
    'exporter-trace-otlp-proto with gzip',
    (config) => new OTLPProtoExporter({ ...config, compression: GZIP }),
  ],
  ['exporter-trace-otlp-http (JSON)', (config) => new OTLPHttpJsonExporter(config)],
  [
    'exporter-trace-otlp-http (JSON) with gzip',
    (config) => new OTLPHttpJsonExporter({ ...config, compression: GZIP }),
  ],
];

describe('official OTLP exporters → collector → otel_traces', () => {
  it.each(cases)('%s: every span lands as the exporter row', async (_name, make) => {
    const spans = await recordSpans();
    const exporter = make({
      url: `${collector.url}/v1/traces`,
      headers: { Authorization: 'Bearer ingest-secret' },
    });
    await exportSpans(exporter, spans);
    await exporter.shutdown();
    const traceIds = [...new Set(spans.map((span) => span.spanContext().traceId))];
    const rows = await storedRows(traceIds, spans.length);
    const expected = spans
      .map(expectedRow)
      .sort((left, right) => left.SpanId.localeCompare(right.SpanId));
    expect(rows).toEqual(expected);
  });

  it('the exporter fails (401) without the ingest token and nothing is stored', async () => {
    const spans = await recordSpans();
    const exporter = new OTLPProtoExporter({ url: `${collector.url}/v1/traces` });
    await expect(exportSpans(exporter, spans)).rejects.toThrow(/401|Unauthorized/i);
    await exporter.shutdown();
    const traceIds = [...new Set(spans.map((span) => span.spanContext().traceId))];
    const result = await collector.store.querySql(
      `SELECT count() AS n FROM modelmaxx.otel_traces WHERE TraceId IN (${traceIds.map((id) => `'${id}'`).join(',')})`,
      { maxRows: 10, maxExecutionSeconds: 10 },
    );
    expect(Number(result.rows[0]?.n)).toBe(0);
  });
});
