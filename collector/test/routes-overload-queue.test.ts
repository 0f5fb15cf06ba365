/**
 * 429 + Retry-After when the collector cannot keep up: the store's queue is full
 * (a real store whose queue limit is one byte), or too many export requests are
 * decoding or storing at once (a body still arriving holds no slot).
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, startCollector, type RunningCollector, type SpanStore } from '../src/index.js';
import { recordSpans, toJson, toProtobuf } from './support/otlp-fixtures.js';

let store: SpanStore;
let collector: RunningCollector;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-routes-queue-'));
  store = await openStore({ dataDir: join(dataDir, 'data'), maxQueuedBytes: 1 });
  collector = await startCollector({ store, config: { port: 0, maxConcurrentRequests: 1 } });
});

afterAll(async () => {
  await collector?.close();
  await store?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('429 when the collector cannot keep up', () => {
  it('answers 429 with Retry-After when the store queue is full, in protobuf and JSON', async () => {
    const spans = await recordSpans();
    const protobufResponse = await fetch(`${collector.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: toProtobuf(spans),
    });
    expect(protobufResponse.status).toBe(429);
    expect(protobufResponse.headers.get('retry-after')).toBe('1');
    expect(protobufResponse.headers.get('content-type')).toMatch(/^application\/x-protobuf/);
    const jsonResponse = await fetch(`${collector.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: toJson(spans),
    });
    expect(jsonResponse.status).toBe(429);
    expect(jsonResponse.headers.get('retry-after')).toBe('1');
    expect(await jsonResponse.json()).toEqual({
      code: 8,
      message: expect.stringMatching(
        /^the collector cannot take more spans right now: \d+ bytes are queued/,
      ),
    });
    const metrics = await (await fetch(`${collector.url}/metrics`)).text();
    expect(metrics).toContain(`\nmodelmaxx_spans_refused_total ${spans.length * 2}\n`);
    expect(metrics).toContain(`\nmodelmaxx_spans_accepted_total 0\n`);
  });

  it('answers 429 while more export requests than allowed are decoding, and counts them', async () => {
    // maxConcurrentRequests is 1. A request takes its slot once its body is in and keeps it
    // while a decode thread works: 50,000 empty JSON spans (the most a request may hold,
    // each rejected on its own) keep one busy for a while, so of a few sent together some
    // find the slot taken. Their spans are never decoded: counted as refused requests.
    const body = `{"resourceSpans":[{"scopeSpans":[{"spans":[${Array(50_000).fill('{}').join(',')}]}]}]}`;
    const statuses: number[] = [];
    const retryAfter = new Set<string | null>();
    const deadline = Date.now() + 60_000;
    while (!statuses.includes(429) && Date.now() < deadline) {
      const responses = await Promise.all(
        Array.from({ length: 4 }, () =>
          fetch(`${collector.url}/v1/traces`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          }),
        ),
      );
      for (const response of responses) {
        statuses.push(response.status);
        if (response.status === 429) retryAfter.add(response.headers.get('retry-after'));
        await response.arrayBuffer();
      }
    }
    expect(statuses).toContain(429);
    expect(statuses).toContain(200);
    expect(statuses.every((status) => status === 200 || status === 429)).toBe(true);
    expect([...retryAfter]).toEqual(['1']);
    const refused = statuses.filter((status) => status === 429).length;
    const metrics = await (await fetch(`${collector.url}/metrics`)).text();
    expect(metrics).toContain(
      `\nmodelmaxx_ingest_requests_refused_total{reason="concurrency"} ${refused}\n`,
    );
  });

  it('gives no slot to a request whose body is still arriving', async () => {
    const url = new URL(`${collector.url}/v1/traces`);
    // Headers and half a body sent, the rest never comes: before, this request held the
    // only slot and every other export was answered 429 until it timed out.
    const held: ClientRequest = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', 'content-length': '1000' },
    });
    held.on('error', () => undefined);
    held.write(Buffer.alloc(500));
    try {
      // Wait until the held request is in the route (its body is being read).
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const metrics = await (await fetch(`${collector.url}/metrics`)).text();
        if (metrics.includes('\nmodelmaxx_ingest_bodies_reading 1\n')) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const response = await fetch(`${collector.url}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf' },
        body: new Uint8Array(0),
      });
      expect(response.status).toBe(200);
    } finally {
      held.destroy();
    }
  });
});
