/**
 * `/readyz` reports an insert path that fails (issue 10, finding 7): ClickHouse refusing the
 * span inserts for real (the `otel_traces` table detached) while it still answers queries
 * makes `/readyz` 503 with a short reason, without a token; 200 again once inserts go in.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, startCollector, type RunningCollector } from '../src/index.js';
import type { ClickHouseStore } from '../src/store/clickhouse-store.js';
import { llmSpan } from './store-fixtures.js';
import { insertOutage } from './support/store-crash.js';

let dir: string;
let store: ClickHouseStore;
let collector: RunningCollector;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mm-readiness-'));
  store = await openStore({
    dataDir: join(dir, 'data'),
    batch: { maxRows: 50, maxDelayMs: 20 },
    retryMinMs: 20,
    retryMaxMs: 100,
    closeTimeoutMs: 2_000,
  });
  collector = await startCollector({
    store,
    config: { port: 0, ingestToken: 'ingest', readToken: 'read' },
  });
});

afterAll(async () => {
  await collector?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

const readyz = async () => {
  const response = await fetch(`${collector.url}/readyz`);
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: await response.text(),
  };
};

async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('/readyz', () => {
  it('says 503 while ClickHouse refuses the span inserts, and 200 once they go in again', async () => {
    expect(await readyz()).toMatchObject({ status: 200, body: '{"status":"ready"}' });

    await insertOutage(store, true);
    expect((await store.write([llmSpan({ service: 'readiness' })])).status).toBe('ok');
    const failing = await until(readyz, (answer) => answer.status === 503, 20_000);
    expect(failing.status).toBe(503);
    expect(Number(failing.retryAfter)).toBeGreaterThanOrEqual(1);
    const body = JSON.parse(failing.body) as { status: string; reason: string };
    expect(body).toEqual({ status: 'unavailable', reason: expect.stringMatching(/inserts fail/) });
    // Short, no paths, no ClickHouse error text.
    expect(failing.body.length).toBeLessThan(120);
    expect(failing.body).not.toMatch(/\/|Code:|DB::Exception/);

    await insertOutage(store, false);
    const recovered = await until(readyz, (answer) => answer.status === 200, 20_000);
    expect(recovered).toMatchObject({ status: 200, body: '{"status":"ready"}' });
    expect(await store.flush(10_000)).toBe(true);
  }, 60_000);
});
