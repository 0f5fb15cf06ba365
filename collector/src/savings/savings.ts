/**
 * The savings ledger: per policy, class, feature and model over a window, what routing cost,
 * what the reference model would have cost for the same tokens, what measuring it cost
 * (shadow calls to the reference and judge calls), the net saving, and the quality
 * difference against the reference with its 95% interval and sample size (shadow verdicts),
 * plus the agreement of judges with user feedback where both exist.
 */
import { z } from 'zod';
import type { ClickHouseEngine, ClickHouseSettings } from '../store/engine.js';
import { SAVINGS_DIMENSIONS, savingsSql } from './savings-sql.js';
import type { SavingsDimension } from './savings-sql.js';
import { correctedQuality, round } from './judge-correction.js';
import type { JudgePool, SavingsQuality, VerdictSummary } from './judge-correction.js';
import { TotalQuality } from './total-quality.js';

const READ_SETTINGS: ClickHouseSettings = {
  readonly: 1,
  max_execution_time: 30,
  timeout_overflow_mode: 'throw',
};

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_WINDOW_MS = 90 * 86_400_000;
const DIMENSIONS = Object.keys(SAVINGS_DIMENSIONS) as SavingsDimension[];

/** `GET /api/savings` query: `window` (e.g. `24h`, `7d`; at most 90 days), `groupBy`. */
export const SavingsQuerySchema = z.object({
  window: z
    .string()
    .regex(/^\d+(m|h|d)$/, 'window is a number followed by m, h or d, e.g. 24h or 7d')
    .refine(
      (value) => {
        const ms = Number(value.slice(0, -1)) * UNIT_MS[value.slice(-1)]!;
        return ms > 0 && ms <= MAX_WINDOW_MS;
      },
      { message: 'window must be more than 0 and at most 90d' },
    )
    .default('24h'),
  groupBy: z
    .string()
    .default('policy,class,feature,model')
    .transform((value, context) => {
      const list = value
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
      const unknown = list.filter((item) => !DIMENSIONS.includes(item as SavingsDimension));
      if (unknown.length > 0) {
        context.addIssue({
          code: 'custom',
          message: `unknown groupBy ${unknown.map((item) => `"${item}"`).join(', ')}: use any of ${DIMENSIONS.join(', ')}`,
        });
        return z.NEVER;
      }
      return DIMENSIONS.filter((dimension) => list.includes(dimension));
    }),
});
export type SavingsQuery = z.output<typeof SavingsQuerySchema>;

export function windowMsOf(window: string): number {
  return Number(window.slice(0, -1)) * UNIT_MS[window.slice(-1)]!;
}

export interface SavingsRow {
  policy?: string;
  class?: string;
  feature?: string;
  model?: string;
  referenceModel: string;
  calls: number;
  /** Share of calls answered by a model other than the reference. */
  cheaperShare: number;
  spendUsd: number;
  /** What the reference model would have cost for the same tokens. */
  referenceUsd: number;
  grossSavingUsd: number;
  /** Shadow calls to the reference model. */
  shadowUsd: number;
  /** Judge calls (shadow verdicts, and other judges linked to the policy). */
  judgeUsd: number;
  netSavingUsd: number;
  /** Calls whose reference cost is unknown (no catalog price for the reference model). */
  unpricedCalls: number;
  /** The quality difference against the reference; null when no shadow verdict. */
  quality: SavingsQuality | null;
  /** Judges vs user feedback where both scored a call (binarized at 0.5). */
  agreement: { pairs: number; rate: number } | null;
}

export interface SavingsLedger {
  window: string;
  from: string;
  to: string;
  groupBy: SavingsDimension[];
  rows: SavingsRow[];
  /** The whole window; its quality is traffic-weighted over the rows with an estimate. */
  total: SavingsRow & {
    /** Share of routed calls in rows whose quality difference is known (the reference's own: 0). */
    qualityCoverage: number;
    /** (shadow + judge spend) ÷ app spend. */
    evaluationShare: number;
  };
}

type Row = Record<string, unknown>;

/** A ledger row's figures before any call is counted (the row and the total start from it). */
function emptyFigures(): Omit<SavingsRow, SavingsDimension> {
  return {
    referenceModel: '',
    calls: 0,
    cheaperShare: 0,
    spendUsd: 0,
    referenceUsd: 0,
    grossSavingUsd: 0,
    shadowUsd: 0,
    judgeUsd: 0,
    netSavingUsd: 0,
    unpricedCalls: 0,
    quality: null,
    agreement: null,
  };
}
const num = (value: unknown): number => {
  const parsed = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(parsed) ? parsed : 0;
};
/** What the ledger's four statements returned (`savingsSql`), row by row. */
interface LedgerResults {
  calls: Row[];
  evaluation: Row[];
  scores: Row[];
  agreement: Row[];
}

/** A row's group (its `groupBy` values) as one map key. */
const groupKey = (
  row: Partial<Record<SavingsDimension, unknown>>,
  groupBy: readonly SavingsDimension[],
): string => groupBy.map((dimension) => String(row[dimension] ?? '')).join('\u0000');

/**
 * One ledger row per group found in any of the results (the figures a result lacks stay
 * empty), each with its calls answered by a cheaper model than the reference.
 */
function groupedRows(
  groupBy: readonly SavingsDimension[],
  results: LedgerResults,
): [SavingsRow, number][] {
  const rows = new Map<string, SavingsRow>();
  const cheaper = new Map<SavingsRow, number>();
  const rowFor = (row: Row): SavingsRow => {
    const key = groupKey(row, groupBy);
    let entry = rows.get(key);
    if (entry === undefined) {
      entry = {
        ...Object.fromEntries(
          groupBy.map((dimension) => [dimension, String(row[dimension] ?? '')]),
        ),
        ...emptyFigures(),
      };
      rows.set(key, entry);
    }
    return entry;
  };
  for (const row of results.calls) {
    const entry = rowFor(row);
    entry.referenceModel = String(row['referenceModel'] ?? '');
    entry.calls = num(row['calls']);
    cheaper.set(entry, num(row['cheaperCalls']));
    entry.spendUsd = num(row['spendUsd']);
    entry.referenceUsd = num(row['referenceUsd']);
    entry.unpricedCalls = num(row['unpricedCalls']);
  }
  const judges = new Map<SavingsRow, string>();
  for (const row of results.evaluation) {
    const entry = rowFor(row);
    entry.shadowUsd = num(row['shadowUsd']);
    entry.judgeUsd = num(row['judgeUsd']);
    judges.set(entry, String(row['judgeModels'] ?? ''));
  }
  const summaries = new Map<SavingsRow, VerdictSummary>();
  for (const row of results.scores) {
    summaries.set(rowFor(row), {
      samples: num(row['samples']),
      difference: num(row['difference']),
      variance: row['variance'] === null ? null : num(row['variance']),
      calibrationPairs: num(row['calibrationPairs']),
      contradictions: num(row['contradictions']),
      pairedDifferenceSum: num(row['pairedDifferenceSum']),
      contradictedDifferenceSum: num(row['contradictedDifferenceSum']),
    });
  }
  const pools = judgePools(summaries, judges);
  for (const [entry, summary] of summaries) {
    entry.quality = correctedQuality(summary, pools.get(judges.get(entry) ?? ''));
  }
  for (const row of results.agreement) {
    const pairs = num(row['pairs']);
    if (pairs > 0) rowFor(row).agreement = { pairs, rate: round(num(row['agreeing']) / pairs, 6) };
  }
  return [...rows.values()].map((entry) => [entry, cheaper.get(entry) ?? 0]);
}

/**
 * The verdict/feedback pairs of each judge (the models of a row's judge calls) over every row
 * of the ledger: a row with too few pairs of its own is corrected with its judge's. Rows whose
 * judge made no call the collector saw (an app's own judge function) have no pool.
 */
function judgePools(
  summaries: ReadonlyMap<SavingsRow, VerdictSummary>,
  judges: ReadonlyMap<SavingsRow, string>,
): Map<string, JudgePool> {
  const pools = new Map<string, JudgePool>();
  for (const [entry, summary] of summaries) {
    const judge = judges.get(entry) ?? '';
    if (judge === '') continue;
    const pool = pools.get(judge) ?? { pairs: 0, contradictions: 0 };
    pool.pairs += summary.calibrationPairs;
    pool.contradictions += summary.contradictions;
    pools.set(judge, pool);
  }
  return pools;
}

/** A row's derived figures (cheaper share, gross and net saving), money rounded. */
function finishRow(entry: SavingsRow, cheaperCalls: number): void {
  entry.cheaperShare = entry.calls > 0 ? round(cheaperCalls / entry.calls, 6) : 0;
  entry.grossSavingUsd = round(entry.referenceUsd - entry.spendUsd);
  entry.netSavingUsd = round(entry.grossSavingUsd - entry.shadowUsd - entry.judgeUsd);
  entry.spendUsd = round(entry.spendUsd);
  entry.referenceUsd = round(entry.referenceUsd);
  entry.shadowUsd = round(entry.shadowUsd);
  entry.judgeUsd = round(entry.judgeUsd);
}

/**
 * Finished rows summed into one: the whole window's total (quality weighted by routed traffic),
 * or a requested row from its strata (quality over its cheaper calls).
 */
class LedgerTotal {
  private readonly total: SavingsLedger['total'] = {
    ...emptyFigures(),
    qualityCoverage: 0,
    evaluationShare: 0,
  };
  private readonly references = new Set<string>();
  private cheaperCalls = 0;
  private readonly quality = new TotalQuality();
  private agreementPairs = 0;
  private agreeing = 0;

  add(entry: SavingsRow, cheaperCalls: number): void {
    const total = this.total;
    if (entry.referenceModel !== '') this.references.add(entry.referenceModel);
    this.cheaperCalls += cheaperCalls;
    total.calls += entry.calls;
    total.spendUsd += entry.spendUsd;
    total.referenceUsd += entry.referenceUsd;
    total.shadowUsd += entry.shadowUsd;
    total.judgeUsd += entry.judgeUsd;
    total.unpricedCalls += entry.unpricedCalls;
    if (entry.agreement !== null) {
      this.agreementPairs += entry.agreement.pairs;
      this.agreeing += entry.agreement.rate * entry.agreement.pairs;
    }
    this.quality.add(entry.calls, cheaperCalls, entry.quality);
  }

  result(): SavingsLedger['total'] {
    const { total } = this;
    total.referenceModel = [...this.references].join(', ');
    total.cheaperShare = total.calls > 0 ? round(this.cheaperCalls / total.calls, 6) : 0;
    total.grossSavingUsd = round(total.referenceUsd - total.spendUsd);
    total.netSavingUsd = round(total.grossSavingUsd - total.shadowUsd - total.judgeUsd);
    for (const key of ['spendUsd', 'referenceUsd', 'shadowUsd', 'judgeUsd'] as const) {
      total[key] = round(total[key]);
    }
    total.qualityCoverage = total.calls > 0 ? round(this.quality.covered() / total.calls, 6) : 0;
    total.evaluationShare =
      total.spendUsd > 0 ? round((total.shadowUsd + total.judgeUsd) / total.spendUsd, 6) : 0;
    total.quality = this.quality.result(total.calls);
    if (this.agreementPairs > 0) {
      total.agreement = {
        pairs: this.agreementPairs,
        rate: round(this.agreeing / this.agreementPairs, 6),
      };
    }
    return total;
  }

  /** The sum as a ledger row of `dimensions`: its quality over its cheaper calls. */
  row(dimensions: Partial<Record<SavingsDimension, string>>): SavingsRow {
    const { qualityCoverage: _coverage, evaluationShare: _share, ...figures } = this.result();
    return { ...dimensions, ...figures, quality: this.quality.perCheaperCall() };
  }
}

/**
 * The strata the ledger always computes: the shadow sampling's policy and class. (Its monitors
 * are per class and model too, but a class's cheap models split its few verdicts: with model
 * as a stratum, a 90-request demo had no stratum with the 5 verdicts an estimate needs.)
 */
const SAMPLING_STRATA: readonly SavingsDimension[] = ['policy', 'class'];

/**
 * The grouping the ledger computes at: the requested one with the sampling strata added (their
 * verdicts are not drawn in proportion to their cheaper calls, and counterfactual verdicts
 * mostly come from classes sent to the reference, so one row's plain mean over several classes
 * would describe those rather than the calls the cheaper models answered).
 */
function strataOf(groupBy: readonly SavingsDimension[]): SavingsDimension[] {
  return DIMENSIONS.filter(
    (dimension) => groupBy.includes(dimension) || SAMPLING_STRATA.includes(dimension),
  );
}

/** The requested rows, each combined from its strata by `LedgerTotal`. */
function combinedRows(
  groupBy: readonly SavingsDimension[],
  strata: readonly [SavingsRow, number][],
): SavingsRow[] {
  const groups = new Map<string, { dimensions: Partial<SavingsRow>; sum: LedgerTotal }>();
  for (const [entry, cheaperCalls] of strata) {
    const key = groupKey(entry, groupBy);
    let group = groups.get(key);
    if (group === undefined) {
      const dimensions = Object.fromEntries(
        groupBy.map((dimension) => [dimension, entry[dimension]]),
      );
      group = { dimensions, sum: new LedgerTotal() };
      groups.set(key, group);
    }
    group.sum.add(entry, cheaperCalls);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, { dimensions, sum }]) => sum.row(dimensions));
}

export async function savingsLedger(
  engine: Pick<ClickHouseEngine, 'query'>,
  query: SavingsQuery,
  options: { database?: string; now?: number } = {},
): Promise<SavingsLedger> {
  const groupBy = query.groupBy;
  const strata = strataOf(groupBy);
  const sql = savingsSql(
    strata,
    options.database === undefined ? {} : { database: options.database },
  );
  const toMs = options.now ?? Date.now();
  const fromMs = toMs - windowMsOf(query.window);
  const params = { from: fromMs / 1000, to: toMs / 1000 + 0.001 };
  const run = async (text: string) => (await engine.query<Row>(text, params, READ_SETTINGS)).data;
  const [calls, evaluation, scores, agreement] = await Promise.all([
    run(sql.calls),
    run(sql.evaluation),
    run(sql.quality),
    run(sql.agreement),
  ]);
  const rows = groupedRows(strata, { calls, evaluation, scores, agreement });
  const total = new LedgerTotal();
  for (const [entry, cheaperCalls] of rows) {
    finishRow(entry, cheaperCalls);
    total.add(entry, cheaperCalls);
  }
  return {
    window: query.window,
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    groupBy,
    rows:
      strata.length === groupBy.length ? rows.map(([entry]) => entry) : combinedRows(groupBy, rows),
    total: total.result(),
  };
}
