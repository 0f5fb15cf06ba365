import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createAccess, STATE_FILE_NAME } from '../src/access/index.js';
import type { AccessConfigInput, AccessLayer } from '../src/access/index.js';
import type { Admission, AdmissionRequest, Principal } from '../src/access/types.js';

type Admitted = Extract<Admission, { ok: true }>;
type Refused = Extract<Admission, { ok: false }>;

const support: Principal = { keyId: 'k_support', team: 'support', user: 'ana', app: 'helpdesk' };
const sales: Principal = { keyId: 'k_sales', team: 'sales', user: 'bo' };

function request(
  principal: Principal,
  costs: Record<string, number>,
  extra: Partial<AdmissionRequest> = {},
): AdmissionRequest {
  return {
    principal,
    candidates: Object.keys(costs),
    estimatedCostUsd: costs,
    estimatedTokens: 500,
    at: 0,
    ...extra,
  };
}

function admitted(admission: Admission): Admitted {
  if (!admission.ok) throw new Error(`refused: ${admission.error.message}`);
  return admission;
}

function refused(admission: Admission): Refused {
  if (admission.ok) throw new Error('admitted, expected a refusal');
  return admission;
}

const settlement = (model: string, costUsd: number, tokens = 0) => ({
  model,
  costUsd,
  inputTokens: tokens,
  outputTokens: 0,
  ok: true,
});

const opened: AccessLayer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const access of opened.splice(0)) await access.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function open(config: AccessConfigInput, clock: () => number, stateDir?: string): AccessLayer {
  const access = createAccess(config, {
    clock,
    ...(stateDir === undefined ? {} : { stateDir }),
    flushIntervalMs: 50,
  });
  opened.push(access);
  return access;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'modelmaxx-access-'));
  dirs.push(dir);
  return dir;
}

// Noon UTC on 6 December 2026: half the day gone, 17.7% of the month.
const NOON = Date.UTC(2026, 11, 6, 12, 0, 0);

describe('budgets', () => {
  it('soft: warns from warnAt and past the limit, never refuses', async () => {
    const access = open(
      {
        budgets: [
          {
            name: 'support-soft',
            scope: 'team',
            match: 'support',
            period: 'day',
            limitUsd: 1,
            mode: 'soft',
            warnAt: 0.5,
          },
        ],
      },
      () => NOON,
    );
    const first = admitted(await access.admit(request(support, { 'gpt-4o': 0.1 })));
    expect(first.warnings).toEqual([]);
    access.settle(first, settlement('gpt-4o', 0.6));

    const second = admitted(await access.admit(request(support, { 'gpt-4o': 0.1 })));
    expect(second.warnings).toHaveLength(1);
    expect(second.warnings[0]).toContain('budget "support-soft" (team support, UTC day)');
    expect(second.warnings[0]).toContain('70%');
    expect(second.warnings[0]).toContain('resets at 2026-12-07T00:00:00.000Z');
    access.settle(second, settlement('gpt-4o', 0.6));

    // $1.20 spent of $1.00: over.
    const third = admitted(await access.admit(request(support, { 'gpt-4o': 0.1 })));
    expect(third.warnings[0]).toContain('is over its limit');
    access.settle(third, settlement('gpt-4o', 0));
    // Spent under the limit, but not with what is in flight: said as such, not "over its limit".
    const under = open(
      { budgets: [{ name: 'soft', scope: 'team', period: 'day', limitUsd: 1, mode: 'soft' }] },
      () => NOON,
    );
    under.settle(
      admitted(await under.admit(request(support, { 'gpt-4o': 0.1 }))),
      settlement('gpt-4o', 0.9),
    );
    const held = admitted(await under.admit(request(support, { 'gpt-4o': 0.05 })));
    const passing = admitted(await under.admit(request(support, { 'gpt-4o': 0.1 })));
    expect(passing.warnings[0]).toContain(
      'passes its limit with the requests in flight: $0.900 spent, $0.150 in flight',
    );
    expect(passing.warnings[0]).not.toContain('is over its limit');
    under.settle(held, settlement('gpt-4o', 0));
    // A small warnAt share reads as itself, not 0%.
    const early = open(
      {
        budgets: [
          {
            name: 'early',
            scope: 'team',
            period: 'day',
            limitUsd: 1000,
            mode: 'soft',
            warnAt: 0.00001,
          },
        ],
      },
      () => NOON,
    );
    const tiny = admitted(await early.admit(request(support, { 'gpt-4o': 0.05 })));
    expect(tiny.warnings[0]).toContain('is at 0.005% of $1000.00');
    early.settle(tiny, settlement('gpt-4o', 0));
    // Another team is not counted against support's budget.
    expect(admitted(await access.admit(request(sales, { 'gpt-4o': 0.1 }))).warnings).toEqual([]);
  });

  it('hard: 429 naming the budget and its reset (UTC day and month), and leaves out candidates that no longer fit', async () => {
    const access = open(
      {
        budgets: [
          { name: 'key-daily', scope: 'key', period: 'day', limitUsd: 1 },
          { name: 'team-monthly', scope: 'team', period: 'month', limitUsd: 5 },
        ],
      },
      () => NOON,
    );
    const first = admitted(await access.admit(request(support, { 'gpt-4o': 0.5 })));
    access.settle(first, settlement('gpt-4o', 0.9));

    // $0.10 left today: the $0.20 candidate is left out, the $0.01 one stays.
    const narrowed = admitted(
      await access.admit(request(support, { 'gpt-4o': 0.2, 'gpt-4o-mini': 0.01 })),
    );
    expect(narrowed.candidates).toEqual(['gpt-4o-mini']);
    expect(narrowed.steered).toContain('gpt-4o left out');
    expect(narrowed.warnings[0]).toContain('budget "key-daily"');
    access.settle(narrowed, settlement('gpt-4o-mini', 0.01));

    const over = refused(await access.admit(request(support, { 'gpt-4o': 0.2 })));
    expect(over.status).toBe(429);
    expect(over.error.type).toBe('budget_exceeded');
    expect(over.error.budget).toBe('key-daily');
    expect(over.error.resetsAt).toBe('2026-12-07T00:00:00.000Z');
    expect(over.retryAfterSeconds).toBe(12 * 3600);
    // $0.09 left, less than the $0.20 estimate: said as such, not "exhausted".
    expect(over.error.message).toContain(
      'budget "key-daily" (key k_support, UTC day) has $0.0900 left of $1.00 ($0.910 spent), less than this request may cost: up to $0.200',
    );

    // The monthly team budget: another key of the same team spends it; it resets on 1 January.
    const teammate = (i: number): Principal => ({ keyId: `k_support_${i}`, team: 'support' });
    for (let i = 0; i < 4; i += 1) {
      const one = admitted(await access.admit(request(teammate(i), { 'gpt-4o': 0.9 })));
      access.settle(one, settlement('gpt-4o', 0.9));
    }
    const monthly = refused(await access.admit(request(teammate(5), { 'gpt-4o': 0.9 })));
    expect(monthly.error.budget).toBe('team-monthly');
    expect(monthly.error.resetsAt).toBe('2027-01-01T00:00:00.000Z');
    // Sales is another team: unaffected.
    admitted(await access.admit(request(sales, { 'gpt-4o': 0.9 })));
  });

  it('steer: cheapest candidates first once the burn rate runs ahead of plan, explained in `steered`', async () => {
    let now = Date.UTC(2026, 11, 6, 0, 30, 0);
    const access = open(
      {
        budgets: [
          { name: 'support-steer', scope: 'team', period: 'day', limitUsd: 10, mode: 'steer' },
        ],
      },
      () => now,
    );
    const costs = { 'claude-opus-4': 0.3, 'gpt-4o': 0.1, 'gpt-4o-mini': 0.005 };
    // 00:30, $0.01 spent: burn rate 0.48x... and under steerMinSpend (5%): no steering.
    const early = admitted(await access.admit(request(support, costs)));
    access.settle(early, settlement('claude-opus-4', 0.01));
    expect(early.steered).toBeUndefined();

    // Noon (50% of the day) with $4 spent: 0.8x plan, order kept.
    now = NOON;
    const spend = admitted(await access.admit(request(support, costs)));
    access.settle(spend, settlement('claude-opus-4', 3.99));
    const onPlan = admitted(await access.admit(request(support, costs)));
    expect(onPlan.candidates).toEqual(['claude-opus-4', 'gpt-4o', 'gpt-4o-mini']);
    expect(onPlan.steered).toBeUndefined();
    access.settle(onPlan, settlement('claude-opus-4', 2));

    // $6 spent at noon: 1.2x plan (+ reservation): cheapest first.
    const ahead = admitted(await access.admit(request(support, costs)));
    expect(ahead.candidates).toEqual(['gpt-4o-mini', 'gpt-4o', 'claude-opus-4']);
    expect(ahead.steered).toContain(
      'budget "support-steer" (team support, UTC day) runs ahead of plan',
    );
    expect(ahead.steered).toMatch(/burn rate 1\.2\dx/);
    access.settle(ahead, settlement('gpt-4o-mini', 0.005));

    // Steer is a hard limit at 100%.
    const rest = admitted(await access.admit(request(support, { 'gpt-4o': 3.9 })));
    access.settle(rest, settlement('gpt-4o', 3.995));
    const refusedAtLimit = refused(await access.admit(request(support, costs)));
    expect(refusedAtLimit.error.budget).toBe('support-steer');
  });

  it('100 concurrent admits at a hard limit with late settles: admitted estimates never pass the limit', async () => {
    const access = open(
      { budgets: [{ name: 'global-daily', scope: 'global', period: 'day', limitUsd: 1 }] },
      () => NOON,
    );
    const estimate = 0.05;
    let peakReserved = 0;
    let admittedEstimate = 0;
    let spent = 0;
    let refusals = 0;
    // Three waves of 100 concurrent requests; each settles 5–60 ms after admission with an
    // actual cost between 40% and 100% of its estimate.
    for (let wave = 0; wave < 3; wave += 1) {
      const results = await Promise.all(
        Array.from({ length: 100 }, async (_, index) => {
          const admission = await access.admit(
            request({ keyId: `k${index}` }, { 'gpt-4o': estimate }),
          );
          if (!admission.ok) {
            expect(admission.error.budget).toBe('global-daily');
            refusals += 1;
            return 0;
          }
          admittedEstimate += estimate;
          const [window] = access.budgetStatus();
          peakReserved = Math.max(
            peakReserved,
            (window?.spentUsd ?? 0) + (window?.reservedUsd ?? 0),
          );
          await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 55));
          const actual = estimate * (0.4 + 0.6 * Math.random());
          access.settle(admission, settlement('gpt-4o', actual));
          return actual;
        }),
      );
      spent += results.reduce((sum, value) => sum + value, 0);
    }
    const [status] = access.budgetStatus();
    expect(status?.reservedUsd).toBe(0);
    expect(status?.spentUsd).toBeCloseTo(spent, 9);
    expect(spent).toBeLessThanOrEqual(1 + 1e-9);
    // Every admission reserved its estimate: spent + reserved never passed the limit (the first
    // wave of 100 admits exactly 20 = $1.00 / $0.05).
    expect(peakReserved).toBeLessThanOrEqual(1 + 1e-9);
    expect(refusals).toBeGreaterThanOrEqual(300 - Math.floor(1 / (estimate * 0.4)));
    console.log(
      `100-concurrent hard limit $1: admitted ${Math.round(admittedEstimate / estimate)} of 300, peak spent+reserved $${peakReserved.toFixed(4)}, spent $${spent.toFixed(4)} (overspend $${Math.max(0, spent - 1).toFixed(4)})`,
    );
  });

  it('100 concurrent admits whose actual cost exceeds the estimate: overspend bounded by what was in flight', async () => {
    const access = open(
      { budgets: [{ name: 'global-daily', scope: 'global', period: 'day', limitUsd: 1 }] },
      () => NOON,
    );
    const estimate = 0.05;
    const admissions = (
      await Promise.all(
        Array.from({ length: 100 }, () => access.admit(request(sales, { 'gpt-4o': estimate }))),
      )
    ).filter((admission): admission is Admitted => admission.ok);
    expect(admissions).toHaveLength(20);
    // Each answer ran 50% over its estimate (e.g. the estimate missed tokens): settles arrive late.
    await Promise.all(
      admissions.map(async (admission) => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 40));
        access.settle(admission, settlement('gpt-4o', estimate * 1.5));
      }),
    );
    const spent = access.budgetStatus()[0]?.spentUsd ?? 0;
    // Overspend = 20 in flight × $0.025 underestimate = $0.50: no more than the in-flight excess.
    expect(spent - 1).toBeCloseTo(20 * estimate * 0.5, 9);
    expect(refused(await access.admit(request(sales, { 'gpt-4o': 0.001 }))).error.budget).toBe(
      'global-daily',
    );
  });

  it('a leaked reservation (never settled) expires after reservationTtlSeconds and cannot block a budget forever', async () => {
    let now = NOON;
    const access = open(
      {
        budgets: [{ name: 'global-daily', scope: 'global', period: 'day', limitUsd: 1 }],
        reservationTtlSeconds: 60,
      },
      () => now,
    );
    // A request that never settles (a leak) holds 90% of the budget.
    const leaked = admitted(await access.admit(request(sales, { 'gpt-4o': 0.9 })));
    expect(access.inFlight).toBe(1);
    now += 59_000;
    expect(refused(await access.admit(request(sales, { 'gpt-4o': 0.5 }))).error.budget).toBe(
      'global-daily',
    );
    // Past the TTL the reservation is released: the budget admits again.
    now += 2_000;
    const next = admitted(await access.admit(request(sales, { 'gpt-4o': 0.5 })));
    expect(access.inFlight).toBe(1);
    expect(access.budgetStatus()[0]).toMatchObject({ spentUsd: 0, reservedUsd: 0.5 });
    // The leaked request ends after all: its spend counts, its reservation is not released twice.
    access.settle(leaked, settlement('gpt-4o', 0.3));
    expect(access.budgetStatus()[0]).toMatchObject({ spentUsd: 0.3, reservedUsd: 0.5 });
    access.settle(next, settlement('gpt-4o', 0.2));
    expect(access.budgetStatus()[0]).toMatchObject({ spentUsd: 0.5, reservedUsd: 0 });
    expect(access.inFlight).toBe(0);
  });

  it('with reservations expiring, 100 concurrent requests at a hard limit still cannot overspend while in flight', async () => {
    let now = NOON;
    const access = open(
      {
        budgets: [{ name: 'global-daily', scope: 'global', period: 'day', limitUsd: 1 }],
        reservationTtlSeconds: 30,
      },
      () => now,
    );
    const estimate = 0.05;
    let peak = 0;
    let spent = 0;
    // Five waves of 100 concurrent requests, 10 s of clock apart (a request lasts up to 25 s:
    // inside the TTL), each settling late at 40-100% of its estimate; one in ten never settles.
    const leaks: Admitted[] = [];
    for (let wave = 0; wave < 5; wave += 1) {
      const pending: Promise<void>[] = [];
      for (let index = 0; index < 100; index += 1) {
        const admission = await access.admit(request({ keyId: `k${index}` }, { m: estimate }));
        if (!admission.ok) continue;
        const [window] = access.budgetStatus();
        peak = Math.max(peak, (window?.spentUsd ?? 0) + (window?.reservedUsd ?? 0));
        if (index % 10 === 9) {
          leaks.push(admission);
          continue;
        }
        pending.push(
          (async () => {
            await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
            const actual = estimate * (0.4 + 0.6 * Math.random());
            spent += actual;
            access.settle(admission, settlement('m', actual));
          })(),
        );
      }
      await Promise.all(pending);
      now += 10_000;
    }
    expect(leaks.length).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(1 + 1e-9);
    expect(spent).toBeLessThanOrEqual(1 + 1e-9);
    // Once the leaks' TTL is over, nothing is reserved: what is left of the budget is usable.
    now += 30_000;
    expect(access.budgetStatus()[0]?.reservedUsd).toBe(0);
    expect(access.inFlight).toBe(0);
  });

  it('survives a restart: a new instance reads the state file; windows over are dropped', async () => {
    const dir = tempDir();
    let now = NOON;
    const config: AccessConfigInput = {
      budgets: [
        { name: 'key-daily', scope: 'key', period: 'day', limitUsd: 1 },
        { name: 'key-monthly', scope: 'key', period: 'month', limitUsd: 3 },
      ],
    };
    const first = open(config, () => now, dir);
    const one = admitted(await first.admit(request(support, { 'gpt-4o': 0.5 })));
    first.settle(one, settlement('gpt-4o', 0.7));
    // No close (a crash): the settle is written within the flush interval (50 ms here).
    const file = join(dir, STATE_FILE_NAME);
    await expect
      .poll(() => {
        try {
          return readFileSync(file, 'utf8');
        } catch {
          return '';
        }
      })
      .toContain('"spentUsd":0.7');
    // Then the process stops: its state dir's lock is released (a crash's stale lock, with the
    // process gone, is taken over: access-state-lock.test.ts).
    await first.close();

    const second = open(config, () => now, dir);
    expect(
      second
        .budgetStatus()
        .map((window) => [window.budget, window.subject, window.spentUsd])
        .sort(),
    ).toEqual([
      ['key-daily', 'k_support', 0.7],
      ['key-monthly', 'k_support', 0.7],
    ]);
    const over = refused(await second.admit(request(support, { 'gpt-4o': 0.4 })));
    expect(over.error.budget).toBe('key-daily');
    await second.close();

    // The next day: the day's spend is gone, the month's stays.
    now = NOON + 86_400_000;
    const third = open(config, () => now, dir);
    expect(third.budgetStatus().map((window) => [window.budget, window.spentUsd])).toEqual([
      ['key-monthly', 0.7],
    ]);
    admitted(await third.admit(request(support, { 'gpt-4o': 0.4 })));
  });

  it('keeps the spend of a budget left out of the config for a restart until its window ends', async () => {
    const dir = tempDir();
    let now = NOON;
    const both: AccessConfigInput = {
      budgets: [
        { name: 'key-daily', scope: 'key', period: 'day', limitUsd: 1 },
        { name: 'team-daily', scope: 'team', period: 'day', limitUsd: 1 },
      ],
    };
    const first = open(both, () => now, dir);
    first.settle(
      admitted(await first.admit(request(support, { 'gpt-4o': 0.5 }))),
      settlement('gpt-4o', 0.7),
    );
    await first.close();
    // One restart without the team budget: its spend is carried, not dropped.
    const without = open({ budgets: [both.budgets![0]!] }, () => now, dir);
    expect(without.budgetStatus().map((window) => window.budget)).toEqual(['key-daily']);
    await without.close();
    const back = open(both, () => now, dir);
    const spent = (access: AccessLayer) =>
      access
        .budgetStatus()
        .map((window) => [window.budget, window.spentUsd])
        .sort();
    expect(spent(back)).toEqual([
      ['key-daily', 0.7],
      ['team-daily', 0.7],
    ]);
    await back.close();
    // Once its window is over it is dropped like any other.
    now = NOON + 86_400_000;
    const nextDay = open({ budgets: [both.budgets![0]!] }, () => now, dir);
    await nextDay.close();
    now = NOON;
    expect(spent(open(both, () => now, dir))).toEqual([]);
  });

  it('without gateway keys (anonymous), key budgets do not apply; global and end-user ones do', async () => {
    const access = open(
      {
        budgets: [
          { name: 'per-key', scope: 'key', period: 'day', limitUsd: 0.01 },
          { name: 'per-user', scope: 'user', period: 'day', limitUsd: 0.5 },
          { name: 'all', scope: 'global', period: 'day', limitUsd: 1 },
        ],
      },
      () => NOON,
    );
    const anonymous: Principal = { keyId: 'anonymous' };
    const first = admitted(await access.admit(request(anonymous, { m: 0.4 }, { endUser: 'u1' })));
    access.settle(first, settlement('m', 0.4));
    expect(
      access
        .budgetStatus()
        .map((window) => window.budget)
        .sort(),
    ).toEqual(['all', 'per-user']);
    const user = refused(await access.admit(request(anonymous, { m: 0.2 }, { endUser: 'u1' })));
    expect(user.error.budget).toBe('per-user');
    admitted(await access.admit(request(anonymous, { m: 0.2 }, { endUser: 'u2' })));
  });

  it('a corrupt state file is a clear error, not a silent reset', () => {
    const dir = tempDir();
    writeFileSync(join(dir, STATE_FILE_NAME), '{"version":1,');
    expect(() => open({ budgets: [] }, () => NOON, dir)).toThrow(/gateway-budgets\.json: not JSON/);
  });

  it('rejects a bad config with every problem by path', () => {
    expect(() =>
      createAccess({
        budgets: [{ name: 'x', scope: 'galaxy', period: 'day', limitUsd: -1 }],
        keys: [{ id: 'k', hash: 'md5:abc' }],
      }),
    ).toThrow(/keys\.0\.hash: hash is "sha256:".*budgets\.0\.scope: .*budgets\.0\.limitUsd: /);
  });
});

describe('rate limits', () => {
  it('requests per minute per key, refilled over the minute', async () => {
    let now = NOON;
    const access = open(
      { rateLimits: [{ name: 'per-key', scope: 'key', requestsPerMinute: 5 }] },
      () => now,
    );
    for (let i = 0; i < 5; i += 1) admitted(await access.admit(request(support, { m: 0 })));
    const limited = refused(await access.admit(request(support, { m: 0 })));
    expect(limited.error.type).toBe('rate_limited');
    expect(limited.error.budget).toBe('per-key');
    expect(limited.error.message).toContain('5 requests per minute');
    expect(limited.retryAfterSeconds).toBe(12);
    // Another key has its own bucket.
    admitted(await access.admit(request(sales, { m: 0 })));
    now += 12_000;
    admitted(await access.admit(request(support, { m: 0 })));
    refused(await access.admit(request(support, { m: 0 })));
  });

  it('tokens per minute per team: estimate at admission, corrected by the actual tokens at settle', async () => {
    const now = NOON;
    const access = open(
      { rateLimits: [{ name: 'team-tokens', scope: 'team', tokensPerMinute: 1000 }] },
      () => now,
    );
    const big = { estimatedTokens: 400 };
    const a = admitted(await access.admit(request(support, { m: 0 }, big)));
    const b = admitted(await access.admit(request(support, { m: 0 }, big)));
    const limited = refused(await access.admit(request(support, { m: 0 }, big)));
    expect(limited.error.message).toContain('1000 tokens per minute');
    // Both used 100 tokens, not 400: 600 come back.
    access.settle(a, settlement('m', 0, 100));
    access.settle(b, settlement('m', 0, 100));
    admitted(await access.admit(request(support, { m: 0 }, big)));
    // Without a team the limit does not apply.
    admitted(await access.admit(request({ keyId: 'solo' }, { m: 0 }, big)));
  });
});
