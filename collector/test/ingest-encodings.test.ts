/**
 * The same spans sent to `POST /v1/traces` as OTLP/protobuf (decoded straight
 * into Native columns) and as OTLP/JSON (decoded into rows, then encoded) must
 * be stored as the same rows in ClickHouse, down to attribute-map order.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, startCollector, type RunningCollector } from '../src/index.js';
import type { ClickHouseStore } from '../src/store/clickhouse-store.js';
import { recordSpans, toJson, toProtobuf } from './support/otlp-fixtures.js';
import { attributes, ProtoWriter, type Value } from './support/proto-writer.js';

let collector: RunningCollector;
let store: ClickHouseStore;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-encodings-'));
  store = await openStore({ dataDir: join(dataDir, 'data'), batch: { maxDelayMs: 20 } });
  collector = await startCollector({ store, config: { port: 0 } });
});

afterAll(async () => {
  await collector?.close();
  await store?.close();
  await rm(dataDir, { recursive: true, force: true });
}, 60_000);

async function post(body: Uint8Array | string, contentType: string): Promise<void> {
  const response = await fetch(`${collector.url}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  expect(response.status).toBe(200);
  await response.arrayBuffer();
}

/** Attributes in both encodings: a list of [key, value] (repeats allowed). */
type Attributes = [string, Value][];

function jsonValue(value: Value): unknown {
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (value instanceof Uint8Array) return { bytesValue: Buffer.from(value).toString('base64') };
  if (Array.isArray(value)) return { arrayValue: { values: value.map(jsonValue) } };
  if ('int' in value) return { intValue: String(value.int) };
  if ('double' in value) return { doubleValue: value.double };
  if ('utf8' in value) throw new Error('JSON carries only valid strings');
  return { kvlistValue: { values: jsonAttributes(value.kv) } };
}

const jsonAttributes = (entries: Attributes) =>
  entries.map(([key, value]) => ({ key, value: jsonValue(value) }));

interface SpanSpec {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  start: bigint;
  end: bigint;
  attributes: Attributes;
  events: { time: bigint; name: string; attributes: Attributes }[];
  links: { traceId: string; spanId: string; traceState: string; attributes: Attributes }[];
  status?: { code: number; message: string };
}

const RESOURCE: Attributes = [
  ['service.name', 'encodings'],
  ['host.name', 'h1'],
  ['9', 'nine'],
  ['host.name', 'h2'],
];

const SPANS: SpanSpec[] = [
  {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    name: 'chat gpt-4o',
    kind: 3,
    start: 1_732_740_000_000_000_000n,
    end: 1_732_740_001_234_567_891n,
    attributes: [
      ['gen_ai.operation.name', 'chat'],
      ['gen_ai.usage.input_tokens', { int: 1234 }],
      ['gen_ai.request.temperature', { double: 0.7 }],
      ['gen_ai.request.stream', true],
      ['gen_ai.response.finish_reasons', ['stop', 'length']],
      ['b', 'first'],
      ['10', 'ten'],
      ['2', 'two'],
      ['b', 'last'],
      ['__proto__', 'proto'],
      ['unicode', 'héllo — ✓ 日本 🙂'],
      ['tab', 'a\tb\nc'],
      [
        'map',
        {
          kv: [
            ['z', { int: -1 }],
            ['a', 'x & <y>'],
          ],
        },
      ],
      ['raw', Buffer.from([0, 1, 2, 254, 255])],
      ['big', { int: -(2n ** 63n) }],
      ['', 'empty key'],
    ],
    events: [
      {
        time: 1_732_740_000_500_000_000n,
        name: 'gen_ai.evaluation.result',
        attributes: [
          ['gen_ai.evaluation.name', 'check'],
          ['gen_ai.evaluation.score.value', { double: 1 }],
          ['gen_ai.evaluation.name', 'check again'],
        ],
      },
      { time: 1_732_740_000_600_000_000n, name: 'plain', attributes: [] },
    ],
    links: [
      {
        traceId: '11111111111111111111111111111111',
        spanId: '2222222222222222',
        traceState: 'k=v',
        attributes: [['link.reason', 'retry']],
      },
    ],
    status: { code: 2, message: 'upstream 500' },
  },
  {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'c7ad6b7169203332',
    parentSpanId: 'b7ad6b7169203331',
    name: 'route',
    kind: 1,
    start: 1_732_740_000_100_000_000n,
    end: 1_732_740_000_100_000_000n,
    attributes: [['x'.repeat(300), 'y'.repeat(300)]],
    events: [],
    links: [],
  },
];

function protobufBody(spans: SpanSpec[]): Buffer {
  return new ProtoWriter()
    .message(1, (resourceSpans) => {
      resourceSpans.message(1, (resource) => attributes(resource, 1, RESOURCE));
      resourceSpans.message(2, (scopeSpans) => {
        scopeSpans.message(1, (scope) => scope.bytes(1, 'encodings-test').bytes(2, '1.0'));
        for (const span of spans) {
          scopeSpans.message(2, (message) => {
            message.bytes(1, Buffer.from(span.traceId, 'hex'));
            message.bytes(2, Buffer.from(span.spanId, 'hex'));
            if (span.parentSpanId !== undefined) {
              message.bytes(4, Buffer.from(span.parentSpanId, 'hex'));
            }
            message.bytes(5, span.name).uint(6, span.kind);
            message.fixed64(7, span.start).fixed64(8, span.end);
            attributes(message, 9, span.attributes);
            for (const event of span.events) {
              message.message(11, (writer) => {
                writer.fixed64(1, event.time).bytes(2, event.name);
                attributes(writer, 3, event.attributes);
              });
            }
            for (const link of span.links) {
              message.message(13, (writer) => {
                writer.bytes(1, Buffer.from(link.traceId, 'hex'));
                writer.bytes(2, Buffer.from(link.spanId, 'hex'));
                writer.bytes(3, link.traceState);
                attributes(writer, 4, link.attributes);
              });
            }
            if (span.status !== undefined) {
              const { code, message: text } = span.status;
              message.message(15, (writer) => writer.bytes(2, text).uint(3, code));
            }
          });
        }
      });
    })
    .finish();
}

function jsonBody(spans: SpanSpec[]): string {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: jsonAttributes(RESOURCE) },
        scopeSpans: [
          {
            scope: { name: 'encodings-test', version: '1.0' },
            spans: spans.map((span) => ({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId,
              name: span.name,
              kind: span.kind,
              startTimeUnixNano: String(span.start),
              endTimeUnixNano: String(span.end),
              attributes: jsonAttributes(span.attributes),
              events: span.events.map((event) => ({
                timeUnixNano: String(event.time),
                name: event.name,
                attributes: jsonAttributes(event.attributes),
              })),
              links: span.links.map((link) => ({
                ...link,
                attributes: jsonAttributes(link.attributes),
              })),
              status: span.status,
            })),
          },
        ],
      },
    ],
  });
}

/** Every stored row of `otel_traces`, maps as [key, value] lists (order kept), sorted. */
async function storedRows(): Promise<string[]> {
  expect(await store.flush()).toBe(true);
  const result = await store.querySql(
    `SELECT toString(Timestamp) AS ts, * EXCEPT Timestamp,
       mapKeys(ResourceAttributes) AS resourceKeys, mapKeys(SpanAttributes) AS spanKeys,
       arrayMap(m -> mapKeys(m), Events.Attributes) AS eventKeys
     FROM modelmaxx.otel_traces`,
    { maxRows: 10_000, maxExecutionSeconds: 30 },
  );
  return result.rows.map((row) => JSON.stringify(row)).sort();
}

describe('the same spans as OTLP/protobuf and as OTLP/JSON', () => {
  it('are stored as the same rows (SDK serializers and hand-made requests)', async () => {
    const sdkSpans = await recordSpans();
    await post(toJson(sdkSpans), 'application/json');
    await post(jsonBody(SPANS), 'application/json');
    const fromJson = await storedRows();
    expect(fromJson).toHaveLength(sdkSpans.length + SPANS.length);
    await post(toProtobuf(sdkSpans), 'application/x-protobuf');
    await post(protobufBody(SPANS), 'application/x-protobuf');
    const both = await storedRows();
    expect(both).toHaveLength(2 * fromJson.length);
    // Each row twice: once from JSON, once from protobuf.
    expect(both.filter((_, index) => index % 2 === 0)).toEqual(fromJson);
    expect(both.filter((_, index) => index % 2 === 1)).toEqual(fromJson);
    const stored = fromJson.map((row) => JSON.parse(row) as Record<string, unknown>);
    const chat = stored.find((row) => row['SpanName'] === 'chat gpt-4o')!;
    expect(chat['spanKeys']).toEqual([
      '2',
      '10',
      'gen_ai.operation.name',
      'gen_ai.usage.input_tokens',
      'gen_ai.request.temperature',
      'gen_ai.request.stream',
      'gen_ai.response.finish_reasons',
      'b',
      '__proto__',
      'unicode',
      'tab',
      'map',
      'raw',
      'big',
      '',
    ]);
    expect(chat['resourceKeys']).toEqual(['9', 'service.name', 'host.name']);
    expect(chat['ServiceName']).toBe('encodings');
  }, 60_000);
});
