/**
 * The read-only queries behind the built-in dashboard. Spend, calls, latency
 * and quality come from the per-minute rollup `llm_rollup_1m` (the hourly
 * `llm_rollup_1h` for whole-hour buckets; never raw spans); routing weights and recent traces come from `llm_calls`, which keeps
 * the route policy and trace id the rollup does not. Every statement is fixed
 * text with `{name:Type}` parameters; nothing from a request is pasted into SQL.
 */
import type { ClickHouseSettings } from '../store/engine.js';
import type { TableReader } from '../store/span-store.js';
import { tableNames } from '../schema/schema.js';
import { qualityFiguresOf, qualityFiguresSql, qualitySummary } from '../store/quality-figures.js';

const READ_SETTINGS: ClickHouseSettings = {
  readonly: 1,
  max_execution_time: 30,
  timeout_overflow_mode: 'throw',
};

/** The windows the dashboard offers (minutes) and the bucket width each is drawn with (seconds). */
export const DASHBOARD_WINDOWS: Readonly<Record<number, number>> = {
  15: 60,
  60: 60,
  360: 300,
  1440: 900,
  10080: 7200,
};

export interface DashboardWindow {
  /** Window start, epoch seconds, inclusive (aligned to `stepSeconds`). */
  from: number;
  /** Window end, epoch seconds, exclusive. */
  to: number;
  stepSeconds: number;
  /** Every bucket start in the window, so charts have a point for empty buckets too. */
  buckets: number[];
}

export interface Totals {
  calls: number;
  errors: number;
  costUsd: number;
  /** Calls with a known cost; `costUsd` covers only these (the rest are unpriced). */
  pricedCalls: number;
  tokens: number;
  p50Ms: number | null;
  p95Ms: number | null;
  /**
   * Mean of every score (built-in checks included), `null` when nothing was scored. Not shown
   * as quality: the checks nearly always pass.
   */
  quality: number | null;
  scored: number;
}

/** The quality figures of the window, each on its own (see `quality-figures.ts`). */
export type QualityTotals = ReturnType<typeof qualitySummary> & {
  /** LLM judges' calls (`llm_calls.Purpose = 'evaluation'`): not in the totals above. */
  evaluationCalls: number;
  evaluationUsd: number;
};

/** One model's totals over one time bucket. */
export interface SeriesPoint extends Omit<Totals, 'scored'> {
  /** Bucket start, epoch seconds. */
  t: number;
  model: string;
}

export interface SpendRank {
  name: string;
  calls: number;
  costUsd: number;
  pricedCalls: number;
}

export interface RoutingPoint {
  t: number;
  policy: string;
  model: string;
  calls: number;
}

export interface DashboardOverview {
  window: DashboardWindow;
  totals: Totals & QualityTotals;
  series: SeriesPoint[];
  topServices: SpendRank[];
  topFeatures: SpendRank[];
  routing: RoutingPoint[];
}

export interface RecentTrace {
  traceId: string;
  /** Start of the first LLM call, epoch milliseconds. */
  startMs: number;
  service: string;
  models: string[];
  feature: string;
  calls: number;
  errors: number;
  costUsd: number;
  /** Calls with a known cost (0: the trace's cost is unknown, not zero). */
  pricedCalls: number;
  tokens: number;
  /** The slowest LLM call of the trace. */
  maxCallMs: number;
}

export function dashboardWindow(minutes: number, nowMs: number): DashboardWindow {
  const stepSeconds = DASHBOARD_WINDOWS[minutes];
  if (stepSeconds === undefined) throw new RangeError(`unsupported window ${minutes}`);
  const nowSeconds = Math.floor(nowMs / 1000);
  const to = (Math.floor(nowSeconds / stepSeconds) + 1) * stepSeconds;
  const count = Math.ceil((minutes * 60) / stepSeconds);
  const from = to - count * stepSeconds;
  const buckets = Array.from({ length: count }, (_, index) => from + index * stepSeconds);
  return { from, to, stepSeconds, buckets };
}

/** ClickHouse's JSON output: 64-bit numbers as strings, NaN as `null`. */
const num = (value: unknown): number => {
  const parsed = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(parsed) ? parsed : 0;
};
const optionalNum = (value: unknown): number | null => {
  if (value === null || value === undefined) return null;
  const parsed = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(parsed) ? parsed : null;
};
const quantile = (value: unknown, index: number): number | null =>
  Array.isArray(value) ? optionalNum(value[index]) : null;

type Row = Record<string, unknown>;

export class DashboardQueries {
  private readonly reader: TableReader;
  private readonly tables: ReturnType<typeof tableNames>;

  constructor(reader: TableReader) {
    this.reader = reader;
    this.tables = tableNames({ database: reader.database });
  }

  private async rows(sql: string, params: Record<string, unknown>): Promise<Row[]> {
    return (await this.reader.query<Row>(sql, params, READ_SETTINGS)).data;
  }

  async overview(window: DashboardWindow): Promise<DashboardOverview> {
    const scope = rollupScope(this.tables, window);
    const [series, totals, services, features, routing, quality, evaluation] = await Promise.all([
      this.rows(
        `SELECT toUInt32(toUnixTimestamp(toStartOfInterval(${scope.time}, toIntervalSecond({step:UInt32})))) AS t,
            Model AS model,
            ${AGGREGATES}
         FROM ${scope.table}
         WHERE ${scope.where}
         GROUP BY t, model
         ORDER BY t, model`,
        scope.params,
      ),
      this.rows(`SELECT ${AGGREGATES} FROM ${scope.table} WHERE ${scope.where}`, scope.params),
      this.topSpenders(scope, 'ServiceName'),
      this.topSpenders(scope, 'Feature'),
      this.routing(scope.params),
      this.rows(qualityFiguresSql(this.tables.scores, []), {
        from: window.from * 1000,
        to: window.to * 1000,
        service: '',
      }),
      this.evaluationCalls(scope.params),
    ]);
    return {
      window,
      totals: toTotals(totals[0] ?? {}, quality[0], evaluation[0]),
      series: series.map(toSeriesPoint),
      topServices: services.map(toRank),
      topFeatures: features.map(toRank),
      routing: routing.map((row) => ({
        t: num(row.t),
        policy: String(row.policy),
        model: String(row.model),
        calls: num(row.calls),
      })),
    };
  }

  /** The ten names of `column` (service, feature) that spent most in the window. */
  private topSpenders(scope: RollupScope, column: string): Promise<Row[]> {
    return this.rows(
      `SELECT ${column} AS name, toFloat64(sum(Calls)) AS calls, sum(CostUSD) AS costUsd,
          toFloat64(sum(CostCalls)) AS pricedCalls
       FROM ${scope.table}
       WHERE ${scope.where}
       GROUP BY name
       HAVING calls > 0
       ORDER BY costUsd DESC, calls DESC, name
       LIMIT 10`,
      scope.params,
    );
  }

  /** Routed calls per bucket, policy and model (from `llm_calls`: the rollups have no policy). */
  private routing(params: RollupScope['params']): Promise<Row[]> {
    return this.rows(
      `SELECT toUInt32(toUnixTimestamp(toStartOfInterval(Timestamp, toIntervalSecond({step:UInt32})))) AS t,
          RoutePolicy AS policy,
          if(RequestModel != '', RequestModel, ResponseModel) AS model,
          toFloat64(count()) AS calls
       FROM ${this.tables.calls}
       WHERE Timestamp >= toDateTime({from:UInt32}) AND Timestamp < toDateTime({to:UInt32})
         AND RoutePolicy != ''
       GROUP BY t, policy, model
       ORDER BY t, policy, model`,
      params,
    );
  }

  /** LLM judges' calls and their cost (kept out of the totals). */
  private evaluationCalls(params: RollupScope['params']): Promise<Row[]> {
    return this.rows(
      `SELECT toFloat64(count()) AS calls, sum(ifNull(CostUSD, 0)) AS costUsd
       FROM ${this.tables.calls}
       WHERE Timestamp >= toDateTime({from:UInt32}) AND Timestamp < toDateTime({to:UInt32})
         AND Purpose = 'evaluation'`,
      params,
    );
  }

  /** The latest traces that made LLM calls, newest first. */
  async recentTraces(window: DashboardWindow, limit: number): Promise<RecentTrace[]> {
    const rows = await this.rows(
      `SELECT TraceId AS traceId,
          toFloat64(toUnixTimestamp64Milli(min(Timestamp))) AS startMs,
          argMin(ServiceName, Timestamp) AS service,
          arraySort(groupUniqArray(if(RequestModel != '', RequestModel, ResponseModel))) AS models,
          anyIf(Feature, Feature != '') AS feature,
          toFloat64(count()) AS calls,
          toFloat64(countIf(StatusCode = 'Error' OR ErrorType != '')) AS errors,
          sum(ifNull(CostUSD, 0)) AS costUsd,
          toFloat64(countIf(CostUSD IS NOT NULL)) AS pricedCalls,
          toFloat64(sum(InputTokens + OutputTokens)) AS tokens,
          max(DurationMs) AS maxCallMs
       FROM ${this.tables.calls}
       WHERE Timestamp >= toDateTime({from:UInt32}) AND Timestamp < toDateTime({to:UInt32})
       GROUP BY traceId
       ORDER BY startMs DESC, traceId
       LIMIT {limit:UInt32}`,
      { from: window.from, to: window.to, limit },
    );
    return rows.map((row) => ({
      traceId: String(row.traceId),
      startMs: num(row.startMs),
      service: String(row.service),
      models: Array.isArray(row.models) ? row.models.map(String).filter((m) => m !== '') : [],
      feature: String(row.feature ?? ''),
      calls: num(row.calls),
      errors: num(row.errors),
      costUsd: num(row.costUsd),
      pricedCalls: num(row.pricedCalls),
      tokens: num(row.tokens),
      maxCallMs: num(row.maxCallMs),
    }));
  }
}

/** Where a window's rollup figures come from: the rollup, its bucket column, WHERE, parameters. */
interface RollupScope {
  table: string;
  time: 'Hour' | 'Minute';
  where: string;
  params: { from: number; to: number; step: number };
}

function rollupScope(tables: ReturnType<typeof tableNames>, window: DashboardWindow): RollupScope {
  // Whole-hour buckets read the hourly rollup: a week is 168 states per group to merge, not 10080.
  const hourly = window.stepSeconds % 3600 === 0;
  const time = hourly ? 'Hour' : 'Minute';
  return {
    table: hourly ? tables.rollupHourly : tables.rollup,
    time,
    where: `${time} >= toDateTime({from:UInt32}) AND ${time} < toDateTime({to:UInt32})`,
    params: { from: window.from, to: window.to, step: window.stepSeconds },
  };
}

/** The rollup figures of a bucket, a model or the whole window. */
const AGGREGATES = `toFloat64(sum(Calls)) AS calls,
        toFloat64(sum(Errors)) AS errors,
        sum(CostUSD) AS costUsd,
        toFloat64(sum(CostCalls)) AS pricedCalls,
        toFloat64(sum(InputTokens) + sum(OutputTokens)) AS tokens,
        quantilesTDigestMerge(0.5, 0.95, 0.99)(LatencyMs) AS latency,
        if(sum(ScoreCount) > 0, sum(ScoreSum) / sum(ScoreCount), NULL) AS quality,
        toFloat64(sum(ScoreCount)) AS scored`;

function toTotals(
  total: Row,
  quality: Row | undefined,
  evaluation: Row | undefined,
): Totals & QualityTotals {
  return {
    calls: num(total.calls),
    errors: num(total.errors),
    costUsd: num(total.costUsd),
    pricedCalls: num(total.pricedCalls),
    tokens: num(total.tokens),
    p50Ms: num(total.calls) > 0 ? quantile(total.latency, 0) : null,
    p95Ms: num(total.calls) > 0 ? quantile(total.latency, 1) : null,
    quality: optionalNum(total.quality),
    scored: num(total.scored),
    ...qualitySummary(qualityFiguresOf(quality)),
    evaluationCalls: num(evaluation?.calls),
    evaluationUsd: num(evaluation?.costUsd),
  };
}

function toSeriesPoint(row: Row): SeriesPoint {
  const calls = num(row.calls);
  return {
    t: num(row.t),
    model: String(row.model),
    calls,
    errors: num(row.errors),
    costUsd: num(row.costUsd),
    pricedCalls: num(row.pricedCalls),
    tokens: num(row.tokens),
    // A bucket holding only scores has an empty latency state.
    p50Ms: calls > 0 ? quantile(row.latency, 0) : null,
    p95Ms: calls > 0 ? quantile(row.latency, 1) : null,
    quality: optionalNum(row.quality),
  };
}

function toRank(row: Row): SpendRank {
  return {
    name: String(row.name),
    calls: num(row.calls),
    costUsd: num(row.costUsd),
    pricedCalls: num(row.pricedCalls),
  };
}
