/**
 * 503 + Retry-After when ClickHouse has been behind so long that the spool is
 * full (a real store whose spool limit is one byte): nothing is acknowledged
 * that could not be kept.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, startCollector, type RunningCollector, type SpanStore } from '../src/index.js';
import { recordSpans, toProtobuf } from './support/otlp-fixtures.js';

let store: SpanStore;
let collector: RunningCollector;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-routes-spool-'));
  store = await openStore({ dataDir: join(dataDir, 'data'), maxSpoolBytes: 1 });
  collector = await startCollector({ store, config: { port: 0 } });
});

afterAll(async () => {
  await collector?.close();
  await store?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('503 when the spool is full', () => {
  it('answers 503 with Retry-After and a google.rpc.Status UNAVAILABLE', async () => {
    const spans = await recordSpans();
    const response = await fetch(`${collector.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(
        JSON.stringify({
          resourceSpans: [
            {
              scopeSpans: [
                {
                  spans: [
                    {
                      traceId: spans[0]!.spanContext().traceId,
                      spanId: spans[0]!.spanContext().spanId,
                      startTimeUnixNano: '1732740000000000000',
                      endTimeUnixNano: '1732740000000000001',
                    },
                  ],
                },
              ],
            },
          ],
        }),
      ),
    });
    expect(response.status).toBe(503);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await response.json()).toEqual({
      code: 14,
      message: expect.stringMatching(
        /^the collector cannot take more spans right now: the spool holds/,
      ),
    });
    const protobufResponse = await fetch(`${collector.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: toProtobuf(spans),
    });
    expect(protobufResponse.status).toBe(503);
    expect(protobufResponse.headers.get('retry-after')).not.toBeNull();
  });
});
