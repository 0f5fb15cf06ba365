/**
 * The ledger's quality difference, corrected for a judge that is wrong part of the time.
 *
 * A shadow verdict scores the routed answer against the reference's: 1 win, 0.5 tie, 0 loss,
 * i.e. a difference 2 × score − 1 of +1, 0 or −1. A judge right with probability `a`, whose
 * wrong verdicts are either of the two other outcomes with equal odds, gives a mean difference
 * of `k × true` with `k = (3a − 1) / 2` (a win is called a tie or a loss (1 − a)/2 of the time
 * each: its mean is a − (1 − a)/2; a tie's mean is 0): the measured difference is shrunk
 * toward 0. The correction is the analogue of Rogan–Gladen's on this scale: true = measured / k.
 *
 * `a` is measured where a verdict and user feedback scored the same call. Feedback is about the
 * routed answer only (users never see the reference's), so it cannot tell a win from a tie; but
 * a verdict that the routed answer lost when the user found it right (feedback ≥ 0.5), or won
 * when the user found it wrong, contradicts any truth: the reference cannot do worse than wrong
 * or better than right. Under the symmetric error model such contradictions happen (1 − a)/2
 * of the time whatever the reference's answer, so with `e` the contradicted share of the pairs,
 * `a = 1 − 2e` and `k = 1 − 3e`, without knowing how often the two models are right together.
 *
 * The 95% interval adds the uncertainty of `k` by the delta method:
 * var(d / k) ≈ var(d) / k² + d² var(k) / k⁴ − 2 d cov(d, k) / k³, with var(k) = 9 ẽ(1 − ẽ) / pairs,
 * ẽ = (contradictions + 1) / (pairs + 2) (so no contradiction in 12 pairs is not read as a
 * perfect judge), and cov(d, k) = −3 cov(x, y) / n from the paired verdicts' difference x and
 * contradiction y: the pairs are verdicts too, and a judge that errs more both shrinks d and
 * lowers k, so leaving the covariance out made the interval about 1.7× too wide (measured). The correction is applied only with at least MIN_CALIBRATION_PAIRS pairs and
 * a judge measurably better than chance (k's 95% lower bound above 0); otherwise the row says
 * `corrected: false` and gives the difference as measured.
 */

/** Verdict/feedback pairs a group needs before its difference is corrected. */
const MIN_CALIBRATION_PAIRS = 10;
/** Verdicts a group needs before the ledger gives its quality difference an interval. */
const MIN_INTERVAL_SAMPLES = 5;

const Z95 = 1.96;

/** The shadow judge's accuracy, measured against user feedback on the same calls. */
export interface JudgeAccuracy {
  /** `a`: share of verdicts that agree with the truth (symmetric error model). */
  value: number;
  /** Half-width of its 95% interval. */
  halfWidth: number;
  /** Shadow verdicts on calls that also have user feedback. */
  pairs: number;
  /** Of those, verdicts the feedback contradicts (a loss of a right answer, a win of a wrong one). */
  contradictions: number;
  /**
   * True when the row had fewer than 10 pairs of its own and this is the pooled accuracy of its
   * judge (every row of the ledger whose verdicts the same judge model gave).
   */
  pooled?: true;
}

export interface SavingsQuality {
  /** Quality difference routed − reference (−1..1; 0 = as good); corrected when `corrected`. */
  difference: number;
  /**
   * Half-width of the 95% interval (normal approximation); null with fewer than 5 verdicts.
   * `low` and `high` are `difference` ∓ it, clipped to −1..1.
   */
  halfWidth: number | null;
  low: number | null;
  high: number | null;
  samples: number;
  /** Whether `difference` and its interval are corrected for the judge's measured accuracy. */
  corrected: boolean;
  /** The difference as the verdicts give it (mean of 2 × score − 1), before any correction. */
  measured: { difference: number; halfWidth: number | null };
  /** null: no shadow verdict in the group has user feedback on the same call. */
  judgeAccuracy: JudgeAccuracy | null;
}

/** A group's shadow verdicts, as the ledger's quality statement sums them. */
export interface VerdictSummary {
  samples: number;
  /** Mean of 2 × score − 1. */
  difference: number;
  /** Sample variance of 2 × score − 1 (null from one verdict). */
  variance: number | null;
  calibrationPairs: number;
  contradictions: number;
  /** Sum of 2 × score − 1 over the verdicts with feedback, and over the contradicted ones. */
  pairedDifferenceSum: number;
  contradictedDifferenceSum: number;
}

export const round = (value: number, digits = 9) => Number(value.toFixed(digits));

/** The judge's accuracy from verdict/feedback pairs (null without any pair). */
export function judgeAccuracyOf(pairs: number, contradictions: number): JudgeAccuracy | null {
  if (pairs <= 0) return null;
  const share = contradictions / pairs;
  return {
    value: round(1 - 2 * share, 6),
    halfWidth: round(2 * Z95 * Math.sqrt(smoothedShareVariance(pairs, contradictions)), 6),
    pairs,
    contradictions,
  };
}

/**
 * Variance of the mean difference, as Agresti–Min's interval for paired proportions adjusts
 * it: two pseudo-verdicts (half a win, half a loss, one tie) are added, so verdicts that were
 * all ties (sample variance 0) never give an interval of ±0: n ties give ±1.96 / (n + 2). The
 * shadow monitor's stop rule (`@modelmaxx/router`, `interval95`) uses the same adjustment.
 */
export function adjustedMeanVariance(
  samples: number,
  difference: number,
  variance: number,
): number {
  const n = samples + 2;
  const squares = (samples - 1) * Math.max(variance, 0) + samples * difference ** 2 + 1;
  return Math.max(squares / n - ((samples * difference) / n) ** 2, 0) / n;
}

/** Variance of the contradicted share, from the share smoothed by one pseudo-pair each way. */
function smoothedShareVariance(pairs: number, contradictions: number): number {
  const smoothed = (contradictions + 1) / (pairs + 2);
  return (smoothed * (1 - smoothed)) / pairs;
}

/** Sample covariance of a paired verdict's difference and whether feedback contradicts it. */
function pairedCovariance(summary: VerdictSummary): number {
  const pairs = summary.calibrationPairs;
  if (pairs < 2) return 0;
  const { contradictions, pairedDifferenceSum, contradictedDifferenceSum } = summary;
  return (contradictedDifferenceSum - (pairedDifferenceSum * contradictions) / pairs) / (pairs - 1);
}

/** A quality difference is one of two scores in [0, 1]: never outside −1..1. */
const clip = (value: number) => Math.min(1, Math.max(-1, value));

/**
 * The interval fields around `difference` (none when `halfWidth` is null). The difference and
 * the interval's ends are clipped to −1..1 (a correction by k < 1 can push them out: one loss
 * corrected with k = 0.7 read −142.9 points); `halfWidth` is the unclipped half-width.
 */
export function interval(
  difference: number,
  halfWidth: number | null,
): Pick<SavingsQuality, 'difference' | 'halfWidth' | 'low' | 'high'> {
  return {
    difference: round(clip(difference), 6),
    halfWidth: halfWidth === null ? null : round(halfWidth, 6),
    low: halfWidth === null ? null : round(clip(difference - halfWidth), 6),
    high: halfWidth === null ? null : round(clip(difference + halfWidth), 6),
  };
}

/** Verdict/feedback pairs of every row judged by the same judge model (the pooled accuracy). */
export interface JudgePool {
  pairs: number;
  contradictions: number;
}

/**
 * The group's quality difference: as measured, and corrected where the judge was measured —
 * by the group's own verdict/feedback pairs when it has at least MIN_CALIBRATION_PAIRS of
 * them, else by `pool` (its judge's pairs over the whole ledger) when that has enough.
 */
export function correctedQuality(summary: VerdictSummary, pool?: JudgePool): SavingsQuality {
  if (
    summary.calibrationPairs < MIN_CALIBRATION_PAIRS &&
    pool !== undefined &&
    pool.pairs >= MIN_CALIBRATION_PAIRS
  ) {
    // The pooled pairs are mostly other groups' verdicts: no covariance with this difference
    // (leaving it out can only widen the interval when the difference and k move together).
    const pooled = ownCorrection({
      ...summary,
      calibrationPairs: pool.pairs,
      contradictions: pool.contradictions,
      pairedDifferenceSum: 0,
      contradictedDifferenceSum: 0,
    });
    return pooled.judgeAccuracy === null
      ? pooled
      : { ...pooled, judgeAccuracy: { ...pooled.judgeAccuracy, pooled: true } };
  }
  return ownCorrection(summary);
}

/** The correction by the summary's own verdict/feedback pairs. */
function ownCorrection(summary: VerdictSummary): SavingsQuality {
  const { samples, difference, variance } = summary;
  // No interval from fewer than MIN_INTERVAL_SAMPLES verdicts: two ties would claim ±0.
  const meanVariance =
    samples >= MIN_INTERVAL_SAMPLES && variance !== null
      ? adjustedMeanVariance(samples, difference, variance)
      : null;
  const measuredHalfWidth = meanVariance === null ? null : Z95 * Math.sqrt(meanVariance);
  const judgeAccuracy = judgeAccuracyOf(summary.calibrationPairs, summary.contradictions);
  const measured = {
    difference: round(difference, 6),
    halfWidth: measuredHalfWidth === null ? null : round(measuredHalfWidth, 6),
  };
  const uncorrected = {
    ...interval(difference, measuredHalfWidth),
    samples,
    corrected: false,
    measured,
    judgeAccuracy,
  };
  if (summary.calibrationPairs < MIN_CALIBRATION_PAIRS) return uncorrected;
  const pairs = summary.calibrationPairs;
  const k = 1 - (3 * summary.contradictions) / pairs;
  const kVariance = 9 * smoothedShareVariance(pairs, summary.contradictions);
  // A judge not measurably better than chance: dividing by k would be dividing by noise.
  if (k - Z95 * Math.sqrt(kVariance) <= 0) return uncorrected;
  const covariance = -3 * (pairedCovariance(summary) / samples);
  const halfWidth =
    meanVariance === null
      ? null
      : Z95 *
        Math.sqrt(
          Math.max(
            meanVariance / k ** 2 +
              (difference ** 2 * kVariance) / k ** 4 -
              (2 * difference * covariance) / k ** 3,
            0,
          ),
        );
  return { ...uncorrected, ...interval(difference / k, halfWidth), corrected: true };
}
