/**
 * 429 + Retry-After when the collector cannot keep up: the store's queue is full
 * (a real store whose queue limit is one byte), or too many export requests are
 * in progress at once.
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

  it('answers 429 while more export requests than allowed are in progress', async () => {
    const url = new URL(`${collector.url}/v1/traces`);
    // Hold one request open: headers and half a body sent, the rest never comes.
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
      // The held request reaches the route before this one is refused.
      let status = 0;
      let retryAfter: string | null = null;
      const deadline = Date.now() + 10_000;
      while (status !== 429 && Date.now() < deadline) {
        const response = await fetch(`${collector.url}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-protobuf' },
          body: new Uint8Array(0),
        });
        status = response.status;
        retryAfter = response.headers.get('retry-after');
        if (status !== 429) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(status).toBe(429);
      expect(retryAfter).toBe('1');
    } finally {
      held.destroy();
    }
    // Once the held request is gone, requests are served again (empty request: 200).
    const deadline = Date.now() + 10_000;
    let status = 0;
    while (status !== 200 && Date.now() < deadline) {
      const response = await fetch(`${collector.url}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf' },
        body: new Uint8Array(0),
      });
      status = response.status;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(status).toBe(200);
  });
});
