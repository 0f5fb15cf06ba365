import { describe, expect, it } from 'vitest';
import { decodeTraceRequestJson } from '../src/otlp/decode-json.js';
import {
  decodeTraceRequestProtobuf,
  decodeTraceRequestProtobufToNative,
} from '../src/otlp/decode-protobuf.js';
import { u64Difference, u64ToDecimal } from '../src/otlp/to-span-rows.js';
import { MalformedPayloadError } from '../src/errors.js';
import { nativeToSpanRows, spanRowsToNative } from '../src/store/span-row-native.js';
import type { SpanRow } from '../src/store/span-store.js';
import { walkNativeBlocks } from '../src/writer/native-blocks.js';
import { expectedRow, recordSpans, toJson, toProtobuf } from './support/otlp-fixtures.js';
import { attributes, ProtoWriter, type Value } from './support/proto-writer.js';
import { createRandom } from '@modelmaxx/router';

const json = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));

const TRACE_ID = '5B8EFFF798038103D269B633813FC60C';
const SPAN_ID = 'EEE19B7EC3C1B174';

/** A minimal valid OTLP/JSON request around `span` (merged over a valid span). */
function jsonRequest(span: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }],
        },
        scopeSpans: [
          {
            scope: { name: 'scope', version: '2' },
            spans: [
              {
                traceId: TRACE_ID,
                spanId: SPAN_ID,
                name: 'op',
                kind: 3,
                startTimeUnixNano: '1732740000123456789',
                endTimeUnixNano: '1732740000223456789',
                ...span,
              },
            ],
          },
        ],
      },
    ],
    ...extra,
  };
}

describe('u64 decimal text', () => {
  it('matches BigInt for values across the 2^53 boundary and up to 2^64-1', () => {
    const samples: bigint[] = [
      0n,
      1n,
      2n ** 53n - 1n,
      2n ** 53n,
      2n ** 53n + 1n,
      1_732_740_000_123_456_789n,
      2n ** 63n - 1n,
      2n ** 64n - 1n,
      4_294_967_296n * 1_000_000_007n + 999_999_999n,
    ];
    const next = createRandom(12345);
    const word = () => Math.floor(next() * 2 ** 32);
    for (let index = 0; index < 2000; index++) {
      samples.push((BigInt(word()) << 32n) | BigInt(word()));
    }
    for (const value of samples) {
      const high = Number(value >> 32n);
      const low = Number(value & 0xffffffffn);
      expect(u64ToDecimal(high, low)).toBe(value.toString());
    }
    expect(u64Difference(0x19000000, 5, 0x19000001, 2)).toBe((2n ** 32n - 3n).toString());
    expect(u64Difference(0x19000001, 2, 0x19000000, 5)).toBeUndefined();
  });
});

describe('decodeTraceRequestProtobuf', () => {
  it('turns real SDK spans serialized by ProtobufTraceSerializer into exporter rows', async () => {
    const spans = await recordSpans();
    const decoded = decodeTraceRequestProtobuf(toProtobuf(spans));
    expect(decoded.rejectedSpans).toBe(0);
    expect(decoded.problems).toEqual([]);
    const byId = new Map(decoded.rows.map((row) => [row.SpanId, row]));
    expect(decoded.rows).toHaveLength(spans.length);
    for (const span of spans) {
      expect(byId.get(span.spanContext().spanId)).toEqual(expectedRow(span));
    }
    const root = decoded.rows.find((row) => row.SpanName === 'chat gpt-4o-mini')!;
    // Spot checks of the exporter's conventions, beyond the oracle above.
    expect(root.SpanKind).toBe('Client');
    expect(root.StatusCode).toBe('Error');
    expect(root.ServiceName).toBe('checkout');
    expect(root.SpanAttributes['gen_ai.request.stop_sequences']).toBe(
      '["\\u003cend\\u003e","a \\"quoted\\" \\u0026 \\u003cb\\u003e"]',
    );
    expect(root.SpanAttributes['modelmaxx.big']).toBe('1e+21');
    expect(root.SpanAttributes['modelmaxx.tiny']).toBe('1e-7');
    expect(root.ResourceAttributes['process.pid']).toBe('4242');
  });

  it('decodes the same rows from the JSON serializer as from the protobuf one', async () => {
    const spans = await recordSpans();
    const fromProtobuf = decodeTraceRequestProtobuf(toProtobuf(spans));
    const fromJson = decodeTraceRequestJson(toJson(spans));
    expect(fromJson.problems).toEqual([]);
    expect(fromJson.rejectedSpans).toBe(0);
    expect(fromJson.rows).toEqual(fromProtobuf.rows);
  });

  it('writes the Native block the rows of the JSON decoder encode to, byte for byte', async () => {
    const spans = await recordSpans();
    const native = decodeTraceRequestProtobufToNative(toProtobuf(spans));
    expect(native.spans).toBe(spans.length);
    expect(walkNativeBlocks(native.block)).toEqual({
      rows: spans.length,
      length: native.block.length,
      blocks: 1,
    });
    const fromJson = decodeTraceRequestJson(toJson(spans));
    expect(native.block.equals(spanRowsToNative(fromJson.rows))).toBe(true);
  });

  it('writes attribute maps as the JS objects of rows hold them (repeats, array-index keys, odd bytes)', () => {
    const traceId = Buffer.alloc(16, 0xab);
    const spanId = Buffer.alloc(8, 0xcd);
    const entries: [string | Uint8Array, Value][] = [
      ['b', 'first b'],
      ['10', { int: 10 }],
      ['a', 'é 日本 🙂'],
      ['2', true],
      ['b', 'last b'],
      ['__proto__', { double: 0.5 }],
      ['01', 'not an index'],
      ['', 'empty key'],
      ['', 'empty key again'],
      [Buffer.from([0x6b, 0xff]), { utf8: Buffer.from([0xc3]) }],
      ['k'.repeat(200), 'long key'],
      ['k'.repeat(200), 'long key again'],
      ['list', ['x', { double: Infinity }]],
    ];
    const body = new ProtoWriter()
      .message(1, (resourceSpans) => {
        resourceSpans.message(1, (resource) =>
          attributes(resource, 1, [
            ['service.name', 'one'],
            ['7', 'seven'],
            ['service.name', 'two'],
          ]),
        );
        resourceSpans.message(2, (scopeSpans) => {
          scopeSpans.message(1, (scope) => scope.bytes(1, 'scope'));
          scopeSpans.message(2, (span) => {
            span
              .bytes(1, traceId)
              .bytes(2, spanId)
              .bytes(5, Buffer.from([0x6f, 0x70, 0xe2]));
            span.fixed64(7, 1_700_000_000_000_000_000n).fixed64(8, 1_700_000_000_000_000_500n);
            attributes(span, 9, entries);
            span.message(11, (event) => {
              event.bytes(2, 'evaluation');
              attributes(event, 3, [
                ['n', '1'],
                ['n', '2'],
              ]);
            });
          });
        });
      })
      .finish();
    const decoded = decodeTraceRequestProtobufToNative(body);
    expect(decoded.rejectedSpans).toBe(0);
    const spanAttributes = Object.create(null) as Record<string, string>;
    spanAttributes['2'] = 'true';
    spanAttributes['10'] = '10';
    spanAttributes['b'] = 'last b';
    spanAttributes['a'] = 'é 日本 🙂';
    Object.defineProperty(spanAttributes, '__proto__', {
      value: '0.5',
      enumerable: true,
      writable: true,
      configurable: true,
    });
    spanAttributes['01'] = 'not an index';
    spanAttributes[''] = 'empty key again';
    spanAttributes['k\ufffd'] = '\ufffd';
    spanAttributes['k'.repeat(200)] = 'long key again';
    spanAttributes['list'] = '';
    const expected: SpanRow = {
      Timestamp: '1700000000000000000',
      TraceId: 'ab'.repeat(16),
      SpanId: 'cd'.repeat(8),
      ParentSpanId: '',
      TraceState: '',
      SpanName: 'op\ufffd',
      SpanKind: 'Unspecified',
      ServiceName: 'two',
      ResourceAttributes: { 7: 'seven', 'service.name': 'two' },
      ScopeName: 'scope',
      ScopeVersion: '',
      SpanAttributes: spanAttributes,
      Duration: '500',
      StatusCode: 'Unset',
      StatusMessage: '',
      Events: { Timestamp: ['0'], Name: ['evaluation'], Attributes: [{ n: '2' }] },
      Links: { TraceId: [], SpanId: [], TraceState: [], Attributes: [] },
    };
    const [row] = nativeToSpanRows(decoded.block);
    expect(row).toEqual(expected);
    expect(Object.keys(row!.SpanAttributes)).toEqual(Object.keys(spanAttributes));
    expect(decoded.block.equals(spanRowsToNative([expected]))).toBe(true);
  });

  it('leaves nothing of a rejected span in the block', () => {
    const span = (writer: ProtoWriter, index: number, extra: (span: ProtoWriter) => void) =>
      writer.message(2, (message) => {
        message.bytes(1, Buffer.alloc(16, index + 1)).bytes(2, Buffer.alloc(8, index + 1));
        message.fixed64(7, 1_000n).fixed64(8, 2_000n);
        attributes(message, 9, [[`key ${index}`, `value ${index}`]]);
        message.message(11, (event) => attributes(event, 3, [['e', String(index)]]));
        extra(message);
      });
    const body = new ProtoWriter()
      .message(1, (resourceSpans) =>
        resourceSpans.message(2, (scopeSpans) => {
          span(scopeSpans, 0, () => undefined);
          span(scopeSpans, 1, (message) => message.fixed64(8, 999n));
          span(scopeSpans, 2, (message) =>
            message.message(13, (link) => link.bytes(1, Buffer.alloc(3, 1))),
          );
          span(scopeSpans, 3, () => undefined);
        }),
      )
      .finish();
    const decoded = decodeTraceRequestProtobufToNative(body);
    expect(decoded.spans).toBe(2);
    expect(decoded.rejectedSpans).toBe(2);
    expect(decoded.problems).toEqual([
      'resourceSpans[0].scopeSpans[0].spans[1]: endTimeUnixNano is before startTimeUnixNano',
      'resourceSpans[0].scopeSpans[0].spans[2]: link traceId must be 16 bytes, got 3',
    ]);
    const rows = nativeToSpanRows(decoded.block);
    expect(rows.map((row) => row.SpanAttributes)).toEqual([
      { 'key 0': 'value 0' },
      { 'key 3': 'value 3' },
    ]);
    expect(rows.map((row) => row.Events.Attributes)).toEqual([[{ e: '0' }], [{ e: '3' }]]);
    expect(rows.map((row) => row.Links.TraceId)).toEqual([[], []]);
    expect(decoded.block.equals(spanRowsToNative(rows))).toBe(true);
  });

  it('decodes an empty request to no rows', () => {
    expect(decodeTraceRequestProtobuf(new Uint8Array(0))).toEqual({
      rows: [],
      rejectedSpans: 0,
      problems: [],
      truncatedValues: 0,
    });
  });

  it('throws MalformedPayloadError with a position on truncated bytes', async () => {
    const bytes = toProtobuf(await recordSpans());
    const truncated = bytes.subarray(0, bytes.length - 7);
    expect(() => decodeTraceRequestProtobuf(truncated)).toThrow(MalformedPayloadError);
    expect(() => decodeTraceRequestProtobuf(truncated)).toThrow(
      /invalid protobuf: .* \(at byte \d+\)/,
    );
  });

  it('rejects a length that does not fit in 32 bits instead of truncating it', () => {
    // Field 1, LEN, length 2^32 + 1 (6 varint bytes), then one byte.
    const bytes = Uint8Array.from([0x0a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00]);
    expect(() => decodeTraceRequestProtobuf(bytes)).toThrow(/length does not fit in 32 bits/);
  });

  it('rejects a wrong wire type for a known field', () => {
    // Field 1 (resource_spans) as a varint instead of a message.
    expect(() => decodeTraceRequestProtobuf(Uint8Array.from([0x08, 0x01]))).toThrow(
      /field 1 has wire type VARINT, expected LEN/,
    );
  });
});

describe('decodeTraceRequestJson', () => {
  it('accepts upper-case hex ids and writes them lower-case', () => {
    const decoded = decodeTraceRequestJson(json(jsonRequest({ parentSpanId: 'ABCDEF0123456789' })));
    expect(decoded.rejectedSpans).toBe(0);
    expect(decoded.rows[0]).toMatchObject({
      TraceId: TRACE_ID.toLowerCase(),
      SpanId: SPAN_ID.toLowerCase(),
      ParentSpanId: 'abcdef0123456789',
      SpanKind: 'Client',
      ServiceName: 'svc',
      ScopeName: 'scope',
      ScopeVersion: '2',
      Timestamp: '1732740000123456789',
      Duration: '100000000',
    });
  });

  it('accepts int64 as strings and as numbers, and enums as integers or names', () => {
    const decoded = decodeTraceRequestJson(
      json(
        jsonRequest({
          startTimeUnixNano: 1_000_000_000,
          endTimeUnixNano: '1000000500',
          kind: 'SPAN_KIND_SERVER',
          status: { code: 2, message: 'boom' },
          attributes: [
            { key: 'as.string', value: { intValue: '-9223372036854775808' } },
            { key: 'as.number', value: { intValue: 42 } },
            { key: 'double', value: { doubleValue: 2.5 } },
            { key: 'nan', value: { doubleValue: 'NaN' } },
            { key: 'bytes', value: { bytesValue: 'AQID' } },
            { key: 'empty', value: {} },
            {
              key: 'map',
              value: {
                kvlistValue: {
                  values: [
                    { key: 'z', value: { intValue: '9007199254740993' } },
                    { key: 'a', value: { arrayValue: { values: [{ boolValue: true }, {}] } } },
                  ],
                },
              },
            },
          ],
        }),
      ),
    );
    expect(decoded.rejectedSpans).toBe(0);
    const row = decoded.rows[0]!;
    expect(row.Timestamp).toBe('1000000000');
    expect(row.Duration).toBe('500');
    expect(row.SpanKind).toBe('Server');
    expect(row.StatusCode).toBe('Error');
    expect(row.StatusMessage).toBe('boom');
    expect(row.SpanAttributes).toEqual({
      'as.string': '-9223372036854775808',
      'as.number': '42',
      double: '2.5',
      nan: 'json: unsupported value: NaN',
      bytes: 'AQID',
      empty: '',
      map: '{"a":[true,null],"z":9007199254740993}',
    });
  });

  it('ignores unknown fields at every level', () => {
    const request = jsonRequest({ somethingNew: { nested: [1, 2] }, droppedLinksCount: 3 });
    const withExtras = {
      ...request,
      futureField: true,
      resourceSpans: request.resourceSpans.map((resource) => ({
        ...resource,
        schemaUrl: 'https://opentelemetry.io/schemas/1.30.0',
        entityRefs: [],
      })),
    };
    const decoded = decodeTraceRequestJson(json(withExtras));
    expect(decoded.rejectedSpans).toBe(0);
    expect(decoded.rows).toHaveLength(1);
  });

  it('takes null as the default of span-level fields (proto3 JSON)', () => {
    const decoded = decodeTraceRequestJson(
      json(
        jsonRequest({
          parentSpanId: null,
          traceState: null,
          kind: null,
          attributes: null,
          events: null,
          links: null,
          status: { code: null, message: null },
        }),
      ),
    );
    expect(decoded.problems).toEqual([]);
    expect(decoded.rows[0]).toMatchObject({
      ParentSpanId: '',
      TraceState: '',
      SpanKind: 'Unspecified',
      StatusCode: 'Unset',
      SpanAttributes: {},
    });
  });

  it('rejects bad spans individually and keeps the good ones', () => {
    const request = jsonRequest({});
    const good = request.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    request.resourceSpans[0]!.scopeSpans[0]!.spans.push(
      { ...good, traceId: 'abc' },
      { ...good, spanId: '0000000000000000' },
      { ...good, endTimeUnixNano: '1' },
      { ...good, startTimeUnixNano: 'yesterday' },
    );
    const decoded = decodeTraceRequestJson(json(request));
    expect(decoded.rows).toHaveLength(1);
    expect(decoded.rejectedSpans).toBe(4);
    expect(decoded.problems).toEqual([
      'resourceSpans[0].scopeSpans[0].spans[1]: traceId: must be 32 hex digits',
      'resourceSpans[0].scopeSpans[0].spans[2]: spanId must not be all zeros',
      'resourceSpans[0].scopeSpans[0].spans[3]: endTimeUnixNano is before startTimeUnixNano',
      expect.stringContaining('resourceSpans[0].scopeSpans[0].spans[4]: startTimeUnixNano'),
    ]);
  });

  it('rejects a span whose nested attribute value is invalid or too deep, naming the path', () => {
    let deep: Record<string, unknown> = { stringValue: 'bottom' };
    for (let level = 0; level < 40; level++) deep = { arrayValue: { values: [deep] } };
    const request = jsonRequest({});
    const good = request.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    (request.resourceSpans[0]!.scopeSpans[0]!.spans as Record<string, unknown>[]).push(
      {
        ...good,
        attributes: [
          { key: 'ok', value: { stringValue: 'x' } },
          {
            key: 'bad',
            value: { kvlistValue: { values: [{ key: 'k', value: { boolValue: 'yes' } }] } },
          },
        ],
      },
      { ...good, attributes: [{ key: 'deep', value: deep }] },
      { ...good, attributes: [{ key: 'huge', value: { intValue: '99999999999999999999' } }] },
    );
    const decoded = decodeTraceRequestJson(json(request));
    expect(decoded.rows).toHaveLength(1);
    expect(decoded.problems).toEqual([
      expect.stringMatching(
        /^resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[1\]: attributes\.1\.value\.kvlistValue\.values\.0\.value\.boolValue: .*expected boolean/,
      ),
      'resourceSpans[0].scopeSpans[0].spans[2]: attributes.0.value' +
        '.arrayValue.values.0'.repeat(32) +
        ': attribute value nested deeper than 32',
      'resourceSpans[0].scopeSpans[0].spans[3]: attributes.0.value.intValue: out of the int64 range',
    ]);
  });

  it('says what is wrong with a body that is not OTLP', () => {
    expect(() => decodeTraceRequestJson(Buffer.from('{"resourceSpans": '))).toThrow(
      /^invalid JSON: /,
    );
    expect(() => decodeTraceRequestJson(json([1, 2]))).toThrow(
      /must be an ExportTraceServiceRequest/,
    );
    expect(() => decodeTraceRequestJson(json({ resourceSpans: 'x' }))).toThrow(
      /invalid OTLP\/JSON: resourceSpans: /,
    );
  });
});
