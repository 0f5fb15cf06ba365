/**
 * Checks of a call recorded by its estimate (the provider had the prompt, its usage never came:
 * the app went away, a timeout, an answer cut): the span's usage, cost and source, and what the
 * key's and team's budgets (`per-key` / `per-team`, team `team-<key id>`) were charged.
 */
import { PriceCatalog, costOf } from '@modelmaxx/pricing';
import { expect } from 'vitest';
import { createAccess } from '../src/index.js';
import type { AccessLayer } from '../src/index.js';
import { waitFor } from './helpers.js';
import type { ReceivedSpan, SdkGateway } from './helpers.js';

/** An access layer for `keys`, each in team `team-<id>`, with soft $10 daily budgets per key and team. */
export const budgetedAccess = (keys: readonly { id: string; hash: string }[]): AccessLayer =>
  createAccess({
    keys: keys.map(({ id, hash }) => ({ id, hash, team: `team-${id}` })),
    budgets: [
      { name: 'per-key', scope: 'key', period: 'day', limitUsd: 10, mode: 'soft' },
      { name: 'per-team', scope: 'team', period: 'day', limitUsd: 10, mode: 'soft' },
    ],
  });

/** The gateway's input estimate of a body the SDKs send (JSON.stringify): bytes ÷ 4. */
export const bytesOver4 = (body: object) => Math.ceil(Buffer.byteLength(JSON.stringify(body)) / 4);

export const usageOf = (span: ReceivedSpan) => ({
  type: span.attributes['error.type'],
  source: span.attributes['gen_ai.usage.cost.source'],
  input: span.attributes['gen_ai.usage.input_tokens'],
  output: span.attributes['gen_ai.usage.output_tokens'],
});

/** A span's cost, as recorded. */
export const costOfSpan = (span: ReceivedSpan) =>
  Number(span.attributes['gen_ai.usage.cost.amount']);

/**
 * A call recorded by its estimate: failed with `type` (and `message` when given), the body's input
 * estimate and `output` tokens (0: no answer read) at `estimate`, costed at the catalog's price of
 * its model; returns the cost. `body`: the app's body, or the bytes the upstream got.
 */
export function expectEstimated(
  span: ReceivedSpan,
  body: object | number,
  type: string,
  message?: string,
  output = 0,
): number {
  expect(span.status.code).toBe(2);
  if (message !== undefined) expect(span.status.message).toBe(message);
  const input = typeof body === 'number' ? Math.ceil(body / 4) : bytesOver4(body);
  expect(usageOf(span)).toEqual({ type, source: 'estimate', input, output });
  const priced = costOf(
    {
      provider: String(span.attributes['gen_ai.provider.name']),
      model: String(span.attributes['gen_ai.request.model']),
      usage: { inputTokens: input, outputTokens: output },
    },
    { catalog: PriceCatalog.default() },
  );
  const cost = costOfSpan(span);
  expect(priced.known && cost > 0).toBe(true);
  expect(cost).toBeCloseTo(priced.known ? priced.amount : NaN, 15);
  return cost;
}

/** Span and budget look-ups of a gateway with keys and `per-key` / `per-team` budgets. */
export function estimateChecks(sdk: () => SdkGateway, access: () => AccessLayer) {
  /** The spans of one key, once `count` came (attempts and, for a route, the route span). */
  async function spansOf(keyId: string, count: number): Promise<ReceivedSpan[]> {
    const spans = () =>
      sdk().receiver.spans.filter((span) => span.attributes['modelmaxx.gateway.key_id'] === keyId);
    await waitFor(() => {
      void sdk().gateway.forceFlush();
      return spans().length >= count;
    }, 15_000);
    return spans();
  }

  /** A key's and its team's spend in the budgets, once settled (no reservation left). */
  async function spent(keyId: string): Promise<{ key: number; team: number }> {
    const windows = () => access().budgetStatus();
    await waitFor(() =>
      windows().some((w) => w.subject === keyId && w.reservedUsd === 0 && w.spentUsd > 0),
    );
    const of = (budget: string, subject: string) =>
      windows().find((w) => w.budget === budget && w.subject === subject)!.spentUsd;
    return { key: of('per-key', keyId), team: of('per-team', `team-${keyId}`) };
  }

  /** The key's and its team's budgets were charged `cost`, to the femto-dollar. */
  async function expectCharged(keyId: string, cost: number): Promise<void> {
    const budget = await spent(keyId);
    expect(budget.key).toBeCloseTo(cost, 15);
    expect(budget.team).toBeCloseTo(cost, 15);
  }

  /** Nothing charged nor reserved for the key (once no request is in flight). */
  async function expectUncharged(keyId: string): Promise<void> {
    await waitFor(() => access().inFlight === 0);
    const windows = access()
      .budgetStatus()
      .filter((w) => w.subject === keyId || w.subject === `team-${keyId}`);
    expect(windows.reduce((sum, w) => sum + w.spentUsd + w.reservedUsd, 0)).toBe(0);
  }

  return { spansOf, expectCharged, expectUncharged };
}
