import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StatsResponse } from '@modelmaxx/semconv/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '../src/policy.js';
import { createRandom } from '../src/random.js';
import { StatsFetchError, collectorStatsSource, toModelClassStats } from '../src/stats-source.js';
import { WeightUpdater } from '../src/weight-updater.js';

const row = (model: string, task: string, meanScore: number, costPerCallUsd: number) => ({
  model,
  task,
  calls: 100,
  errors: 2,
  errorRate: 0.02,
  costUsd: costPerCallUsd * 100,
  costPerCallUsd,
  meanInputTokens: 200,
  meanOutputTokens: 80,
  latencyP50Ms: 400,
  latencyP95Ms: task === 'code' ? 1500 : 900,
  latencyP99Ms: 2000,
  meanScore,
  scoreCount: 50,
});

let server: Server;
let url: string;
let mode: 'ok' | 'error' | 'garbage' = 'ok';
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    seen.push({ url: request.url ?? '', headers: request.headers });
    if (mode === 'error') {
      response.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"busy"}');
      return;
    }
    const body: StatsResponse | { rows: string } =
      mode === 'garbage'
        ? { rows: 'nope' }
        : {
            from: new Date(Date.now() - 3600_000).toISOString(),
            to: new Date().toISOString(),
            groupBy: ['model', 'task'],
            rows: [
              row('small', 'qa', 0.9, 0.0002),
              row('big', 'qa', 0.92, 0.01),
              row('small', 'code', 0.5, 0.0004),
              row('big', 'code', 0.9, 0.02),
            ],
          };
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe('collector stats source', () => {
  it('asks /api/stats grouped by model and task with the read token', async () => {
    mode = 'ok';
    const source = collectorStatsSource({ url, token: 'read-secret', window: '15m' });
    const response = await source();
    expect(response.rows).toHaveLength(4);
    const request = seen.at(-1)!;
    expect(request.url).toBe('/api/stats?window=15m&groupBy=model%2Ctask');
    expect(request.headers.authorization).toBe('Bearer read-secret');
    const stats = toModelClassStats(response);
    expect(stats.find((entry) => entry.classKey === 'code' && entry.model === 'big')).toEqual({
      model: 'big',
      classKey: 'code',
      calls: 100,
      errors: 2,
      costPerCallUsd: 0.02,
      latencyP95Ms: 1500,
      meanScore: 0.9,
      scoreCount: 50,
    });
    const global = stats.find((entry) => entry.classKey === '*' && entry.model === 'small')!;
    expect(global.calls).toBe(200);
    expect(global.meanScore).toBeCloseTo(0.7, 12);
    expect(global.costPerCallUsd).toBeCloseTo(0.0003, 12);
    expect(global.latencyP95Ms).toBe(1500);
  });

  it('asks for the named scores only when told to', async () => {
    mode = 'ok';
    await collectorStatsSource({ url, window: '15m', scores: ['app.correct', 'user.thumbs'] })();
    expect(seen.at(-1)!.url).toBe(
      '/api/stats?window=15m&groupBy=model%2Ctask&scores=app.correct%2Cuser.thumbs',
    );
  });

  it('reports HTTP errors and unexpected bodies as StatsFetchError', async () => {
    mode = 'error';
    const source = collectorStatsSource({ url });
    await expect(source()).rejects.toThrow(new StatsFetchError('GET /api/stats answered 503', 503));
    mode = 'garbage';
    await expect(source()).rejects.toThrow(/unexpected body/);
    const unreachable = collectorStatsSource({ url: 'http://127.0.0.1:9', timeoutMs: 2000 });
    await expect(unreachable()).rejects.toThrow(/cannot reach http:\/\/127\.0\.0\.1:9/);
  });

  it('feeds the weight updater: per-class weights, then last good weights when the collector fails', async () => {
    mode = 'ok';
    const policy = parsePolicy({
      candidates: [{ model: 'small' }, { model: 'big' }],
      goal: { qualityMargin: 0.05 },
      exploration: 0.02,
    });
    const updater = new WeightUpdater({
      policy,
      source: collectorStatsSource({ url }),
      random: createRandom(4),
    });
    const table = await updater.refresh();
    const weight = (classKey: string, model: string) =>
      table.classes.get(classKey)!.weights.find((entry) => entry.model === model)!.weight;
    expect(weight('qa', 'small')).toBeGreaterThan(0.5);
    expect(weight('qa', 'small')).toBeGreaterThan(weight('qa', 'big'));
    expect(weight('code', 'big')).toBeGreaterThan(0.9);
    mode = 'error';
    const kept = await updater.refresh();
    expect(kept.stale).toMatch(
      /^stats unavailable \(GET \/api\/stats answered 503\); keeping weights computed \d+s ago$/,
    );
    expect(kept.classes).toBe(table.classes);
  });
});
