/**
 * Weight updater: reads aggregate stats on an interval, blends them with decayed earlier
 * evidence (drift), and recomputes the weight table with the pure decision core. When stats
 * are stale or missing it keeps the last good weights and says so in `table.stale`.
 */
import { diag } from '@opentelemetry/api';
import type { StatsResponse } from '@modelmaxx/semconv/schemas';
import { computeWeights } from './decision.js';
import type { ModelClassStats, WeightTable } from './decision.js';
import type { Policy } from './policy.js';
import type { RandomSource } from './random.js';
import type { StatsSource } from './stats-source.js';
import { toModelClassStats } from './stats-source.js';
import { windowMs } from './window-stats.js';

export interface WeightUpdaterOptions {
  readonly policy: Policy;
  readonly source: StatsSource;
  readonly random: RandomSource;
  /** Clock in ms (tests pass a fake one). */
  readonly now?: () => number;
  /** Spend in the current budget period, for the policy's budget goal. */
  readonly spentUsd?: () => number;
  /** Classes to keep weights for even before they have stats. */
  readonly classes?: readonly string[];
}

const key = (row: ModelClassStats) => `${row.classKey}\u0000${row.model}`;

/**
 * Blends fresh window stats with earlier evidence decayed by `factor` (0..1): counts add up,
 * means are weighted by counts. `factor` = 0.5^(elapsed / half-life).
 */
export function blendStats(
  previous: readonly ModelClassStats[],
  current: readonly ModelClassStats[],
  factor: number,
): ModelClassStats[] {
  const merged = new Map<string, ModelClassStats>();
  for (const row of current) merged.set(key(row), row);
  for (const old of previous) {
    const fresh = merged.get(key(old));
    const calls = old.calls * factor;
    const scored = old.scoreCount * factor;
    if (fresh === undefined) {
      if (calls < 0.5) continue;
      merged.set(key(old), { ...old, calls, errors: old.errors * factor, scoreCount: scored });
      continue;
    }
    const scoreCount = fresh.scoreCount + scored;
    const meanScore =
      fresh.meanScore === null
        ? old.meanScore
        : old.meanScore === null
          ? fresh.meanScore
          : (fresh.meanScore * fresh.scoreCount + old.meanScore * scored) /
            Math.max(scoreCount, 1e-9);
    merged.set(key(old), {
      ...fresh,
      calls: fresh.calls + calls,
      errors: fresh.errors + old.errors * factor,
      costPerCallUsd: fresh.costPerCallUsd ?? old.costPerCallUsd,
      latencyP95Ms: fresh.latencyP95Ms ?? old.latencyP95Ms,
      meanScore,
      scoreCount,
    });
  }
  return [...merged.values()];
}

export class WeightUpdater {
  private readonly options: WeightUpdaterOptions;
  private readonly now: () => number;
  private table: WeightTable;
  private evidence: ModelClassStats[] = [];
  private lastGoodAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<WeightTable> | undefined;

  constructor(options: WeightUpdaterOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    // Cold start: priors only, until the first stats arrive.
    this.table = {
      ...computeWeights({
        policy: options.policy,
        stats: [],
        random: options.random,
        ...(options.classes === undefined ? {} : { classes: options.classes }),
      }),
      stale: 'no stats yet: weights from priors',
    };
  }

  /** The weights to route with now. */
  get current(): WeightTable {
    return this.table;
  }

  /** Fetches stats once and recomputes the weights; never throws. */
  refresh(): Promise<WeightTable> {
    this.inFlight ??= this.doRefresh().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async doRefresh(): Promise<WeightTable> {
    const { policy } = this.options;
    let response: StatsResponse;
    try {
      response = await this.options.source();
    } catch (error) {
      diag.warn('modelmaxx router: stats unavailable, keeping the last good weights', error);
      return this.keepLastGood(`stats unavailable (${(error as Error).message})`);
    }
    const now = this.now();
    const to = Date.parse(response.to);
    if (Number.isFinite(to) && now - to > policy.staleAfterMs) {
      return this.keepLastGood(
        `stats are stale: window ended ${Math.round((now - to) / 1000)}s ago (limit ${policy.staleAfterMs / 1000}s)`,
      );
    }
    const elapsed = this.lastGoodAt === undefined ? 0 : now - this.lastGoodAt;
    // Earlier evidence only counts for the part outside the current window, decayed.
    const outside = elapsed <= 0 ? 0 : Math.min(1, elapsed / windowMs(policy.statsWindow));
    const factor = outside * 0.5 ** (elapsed / policy.halfLifeMs);
    this.evidence = blendStats(this.evidence, toModelClassStats(response), factor);
    this.lastGoodAt = now;
    this.table = computeWeights({
      policy,
      stats: this.evidence,
      random: this.options.random,
      ...(this.options.classes === undefined ? {} : { classes: this.options.classes }),
      ...(this.options.spentUsd === undefined ? {} : { spentUsd: this.options.spentUsd() }),
    });
    return this.table;
  }

  private keepLastGood(why: string): WeightTable {
    const since =
      this.lastGoodAt === undefined
        ? 'no good stats yet, weights from priors'
        : `keeping weights computed ${Math.round((this.now() - this.lastGoodAt) / 1000)}s ago`;
    this.table = { ...this.table, stale: `${why}; ${since}` };
    return this.table;
  }

  /** Refreshes now and then every `policy.refreshIntervalMs`; the timer does not keep Node alive. */
  start(): void {
    if (this.timer !== undefined) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.policy.refreshIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Human-readable explanation of the weights of one class. */
  explain(classKey: string): string {
    const entry = this.table.classes.get(classKey) ?? this.table.fallbackClass;
    const lines = [`class ${entry.classKey}: ${entry.explanation}`];
    if (this.table.stale !== undefined) lines.push(`note: ${this.table.stale}`);
    for (const weight of entry.weights) {
      lines.push(`  ${weight.model}: ${(weight.weight * 100).toFixed(1)}% — ${weight.reason}`);
    }
    return lines.join('\n');
  }
}
