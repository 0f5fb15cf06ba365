import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import type { StatsResponse } from '@modelmaxx/semconv/schemas';
import { otlpChatSpan, postOtlpSpans } from '../../../test/support/otlp-json.js';
import { createAccess } from '../src/access/index.js';
import type { AccessLayer } from '../src/access/index.js';
import { Receiver } from './webhook-receiver.js';

const run = promisify(execFile);
const cliBin = join(import.meta.dirname, '..', '..', 'cli', 'bin', 'modelmaxx.js');

/** A chat span as the instrumentation sends it. */
function chatSpan(index: number, model: string, cost: number, failed: boolean, durationMs: number) {
  return otlpChatSpan({
    id: 0xa1e00000 + index,
    model,
    responseModel: model,
    startMs: Date.now() - 2000,
    durationMs,
    cost,
    attributes: { 'modelmaxx.feature': 'search' },
    ...(failed ? { errorType: '500' } : {}),
  });
}

describe('alerts', () => {
  let collector: RunningCollector;
  let dataDir: string;
  const receiver = new Receiver();
  const opened: AccessLayer[] = [];

  beforeAll(async () => {
    await receiver.start();
    dataDir = mkdtempSync(join(tmpdir(), 'modelmaxx-alerts-'));
    collector = await startCollector({ config: { port: 0, dataDir } });
    // 30 gpt-4o calls ($0.10 each, 1 s, 6 failed) and 30 gpt-4o-mini calls ($0.001, 200 ms).
    const spans = [
      ...Array.from({ length: 30 }, (_, i) => chatSpan(i, 'gpt-4o', 0.1, i % 5 === 0, 1000)),
      ...Array.from({ length: 30 }, (_, i) => chatSpan(100 + i, 'gpt-4o-mini', 0.001, false, 200)),
    ];
    expect(await postOtlpSpans(collector.url, spans)).toBe(200);
    // Wait until the collector answers for all 60 calls.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const stats = (await (
        await fetch(`${collector.url}/api/stats?window=1h`)
      ).json()) as StatsResponse;
      if (stats.rows.reduce((sum, row) => sum + row.calls, 0) === 60) break;
      if (Date.now() > deadline) throw new Error('the collector never answered for the 60 calls');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }, 120_000);

  afterAll(async () => {
    for (const access of opened) await access.close();
    await receiver.close();
    await collector?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function open(alerts: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    const access = createAccess({ ...extra, alerts });
    opened.push(access);
    return access;
  }

  it('evaluates rules over the collector’s /api/stats on an interval and posts them to the webhook', async () => {
    const access = open({
      intervalSeconds: 1,
      collector: { url: collector.url },
      webhooks: [{ url: `${receiver.url}/hooks/ops`, headers: { authorization: 'Bearer hook' } }],
      rules: [
        { kind: 'spend', name: 'hourly-spend', window: '1h', aboveUsd: 2 },
        { kind: 'spend', name: 'mini-spend', window: '1h', aboveUsd: 2, model: 'gpt-4o-mini' },
        { kind: 'errorRate', name: 'errors', window: '1h', above: 0.05, minCalls: 20 },
        { kind: 'latencyP95', name: 'slow', window: '1h', aboveMs: 500, minCalls: 10 },
      ],
    });
    await expect
      .poll(() => receiver.of('slow').length, { timeout: 30_000, interval: 200 })
      .toBeGreaterThan(0);
    await expect.poll(() => receiver.of('errors').length, { timeout: 10_000 }).toBe(1);

    const [spend] = receiver.of('hourly-spend');
    expect(spend).toMatchObject({
      source: 'modelmaxx',
      status: 'firing',
      kind: 'spend',
      window: '1h',
    });
    expect(spend?.value).toBeCloseTo(3.03, 6);
    expect(spend?.text).toBe('hourly-spend: spend $3.03 in the last 1h is above $2.00');
    // $0.03 of gpt-4o-mini is under its threshold.
    expect(receiver.of('mini-spend')).toEqual([]);
    const [errors] = receiver.of('errors');
    expect(errors?.value).toBeCloseTo(6 / 60, 6);
    expect(errors?.text).toContain('error rate 10.0% (6 of 60 calls)');
    // p95 per model: gpt-4o (1 s) fires, gpt-4o-mini (200 ms) does not.
    const slow = receiver.of('slow');
    expect(slow.map((alert) => alert.labels['model'])).toEqual(['gpt-4o']);
    const hook = receiver.received.find((entry) => entry.body.rule === 'slow');
    expect(hook?.path).toBe('/hooks/ops');
    expect(hook?.headers['authorization']).toBe('Bearer hook');
    expect(hook?.headers['content-type']).toBe('application/json');

    // Still firing on the next evaluations: not sent again before repeatMinutes.
    const before = receiver.received.length;
    await access.alerts.evaluate();
    await access.alerts.sender.idle();
    expect(receiver.received.length).toBe(before);
  }, 60_000);

  it('retries with back-off after a 500 from the receiver', async () => {
    receiver.failFirst = 2;
    const access = open({
      webhooks: [{ url: `${receiver.url}/hooks/retry` }],
      retry: { attempts: 4, initialDelayMs: 50, maxDelayMs: 200 },
    });
    const started = Date.now();
    const [result] = await access.alerts.test();
    expect(result).toMatchObject({ ok: true, attempts: 3, status: 204 });
    const attempts = receiver.received.filter((entry) => entry.path === '/hooks/retry');
    expect(attempts).toHaveLength(3);
    // The same alert each time.
    expect(new Set(attempts.map((entry) => JSON.stringify(entry.body))).size).toBe(1);
    // Back-off: ~50 ms then ~100 ms (±25% jitter) between the three attempts.
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);

    // A receiver that keeps failing: given up after the attempts, reported as failed.
    receiver.failFirst = 10;
    const [gaveUp] = await access.alerts.test();
    expect(gaveUp).toMatchObject({ ok: false, attempts: 4, status: 500 });
    receiver.failFirst = 0;
  }, 30_000);

  it('a bounded queue drops the oldest alert when the receiver cannot keep up', async () => {
    const access = open({
      webhooks: [{ url: 'http://127.0.0.1:9/unreachable' }],
      queueSize: 2,
      retry: { attempts: 2, initialDelayMs: 20, maxDelayMs: 20, timeoutMs: 2000 },
    });
    const sends = Array.from({ length: 5 }, () => access.alerts.test());
    const results = await Promise.all(sends);
    // The first is being delivered; of the four queued behind it, two were dropped.
    expect(access.alerts.sender.dropped).toBe(2);
    expect(results.filter((result) => result.length === 0)).toHaveLength(2);
  }, 30_000);

  it('budget thresholds: an alert when spend crosses 50% and 100% of a budget', async () => {
    const access = open(
      {
        webhooks: [{ url: `${receiver.url}/hooks/budget` }],
        rules: [{ kind: 'budget', name: 'budget-watch', thresholds: [0.5, 1] }],
      },
      {
        budgets: [{ name: 'team-daily', scope: 'team', period: 'day', limitUsd: 1, mode: 'soft' }],
      },
    );
    const principal = { keyId: 'k1', team: 'support' };
    const spend = async (cost: number) => {
      const admission = await access.admit({
        principal,
        candidates: ['gpt-4o'],
        estimatedCostUsd: { 'gpt-4o': cost },
        estimatedTokens: 10,
        at: Date.now(),
      });
      if (!admission.ok) throw new Error(admission.error.message);
      access.settle(admission, {
        model: 'gpt-4o',
        costUsd: cost,
        inputTokens: 5,
        outputTokens: 5,
        ok: true,
      });
    };
    await spend(0.3);
    await spend(0.3);
    await spend(0.3);
    await spend(0.3);
    await access.alerts.sender.idle();
    const alerts = receiver.of('budget-watch');
    expect(alerts.map((alert) => alert.threshold)).toEqual([0.5, 1]);
    expect(alerts[0]?.text).toMatch(
      /^budget "team-daily" \(team support, UTC day\) passed 50% of \$1\.00: \$0\.600 spent; resets at \d{4}-\d\d-\d\dT00:00:00\.000Z$/,
    );
    expect(alerts[1]?.labels).toMatchObject({ budget: 'team-daily', subject: 'support' });
  });

  it('a budget threshold below 1% is written with its digits, not rounded to 0%', async () => {
    const access = open(
      {
        webhooks: [{ url: `${receiver.url}/hooks/budget-tiny` }],
        rules: [{ kind: 'budget', name: 'budget-tiny', thresholds: [0.000001, 0.125] }],
      },
      {
        budgets: [{ name: 'all-daily', scope: 'global', period: 'day', limitUsd: 1, mode: 'soft' }],
      },
    );
    const admission = await access.admit({
      principal: { keyId: 'k1' },
      candidates: ['gpt-4o'],
      estimatedCostUsd: { 'gpt-4o': 0.2 },
      estimatedTokens: 10,
      at: Date.now(),
    });
    if (!admission.ok) throw new Error(admission.error.message);
    access.settle(admission, {
      model: 'gpt-4o',
      costUsd: 0.2,
      inputTokens: 5,
      outputTokens: 5,
      ok: true,
    });
    await access.alerts.sender.idle();
    expect(receiver.of('budget-tiny').map((alert) => alert.text.split(':')[0])).toEqual([
      'budget "all-daily" (all traffic, UTC day) passed 0.0001% of $1.00',
      'budget "all-daily" (all traffic, UTC day) passed 12.5% of $1.00',
    ]);
  });

  it('quality drop against the baseline window, then resolved (stats function passed in)', async () => {
    let recentScore = 0.6;
    const row = (meanScore: number, scoreCount: number) => ({
      model: 'gpt-4o',
      calls: 100,
      errors: 0,
      errorRate: 0,
      costUsd: 1,
      costPerCallUsd: 0.01,
      meanInputTokens: 10,
      meanOutputTokens: 10,
      latencyP50Ms: 100,
      latencyP95Ms: 200,
      latencyP99Ms: 300,
      meanScore,
      scoreCount,
    });
    const access = createAccess(
      {
        alerts: {
          webhooks: [{ url: `${receiver.url}/hooks/quality` }],
          rules: [
            {
              kind: 'qualityDrop',
              name: 'quality',
              window: '1h',
              baselineWindow: '7d',
              dropBy: 0.1,
            },
          ],
        },
      },
      {
        stats: (query) =>
          Promise.resolve({
            from: '',
            to: '',
            groupBy: ['model'],
            rows: [query.window === '1h' ? row(recentScore, 40) : row(0.85, 4000)],
          }),
      },
    );
    opened.push(access);
    await access.alerts.evaluate();
    recentScore = 0.84;
    await access.alerts.evaluate();
    await access.alerts.sender.idle();
    const alerts = receiver.of('quality');
    expect(alerts.map((alert) => alert.status)).toEqual(['firing', 'resolved']);
    expect(alerts[0]?.text).toBe(
      'quality: meanScore of gpt-4o fell to 0.600 over the last 1h (40 scores) from 0.850 over 7d (drop > 0.1)',
    );
  });

  it('`modelmaxx alerts test --config F` fires a sample through the real CLI binary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelmaxx-alerts-cli-'));
    try {
      const config = join(dir, 'gateway.json');
      writeFileSync(
        config,
        JSON.stringify({
          upstreams: { openai: { baseURL: 'http://127.0.0.1:1/v1' } },
          alerts: { webhooks: [{ url: `${receiver.url}/hooks/cli` }] },
        }),
      );
      receiver.failFirst = 1;
      const { stdout } = await run(
        process.execPath,
        [cliBin, 'alerts', 'test', '--config', config],
        {
          timeout: 60_000,
        },
      );
      expect(stdout).toMatch(
        /^ok {6}http:\/\/127\.0\.0\.1:\d+\/… {2}HTTP 204 after 2 attempt\(s\)\n$/,
      );
      const received = receiver.received.filter((entry) => entry.path === '/hooks/cli');
      expect(received).toHaveLength(2);
      expect(received[1]?.body).toMatchObject({
        source: 'modelmaxx',
        status: 'test',
        kind: 'test',
      });

      // An unreachable webhook: exit code 1 and the reason.
      const failed = await run(
        process.execPath,
        [cliBin, 'alerts', 'test', '--webhook', 'http://127.0.0.1:9/x', '--attempts', '1'],
        { timeout: 60_000 },
      ).catch((error: unknown) => error as { code: number; stdout: string });
      expect(failed).toMatchObject({ code: 1 });
      // The reason, not just fetch's "fetch failed" (port 9 is on fetch's list of bad ports).
      expect((failed as { stdout: string }).stdout).toBe(
        'failed  http://127.0.0.1:9/…  fetch failed: bad port after 1 attempt(s)\n',
      );
      // A --webhook that is not a URL is a usage error naming the flag, not the config's path.
      const notUrl = await run(process.execPath, [cliBin, 'alerts', 'test', '--webhook', 'hooks'], {
        timeout: 60_000,
      }).catch((error: unknown) => error as { code: number; stderr: string });
      expect(notUrl).toMatchObject({ code: 2 });
      expect((notUrl as { stderr: string }).stderr).toContain(
        '--webhook hooks: not an http(s) URL',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
