/**
 * Adapter: reads aggregate stats from the collector's `GET /api/stats`. To read ClickHouse
 * directly instead (a ClickHouse server, or the store of a process that runs the collector), use
 * `clickhouseStatsSource` from `@modelmaxx/collector`: it returns a `StatsSource` too, and the
 * router itself does not depend on the collector.
 */
import { StatsResponseSchema } from '@modelmaxx/semconv/schemas';
import type { StatsResponse } from '@modelmaxx/semconv/schemas';
import type { ModelClassStats } from './decision.js';
import { formatIssues } from '@modelmaxx/semconv';

/** Anything that returns the current aggregate stats (collector, ClickHouse, a test). */
export type StatsSource = () => Promise<StatsResponse>;

export interface CollectorStatsOptions {
  /** Collector base URL, e.g. `http://127.0.0.1:4318`. */
  readonly url: string;
  /** Read token sent as `Authorization: Bearer …`. */
  readonly token?: string;
  /** Stats window, e.g. `1h`. */
  readonly window?: string;
  readonly service?: string;
  /**
   * Quality from these evaluation names only (`gen_ai.evaluation.name`, e.g. your answer
   * check), so checks that nearly always pass do not dilute it; default: all scores.
   */
  readonly scores?: readonly string[];
  readonly timeoutMs?: number;
}

export class StatsFetchError extends Error {
  override readonly name = 'StatsFetchError';
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

/** A `StatsSource` over the collector's `/api/stats`, grouped by model and task. */
export function collectorStatsSource(options: CollectorStatsOptions): StatsSource {
  return async () => {
    const url = new URL('/api/stats', options.url);
    url.searchParams.set('window', options.window ?? '1h');
    url.searchParams.set('groupBy', 'model,task');
    if (options.service !== undefined) url.searchParams.set('service', options.service);
    if (options.scores !== undefined) url.searchParams.set('scores', options.scores.join(','));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    let response: Response;
    try {
      response = await fetch(url, {
        headers,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
    } catch (error) {
      throw new StatsFetchError(`cannot reach ${url.origin}: ${String(error)}`, undefined, {
        cause: error,
      });
    }
    if (!response.ok) {
      throw new StatsFetchError(`GET /api/stats answered ${response.status}`, response.status);
    }
    const parsed = StatsResponseSchema.safeParse(await response.json());
    if (!parsed.success) {
      throw new StatsFetchError(
        `GET /api/stats returned an unexpected body: ${formatIssues(parsed.error.issues)}`,
        response.status,
      );
    }
    return parsed.data;
  };
}

/**
 * Turns stats rows into per-class inputs of the decision core: one row per (task, model),
 * plus a `*` row per model over all tasks (used as the prior of classes with little data).
 */
export function toModelClassStats(response: StatsResponse): ModelClassStats[] {
  const result: ModelClassStats[] = [];
  const global = new Map<
    string,
    {
      calls: number;
      errors: number;
      cost: number;
      costCalls: number;
      score: number;
      scored: number;
      p95: number | null;
    }
  >();
  for (const row of response.rows) {
    const classKey = row.task === undefined || row.task === '' ? '*' : row.task;
    if (classKey !== '*') {
      result.push({
        model: row.model,
        classKey,
        calls: row.calls,
        errors: row.errors,
        costPerCallUsd: row.costPerCallUsd,
        latencyP95Ms: row.latencyP95Ms,
        meanScore: row.meanScore,
        scoreCount: row.scoreCount,
      });
    }
    let entry = global.get(row.model);
    if (!entry) {
      global.set(
        row.model,
        (entry = { calls: 0, errors: 0, cost: 0, costCalls: 0, score: 0, scored: 0, p95: null }),
      );
    }
    entry.calls += row.calls;
    entry.errors += row.errors;
    if (row.costPerCallUsd !== null) {
      entry.cost += row.costPerCallUsd * row.calls;
      entry.costCalls += row.calls;
    }
    if (row.meanScore !== null) {
      entry.score += row.meanScore * row.scoreCount;
      entry.scored += row.scoreCount;
    }
    if (row.latencyP95Ms !== null) entry.p95 = Math.max(entry.p95 ?? 0, row.latencyP95Ms);
  }
  for (const [model, entry] of global) {
    result.push({
      model,
      classKey: '*',
      calls: entry.calls,
      errors: entry.errors,
      costPerCallUsd: entry.costCalls > 0 ? entry.cost / entry.costCalls : null,
      latencyP95Ms: entry.p95,
      meanScore: entry.scored > 0 ? entry.score / entry.scored : null,
      scoreCount: entry.scored,
    });
  }
  return result;
}
