/**
 * `/api/sql` cannot stall the collector (issue 10, finding 3), against a running
 * collector on the real embedded ClickHouse: the collector's own reads answer
 * while ad-hoc queries sleep, the queue is bounded (429 beyond it), a client
 * that gives up takes its query with it, and a huge result is cut without
 * holding the event loop.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '../src/index.js';
import type { ClickHouseStore } from '../src/store/clickhouse-store.js';

let collector: RunningCollector;
let dataDir: string;

/** Runs (in ClickHouse) until the time limit: each block of `system.numbers` sleeps 1 s. */
const SLEEPY = 'SELECT count() AS n FROM system.numbers WHERE sleep(1) = 0';

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-sql-isolation-'));
  collector = await startCollector({ config: { port: 0, dataDir } });
}, 120_000);

afterAll(async () => {
  await collector?.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** The limits the routes read from the running collector's config, per test. */
function limits(values: {
  sqlMaxExecutionSeconds: number;
  sqlMaxConcurrent?: number;
  sqlMaxQueued?: number;
  sqlMaxMemoryBytes?: number;
}): void {
  Object.assign(collector.config, { sqlMaxConcurrent: 1, sqlMaxQueued: 4, ...values });
}

interface Answer {
  status: number;
  ms: number;
  body: Record<string, unknown>;
  retryAfter: string | null;
}

async function sql(query: string, signal?: AbortSignal): Promise<Answer> {
  const started = performance.now();
  const response = await fetch(`${collector.url}/api/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sql: query }),
    ...(signal === undefined ? {} : { signal }),
  });
  const body = (await response.json()) as Record<string, unknown>;
  return {
    status: response.status,
    ms: performance.now() - started,
    body,
    retryAfter: response.headers.get('retry-after'),
  };
}

/** Starts a query the test gives up on later (its rejection is expected and ignored). */
function abandoned(query: string): { controller: AbortController; done: Promise<unknown> } {
  const controller = new AbortController();
  const done = sql(query, controller.signal).catch((error: unknown) => error);
  return { controller, done };
}

async function timed(path: string): Promise<{ path: string; status: number; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${collector.url}${path}`);
  await response.arrayBuffer();
  return { path, status: response.status, ms: performance.now() - started };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the SQL lane holds this many queries (they passed the gate). */
async function queued(running: number, waiting: number): Promise<void> {
  const store = collector.store as ClickHouseStore;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const now = store.sqlQueue();
    if (now.running === running && now.waiting === waiting) return;
    if (Date.now() > deadline) throw new Error(`SQL lane at ${JSON.stringify(now)}`);
    await pause(50);
  }
}

/** How many of our sleeping queries ClickHouse is still running. */
async function sleepingQueries(): Promise<number> {
  const answer = await sql(
    "SELECT count() AS n FROM system.processes WHERE query LIKE '%sleep(1) = 0%' AND query NOT LIKE '%system.processes%'",
  );
  expect(answer.status).toBe(200);
  return Number((answer.body.rows as { n: string }[])[0]?.n);
}

describe('/api/sql beside the collector', () => {
  it("answers the collector's own reads while five ad-hoc queries sleep", async () => {
    // Before: one session, one queue: /api/services waited for all five (40 s at 10 s each).
    limits({ sqlMaxExecutionSeconds: 6 });
    const queries = Array.from({ length: 5 }, () => abandoned(SLEEPY));
    await queued(1, 4);
    await pause(500);
    const probes = await Promise.all(
      ['/api/services', '/api/v3/services', '/api/stats?window=1h', '/readyz'].map(timed),
    );
    for (const probe of probes) {
      expect(probe.status, probe.path).toBe(200);
      // Well under one sleeping query's 6 s.
      expect(probe.ms, probe.path).toBeLessThan(3_000);
    }
    // Every client gives up: the queued ones leave the queue, the running one is killed.
    for (const query of queries) query.controller.abort();
    await Promise.all(queries.map((query) => query.done));
    const next = await sql('SELECT 42 AS answer');
    expect(next.status).toBe(200);
    expect(next.body.rows).toEqual([{ answer: 42 }]);
    expect(next.ms).toBeLessThan(4_000);
    expect(await sleepingQueries()).toBe(0);
  }, 60_000);

  it('kills a running query whose client disconnects', async () => {
    // Before: the query ran on to its time limit (30 s here) and held the next one.
    limits({ sqlMaxExecutionSeconds: 30, sqlMaxConcurrent: 2 });
    const query = abandoned(SLEEPY);
    await queued(1, 0);
    await pause(1_000);
    // The second slot lets us look at it running.
    expect(await sleepingQueries()).toBe(1);
    limits({ sqlMaxExecutionSeconds: 30, sqlMaxConcurrent: 1 });
    query.controller.abort();
    await query.done;
    const started = performance.now();
    const next = await sql('SELECT 1 AS one');
    expect(next.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(await sleepingQueries()).toBe(0);
  }, 60_000);

  it('refuses queries beyond the queue with 429 and Retry-After', async () => {
    limits({ sqlMaxExecutionSeconds: 8, sqlMaxConcurrent: 1, sqlMaxQueued: 1 });
    const running = abandoned(SLEEPY);
    await queued(1, 0);
    const waiting = abandoned(SLEEPY);
    await queued(1, 1);
    const refused = await sql('SELECT 1');
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(String(refused.body.error)).toMatch(/too many SQL queries at once/);
    // A waiting client that gives up frees its place in the queue.
    waiting.controller.abort();
    await waiting.done;
    await queued(1, 0);
    const next = sql('SELECT 2 AS two');
    await queued(1, 1);
    running.controller.abort();
    const answer = await next;
    expect(answer.status).toBe(200);
    expect(answer.body.rows).toEqual([{ two: 2 }]);
    await running.done;
  }, 60_000);

  it('fails a query over the memory limit with a 400 naming it', async () => {
    limits({ sqlMaxExecutionSeconds: 20, sqlMaxMemoryBytes: 64 * 1024 * 1024 });
    const answer = await sql(
      "SELECT length(groupArray(repeat('x', 1000))) AS n FROM numbers(200000)",
    );
    expect(answer.status).toBe(400);
    expect(String(answer.body.error)).toMatch(
      /more memory than ad-hoc SQL may use \(64 MiB: max_memory_usage, MODELMAXX_SQL_MAX_MEMORY_BYTES\)/,
    );
    limits({ sqlMaxExecutionSeconds: 10, sqlMaxMemoryBytes: 1024 ** 3 });
  }, 60_000);

  it('cuts a 200 MB result at the byte limit without holding the event loop', async () => {
    // Before: all 200 MB parsed and serialized at once (the event loop stopped for 5 s and more).
    limits({ sqlMaxExecutionSeconds: 20 });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const answer = await sql("SELECT repeat('x', 20000) AS s FROM numbers(10000)");
    delay.disable();
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ truncated: true, truncatedBy: 'maxResultBytes' });
    const rows = answer.body.rows as { s: string }[];
    expect(rows.length).toBeGreaterThan(1000);
    expect(rows.length * 20_000).toBeLessThanOrEqual(collector.config.sqlMaxResultBytes);
    expect(delay.max / 1e6).toBeLessThan(2_000);
  }, 90_000);
});
