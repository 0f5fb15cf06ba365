/**
 * The figures the shadow monitor's stop rules read: the variance of a verdict difference
 * adjusted as Agresti–Min's interval for paired proportions (two pseudo-verdicts: half a win,
 * half a loss, one tie; so a run of ties is never read as certain), and for
 * `shadow.allocation: 'total'` the Neyman allocation of shadows over classes and models.
 *
 * With `'total'` the target is the 95% half-width of the policy's traffic-weighted difference
 * (what the savings ledger's total gives): `D = Σ W_h d_h` over the cells h (class × routed
 * model) with `W_h` the cell's share of the policy's eligible routed calls (calls the reference
 * answered differ by 0, exactly). Its variance is `Σ W_h² v_h / n_h`; for a fixed number of
 * shadows it is smallest with `n_h ∝ W_h S_h` (Neyman), and the total needed for a half-width
 * `t` is `(Σ W_h S_h)² / (t / 1.96)²`. A cell is shadowed while it has less than its share.
 */

/** A cell's verdicts (count, mean, sum of squared deviations) and its eligible routed calls. */
export interface CellFigures {
  readonly n: number;
  readonly mean: number;
  readonly m2: number;
  readonly calls: number;
}

/** Per-verdict variance, adjusted (Agresti–Min: two pseudo-verdicts); 0.5 with no verdict. */
export function adjustedVariance(n: number, mean: number, m2: number): number {
  const total = n + 2;
  const squares = m2 + n * mean * mean + 1;
  return Math.max(squares / total - ((n * mean) / total) ** 2, 0);
}

/** The adjusted variance of a cell's mean difference. */
function meanVariance(cell: CellFigures): number {
  return adjustedVariance(cell.n, cell.mean, cell.m2) / (cell.n + 2);
}

/**
 * The 95% half-width of a mean difference of verdicts (each in -1..1), adjusted: n ties give
 * ±1.96 / (n + 2), not ±0. Infinity below 2 verdicts.
 */
export function interval95(n: number, mean: number, m2: number): number {
  if (n < 2) return Infinity;
  return 1.96 * Math.sqrt(meanVariance({ n, mean, m2, calls: 0 }));
}

/** The 95% half-width of the traffic-weighted difference over `cells` (`total` routed calls). */
export function totalHalfWidth(cells: Iterable<CellFigures>, total: number): number {
  if (total <= 0) return Infinity;
  let variance = 0;
  for (const cell of cells) variance += (cell.calls / total) ** 2 * meanVariance(cell);
  return 1.96 * Math.sqrt(variance);
}

/**
 * Whether `cell` has its Neyman share of the verdicts that give the total a 95% half-width of
 * `target`: `n_h ≥ W_h S_h (Σ W_k S_k) / (target / 1.96)²`.
 */
export function hasNeymanShare(
  cell: CellFigures,
  cells: Iterable<CellFigures>,
  total: number,
  target: number,
): boolean {
  if (total <= 0) return false;
  let spread = 0;
  for (const each of cells) {
    spread += (each.calls / total) * Math.sqrt(adjustedVariance(each.n, each.mean, each.m2));
  }
  const own = (cell.calls / total) * Math.sqrt(adjustedVariance(cell.n, cell.mean, cell.m2));
  return cell.n >= (own * spread) / (target / 1.96) ** 2;
}

/** Where a verdict came from: a reference call (a cheaper model answered), or a cheaper one. */
type VerdictSource = 'reference' | 'candidate';

/**
 * The mean cost of a verdict (shadow call + judge) by source, for `allocation: 'total'` with
 * counterfactual shadows. A class's requests give the same verdicts whether the cheaper model
 * or the reference answered them (the class is routed alike), so, as Neyman allocation with
 * costs samples each stratum at a rate ∝ 1 / √cost, a call whose verdict needs a reference call
 * is sampled at √(candidate cost / reference cost) of the rate: the verdicts come more from the
 * reference's own calls, where the shadow is a cheaper call.
 */
export class VerdictCosts {
  private readonly sums: Record<VerdictSource, { n: number; usd: number }> = {
    reference: { n: 0, usd: 0 },
    candidate: { n: 0, usd: 0 },
  };

  add(source: VerdictSource, usd: number): void {
    this.sums[source].n += 1;
    this.sums[source].usd += usd;
  }

  /** The rate factor of a reference shadow: 1 until each source has 5 priced verdicts. */
  referenceFactor(): number {
    const { reference, candidate } = this.sums;
    if (reference.n < 5 || candidate.n < 5 || reference.usd <= 0) return 1;
    return Math.min(1, Math.sqrt(candidate.usd / candidate.n / (reference.usd / reference.n)));
  }
}
