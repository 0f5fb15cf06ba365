/**
 * What an operator who trusts the gateway with money relies on: a 429's reset time is when a
 * retry can pass, and config mistakes that would leave a budget, a key or an alert doing nothing
 * are refused at start instead of accepted silently.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createAccess } from '../src/access/index.js';
import { formatUsd } from '../src/access/windows.js';
import { resolveConfig } from '../src/config.js';
import type { AccessConfigInput, AccessLayer } from '../src/access/index.js';
import type { Admission, AdmissionRequest, Principal } from '../src/access/types.js';

const support: Principal = { keyId: 'k_support', team: 'support', user: 'ana' };

function request(costs: Record<string, number>): AdmissionRequest {
  return {
    principal: support,
    candidates: Object.keys(costs),
    estimatedCostUsd: costs,
    estimatedTokens: 500,
    at: 0,
  };
}

const opened: AccessLayer[] = [];
afterEach(async () => {
  for (const access of opened.splice(0)) await access.close();
});

function open(config: AccessConfigInput, clock: () => number): AccessLayer {
  const access = createAccess(config, { clock, flushIntervalMs: 50 });
  opened.push(access);
  return access;
}

// Noon UTC on 6 December 2026.
const NOON = Date.UTC(2026, 11, 6, 12, 0, 0);

describe('a budget 429 says when a retry can pass', () => {
  it('with a daily and a monthly budget both exhausted, it names the one that resets last', async () => {
    const access = open(
      {
        budgets: [
          { name: 'team-daily', scope: 'team', period: 'day', limitUsd: 1 },
          { name: 'everything', scope: 'global', period: 'month', limitUsd: 1 },
        ],
      },
      () => NOON,
    );
    const first = await access.admit(request({ 'gpt-4o': 0.5 }));
    if (!first.ok) throw new Error(first.error.message);
    access.settle(first, {
      model: 'gpt-4o',
      costUsd: 1,
      inputTokens: 0,
      outputTokens: 0,
      ok: true,
    });
    const over: Admission = await access.admit(request({ 'gpt-4o': 0.1 }));
    if (over.ok) throw new Error('admitted, expected a refusal');
    // The day's reset (midnight) would not let a retry pass: the month's budget is spent too.
    expect(over.error.budget).toBe('everything');
    expect(over.error.resetsAt).toBe('2027-01-01T00:00:00.000Z');
    expect(over.retryAfterSeconds).toBe((Date.UTC(2027, 0, 1) - NOON) / 1000);
    const body = over.error.fields?.budget as Record<string, unknown>;
    expect(body.name).toBe('everything');
    expect(body.retry_after_seconds).toBe(over.retryAfterSeconds);
  });
});

describe('config mistakes that would leave a limit doing nothing are refused', () => {
  const hash = (digit: string) => `sha256:${digit.repeat(64)}`;
  const keys = [
    { id: 'support-web', hash: hash('a'), team: 'support' },
    { id: 'batch', hash: hash('b'), team: 'data' },
  ];

  it('a key or team budget, or rate limit, whose match names no key id or team', () => {
    expect(() =>
      createAccess({
        keys,
        budgets: [{ name: 'b', scope: 'team', match: 'suport', period: 'day', limitUsd: 5 }],
      }),
    ).toThrow(`budgets.0.match: no key's team is "suport" (the keys' teams: support, data)`);
    expect(() =>
      createAccess({
        keys,
        rateLimits: [{ name: 'r', scope: 'key', match: 'suport-web', requestsPerMinute: 5 }],
      }),
    ).toThrow('rateLimits.0.match: no key id is "suport-web" (the keys\' ids: support-web, batch)');
    // Matching ones, user and feature budgets (the app's end user, a header) are accepted.
    createAccess({
      keys,
      budgets: [
        { name: 'b', scope: 'team', match: 'support', period: 'day', limitUsd: 5 },
        { name: 'k', scope: 'key', match: 'batch', period: 'day', limitUsd: 5 },
        { name: 'u', scope: 'user', match: 'anyone', period: 'day', limitUsd: 5 },
      ],
    });
  });

  it('two keys with the same hash', () => {
    expect(() => createAccess({ keys: [keys[0]!, { id: 'copy', hash: hash('a') }] })).toThrow(
      'keys "support-web" and "copy" have the same hash',
    );
  });

  it('a budget alert rule naming no budget', () => {
    expect(() =>
      createAccess({
        budgets: [{ name: 'support-daily', scope: 'global', period: 'day', limitUsd: 5 }],
        alerts: { rules: [{ kind: 'budget', name: 'a', budget: 'support-dayly' }] },
      }),
    ).toThrow(
      'alerts.rules.0.budget: no budget named "support-dayly" (the budgets: support-daily)',
    );
  });
});

describe('alerts', () => {
  it('rules without webhooks are said at start: their alerts would only be logged', () => {
    const warnings: string[] = [];
    const logger = {
      info: () => undefined,
      warn: (_fields: object, message: string) => void warnings.push(message),
      error: () => undefined,
    };
    const budgets = [{ name: 'g', scope: 'global' as const, period: 'day' as const, limitUsd: 5 }];
    opened.push(
      createAccess({ budgets, alerts: { rules: [{ kind: 'budget', name: 'b' }] } }, { logger }),
    );
    expect(warnings).toEqual([
      'alert rules without alerts.webhooks: their alerts are only logged, never sent',
    ]);
    warnings.length = 0;
    const webhooks = [{ url: 'http://127.0.0.1:1/hook' }];
    opened.push(
      createAccess(
        { budgets, alerts: { webhooks, rules: [{ kind: 'budget', name: 'b' }] } },
        { logger },
      ),
    );
    expect(warnings).toEqual([]);
  });
});

describe('the gateway config', () => {
  it('a policy candidate no upstream serves is an error, not left out of every request', () => {
    const upstreams = {
      upstreamFlags: ['openai=http://127.0.0.1:1/v1', 'anthropic=http://127.0.0.1:1'],
    };
    const policy = (model: string) => ({
      policies: [{ name: 'p', candidates: [{ model: 'gpt-4o-mini' }, { model }] }],
    });
    expect(() => resolveConfig(policy('mistral-large'), upstreams)).toThrow(
      'policy "p": no upstream serves candidate mistral-large (upstreams: openai, anthropic): give it a "client", list it in upstreams.<name>.models or models, or write <upstream>/mistral-large',
    );
    // Served by a pattern, a prefix or the only upstream: accepted.
    resolveConfig(policy('claude-haiku-4-5'), upstreams);
    resolveConfig(policy('openai/mistral-large'), upstreams);
    resolveConfig(policy('mistral-large'), { upstreamFlags: ['local=http://127.0.0.1:1/v1'] });
  });

  it('a misspelt judge field is an error, not a silent default', () => {
    expect(() => resolveConfig({ judge: { model: 'gpt-4o', maxToken: 64 } })).toThrow(
      'judge: Unrecognized key: "maxToken"',
    );
  });
});

describe('money in messages', () => {
  it('is written out, never in exponent form, from pico-dollars to thousands', () => {
    expect(formatUsd(2.4e-7)).toBe('$0.000000240');
    expect(formatUsd(1.2345e-12)).toBe('$0.00000000000123');
    expect(formatUsd(0.0000333)).toBe('$0.0000333');
    expect(formatUsd(0.000207)).toBe('$0.000207');
    expect(formatUsd(0.5)).toBe('$0.500');
    expect(formatUsd(0)).toBe('$0.00');
    expect(formatUsd(16.2)).toBe('$16.20');
    expect(formatUsd(5000)).toBe('$5000.00');
  });
});
