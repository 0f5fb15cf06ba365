import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OTEL_TRACES_INSERT_COLUMNS } from '../src/schema/schema.js';
import { ChdbEngine } from '../src/store/chdb-engine.js';
import { InvalidSpanRowError } from '../src/store/native-sink.js';
import { spanRowsToNative } from '../src/store/span-row-native.js';
import type { SpanRow } from '../src/store/span-store.js';
import { walkNativeBlocks } from '../src/writer/native-blocks.js';
import { llmSpan, spanRow, tempDir } from './store-fixtures.js';
import { spanRowsToJsonEachRow } from './support/span-rows-json.js';

const dir = tempDir('mm-native-');
let engine: ChdbEngine;

const COLUMNS = `Timestamp DateTime64(9), TraceId String, SpanId String, ParentSpanId String,
  TraceState String, SpanName LowCardinality(String), SpanKind LowCardinality(String),
  ServiceName LowCardinality(String), ResourceAttributes Map(LowCardinality(String), String),
  ScopeName String, ScopeVersion String, SpanAttributes Map(LowCardinality(String), String),
  Duration UInt64, StatusCode LowCardinality(String), StatusMessage String,
  \`Events.Timestamp\` Array(DateTime64(9)), \`Events.Name\` Array(LowCardinality(String)),
  \`Events.Attributes\` Array(Map(LowCardinality(String), String)), \`Links.TraceId\` Array(String),
  \`Links.SpanId\` Array(String), \`Links.TraceState\` Array(String),
  \`Links.Attributes\` Array(Map(LowCardinality(String), String))`;

beforeAll(async () => {
  engine = new ChdbEngine(dir.path);
  for (const table of ['native', 'json']) {
    await engine.command(
      `CREATE TABLE default.${table} (${COLUMNS}) ENGINE = MergeTree ORDER BY tuple()`,
    );
  }
});
afterAll(async () => {
  await engine.close();
  dir.remove();
});

const awkward =
  'tab\there, newline\nthere, quote \' and "double", back\\slash, nul \0, é, 日本, 🙂';
const long = 'x'.repeat(300) + 'é'.repeat(100);

function rows(): SpanRow[] {
  const shared = { 'service.name': 'native', 'host.name': awkward };
  return [
    llmSpan({ service: 'native', extra: { awkward, long, '': 'empty key' } }),
    spanRow({ ServiceName: 'native', ResourceAttributes: shared, StatusMessage: awkward }),
    spanRow({
      ServiceName: 'native',
      ResourceAttributes: shared,
      TraceState: long,
      SpanName: awkward,
      Timestamp: '4102444800123456789',
      Duration: '0',
      Events: {
        Timestamp: ['1700000000123456789', '1000000000000000001'],
        Name: ['first', awkward],
        Attributes: [{ a: '1', b: awkward }, {}],
      },
      Links: {
        TraceId: ['0102030405060708090a0b0c0d0e0f10'],
        SpanId: ['0102030405060708'],
        TraceState: ['k=v'],
        Attributes: [{ link: long }],
      },
    }),
    spanRow({ ServiceName: 'native', SpanAttributes: {}, ResourceAttributes: {} }),
  ];
}

const columns = OTEL_TRACES_INSERT_COLUMNS;

describe('Native span blocks', () => {
  it('store exactly what the same rows as JSONEachRow store', async () => {
    const sample = rows();
    const blocks = [spanRowsToNative(sample.slice(0, 2)), spanRowsToNative(sample.slice(2))];
    await engine.insert({
      table: 'default.native',
      columns,
      format: 'Native',
      body: Buffer.concat(blocks),
    });
    await engine.insert({
      table: 'default.json',
      columns,
      format: 'JSONEachRow',
      body: spanRowsToJsonEachRow(sample),
    });
    const read = async (table: string) =>
      (
        await engine.query<Record<string, unknown>>(
          `SELECT * FROM default.${table} ORDER BY SpanId`,
        )
      ).data;
    const native = await read('native');
    expect(native).toHaveLength(4);
    expect(native).toEqual(await read('json'));
    const [awkwardRow] = (
      await engine.query<{ message: string }>(
        `SELECT StatusMessage AS message FROM default.native WHERE StatusMessage != ''`,
      )
    ).data;
    expect(awkwardRow?.message).toBe(awkward);
  });

  it('are walked block by block: rows counted, a torn tail found', () => {
    const first = spanRowsToNative(rows().slice(0, 3));
    const second = spanRowsToNative(rows().slice(3));
    const whole = Buffer.concat([first, second]);
    expect(walkNativeBlocks(whole)).toEqual({ rows: 4, length: whole.length, blocks: 2 });
    for (const cut of [1, 10, second.length - 1]) {
      expect(walkNativeBlocks(whole.subarray(0, first.length + cut))).toEqual({
        rows: 3,
        length: first.length,
        blocks: 1,
        stopped: 'torn',
      });
    }
    expect(walkNativeBlocks(Buffer.from('this is\tnot a span row\n')).stopped).toBeDefined();
  });

  it('reject a row with a timestamp that is not a number of nanoseconds', () => {
    expect(() => spanRowsToNative([spanRow({ Timestamp: '12:00' })])).toThrow(InvalidSpanRowError);
    expect(() => spanRowsToNative([spanRow({ Duration: '-1' })])).toThrow(InvalidSpanRowError);
    expect(() => spanRowsToNative([spanRow({ Timestamp: '9223372036854775808' })])).toThrow(
      InvalidSpanRowError,
    );
    expect(() => spanRowsToNative([spanRow({ Duration: '18446744073709551616' })])).toThrow(
      InvalidSpanRowError,
    );
  });
});
