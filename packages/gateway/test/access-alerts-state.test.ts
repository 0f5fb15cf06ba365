import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatsResponse, StatsRow } from '@modelmaxx/semconv/schemas';
import { createAccess } from '../src/access/index.js';
import type { AccessLogger } from '../src/access/index.js';
import { Receiver } from './webhook-receiver.js';

// Which alert rules are firing survives a restart of the gateway (a new access layer on the same
// state dir): a real webhook receiver; the stats come from a function, as in access-alerts.test.ts.

const MINUTE = 60_000;

function row(model: string, costUsd: number, latencyP95Ms: number): StatsRow {
  return {
    model,
    calls: 30,
    errors: 0,
    errorRate: 0,
    costUsd,
    costPerCallUsd: costUsd / 30,
    meanInputTokens: 10,
    meanOutputTokens: 10,
    latencyP50Ms: latencyP95Ms / 2,
    latencyP95Ms,
    latencyP99Ms: latencyP95Ms,
    meanScore: null,
    scoreCount: 0,
  };
}

interface SavedRule {
  rule: string;
  group: Record<string, string>;
  firing: boolean;
  lastSent: number;
}

describe('alert state across restarts (gateway-alerts.json in the state dir)', () => {
  const receiver = new Receiver();
  let stateDir: string;

  beforeAll(async () => {
    await receiver.start();
    stateDir = mkdtempSync(join(tmpdir(), 'modelmaxx-alert-state-'));
  });

  afterAll(async () => {
    await receiver.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const started = Date.now();
  let now = started;
  let rows = [row('gpt-4o', 3, 1000), row('gpt-4o-mini', 0.03, 200)];
  const stats = () =>
    Promise.resolve<StatsResponse>({ from: '', to: '', groupBy: ['model'], rows });
  const spendRule = { kind: 'spend', name: 'restart-spend', window: '1h', aboveUsd: 2 };
  const slowRule = { kind: 'latencyP95', name: 'restart-slow', window: '1h', aboveMs: 500 };

  /** A gateway start: one evaluation, its alerts delivered, then stopped; the alerts it sent. */
  async function runOnce(rules: object[], logger?: AccessLogger) {
    const before = receiver.received.length;
    const access = createAccess(
      {
        alerts: { repeatMinutes: 60, webhooks: [{ url: `${receiver.url}/hooks/state` }], rules },
      },
      { stats, stateDir, clock: () => now, ...(logger === undefined ? {} : { logger }) },
    );
    try {
      await access.alerts.evaluate();
      await access.alerts.sender.idle();
    } finally {
      await access.close();
    }
    return receiver.received
      .slice(before)
      .map(({ body }) => `${body.rule} ${body.status} ${body.labels['model'] ?? '-'}`);
  }

  const saved = () =>
    (
      JSON.parse(readFileSync(join(stateDir, 'gateway-alerts.json'), 'utf8')) as {
        rules: SavedRule[];
      }
    ).rules;

  it('a firing rule is not sent again by a restart before repeatMinutes; one resolved while down is resolved', async () => {
    expect(await runOnce([spendRule, slowRule])).toEqual([
      'restart-spend firing -',
      'restart-slow firing gpt-4o',
    ]);
    expect(saved()).toEqual([
      { rule: 'restart-spend', group: {}, firing: true, lastSent: started },
      { rule: 'restart-slow', group: { model: 'gpt-4o' }, firing: true, lastSent: started },
    ]);

    // Restarted 10 minutes later (a key added), the conditions still hold: nothing sent.
    now = started + 10 * MINUTE;
    expect(await runOnce([spendRule, slowRule])).toEqual([]);

    // 61 minutes after the first alerts: repeated, as without a restart.
    now = started + 61 * MINUTE;
    expect(await runOnce([spendRule, slowRule])).toEqual([
      'restart-spend firing -',
      'restart-slow firing gpt-4o',
    ]);

    // Both stop while the gateway is down: the next start's first evaluation resolves them.
    rows = [row('gpt-4o', 1, 300), row('gpt-4o-mini', 0.03, 200)];
    now = started + 70 * MINUTE;
    expect(await runOnce([spendRule, slowRule])).toEqual([
      'restart-spend resolved -',
      'restart-slow resolved gpt-4o',
    ]);
    expect(await runOnce([spendRule, slowRule])).toEqual([]);
  });

  it('the state of a rule no longer configured is dropped; a damaged file is logged and replaced', async () => {
    rows = [row('gpt-4o', 3, 1000)];
    now = started + 100 * MINUTE;
    await runOnce([spendRule, slowRule]);
    expect(saved().map((entry) => entry.rule)).toEqual(['restart-spend', 'restart-slow']);
    // restart-spend taken out of the config: forgotten at the next start.
    expect(await runOnce([slowRule])).toEqual([]);
    expect(saved().map((entry) => entry.rule)).toEqual(['restart-slow']);

    writeFileSync(join(stateDir, 'gateway-alerts.json'), '{"version":1,');
    const warnings: string[] = [];
    const logger: AccessLogger = {
      info: () => undefined,
      warn: (_fields, message) => warnings.push(message),
      error: (_fields, message) => warnings.push(message),
    };
    // Unreadable: the rule is sent again (the worst a damaged file costs), the file rewritten.
    expect(await runOnce([slowRule], logger)).toEqual(['restart-slow firing gpt-4o']);
    expect(warnings).toContain('alert state not restored: firing rules will be sent again');
    expect(saved()).toEqual([
      { rule: 'restart-slow', group: { model: 'gpt-4o' }, firing: true, lastSent: now },
    ]);
  });
});
