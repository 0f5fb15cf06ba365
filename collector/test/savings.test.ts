/**
 * The savings ledger over spans with known tokens, costs and verdicts (real embedded
 * ClickHouse): the reference model's catalog price for the same tokens, shadow and judge spend
 * booked on the routed model's group, net saving, the quality difference with its 95% interval
 * (none from fewer than 5 verdicts), judge/feedback agreement, an unpriced reference, and the
 * `/api/savings` query validation.
 */
import { costOf } from '@modelmaxx/pricing';
import { beforeAll, describe, expect, it } from 'vitest';
import { correctedQuality } from '../src/savings/judge-correction.js';
import { SavingsQuerySchema, savingsLedger } from '../src/savings/savings.js';
import type { SavingsRow } from '../src/savings/savings.js';
import { llmSpan } from './store-fixtures.js';
import { ledgerPanelRows as panelRows, route, score } from './support/savings-fixtures.js';
import { useTestStore } from './support/test-store.js';

const db = useTestStore('mm-savings-', { batch: { maxDelayMs: 20 } });

const catalog = (model: string, input: number, output: number) => {
  const cost = costOf({
    provider: 'openai',
    model,
    usage: { inputTokens: input, outputTokens: output },
  });
  if (!cost.known) throw new Error(`no price for ${model}`);
  return cost.amount;
};

const ledgerPanelRows = () => panelRows(db.store.engine);

/** The ledger's rows of `policy` (by policy, class and model), polled until `ready` or 30 s. */
async function policyRows(
  policy: string,
  ready: (rows: SavingsRow[]) => Promise<boolean>,
): Promise<SavingsRow[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { rows } = await savingsLedger(
      db.store.engine,
      SavingsQuerySchema.parse({ window: '1h', groupBy: 'policy,class,model' }),
    );
    const found = rows.filter((entry) => entry.policy === policy);
    if (await ready(found)) return found;
    if (Date.now() > deadline) throw new Error(`not stored: ${JSON.stringify(found)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('savings ledger', () => {
  let rows: SavingsRow[];
  let total: Awaited<ReturnType<typeof savingsLedger>>['total'];

  beforeAll(async () => {
    const mini = Array.from({ length: 6 }, () =>
      llmSpan({
        model: 'gpt-4o-mini',
        input: 1000,
        output: 200,
        costUsd: 0.001,
        feature: 'faq',
        extra: route('support', 'qa', 'gpt-4o-mini', 'gpt-4o'),
      }),
    );
    const frontier = llmSpan({
      model: 'gpt-4o',
      input: 800,
      output: 100,
      costUsd: 0.005,
      feature: 'faq',
      extra: route('support', 'qa', 'gpt-4o', 'gpt-4o'),
    });
    const small = Array.from({ length: 2 }, () =>
      llmSpan({
        model: 'gpt-4o-mini',
        input: 500,
        output: 50,
        costUsd: 0.0002,
        feature: 'faq',
        extra: route('support', 'chat', 'gpt-4o-mini', 'gpt-4o'),
      }),
    );
    const ownReference = llmSpan({
      model: 'gpt-4o-mini',
      costUsd: 0.0001,
      extra: route('custom', 'qa', 'gpt-4o-mini', 'my-own-model'),
    });
    const evaluation = (role: string, cost: number, reference?: string) =>
      llmSpan({
        model: role === 'shadow' ? 'gpt-4o' : 'gpt-4o-mini',
        costUsd: cost,
        feature: 'faq',
        extra: {
          'modelmaxx.evaluation.role': role,
          'modelmaxx.route.policy': 'support',
          'modelmaxx.route.class': 'qa',
          'modelmaxx.route.model': 'gpt-4o-mini',
          ...(reference === undefined ? {} : { 'modelmaxx.route.reference_model': reference }),
        },
      });
    const verdicts = [0.5, 0.5, 0.5, 0, 0.5, 1].map((value, index) =>
      score(mini[index]!, 'modelmaxx.shadow', value, 'judge'),
    );
    const feedback = [
      score(mini[3]!, 'user.thumbs', 0, 'feedback'), // the verdict lost: agrees
      score(mini[5]!, 'user.thumbs', 0, 'feedback'), // the verdict won: disagrees
    ];
    const fewVerdicts = small.map((call) => score(call, 'modelmaxx.shadow', 0.5, 'judge'));
    // 20 verdicts (8 losses, 10 ties, 2 wins), each with user feedback: two contradict it
    // (a loss of an answer the user liked, a win of one the user did not).
    const calibrated = Array.from({ length: 20 }, () =>
      llmSpan({
        model: 'gpt-4o-mini',
        costUsd: 0.0001,
        extra: route('calibrated', 'qa', 'gpt-4o-mini', 'gpt-4o'),
      }),
    );
    const calibratedVerdicts = calibrated.map((call, index) =>
      score(call, 'modelmaxx.shadow', index < 8 ? 0 : index < 18 ? 0.5 : 1, 'judge'),
    );
    const calibratedFeedback = calibrated.map((call, index) =>
      // The user liked the answers tied or won, and the first lost one; not the first win.
      score(call, 'user.thumbs', index === 0 || (index >= 8 && index !== 18) ? 1 : 0, 'feedback'),
    );
    const written = await db.store.write([
      ...mini,
      frontier,
      ...small,
      ownReference,
      evaluation('shadow', 0.004, 'gpt-4o'),
      evaluation('shadow', 0.004, 'gpt-4o'),
      evaluation('judge', 0.0003),
      ...verdicts,
      ...feedback,
      ...fewVerdicts,
      ...calibrated,
      ...calibratedVerdicts,
      ...calibratedFeedback,
    ]);
    expect(written).toMatchObject({ status: 'ok' });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [count] = (
        await db.store.engine.query<{ n: string }>(
          `SELECT (SELECT count() FROM modelmaxx.llm_calls) + (SELECT count() FROM modelmaxx.llm_scores) AS n`,
        )
      ).data;
      if (Number(count?.n) >= 13 + 10 + 20 + 40 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const ledger = await savingsLedger(
      db.store.engine,
      SavingsQuerySchema.parse({ window: '1h', groupBy: 'policy,class,model' }),
    );
    rows = ledger.rows;
    total = ledger.total;
  });

  const row = (policy: string, klass: string, model: string) =>
    rows.find(
      (entry) => entry.policy === policy && entry.class === klass && entry.model === model,
    )!;

  it('prices the same tokens at the reference model and books the measuring spend', () => {
    const qa = row('support', 'qa', 'gpt-4o-mini');
    expect(qa).toMatchObject({ calls: 6, cheaperShare: 1, referenceModel: 'gpt-4o' });
    expect(qa.spendUsd).toBeCloseTo(0.006, 12);
    expect(qa.referenceUsd).toBeCloseTo(6 * catalog('gpt-4o', 1000, 200), 12);
    expect(qa.grossSavingUsd).toBeCloseTo(qa.referenceUsd - 0.006, 9);
    expect(qa.shadowUsd).toBeCloseTo(0.008, 12);
    expect(qa.judgeUsd).toBeCloseTo(0.0003, 12);
    expect(qa.netSavingUsd).toBeCloseTo(qa.grossSavingUsd - 0.0083, 9);
    // The reference answering itself: what it cost, nothing saved.
    const own = row('support', 'qa', 'gpt-4o');
    expect(own).toMatchObject({ calls: 1, cheaperShare: 0, quality: null });
    expect(own.referenceUsd).toBeCloseTo(0.005, 12);
    expect(own.grossSavingUsd).toBeCloseTo(0, 12);
    // A reference without a catalog price: counted as unpriced, not as free.
    expect(row('custom', 'qa', 'gpt-4o-mini')).toMatchObject({ unpricedCalls: 1, referenceUsd: 0 });
  });

  it('gives the quality difference with its 95% interval, none from fewer than 5 verdicts', () => {
    // Differences 0, 0, 0, -1, 0, 1: mean 0, squares summing to 2. The variance of the mean
    // as Agresti–Min adjust it (two pseudo-verdicts: half a win, half a loss, one tie): the
    // squares plus 1 over n + 2, minus the mean's square, over n + 2 again.
    const quality = row('support', 'qa', 'gpt-4o-mini').quality!;
    expect(quality.samples).toBe(6);
    expect(quality.difference).toBeCloseTo(0, 9);
    expect(quality.halfWidth).toBeCloseTo(1.96 * Math.sqrt((2 + 1) / 8 / 8), 5);
    expect(row('support', 'chat', 'gpt-4o-mini').quality).toMatchObject({
      samples: 2,
      difference: 0,
      halfWidth: null,
      low: null,
    });
    expect(row('support', 'qa', 'gpt-4o-mini').agreement).toEqual({ pairs: 2, rate: 0.5 });
  });

  it('gives verdicts that were all ties an interval, not ±0', () => {
    // 30 ties: sample variance 0. Adjusted (two pseudo-verdicts), ±1.96 / 32: a class whose true
    // difference is -0.03 is not ruled out by 30 ties (it was, at ±0, in 2 of 40 e2e intervals).
    const quality = correctedQuality({
      samples: 30,
      difference: 0,
      variance: 0,
      calibrationPairs: 0,
      contradictions: 0,
      pairedDifferenceSum: 0,
      contradictedDifferenceSum: 0,
    });
    expect(quality.halfWidth).toBeCloseTo(1.96 / 32, 6);
    expect(quality.low!).toBeLessThan(-0.03);
  });

  it('corrects the difference for the judge accuracy measured against feedback, and widens the interval', () => {
    const quality = row('calibrated', 'qa', 'gpt-4o-mini').quality!;
    // As measured: differences 8 × -1, 10 × 0, 2 × +1: mean -0.3, squares summing to 10; the
    // mean's variance adjusted as above (22 verdicts with the two pseudo-verdicts).
    const meanVariance = ((10 + 1) / 22 - (6 / 22) ** 2) / 22;
    expect(quality.measured.difference).toBeCloseTo(-0.3, 6);
    expect(quality.measured.halfWidth).toBeCloseTo(1.96 * Math.sqrt(meanVariance), 5);
    // 2 of 20 verdicts contradicted: accuracy a = 1 - 2 × 0.1 = 0.8, k = (3a - 1) / 2 = 0.7.
    expect(quality.judgeAccuracy).toMatchObject({ value: 0.8, pairs: 20, contradictions: 2 });
    expect(quality.corrected).toBe(true);
    expect(quality.difference).toBeCloseTo(-0.3 / 0.7, 5);
    // Delta method: the verdicts' variance over k², plus the uncertainty of k (smoothed share
    // 3/22), minus their covariance: the paired differences sum to -6, the contradicted ones
    // (-1 and +1) to 0, so cov(x, y) = (0 - (-6 × 2) / 20) / 19 and cov(d, k) = -3 cov(x, y) / 20.
    const kVariance = (9 * (3 / 22) * (19 / 22)) / 20;
    const covariance = (-3 * ((0 + (6 * 2) / 20) / 19)) / 20;
    const halfWidth =
      1.96 *
      Math.sqrt(
        meanVariance / 0.49 + (0.09 * kVariance) / 0.7 ** 4 - (2 * -0.3 * covariance) / 0.7 ** 3,
      );
    expect(quality.halfWidth).toBeCloseTo(halfWidth, 5);
    expect(quality.halfWidth!).toBeGreaterThan(quality.measured.halfWidth! / 0.7);
    expect(quality.low).toBeCloseTo(quality.difference - quality.halfWidth!, 5);
    // Too few pairs to measure the judge (2 in qa): as measured, and said so.
    const qa = row('support', 'qa', 'gpt-4o-mini').quality!;
    expect(qa).toMatchObject({ corrected: false, difference: 0 });
    expect(qa.judgeAccuracy).toMatchObject({ pairs: 2, contradictions: 1 });
    // No feedback at all: no accuracy.
    expect(row('support', 'chat', 'gpt-4o-mini').quality).toMatchObject({
      corrected: false,
      judgeAccuracy: null,
    });
  });

  it('the Grafana ledger panel gives the same corrected difference and interval', async () => {
    const panelRows = await ledgerPanelRows();
    for (const [policy, klass] of [
      ['calibrated', 'qa'],
      ['support', 'qa'],
    ] as const) {
      const quality = row(policy, klass, 'gpt-4o-mini').quality!;
      const panelRow = panelRows.find(
        (entry) => entry['policy'] === policy && entry['class'] === klass,
      )!;
      expect(Number(panelRow['quality_diff'])).toBeCloseTo(quality.difference, 5);
      expect(Number(panelRow['quality_ci95'])).toBeCloseTo(quality.halfWidth!, 5);
      expect(Boolean(Number(panelRow['judge_corrected']))).toBe(quality.corrected);
      expect(Number(panelRow['judge_accuracy'])).toBeCloseTo(quality.judgeAccuracy!.value, 5);
    }
  });

  it('totals: net of measuring, evaluation share, traffic-weighted quality', () => {
    expect(total.calls).toBe(30);
    expect(total.shadowUsd + total.judgeUsd).toBeCloseTo(0.0083, 12);
    expect(total.evaluationShare).toBeCloseTo(0.0083 / total.spendUsd, 5);
    expect(total.netSavingUsd).toBeCloseTo(total.grossSavingUsd - 0.0083, 9);
    // Covered: the 6 shadowed qa calls, the reference's own call and the 20 calibrated ones;
    // not the chat or custom ones.
    expect(total.qualityCoverage).toBeCloseTo(27 / 30, 6);
    // Not every row with an estimate is corrected (qa has 2 pairs): the total says so.
    expect(total.quality).toMatchObject({ corrected: false, samples: 26 });
    expect(total.quality!.judgeAccuracy).toMatchObject({ pairs: 22, contradictions: 3 });
    // qa: 1 of 2 agree; calibrated (binarized at 0.5, a tie passes): 18 of 20.
    expect(total.agreement).toEqual({ pairs: 22, rate: Number((19 / 22).toFixed(6)) });
  });

  it("corrects a row without feedback with its judge's pooled accuracy (same judge model)", async () => {
    // Policy 'pooled': class a has 20 verdicts with feedback (2 contradicted: accuracy 0.8);
    // class b 12 verdicts and no feedback, judged by the same model; class c 12 verdicts by
    // another judge model. Written after the other tests read their ledger.
    const calls = (klass: string, count: number) =>
      Array.from({ length: count }, () =>
        llmSpan({
          model: 'gpt-4o-mini',
          costUsd: 0.0001,
          extra: route('pooled', klass, 'gpt-4o-mini', 'gpt-4o'),
        }),
      );
    const judgeCall = (klass: string, model: string) =>
      llmSpan({
        model,
        costUsd: 0.00001,
        extra: {
          'modelmaxx.evaluation.role': 'judge',
          'modelmaxx.route.policy': 'pooled',
          'modelmaxx.route.class': klass,
          'modelmaxx.route.model': 'gpt-4o-mini',
        },
      });
    const [a, b, c] = [calls('a', 20), calls('b', 12), calls('c', 12)];
    // b and c: 6 losses and 6 ties each (measured -0.5).
    const lossesAndTies = (call: ReturnType<typeof llmSpan>, index: number) =>
      score(call, 'modelmaxx.shadow', index < 6 ? 0 : 0.5, 'judge');
    const spans = [
      ...a,
      ...b,
      ...c,
      judgeCall('a', 'gpt-4o-mini'),
      judgeCall('b', 'gpt-4o-mini'),
      judgeCall('c', 'claude-haiku-4-5'),
      ...a.map((call, index) =>
        score(call, 'modelmaxx.shadow', index < 8 ? 0 : index < 18 ? 0.5 : 1, 'judge'),
      ),
      ...a.map((call, index) =>
        score(call, 'user.thumbs', index === 0 || (index >= 8 && index !== 18) ? 1 : 0, 'feedback'),
      ),
      ...b.map(lossesAndTies),
      ...c.map(lossesAndTies),
    ];
    expect(await db.store.write(spans)).toMatchObject({ status: 'ok' });
    const pooled = await policyRows(
      'pooled',
      async (rows) =>
        rows.reduce((sum, entry) => sum + (entry.quality?.samples ?? 0), 0) >= 44 &&
        rows.reduce((sum, entry) => sum + (entry.quality?.judgeAccuracy?.pairs ?? 0), 0) >= 20,
    );
    const quality = (klass: string) => pooled.find((entry) => entry.class === klass)!.quality!;
    // a: its own 20 pairs (accuracy 0.8, k 0.7), as before.
    expect(quality('a')).toMatchObject({
      corrected: true,
      judgeAccuracy: { value: 0.8, pairs: 20 },
    });
    expect(quality('a').judgeAccuracy!.pooled).toBeUndefined();
    // b: no feedback of its own; corrected by the pool of its judge model over the ledger: a's
    // 20 pairs and the 2 of support/qa (judged by gpt-4o-mini too, 1 contradicted): 22 and 3,
    // accuracy 1 - 6/22, k = 1 - 9/22.
    expect(quality('b')).toMatchObject({
      corrected: true,
      judgeAccuracy: {
        value: Number((1 - 6 / 22).toFixed(6)),
        pairs: 22,
        contradictions: 3,
        pooled: true,
      },
    });
    const k = 1 - 9 / 22;
    expect(quality('b').measured.difference).toBeCloseTo(-0.5, 6);
    expect(quality('b').difference).toBeCloseTo(-0.5 / k, 5);
    // The delta-method interval with the pool's k and no covariance term.
    const meanVariance = ((6 + 1) / 14 - (6 / 14) ** 2) / 14;
    const kVariance = (9 * (4 / 24) * (20 / 24)) / 22;
    expect(quality('b').halfWidth).toBeCloseTo(
      1.96 * Math.sqrt(meanVariance / k ** 2 + (0.25 * kVariance) / k ** 4),
      5,
    );
    // c: another judge model, no pairs of its own or in its pool: as measured.
    expect(quality('c')).toMatchObject({ corrected: false, judgeAccuracy: null, difference: -0.5 });
    // The Grafana panel pools the same way (it corrected by the row's own pairs only before).
    const panelRows = await ledgerPanelRows();
    for (const klass of ['a', 'b', 'c']) {
      const panelRow = panelRows.find(
        (entry) => entry['policy'] === 'pooled' && entry['class'] === klass,
      )!;
      const expected = quality(klass);
      expect(Number(panelRow['quality_diff']), klass).toBeCloseTo(expected.difference, 5);
      expect(Number(panelRow['quality_ci95']), klass).toBeCloseTo(expected.halfWidth!, 5);
      expect(Boolean(Number(panelRow['judge_corrected'])), klass).toBe(expected.corrected);
      expect(Boolean(Number(panelRow['judge_pooled'])), klass).toBe(
        expected.judgeAccuracy?.pooled === true,
      );
    }
  });

  it('books a counterfactual verdict (on a call the reference answered) under the model it judged', async () => {
    // Policy 'counterfactual', class qa: 3 calls gpt-4o-mini answered, each shadowed against
    // the reference (0.5, 0.5, 0), and 5 the reference answered, each shadowed with
    // gpt-4o-mini's answer (0, 0, 0.5, 0.5, 0: the verdict names gpt-4o-mini) and rated by
    // the user (the reference's answer: no pair for the judge). Written after the others read.
    const calls = (model: string, count: number) =>
      Array.from({ length: count }, () =>
        llmSpan({
          model,
          costUsd: 0.0001,
          extra: route('counterfactual', 'qa', model, 'gpt-4o'),
        }),
      );
    const cheap = calls('gpt-4o-mini', 3);
    const reference = calls('gpt-4o', 5);
    const spans = [
      ...cheap,
      ...reference,
      ...cheap.map((call, index) =>
        score(call, 'modelmaxx.shadow', [0.5, 0.5, 0][index]!, 'judge'),
      ),
      ...reference.map((call, index) =>
        score(call, 'modelmaxx.shadow', [0, 0, 0.5, 0.5, 0][index]!, 'judge', 'gpt-4o-mini'),
      ),
      ...reference.map((call) => score(call, 'user.thumbs', 1, 'feedback')),
    ];
    expect(await db.store.write(spans)).toMatchObject({ status: 'ok' });
    const stored = async () => {
      const [count] = (
        await db.store.engine.query<{ n: string }>(
          `SELECT count() AS n FROM modelmaxx.llm_scores WHERE TraceId IN (${[...cheap, ...reference].map((call) => `'${call.TraceId}'`).join(', ')})`,
        )
      ).data;
      return Number(count?.n);
    };
    const found = await policyRows(
      'counterfactual',
      async (rows) => rows.length >= 2 && (await stored()) >= 13,
    );
    const byModel = (model: string) => found.find((entry) => entry.model === model)!;
    // All 8 verdicts are gpt-4o-mini's: differences 0, 0, -1 and -1, -1, 0, 0, -1.
    expect(byModel('gpt-4o-mini')).toMatchObject({ calls: 3, cheaperShare: 1 });
    expect(byModel('gpt-4o-mini').quality).toMatchObject({
      samples: 8,
      difference: -0.5,
      corrected: false,
      // The feedback is on the reference's answers: it cannot measure the judge.
      judgeAccuracy: null,
    });
    expect(byModel('gpt-4o')).toMatchObject({ calls: 5, quality: null, agreement: null });
    // The Grafana panel books them the same way.
    const panel = (model: string) =>
      panelRows.find((entry) => entry['policy'] === 'counterfactual' && entry['model'] === model)!;
    const panelRows = await ledgerPanelRows();
    expect(Number(panel('gpt-4o-mini')['shadow_verdicts'])).toBe(8);
    expect(Number(panel('gpt-4o-mini')['quality_diff'])).toBeCloseTo(-0.5, 6);
    expect(panel('gpt-4o-mini')['judge_accuracy']).toBeNull();
    expect(panel('gpt-4o')['quality_diff']).toBeNull();
  });

  it('rejects a bad window or groupBy with a message naming it', () => {
    expect(SavingsQuerySchema.safeParse({ window: '91d' }).success).toBe(false);
    expect(SavingsQuerySchema.safeParse({ window: 'week' }).error?.issues[0]?.message).toMatch(
      /window is a number followed by m, h or d/,
    );
    expect(
      SavingsQuerySchema.safeParse({ groupBy: 'model,colour' }).error?.issues[0]?.message,
    ).toMatch(/unknown groupBy "colour"/);
    expect(SavingsQuerySchema.parse({}).groupBy).toEqual(['policy', 'class', 'feature', 'model']);
  });
});
