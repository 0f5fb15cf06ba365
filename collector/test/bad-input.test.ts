/**
 * Bad input gets a 400 that says what is wrong, not a 500 (issue 10, finding 6), on a
 * running collector (embedded ClickHouse, tokenless loopback default): bad
 * percent-encoding in path parameters (the router decodes them while matching and
 * throws), stats windows longer than a date can reach back, feedback timestamps
 * outside DateTime64(9). (Lone surrogates in feedback text: routes-api.test.ts.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '../src/index.js';

let collector: RunningCollector;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-bad-input-'));
  collector = await startCollector({ config: { port: 0, dataDir, logLevel: 'silent' } });
}, 60_000);

afterAll(async () => {
  await collector?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

async function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${collector.url}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('400 where a 500 was', () => {
  it('bad percent-encoding in a path parameter', async () => {
    // Jaeger routes answer in Jaeger's v1 error shape.
    for (const path of [
      '/api/traces/%zz',
      '/api/traces/%ED%A0%80',
      '/api/services/%zz/operations',
      '/api/services/%E0%A4%A/operations',
    ]) {
      const { status, body } = await get(path);
      expect(status, path).toBe(400);
      expect(body, path).toMatchObject({
        data: null,
        errors: [{ code: 400, msg: expect.stringMatching(/bad percent-encoding/) as unknown }],
      });
    }
    // Elsewhere the collector's own shape.
    expect(await get('/dashboard/%zz')).toEqual({
      status: 400,
      body: { error: "bad percent-encoding in the path: Failed to decode param '%zz'" },
    });
    const counted = await (await fetch(`${collector.url}/metrics`)).text();
    expect(counted).not.toMatch(/code="500"/);
  });

  it('a stats window beyond ten years', async () => {
    for (const window of ['99999999999d', '999999999999999999999d', '3651d', '87601h']) {
      const { status, body } = await get(`/api/stats?window=${window}`);
      expect(status, window).toBe(400);
      expect(body.error, window).toBe(
        'invalid stats query: window: window is at most 3650d (ten years)',
      );
    }
    expect((await get('/api/stats?window=3650d')).status).toBe(200);
    expect((await get('/api/stats?window=0s')).status).toBe(200);
  });
});
