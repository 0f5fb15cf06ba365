/**
 * `GET /api/stats` (the router's input): calls, errors, cost, tokens, latency percentiles and
 * scores per group over a window, from the per-minute or hourly rollups; scores of named
 * evaluations and the quality figures from `llm_scores`.
 */
import type {
  StatsGroupKey,
  StatsQuery,
  StatsResponse,
  StatsRow,
} from '@modelmaxx/semconv/schemas';
import { LATENCY_DD_PARAMETERS } from '../schema/schema.js';
import type { ClickHouseEngine } from './engine.js';
import type { TableNames } from './migration.js';
import { qualityFiguresOf, qualityFiguresSql, qualitySummary } from './quality-figures.js';

const GROUP_COLUMNS: Record<StatsGroupKey, string> = {
  model: 'Model',
  provider: 'Provider',
  task: 'Task',
  service: 'ServiceName',
  feature: 'Feature',
};

/** A stats row's group, as one map key. */
const groupKey = (data: Record<string, unknown>, groupBy: readonly StatsGroupKey[]): string =>
  groupBy.map((key) => String(data[key] ?? '')).join('\u0000');

/** Windows of at least this many seconds read the hourly rollup. */
const HOURLY_FROM_SECONDS = 6 * 3600;

/**
 * Latency percentiles come from the DDSketch states (`LatencyMsDD`, 1 % relative accuracy),
 * cheap to merge; a group with at most this many calls in the window takes them from the
 * t-digest states instead (exact for so few values, as before). `-If` merges only the
 * t-digests of rollup rows that small, so a big group's (the expensive ones) never are.
 */
const EXACT_LATENCY_MAX_CALLS = 1000;

const WINDOW_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

function windowSeconds(window: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(window);
  if (match === null) throw new Error(`invalid window ${JSON.stringify(window)}`);
  return Number(match[1]) * (WINDOW_UNITS[match[2] ?? 's'] ?? 1);
}

interface StatsDbRow {
  calls: string | number;
  errors: string | number;
  cost: number;
  costCalls: string | number;
  inputTokens: string | number;
  outputTokens: string | number;
  latency: (number | null)[];
  scoreSum: number;
  scoreCount: string | number;
  [key: string]: unknown;
}

/** What one stats query reads: the rollup, its window as asked and as bucketed, the groups. */
interface StatsPlan {
  groupBy: StatsGroupKey[];
  hourly: boolean;
  from: Date;
  to: Date;
  /** The window as read: from the start of the first minute (or hour) bucket. */
  start: Date;
  service: string;
}

function statsPlan(query: StatsQuery, now: Date): StatsPlan {
  const seconds = windowSeconds(query.window);
  const from = new Date(now.getTime() - seconds * 1000);
  // Windows of 6 h and more read the hourly rollup (its first hour may start before `from`).
  const hourly = seconds >= HOURLY_FROM_SECONDS;
  const bucketMs = hourly ? 3_600_000 : 60_000;
  return {
    groupBy: query.groupBy.filter((key): key is StatsGroupKey => key in GROUP_COLUMNS),
    hourly,
    from,
    to: now,
    start: new Date(Math.floor(from.getTime() / bucketMs) * bucketMs),
    service: query.service ?? '',
  };
}

/** The rollup query of `plan`; its window is `{from:UInt32}`..`{to:UInt32}` (epoch seconds). */
function rollupSql(tables: TableNames, plan: StatsPlan): string {
  const { groupBy, hourly } = plan;
  const bucket = hourly ? 'Hour' : 'Minute';
  const startOf = hourly ? 'toStartOfHour' : 'toStartOfMinute';
  return `SELECT
          ${groupBy.map((key) => `${GROUP_COLUMNS[key]} AS ${key}`).join(',\n          ')},
          sum(Calls) AS calls,
          sum(Errors) AS errors,
          sum(CostUSD) AS cost,
          sum(CostCalls) AS costCalls,
          sum(InputTokens) AS inputTokens,
          sum(OutputTokens) AS outputTokens,
          if(sum(Calls) <= ${EXACT_LATENCY_MAX_CALLS},
             quantilesTDigestMergeIf(0.5, 0.95, 0.99)(LatencyMs, Calls <= ${EXACT_LATENCY_MAX_CALLS}),
             quantilesDDMerge(${LATENCY_DD_PARAMETERS})(LatencyMsDD)) AS latency,
          sum(ScoreSum) AS scoreSum,
          sum(ScoreCount) AS scoreCount
       FROM ${hourly ? tables.rollupHourly : tables.rollup}
       WHERE ${bucket} >= ${startOf}(toDateTime({from:UInt32})) AND ${bucket} <= toDateTime({to:UInt32})
         AND ({service:String} = '' OR ServiceName = {service:String})
       GROUP BY ${groupBy.join(', ')}
       HAVING calls > 0 OR scoreCount > 0
       ORDER BY calls DESC, ${groupBy.join(', ')}`;
}

const finite = (value: number | null | undefined): number | null =>
  value === null || value === undefined || !Number.isFinite(value) ? null : value;

type ScoreSums = Map<string, { sum: number; count: number }>;

/** One response row of a rollup row; scores from `named` when only some evaluations count. */
function statsRow(
  data: StatsDbRow,
  groupBy: readonly StatsGroupKey[],
  named: ScoreSums | undefined,
  quality: Map<string, Record<string, unknown>> | undefined,
): StatsRow {
  const calls = Number(data.calls);
  const errors = Number(data.errors);
  const costCalls = Number(data.costCalls);
  const groupScores = named?.get(groupKey(data, groupBy));
  const scoreSum = named === undefined ? Number(data.scoreSum) : (groupScores?.sum ?? 0);
  const scoreCount = named === undefined ? Number(data.scoreCount) : (groupScores?.count ?? 0);
  const latency = calls > 0 ? data.latency : [];
  const row: StatsRow = {
    model: String(data.model ?? ''),
    calls,
    errors,
    errorRate: calls > 0 ? errors / calls : 0,
    costUsd: Math.max(0, Number(data.cost)),
    costPerCallUsd: costCalls > 0 ? Math.max(0, Number(data.cost) / costCalls) : null,
    meanInputTokens: calls > 0 ? Number(data.inputTokens) / calls : 0,
    meanOutputTokens: calls > 0 ? Number(data.outputTokens) / calls : 0,
    latencyP50Ms: finite(latency[0]),
    latencyP95Ms: finite(latency[1]),
    latencyP99Ms: finite(latency[2]),
    meanScore: scoreCount > 0 ? scoreSum / scoreCount : null,
    scoreCount,
    ...(quality === undefined
      ? {}
      : qualitySummary(qualityFiguresOf(quality.get(groupKey(data, groupBy))))),
  };
  for (const key of groupBy) {
    if (key !== 'model') row[key] = String(data[key] ?? '');
  }
  return row;
}

export class StatsQueries {
  private readonly engine: ClickHouseEngine;
  private readonly tables: TableNames;

  constructor(engine: ClickHouseEngine, tables: TableNames) {
    this.engine = engine;
    this.tables = tables;
  }

  async stats(query: StatsQuery): Promise<StatsResponse> {
    const plan = statsPlan(query, new Date());
    const result = await this.engine.query<StatsDbRow>(rollupSql(this.tables, plan), {
      from: Math.floor(plan.from.getTime() / 1000),
      to: Math.floor(plan.to.getTime() / 1000),
      service: plan.service,
    });
    // Only some evaluation names: their sums come from `llm_scores` (the rollups sum all names).
    const named =
      query.scores === undefined ? undefined : await this.namedScores(query.scores, plan);
    const quality = query.quality === true ? await this.qualityFigures(plan) : undefined;
    return {
      from: plan.start.toISOString(),
      to: plan.to.toISOString(),
      groupBy: plan.groupBy,
      rows: result.data.map((data) => statsRow(data, plan.groupBy, named, quality)),
    };
  }

  /** Checks pass rate, judge and feedback scores per stats group (see `quality-figures.ts`). */
  private async qualityFigures(plan: StatsPlan): Promise<Map<string, Record<string, unknown>>> {
    const result = await this.engine.query<Record<string, unknown>>(
      qualityFiguresSql(
        this.tables.scores,
        plan.groupBy.map((key) => ({ column: GROUP_COLUMNS[key], alias: key })),
      ),
      { from: plan.start.getTime(), to: plan.to.getTime() + 1, service: plan.service },
    );
    return new Map(result.data.map((data) => [groupKey(data, plan.groupBy), data]));
  }

  /** Score sums and counts of the named evaluations per stats group, over [start, to]. */
  private async namedScores(names: readonly string[], plan: StatsPlan): Promise<ScoreSums> {
    const sums: ScoreSums = new Map();
    if (names.length === 0) return sums;
    const { groupBy } = plan;
    const result = await this.engine.query<Record<string, unknown>>(
      `SELECT
          ${groupBy.map((key) => `${GROUP_COLUMNS[key]} AS ${key}`).join(',\n          ')},
          sum(assumeNotNull(Score)) AS scoreSum,
          count() AS scoreCount
       FROM ${this.tables.scores}
       WHERE Timestamp >= fromUnixTimestamp64Milli({from:Int64}) AND Timestamp <= fromUnixTimestamp64Milli({to:Int64})
         AND ({service:String} = '' OR ServiceName = {service:String})
         AND has(splitByChar(',', {names:String}), Name)
         AND Model != '' AND Score IS NOT NULL
       GROUP BY ${groupBy.join(', ')}`,
      {
        from: plan.start.getTime(),
        to: plan.to.getTime(),
        service: plan.service,
        names: names.join(','),
      },
    );
    for (const data of result.data) {
      sums.set(groupKey(data, groupBy), {
        sum: Number(data.scoreSum),
        count: Number(data.scoreCount),
      });
    }
    return sums;
  }
}
