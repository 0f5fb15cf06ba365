/**
 * Rows' quality differences combined, each weighted by its calls answered by a cheaper model
 * than the reference (rows taken as independent; a row without an interval, fewer than 5
 * verdicts, adds no estimate). Two readings of the same sums: the ledger total's difference
 * over all routed calls (the reference's own calls differ by 0, without sampling error), and a
 * ledger row's difference over the cheaper calls, combined from its strata (policy and class:
 * the shadow sampling is per policy and class, so a row spanning several classes must not
 * average their verdicts). Corrected only when every row with an estimate was; the judge's
 * accuracy pooled over the rows' verdict/feedback pairs.
 */
import { interval, judgeAccuracyOf } from './judge-correction.js';
import type { SavingsQuality } from './judge-correction.js';

/** A traffic-weighted mean and the variance of that weighted sum. */
class Weighted {
  sum = 0;
  variance = 0;
  weight = 0;
  add(weight: number, difference: number, halfWidth: number): void {
    this.weight += weight;
    this.sum += weight * difference;
    this.variance += ((weight * halfWidth) / 1.96) ** 2;
  }
  quality(calls: number): { difference: number; halfWidth: number } {
    return { difference: this.sum / calls, halfWidth: (1.96 * Math.sqrt(this.variance)) / calls };
  }
}

export class TotalQuality {
  private readonly estimate = new Weighted();
  private readonly measured = new Weighted();
  private coveredCalls = 0;
  private samples = 0;
  /** Rows with an estimate, and of them those corrected for the judge. */
  private readonly rows = { estimated: 0, corrected: 0 };
  /** The rows' verdict/feedback pairs, pooled. */
  private readonly judge = { pairs: 0, contradictions: 0 };

  /** A row's calls: `cheaperCalls` of them answered by a model other than the reference. */
  add(calls: number, cheaperCalls: number, quality: SavingsQuality | null): void {
    // A row corrected with its judge's pooled pairs adds none of its own.
    if (quality?.judgeAccuracy && quality.judgeAccuracy.pooled !== true) {
      this.judge.pairs += quality.judgeAccuracy.pairs;
      this.judge.contradictions += quality.judgeAccuracy.contradictions;
    }
    if (calls > 0 && cheaperCalls === 0) {
      this.coveredCalls += calls;
      return;
    }
    if (quality === null || quality.halfWidth === null || quality.measured.halfWidth === null) {
      return;
    }
    // Of this row's calls, the cheaper ones differ by the estimate, the reference's by 0.
    this.estimate.add(cheaperCalls, quality.difference, quality.halfWidth);
    this.measured.add(cheaperCalls, quality.measured.difference, quality.measured.halfWidth);
    this.coveredCalls += calls;
    this.samples += quality.samples;
    this.rows.estimated += 1;
    if (quality.corrected) this.rows.corrected += 1;
  }

  /** Routed calls in rows whose difference is known. */
  covered(): number {
    return this.coveredCalls;
  }

  /** The total's quality (null when no row has an estimate and the reference did not answer all). */
  result(totalCalls: number): SavingsQuality | null {
    const calls = this.coveredCalls;
    if (calls === 0 || (this.samples === 0 && calls !== totalCalls)) return null;
    return this.over(calls);
  }

  /** The difference over the cheaper calls of the rows with an estimate (null without one). */
  perCheaperCall(): SavingsQuality | null {
    return this.rows.estimated === 0 || this.estimate.weight === 0
      ? null
      : this.over(this.estimate.weight);
  }

  private over(calls: number): SavingsQuality {
    const estimate = this.estimate.quality(calls);
    const measured = this.measured.quality(calls);
    return {
      ...interval(estimate.difference, estimate.halfWidth),
      samples: this.samples,
      corrected: this.rows.estimated > 0 && this.rows.corrected === this.rows.estimated,
      measured: interval(measured.difference, measured.halfWidth),
      judgeAccuracy: judgeAccuracyOf(this.judge.pairs, this.judge.contradictions),
    };
  }
}
