/**
 * The engine's own windowed, decayed statistics per class and model (`statsWindow`,
 * `halfLifeMs`), read as `ModelClassStats` rows like the collector's `/api/stats`.
 */
import type { ModelClassStats } from './decision.js';
import type { EngineOutcome } from './engine.js';
import type { Policy } from './policy.js';

const BUCKETS = 60;
/** Per model in a stats bucket: calls, errors, cost, score sum, scored calls, score squares. */
const SLOTS = 6;

const WINDOW_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

export function windowMs(window: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(window);
  if (match === null) throw new Error(`invalid window "${window}"`);
  return Number(match[1]) * WINDOW_UNITS[match[2]!]!;
}

/**
 * The engine's own stats: per class and model, buckets of `statsWindow / 60`, read as the
 * sum over the window with each bucket decayed by `halfLifeMs` (like the collector's
 * per-minute rollups over `/api/stats?window=` blended with decayed evidence).
 */
export class WindowStats {
  private readonly width: number;
  private readonly window: number;
  private readonly halfLifeMs: number;
  private readonly models: readonly string[];
  /** class → bucket number → [calls, errors, cost, scoreSum, scored, scoreSquares] per model, × 2^(t/halfLife). */
  private readonly classes = new Map<string, Map<number, Float64Array>>();
  /** Values are stored multiplied by 2^((t - origin) / halfLife): exact decay per call. */
  private origin: number | undefined;

  constructor(policy: Policy) {
    this.window = windowMs(policy.statsWindow);
    this.width = Math.max(1, this.window / BUCKETS);
    this.halfLifeMs = policy.halfLifeMs;
    this.models = policy.candidates.map((candidate) => candidate.model);
  }

  private growth(at: number): number {
    if (this.origin === undefined) this.origin = at;
    let growth = 2 ** ((at - this.origin) / this.halfLifeMs);
    if (growth > 1e100) {
      // rebase: everything stored shrinks by the growth, the origin moves to now
      for (const buckets of this.classes.values()) {
        for (const bucket of buckets.values()) {
          for (let index = 0; index < bucket.length; index += 1) bucket[index]! /= growth;
        }
      }
      this.origin = at;
      growth = 1;
    }
    return growth;
  }

  /**
   * The bucket of `at` for a class, created empty when missing; `evict`: creating it also drops
   * the class's buckets that fell out of the window.
   */
  private bucketAt(classKey: string, at: number, evict: boolean): Float64Array {
    let buckets = this.classes.get(classKey);
    if (buckets === undefined) this.classes.set(classKey, (buckets = new Map()));
    const number = Math.floor(at / this.width);
    let bucket = buckets.get(number);
    if (bucket === undefined) {
      buckets.set(number, (bucket = new Float64Array(SLOTS * this.models.length)));
      if (evict) {
        for (const old of buckets.keys()) {
          if ((number - old) * this.width > this.window) buckets.delete(old);
        }
      }
    }
    return bucket;
  }

  add(classKey: string, model: number, at: number, outcome: EngineOutcome): void {
    const growth = this.growth(at);
    const bucket = this.bucketAt(classKey, at, true);
    const base = SLOTS * model;
    bucket[base] = bucket[base]! + growth;
    if (outcome.failed === true) bucket[base + 1] = bucket[base + 1]! + growth;
    bucket[base + 2] = bucket[base + 2]! + outcome.costUsd * growth;
    if (outcome.score !== undefined && outcome.failed !== true) {
      bucket[base + 3] = bucket[base + 3]! + outcome.score * growth;
      bucket[base + 4] = bucket[base + 4]! + growth;
      bucket[base + 5] = bucket[base + 5]! + outcome.score * outcome.score * growth;
    }
  }

  /** A score that arrives after the call was counted (a shadow judge's verdict): no call added. */
  addScore(classKey: string, model: number, at: number, score: number): void {
    const growth = this.growth(at);
    const bucket = this.bucketAt(classKey, at, false);
    const base = SLOTS * model;
    // A model only scored (the reference in a shadow) needs calls for its row to exist.
    if (bucket[base]! < bucket[base + 4]! + growth) bucket[base] = bucket[base + 4]! + growth;
    bucket[base + 3] = bucket[base + 3]! + score * growth;
    bucket[base + 4] = bucket[base + 4]! + growth;
    bucket[base + 5] = bucket[base + 5]! + score * score * growth;
  }

  snapshot(at: number): ModelClassStats[] {
    const rows: ModelClassStats[] = [];
    const count = this.models.length;
    const global = new Float64Array(SLOTS * count);
    const current = Math.floor(at / this.width);
    const factor = this.origin === undefined ? 1 : 1 / this.growth(at);
    for (const [classKey, buckets] of this.classes) {
      const sums = new Float64Array(SLOTS * count);
      for (const [number, bucket] of buckets) {
        if ((current - number) * this.width >= this.window) continue;
        for (let index = 0; index < sums.length; index += 1) {
          sums[index] = sums[index]! + bucket[index]! * factor;
          global[index] = global[index]! + bucket[index]! * factor;
        }
      }
      this.rows(classKey, sums, rows);
    }
    this.rows('*', global, rows);
    return rows;
  }

  private rows(classKey: string, sums: Float64Array, rows: ModelClassStats[]): void {
    this.models.forEach((model, index) => {
      const base = SLOTS * index;
      const calls = sums[base]!;
      if (calls <= 0) return;
      const scored = sums[base + 4]!;
      const mean = scored > 0 ? sums[base + 3]! / scored : 0;
      rows.push({
        model,
        classKey,
        calls,
        errors: sums[base + 1]!,
        costPerCallUsd: sums[base + 2]! / calls,
        latencyP95Ms: null,
        meanScore: scored > 0 ? mean : null,
        scoreCount: scored,
        scoreVariance: scored > 0 ? Math.max(0, sums[base + 5]! / scored - mean * mean) : null,
      });
    });
  }
}
