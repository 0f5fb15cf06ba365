/**
 * The savings ledger's quality difference stays a difference of two scores (−1..1, in the API
 * and the Grafana panel) and a row spanning several classes is combined from its classes,
 * weighted by their cheaper calls (real embedded ClickHouse).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { correctedQuality } from '../src/savings/judge-correction.js';
import { SavingsQuerySchema, savingsLedger } from '../src/savings/savings.js';
import type { SavingsLedger } from '../src/savings/savings.js';
import { llmSpan } from './store-fixtures.js';
import { ledgerPanelRows, route, score } from './support/savings-fixtures.js';
import { useTestStore } from './support/test-store.js';

const db = useTestStore('mm-savings-strata-', { batch: { maxDelayMs: 20 } });

const calls = (policy: string, klass: string, model: string, count: number) =>
  Array.from({ length: count }, () =>
    llmSpan({ model, costUsd: 0.0001, extra: route(policy, klass, model, 'gpt-4o') }),
  );
const judgeCall = (policy: string, klass: string) =>
  llmSpan({
    model: 'gpt-4o-mini',
    costUsd: 0.00001,
    extra: {
      'modelmaxx.evaluation.role': 'judge',
      'modelmaxx.route.policy': policy,
      'modelmaxx.route.class': klass,
      'modelmaxx.route.model': 'gpt-4o-mini',
    },
  });
const verdict = (call: ReturnType<typeof llmSpan>, value: number) =>
  score(call, 'modelmaxx.shadow', value, 'judge', 'gpt-4o-mini');

/** Policy `clip`: class a measures the judge (20 pairs, 2 contradicted: k = 0.7); b has one
 * loss, c six losses, both corrected with that pooled k (−1 / 0.7 before clipping). */
function clipSpans() {
  const [a, b, c] = [
    calls('clip', 'a', 'gpt-4o-mini', 20),
    calls('clip', 'b', 'gpt-4o-mini', 1),
    calls('clip', 'c', 'gpt-4o-mini', 6),
  ];
  return [
    ...a,
    ...b,
    ...c,
    ...['a', 'b', 'c'].map((klass) => judgeCall('clip', klass)),
    ...a.map((call, index) => verdict(call, index < 8 ? 0 : index < 18 ? 0.5 : 1)),
    ...a.map((call, index) =>
      score(call, 'user.thumbs', index === 0 || (index >= 8 && index !== 18) ? 1 : 0, 'feedback'),
    ),
    ...[...b, ...c].map((call) => verdict(call, 0)),
  ];
}

/**
 * Policy `strata`: class A mostly routed cheap (36 of 40 calls), 10 verdicts (9 ties, 1 loss:
 * −0.1); class B mostly sent to the reference (4 of 40 cheap), its 4 cheap calls shadowed and
 * 20 of its reference calls shadowed counterfactually (16 losses, 8 ties over the 24: −0.667).
 * Plain mean of the 34 verdicts: −0.5; weighted by cheaper calls: (36 × −0.1 + 4 × −0.667) / 40.
 */
function strataSpans() {
  const aCheap = calls('strata', 'A', 'gpt-4o-mini', 36);
  const aReference = calls('strata', 'A', 'gpt-4o', 4);
  const bCheap = calls('strata', 'B', 'gpt-4o-mini', 4);
  const bReference = calls('strata', 'B', 'gpt-4o', 36);
  return [
    ...aCheap,
    ...aReference,
    ...bCheap,
    ...bReference,
    ...aCheap.slice(0, 10).map((call, index) => verdict(call, index === 0 ? 0 : 0.5)),
    ...bCheap.map((call) => verdict(call, 0)),
    ...bReference.slice(0, 20).map((call, index) => verdict(call, index < 12 ? 0 : 0.5)),
  ];
}

const ledger = (groupBy: string) =>
  savingsLedger(db.store.engine, SavingsQuerySchema.parse({ window: '1h', groupBy }));

describe('savings ledger: clipped corrections, stratified rows', () => {
  let byClass: SavingsLedger;

  beforeAll(async () => {
    expect(await db.store.write([...clipSpans(), ...strataSpans()])).toMatchObject({
      status: 'ok',
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      byClass = await ledger('policy,class');
      const samples = byClass.rows.reduce((sum, row) => sum + (row.quality?.samples ?? 0), 0);
      const pairs = byClass.rows.reduce(
        (sum, row) =>
          sum + (row.quality?.judgeAccuracy?.pooled ? 0 : (row.quality?.judgeAccuracy?.pairs ?? 0)),
        0,
      );
      if (samples >= 27 + 34 && pairs >= 20) break;
      if (Date.now() > deadline) throw new Error(`not stored: ${JSON.stringify(byClass.rows)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  const row = (policy: string, klass: string) =>
    byClass.rows.find((entry) => entry.policy === policy && entry.class === klass)!;

  it('clips a corrected difference and its interval to -1..1', () => {
    // One loss with the pooled k = 0.7 read -142.9 points before.
    expect(row('clip', 'b').quality).toMatchObject({
      samples: 1,
      corrected: true,
      difference: -1,
      measured: { difference: -1 },
      judgeAccuracy: { pooled: true, pairs: 20, contradictions: 2 },
    });
    const six = row('clip', 'c').quality!;
    expect(six).toMatchObject({ corrected: true, difference: -1, low: -1 });
    expect(six.high!).toBeGreaterThanOrEqual(-1);
    expect(six.high!).toBeLessThanOrEqual(1);
    // The same from the correction alone, ends included.
    const alone = correctedQuality(
      {
        samples: 6,
        difference: -1,
        variance: 0,
        calibrationPairs: 0,
        contradictions: 0,
        pairedDifferenceSum: 0,
        contradictedDifferenceSum: 0,
      },
      { pairs: 20, contradictions: 2 },
    );
    expect(alone).toMatchObject({ difference: -1, low: -1, high: six.high });
  });

  it('the Grafana ledger panel clips the same way', async () => {
    const panelRows = await ledgerPanelRows(db.store.engine);
    for (const klass of ['b', 'c']) {
      const panelRow = panelRows.find(
        (entry) => entry['policy'] === 'clip' && entry['class'] === klass,
      )!;
      expect(Boolean(Number(panelRow['judge_corrected'])), klass).toBe(true);
      expect(Number(panelRow['quality_diff']), klass).toBe(-1);
    }
  });

  it('combines a row spanning several classes from its classes, weighted by cheaper calls', async () => {
    const [a, b] = [row('strata', 'A'), row('strata', 'B')];
    expect(a.quality).toMatchObject({ samples: 10, difference: -0.1 });
    expect(b.quality!.samples).toBe(24);
    expect(b.quality!.difference).toBeCloseTo(-16 / 24, 5);
    const cheaper = (entry: typeof a) => Math.round(entry.cheaperShare * entry.calls);
    expect([cheaper(a), cheaper(b)]).toEqual([36, 4]);
    const weight = cheaper(a) + cheaper(b);
    const expected =
      (cheaper(a) * a.quality!.difference + cheaper(b) * b.quality!.difference) / weight;
    const halfWidth =
      Math.sqrt(
        (cheaper(a) * a.quality!.halfWidth!) ** 2 + (cheaper(b) * b.quality!.halfWidth!) ** 2,
      ) / weight;

    const byPolicy = await ledger('policy');
    const policy = byPolicy.rows.find((entry) => entry.policy === 'strata')!;
    // Not the plain mean of its 34 verdicts (-0.5).
    expect(policy.quality!.difference).toBeCloseTo(expected, 5);
    expect(policy.quality!.halfWidth!).toBeCloseTo(halfWidth, 5);
    expect(policy.quality).toMatchObject({ samples: 34, corrected: false });
    expect(policy).toMatchObject({ calls: 80, cheaperShare: 0.5 });
    expect(policy.class).toBeUndefined();
    // The total no longer depends on the grouping.
    expect(byPolicy.total.quality).toEqual(byClass.total.quality);
    expect((await ledger('')).total.quality).toEqual(byClass.total.quality);
    // By model: the cheap model's row combines A's and B's gpt-4o-mini rows the same way.
    const byModel = await ledger('policy,model');
    const mini = byModel.rows.find(
      (entry) => entry.policy === 'strata' && entry.model === 'gpt-4o-mini',
    )!;
    expect(mini.quality!.difference).toBeCloseTo(expected, 5);
    expect(mini).toMatchObject({ calls: 40, cheaperShare: 1 });
  });
});
