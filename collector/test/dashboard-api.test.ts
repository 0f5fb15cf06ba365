/**
 * The dashboard's routes on a running collector (embedded ClickHouse, both
 * tokens set): the page and its scripts are served without a token, the data
 * endpoints need the read token and report exactly the demo traffic that was
 * sent (compared with a summary computed from the traffic plan, not from the
 * store).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '../src/index.js';
import type { DashboardOverview, RecentTrace } from '../src/dashboard/dashboard-queries.js';
import {
  planTraffic,
  summarize,
  toOtlpJson,
  type PlannedCall,
} from './support/dashboard-traffic.js';

const INGEST = 'ingest-dash';
const READ = 'read-dash';

let collector: RunningCollector;
let dataDir: string;
let planned: PlannedCall[];

/** A GET with the read token, another token, or (`null`) none. */
const read = (path: string, token: string | null = READ) =>
  fetch(`${collector.url}${path}`, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });

async function overview(minutes = 60): Promise<DashboardOverview> {
  const response = await read(`/api/dashboard/overview?minutes=${minutes}`);
  expect(response.status).toBe(200);
  return (await response.json()) as DashboardOverview;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-dashboard-api-'));
  collector = await startCollector({
    config: { port: 0, dataDir, ingestToken: INGEST, readToken: READ },
  });
  planned = planTraffic(120, Date.now());
  const response = await fetch(`${collector.url}/v1/traces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INGEST}`, 'content-type': 'application/json' },
    body: JSON.stringify(toOtlpJson(planned)),
  });
  expect(response.status).toBe(200);
  // The writer acknowledges once durable; wait until every call is in the rollup.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { totals } = await overview();
    if (totals.calls >= planned.length && totals.scored >= summarize(planned).scored) break;
    if (Date.now() > deadline) throw new Error(`only ${totals.calls} calls arrived`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}, 120_000);

afterAll(async () => {
  await collector?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

describe('dashboard assets', () => {
  it('serves the page, its script and Chart.js without a token', async () => {
    const page = await read('/', null);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/dashboard/app.mjs"></script>');

    for (const [path, type] of [
      ['/dashboard/app.mjs', 'text/javascript; charset=utf-8'],
      ['/dashboard/style.css', 'text/css; charset=utf-8'],
      ['/dashboard/vendor/chart.umd.min.js', 'text/javascript; charset=utf-8'],
    ] as const) {
      const response = await read(path, null);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-type'), path).toBe(type);
      expect((await response.text()).length, path).toBeGreaterThan(1000);
    }
    const chart = await (await read('/dashboard/vendor/chart.umd.min.js', null)).text();
    expect(chart).toMatch(/Chart\.js v4\./);
  });

  it('serves nothing else under /dashboard', async () => {
    for (const path of ['/dashboard/', '/dashboard/../package.json', '/dashboard/app.ts']) {
      expect((await read(path, null)).status, path).toBe(404);
    }
  });
});

describe('dashboard data', () => {
  it('needs the read token', async () => {
    expect((await read('/api/dashboard/overview', null)).status).toBe(401);
    expect((await read('/api/dashboard/traces', 'wrong')).status).toBe(401);
  });

  it('refuses windows it does not offer', async () => {
    const response = await read('/api/dashboard/overview?minutes=7');
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toContain('minutes');
    expect((await read('/api/dashboard/traces?limit=0')).status).toBe(400);
  });

  it('totals, per-model series, top services and features match the traffic sent', async () => {
    const expected = summarize(planned);
    const data = await overview();
    expect(data.window.buckets).toHaveLength(60);
    expect(data.window.stepSeconds).toBe(60);
    expect(data.totals.calls).toBe(expected.calls);
    expect(data.totals.errors).toBe(expected.errors);
    expect(data.totals.tokens).toBe(expected.tokens);
    expect(data.totals.scored).toBe(expected.scored);
    expect(data.totals.costUsd).toBeCloseTo(expected.costUsd, 9);
    expect(data.totals.pricedCalls).toBe(expected.calls);
    expect(data.totals.quality).toBeCloseTo(expected.scoreSum / expected.scored, 9);
    expect(data.totals.p50Ms).toBeGreaterThan(0);
    expect(data.totals.p95Ms).toBeGreaterThanOrEqual(data.totals.p50Ms ?? Infinity);

    // Every series point lies in a bucket of the window; summed per model they give the traffic.
    const buckets = new Set(data.window.buckets);
    const perModel = new Map<string, { calls: number; errors: number; costUsd: number }>();
    for (const point of data.series) {
      expect(buckets.has(point.t)).toBe(true);
      const entry = perModel.get(point.model) ?? { calls: 0, errors: 0, costUsd: 0 };
      entry.calls += point.calls;
      entry.errors += point.errors;
      entry.costUsd += point.costUsd;
      perModel.set(point.model, entry);
    }
    expect([...perModel.keys()].sort()).toEqual([...expected.byModel.keys()].sort());
    for (const [model, want] of expected.byModel) {
      const got = perModel.get(model);
      expect(got?.calls, model).toBe(want.calls);
      expect(got?.errors, model).toBe(want.errors);
      expect(got?.costUsd, model).toBeCloseTo(want.costUsd, 9);
    }
    // More than one minute bucket has calls: the traffic is spread over 20 minutes.
    expect(new Set(data.series.filter((p) => p.calls > 0).map((p) => p.t)).size).toBeGreaterThan(
      10,
    );

    const ranked = (map: Map<string, { calls: number; costUsd: number }>) =>
      [...map.entries()]
        .sort(([a, x], [b, y]) => y.costUsd - x.costUsd || y.calls - x.calls || a.localeCompare(b))
        // Every call of the plan has a price (failed ones cost 0 at a known price).
        .map(([name, value]) => ({
          name,
          calls: value.calls,
          costUsd: value.costUsd,
          pricedCalls: value.calls,
        }));
    const rounded = (rows: { name: string; calls: number; costUsd: number }[]) =>
      rows.map((row) => ({ ...row, costUsd: Math.round(row.costUsd * 1e9) }));
    expect(rounded(data.topServices)).toEqual(rounded(ranked(expected.byService)));
    expect(rounded(data.topFeatures)).toEqual(rounded(ranked(expected.byFeature)));
  });

  it('routing weights count the routed calls per policy and model', async () => {
    const expected = summarize(planned);
    const data = await overview();
    const routed = new Map<string, number>();
    for (const point of data.routing) {
      const key = `${point.policy}|${point.model}`;
      routed.set(key, (routed.get(key) ?? 0) + point.calls);
    }
    expect(Object.fromEntries(routed)).toEqual(Object.fromEntries(expected.routed));
  });

  it('lists recent traces newest first with their calls and cost', async () => {
    const response = await read('/api/dashboard/traces?minutes=60&limit=200');
    expect(response.status).toBe(200);
    const { traces } = (await response.json()) as { traces: RecentTrace[] };
    expect(traces).toHaveLength(planned.length);
    const starts = traces.map((trace) => trace.startMs);
    expect(starts).toEqual([...starts].sort((a, b) => b - a));
    const byId = new Map(planned.map((call) => [call.traceId, call]));
    for (const trace of traces) {
      const call = byId.get(trace.traceId);
      expect(call, trace.traceId).toBeDefined();
      if (call === undefined) continue;
      expect({ ...trace, costUsd: Math.round(trace.costUsd * 1e12) }).toEqual({
        traceId: call.traceId,
        startMs: call.startMs + 2,
        service: call.service,
        models: [call.model],
        feature: call.feature,
        calls: 1,
        errors: call.error ? 1 : 0,
        costUsd: Math.round(call.costUsd * 1e12),
        pricedCalls: 1,
        tokens: call.inputTokens + call.outputTokens,
        maxCallMs: call.durationMs,
      });
    }
    const limited = (await (await read('/api/dashboard/traces?limit=5')).json()) as {
      traces: RecentTrace[];
    };
    expect(limited.traces.map((trace) => trace.traceId)).toEqual(
      traces.slice(0, 5).map((trace) => trace.traceId),
    );
  });

  it('longer windows draw the same traffic in wider buckets', async () => {
    const day = await overview(1440);
    expect(day.window.stepSeconds).toBe(900);
    expect(day.window.buckets).toHaveLength(96);
    expect(day.totals.calls).toBe(planned.length);
    // A week in two-hour buckets reads the hourly rollup and must agree with the minutes.
    const week = await overview(10080);
    expect(week.window.stepSeconds).toBe(7200);
    expect(week.window.buckets).toHaveLength(84);
    expect({ ...week.totals, costUsd: Math.round(week.totals.costUsd * 1e9) }).toEqual({
      ...day.totals,
      costUsd: Math.round(day.totals.costUsd * 1e9),
      // t-digest merges in another order may differ in the last digits.
      p50Ms: week.totals.p50Ms,
      p95Ms: week.totals.p95Ms,
      quality: week.totals.quality,
    });
    expect(week.totals.quality).toBeCloseTo(day.totals.quality ?? NaN, 9);
    expect(week.topServices.map((row) => [row.name, row.calls])).toEqual(
      day.topServices.map((row) => [row.name, row.calls]),
    );
  });
});

describe('dashboard without tokens (loopback default)', () => {
  it('serves the page and its data with no token at all', async () => {
    // A second collector without tokens over the same store (chDB allows one data directory per process).
    const open = await startCollector({ config: { port: 0, dataDir }, store: collector.store });
    try {
      expect((await fetch(`${open.url}/`)).status).toBe(200);
      const response = await fetch(`${open.url}/api/dashboard/overview?minutes=15`);
      expect(response.status).toBe(200);
      const data = (await response.json()) as DashboardOverview;
      expect(data.window.buckets).toHaveLength(15);
      // The traffic spans the last 20 minutes; a 15-minute window holds only part of it.
      const inWindow = planned.filter((call) => call.startMs + 2 >= data.window.from * 1000);
      expect(data.totals.calls).toBe(inWindow.length);
      const traces = await fetch(`${open.url}/api/dashboard/traces?minutes=15&limit=200`);
      const body = (await traces.json()) as { traces: RecentTrace[] };
      expect(body.traces.map((trace) => trace.traceId).sort()).toEqual(
        inWindow.map((call) => call.traceId).sort(),
      );
    } finally {
      await open.close();
    }
  }, 60_000);
});
