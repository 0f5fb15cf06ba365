/**
 * Fuzzing the OTLP decoders with seeded mutations of valid payloads (real SDK
 * spans serialized by the OTel serializers): bytes flipped, inserted, deleted,
 * truncated and duplicated; JSON values swapped for other types. The decoders
 * must never crash or hang: they return rows that satisfy the store's
 * invariants, or throw `MalformedPayloadError` (400). Then the same through
 * HTTP: only 200 and 400 come back, and the collector stays up. The protobuf
 * decoder writes Native blocks: each must be whole and hold exactly what its rows
 * encode to (the same bytes as the JSON path would write for those rows).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MalformedPayloadError } from '../src/errors.js';
import { openStore, startCollector, type RunningCollector, type SpanStore } from '../src/index.js';
import { decodeTraceRequestJson } from '../src/otlp/decode-json.js';
import { decodeTraceRequestProtobufToNative } from '../src/otlp/decode-protobuf.js';
import type { DecodedTraces } from '../src/otlp/to-span-rows.js';
import { nativeToSpanRows, spanRowsToNative } from '../src/store/span-row-native.js';
import { walkNativeBlocks } from '../src/writer/native-blocks.js';
import { recordSpans, toJson, toProtobuf } from './support/otlp-fixtures.js';
import { createRandom } from '@modelmaxx/router';

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x1a, 0x08, 0x10, 0x39];

function mutateBytes(input: Uint8Array, next: () => number): Uint8Array {
  let bytes = Buffer.from(input);
  const mutations = 1 + Math.floor(next() * 4);
  const int = (below: number) => Math.floor(next() * below);
  for (let step = 0; step < mutations && bytes.length > 0; step++) {
    const at = int(bytes.length);
    switch (int(8)) {
      case 0:
        bytes[at] = bytes[at]! ^ (1 << int(8));
        break;
      case 1:
        bytes[at] = INTERESTING_BYTES[int(INTERESTING_BYTES.length)]!;
        break;
      case 2:
        bytes[at] = int(256);
        break;
      case 3: {
        const inserted = Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256)));
        bytes = Buffer.concat([bytes.subarray(0, at), inserted, bytes.subarray(at)]);
        break;
      }
      case 4:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + int(16))]);
        break;
      case 5:
        bytes = bytes.subarray(0, at);
        break;
      case 6: {
        const end = Math.min(bytes.length, at + 1 + int(64));
        bytes = Buffer.concat([
          bytes.subarray(0, end),
          bytes.subarray(at, end),
          bytes.subarray(end),
        ]);
        break;
      }
      default: {
        // A run of continuation bytes: overlong varints.
        const run = Buffer.alloc(1 + int(12), 0xff);
        bytes = Buffer.concat([bytes.subarray(0, at), run, bytes.subarray(at)]);
      }
    }
  }
  return bytes;
}

const ODD_VALUES: unknown[] = [
  null,
  0,
  -1,
  1.5,
  2 ** 64,
  -(2 ** 63),
  '',
  'ZZ',
  '18446744073709551616',
  '-5',
  'AbCdEf0123456789AbCdEf0123456789',
  true,
  [],
  {},
  { stringValue: 1 },
  { arrayValue: { values: [{ kvlistValue: { values: [{ key: 'k' }] } }] } },
  { doubleValue: 'NaN' },
  { bytesValue: '%%%' },
  'x'.repeat(300),
];

/** Replaces, deletes or duplicates random values deep in a JSON document. */
function mutateJson(document: unknown, next: () => number): unknown {
  const copy = structuredClone(document);
  const mutations = 1 + Math.floor(next() * 3);
  for (let step = 0; step < mutations; step++) {
    let node: unknown = copy;
    let parent: Record<string, unknown> | unknown[] | undefined;
    let key: string | number | undefined;
    for (let depth = 0; depth < 12; depth++) {
      if (typeof node !== 'object' || node === null) break;
      const keys = Array.isArray(node) ? node.map((_, index) => index) : Object.keys(node);
      if (keys.length === 0 || next() < 0.15) break;
      parent = node as Record<string, unknown>;
      key = keys[Math.floor(next() * keys.length)]!;
      node = (parent as Record<string, unknown>)[key];
    }
    if (parent === undefined || key === undefined) continue;
    const choice = next();
    if (choice < 0.6) {
      (parent as Record<string, unknown>)[key] = structuredClone(
        ODD_VALUES[Math.floor(next() * ODD_VALUES.length)],
      );
    } else if (choice < 0.8 && !Array.isArray(parent)) {
      delete (parent as Record<string, unknown>)[key as string];
    } else if (Array.isArray(parent)) {
      parent.push(structuredClone(node));
    } else {
      (parent as Record<string, unknown>)[`${key}Unknown`] = structuredClone(node);
    }
  }
  return copy;
}

const DIGITS = /^\d{1,19}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

/** What the store relies on for every row it gets. */
function checkRows(decoded: DecodedTraces): void {
  expect(decoded.rejectedSpans).toBeGreaterThanOrEqual(0);
  for (const row of decoded.rows) {
    expect(row.TraceId).toMatch(HEX32);
    expect(row.SpanId).toMatch(HEX16);
    expect(row.ParentSpanId === '' || HEX16.test(row.ParentSpanId)).toBe(true);
    expect(row.Timestamp).toMatch(DIGITS);
    expect(row.Duration).toMatch(DIGITS);
    expect(BigInt(row.Timestamp) + BigInt(row.Duration)).toBeLessThan(2n ** 63n);
    for (const record of [row.SpanAttributes, row.ResourceAttributes, ...row.Events.Attributes]) {
      for (const value of Object.values(record)) expect(typeof value).toBe('string');
    }
    expect(row.Events.Name).toHaveLength(row.Events.Timestamp.length);
    expect(row.Events.Attributes).toHaveLength(row.Events.Timestamp.length);
    for (const timestamp of row.Events.Timestamp) expect(timestamp).toMatch(DIGITS);
    expect(row.Links.SpanId).toHaveLength(row.Links.TraceId.length);
  }
}

/** The protobuf decoder's block, checked whole and equal to its rows' encoding, as rows. */
function decodeProtobufChecked(bytes: Uint8Array): DecodedTraces {
  const { block, spans, rejectedSpans, problems, truncatedValues } =
    decodeTraceRequestProtobufToNative(bytes);
  // The writer never spools an empty block, and the spool walk calls one malformed.
  if (spans > 0) {
    expect(walkNativeBlocks(block)).toEqual({ rows: spans, length: block.length, blocks: 1 });
  }
  const rows = nativeToSpanRows(block);
  expect(rows).toHaveLength(spans);
  expect(spanRowsToNative(rows).equals(block)).toBe(true);
  return { rows, rejectedSpans, problems, truncatedValues };
}

/** Runs `decode`; only `MalformedPayloadError` may escape. Returns the slowest call in ms. */
function fuzz(
  payloads: Uint8Array[],
  decode: (bytes: Uint8Array) => DecodedTraces,
): { slowestMs: number; malformed: number; decoded: number } {
  let slowestMs = 0;
  let malformed = 0;
  let decoded = 0;
  for (const payload of payloads) {
    const started = performance.now();
    try {
      checkRows(decode(payload));
      decoded += 1;
    } catch (error) {
      if (!(error instanceof MalformedPayloadError)) {
        throw new Error(
          `decoder crashed on ${Buffer.from(payload).toString('base64')}: ${String(error)}`,
          { cause: error },
        );
      }
      expect(error.message).not.toBe('');
      malformed += 1;
    }
    slowestMs = Math.max(slowestMs, performance.now() - started);
  }
  return { slowestMs, malformed, decoded };
}

let protobufSeed: Uint8Array;
let jsonSeed: unknown;

beforeAll(async () => {
  const spans = await recordSpans();
  protobufSeed = toProtobuf(spans);
  jsonSeed = JSON.parse(Buffer.from(toJson(spans)).toString());
});

describe('fuzzing the decoders', () => {
  it('protobuf: 5000 byte-level mutations, no crash, no hang', { timeout: 120_000 }, () => {
    const next = createRandom(0x5eed01);
    const payloads = Array.from({ length: 5000 }, () => mutateBytes(protobufSeed, next));
    const result = fuzz(payloads, decodeProtobufChecked);
    // Both outcomes must be exercised, or the mutations are too tame / too wild.
    expect(result.malformed).toBeGreaterThan(500);
    expect(result.decoded).toBeGreaterThan(500);
    expect(result.slowestMs).toBeLessThan(1000);
  });

  it(
    'JSON: 2000 structural and 1000 byte-level mutations, no crash, no hang',
    { timeout: 120_000 },
    () => {
      const next = createRandom(0x5eed02);
      const structural = Array.from({ length: 2000 }, () =>
        Buffer.from(JSON.stringify(mutateJson(jsonSeed, next))),
      );
      const text = Buffer.from(JSON.stringify(jsonSeed));
      const bytewise = Array.from({ length: 1000 }, () => mutateBytes(text, next));
      const result = fuzz([...structural, ...bytewise], decodeTraceRequestJson);
      expect(result.malformed).toBeGreaterThan(500);
      expect(result.decoded).toBeGreaterThan(500);
      expect(result.slowestMs).toBeLessThan(1000);
    },
  );
});

describe('fuzzing POST /v1/traces', () => {
  let collector: RunningCollector;
  let store: SpanStore;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mm-fuzz-'));
    // Few, large ClickHouse batches: this test is about the receiver.
    store = await openStore({ dataDir: join(dataDir, 'data'), batch: { maxDelayMs: 60_000 } });
    collector = await startCollector({ store, config: { port: 0 } });
  });

  afterAll(async () => {
    await collector?.close();
    await store?.close();
    await rm(dataDir, { recursive: true, force: true });
  }, 120_000);

  it(
    'answers only 200 or 400 to 400 mutated requests and stays up',
    { timeout: 180_000 },
    async () => {
      const next = createRandom(0x5eed03);
      const statuses = new Map<number, number>();
      for (let index = 0; index < 400; index++) {
        const protobuf = index % 2 === 0;
        const body = protobuf
          ? mutateBytes(protobufSeed, next)
          : Buffer.from(JSON.stringify(mutateJson(jsonSeed, next)));
        const response = await fetch(`${collector.url}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': protobuf ? 'application/x-protobuf' : 'application/json' },
          body,
        });
        await response.arrayBuffer();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      }
      expect([...statuses.keys()].sort()).toEqual([200, 400]);
      const health = await fetch(`${collector.url}/healthz`);
      expect(health.status).toBe(200);
    },
  );
});
