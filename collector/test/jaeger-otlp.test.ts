/**
 * End to end: spans from the real OTel SDK, exported as OTLP/protobuf to a
 * running collector (embedded ClickHouse, read token set), read back through
 * the Jaeger API and compared with an oracle built from the SDK's own spans
 * (what Jaeger's OTLP translator would show for them).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttributeValue, Attributes } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startCollector, type RunningCollector } from '../src/index.js';
import { recordSpans, toProtobuf } from './support/otlp-fixtures.js';

const INGEST = 'ingest-jaeger';
const READ = 'read-jaeger';

let collector: RunningCollector;
let dataDir: string;
let spans: ReadableSpan[];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-jaeger-otlp-'));
  collector = await startCollector({
    config: { port: 0, dataDir, ingestToken: INGEST, readToken: READ },
  });
  spans = await recordSpans();
  const response = await fetch(`${collector.url}/v1/traces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INGEST}`, 'content-type': 'application/x-protobuf' },
    body: toProtobuf(spans),
  });
  expect(response.status).toBe(200);
});

afterAll(async () => {
  await collector?.close();
  await rm(dataDir, { recursive: true, force: true });
});

interface Tag {
  key: string;
  type: string;
  value: unknown;
}

interface JaegerSpan {
  traceID: string;
  spanID: string;
  flags: number;
  operationName: string;
  references: unknown[];
  startTime: number;
  duration: number;
  tags: Tag[];
  logs: { timestamp: number; fields: Tag[] }[];
  processID: string;
  warnings: unknown;
}

interface TraceAnswer {
  data: {
    traceID: string;
    spans: JaegerSpan[];
    processes: Record<string, { serviceName: string; tags: Tag[] }>;
    warnings: unknown;
  }[];
}

async function read(path: string, token: string | null = READ) {
  const response = await fetch(`${collector.url}${path}`, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: (await response.json()) as unknown };
}

/** Reads until the trace is there (the writer acknowledges once durable, then inserts). */
async function traceOf(traceId: string): Promise<TraceAnswer> {
  const deadline = Date.now() + 45_000;
  for (;;) {
    const { status, body } = await read(`/api/traces/${traceId}`);
    if (status === 200) return body as TraceAnswer;
    expect(status).toBe(404);
    if (Date.now() > deadline) throw new Error(`trace ${traceId} never became readable`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Jaeger's typed tag for an SDK attribute value; arrays are kept as their JSON text (parsed here). */
function expectedTag(value: AttributeValue): { type: string; value: unknown } {
  if (typeof value === 'boolean') return { type: 'bool', value };
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) ? { type: 'int64', value } : { type: 'float64', value };
  }
  if (typeof value === 'string') return { type: 'string', value };
  return { type: 'string', value: Array.from(value as ArrayLike<unknown>) };
}

/** Tags as a map; array-valued string tags decoded from their JSON text. */
function tagMap(tags: Tag[]): Record<string, { type: string; value: unknown }> {
  const map: Record<string, { type: string; value: unknown }> = {};
  for (const tag of tags) {
    expect(map[tag.key], `duplicate tag ${tag.key}`).toBeUndefined();
    const value =
      tag.type === 'string' && typeof tag.value === 'string' && tag.value.startsWith('[')
        ? (JSON.parse(tag.value) as unknown)
        : tag.value;
    map[tag.key] = { type: tag.type, value };
  }
  return map;
}

function expectedAttributeTags(
  attributes: Attributes,
): Record<string, { type: string; value: unknown }> {
  return Object.fromEntries(
    Object.entries(attributes).map(([key, value]) => [key, expectedTag(value!)]),
  );
}

/**
 * What the Jaeger UI validates its v3 answers with, restated from jaeger-ui at tag v2.19.0
 * (unchanged at v2.20.0): `packages/jaeger-ui/src/api/v3/generated-client.ts`
 * (`jaeger_api_v3_GetServicesResponse`, `_GetOperationsResponse`, `_TraceSummary`,
 * `_ServiceSummary`, `_FindTraceSummariesResponse`) as refined by
 * `packages/jaeger-ui/src/api/v3/schemas.ts`: the `int32` counts are JSON integers ≥ 0,
 * the `int64` times decimal strings, the trace id 32 hex digits; unknown fields pass.
 * `JaegerClient` (`src/api/v3/client.ts`) calls `.parse()`, so a mismatch fails the search.
 */
const count = z.number().int().min(0).optional();
const JaegerUiServices = z.looseObject({ services: z.array(z.string()) });
const JaegerUiOperations = z.looseObject({
  operations: z.array(z.looseObject({ name: z.string(), spanKind: z.string() })),
});
const JaegerUiTraceSummaries = z.looseObject({
  summaries: z
    .array(
      z.looseObject({
        traceId: z.string().regex(/^[0-9a-f]{32}$/i),
        rootServiceName: z.string().optional(),
        rootOperationName: z.string().optional(),
        minStartTimeUnixNano: z.string().regex(/^\d+$/).optional(),
        maxEndTimeUnixNano: z.string().regex(/^\d+$/).optional(),
        spanCount: count,
        errorSpanCount: count,
        orphanSpanCount: count,
        services: z
          .array(z.looseObject({ name: z.string(), spanCount: count, errorSpanCount: count }))
          .optional(),
      }),
    )
    .optional(),
});

const KINDS = ['internal', 'server', 'client', 'producer', 'consumer'];
const micros = (time: [number, number]) => time[0] * 1_000_000 + Math.floor(time[1] / 1000);
const nanos = (time: [number, number]) => BigInt(time[0]) * 1_000_000_000n + BigInt(time[1]);

describe('Jaeger API over spans received by OTLP', () => {
  it('needs the read token', async () => {
    expect((await read('/api/services', null)).status).toBe(401);
    expect((await read('/api/services', 'wrong')).status).toBe(401);
  });

  it('returns every SDK span as Jaeger shows it', async () => {
    for (const span of spans) {
      const traceId = span.spanContext().traceId;
      const answer = await traceOf(traceId);
      expect(answer.data).toHaveLength(1);
      const trace = answer.data[0]!;
      expect(trace.traceID).toBe(traceId);
      const found = trace.spans.find((candidate) => candidate.spanID === span.spanContext().spanId);
      expect(found, span.name).toBeDefined();
      const { tags, logs, ...rest } = found!;
      const parent = span.parentSpanContext?.spanId;
      expect(rest).toEqual({
        traceID: traceId,
        spanID: span.spanContext().spanId,
        flags: 1,
        operationName: span.name,
        references: [
          ...(parent === undefined
            ? []
            : [{ refType: 'CHILD_OF', traceID: traceId, spanID: parent }]),
          ...span.links.map((link) => ({
            refType: 'FOLLOWS_FROM',
            traceID: link.context.traceId,
            spanID: link.context.spanId,
          })),
        ],
        startTime: micros(span.startTime),
        duration: Number((nanos(span.endTime) - nanos(span.startTime)) / 1000n),
        processID: found!.processID,
        warnings: null,
      });
      const status = ['', 'OK', 'ERROR'][span.status.code]!;
      expect(tagMap(tags), span.name).toEqual({
        ...expectedAttributeTags(span.attributes),
        'span.kind': { type: 'string', value: KINDS[span.kind] },
        ...(status === '' ? {} : { 'otel.status_code': { type: 'string', value: status } }),
        ...(status === 'ERROR' ? { error: { type: 'bool', value: true } } : {}),
        ...(span.status.message
          ? { 'otel.status_description': { type: 'string', value: span.status.message } }
          : {}),
        'otel.scope.name': { type: 'string', value: span.instrumentationScope.name },
        ...(span.instrumentationScope.version
          ? { 'otel.scope.version': { type: 'string', value: span.instrumentationScope.version } }
          : {}),
      });
      expect(
        logs.map((log) => ({ timestamp: log.timestamp, fields: tagMap(log.fields) })),
        span.name,
      ).toEqual(
        span.events.map((event) => ({
          timestamp: micros(event.time),
          fields: {
            event: { type: 'string', value: event.name },
            ...expectedAttributeTags(event.attributes ?? {}),
          },
        })),
      );
      const { 'service.name': serviceName, ...resource } = span.resource.attributes;
      expect(trace.processes[found!.processID]!.serviceName).toBe(serviceName);
      expect(tagMap(trace.processes[found!.processID]!.tags)).toEqual(
        expectedAttributeTags(resource as Attributes),
      );
    }
  }, 90_000);

  it('finds the traces by service, operation and attribute', async () => {
    const root = spans.find((span) => span.name === 'chat gpt-4o-mini')!;
    await traceOf(root.spanContext().traceId);
    const start = micros(root.startTime) - 60_000_000;
    const end = micros(root.endTime) + 60_000_000;
    const search = async (query: string) => {
      const { status, body } = await read(
        `/api/traces?service=checkout&start=${start}&end=${end}&${query}`,
      );
      expect(status).toBe(200);
      return (body as TraceAnswer).data.map((trace) => trace.traceID).sort();
    };
    const all = [...new Set(spans.map((span) => span.spanContext().traceId))].sort();
    expect(await search('limit=100')).toEqual(all);
    expect(await search(`operation=${encodeURIComponent('chat gpt-4o-mini')}`)).toEqual([
      root.spanContext().traceId,
    ]);
    expect(
      await search(
        `tags=${encodeURIComponent(JSON.stringify({ 'gen_ai.request.max_tokens': 512 }))}`,
      ),
    ).toEqual([root.spanContext().traceId]);
    expect(await search(`tags=${encodeURIComponent('span.kind=producer')}`)).toEqual([
      spans.find((span) => span.name === 'kind 3')!.spanContext().traceId,
    ]);
    expect((await read('/api/services')).body).toEqual({
      data: ['checkout'],
      total: 1,
      limit: 0,
      offset: 0,
      errors: null,
    });
  }, 90_000);

  it('answers /api/v3 in the shapes the Jaeger UI (v2.19+) validates', async () => {
    const root = spans.find((span) => span.name === 'chat gpt-4o-mini')!;
    await traceOf(root.spanContext().traceId);
    const services = await read('/api/v3/services');
    expect(services.status).toBe(200);
    expect(JaegerUiServices.parse(services.body).services).toEqual(['checkout']);
    const operations = await read('/api/v3/operations?service=checkout');
    expect(operations.status).toBe(200);
    expect(JaegerUiOperations.parse(operations.body).operations.length).toBeGreaterThan(0);
    // The query as JaegerClient.fetchTraceSummaries builds it.
    const params = new URLSearchParams({
      'query.serviceName': 'checkout',
      'query.startTimeMin': new Date(micros(root.startTime) / 1000 - 3_600_000).toISOString(),
      'query.startTimeMax': new Date(micros(root.endTime) / 1000 + 60_000).toISOString(),
      'query.searchDepth': '20',
    });
    const found = await read(`/api/v3/trace-summaries?${params.toString()}`);
    expect(found.status).toBe(200);
    const parsed = JaegerUiTraceSummaries.safeParse(found.body);
    expect(parsed.error?.issues ?? []).toEqual([]);
    const summaries = parsed.data!.summaries!;
    const all = [...new Set(spans.map((span) => span.spanContext().traceId))];
    expect(summaries.map((summary) => summary.traceId).sort()).toEqual(all.sort());
    const mine = summaries.find((summary) => summary.traceId === root.spanContext().traceId)!;
    const inTrace = spans.filter(
      (span) => span.spanContext().traceId === root.spanContext().traceId,
    );
    expect(mine.spanCount).toBe(inTrace.length);
    expect(mine.services).toEqual([
      { name: 'checkout', spanCount: inTrace.length, errorSpanCount: mine.errorSpanCount },
    ]);
    expect(BigInt(mine.minStartTimeUnixNano!)).toBe(nanos(root.startTime));
  }, 90_000);
});
