/**
 * How often each candidate's calls fail lately (429, 5xx, timeouts), per class: an
 * exponentially weighted rate per call that also fades toward 0 with the policy's half-life
 * while a candidate gets no calls, so a model that failed is tried again later. The predict
 * mode weighs each predicted quality by the chance the call succeeds: the quality predictor
 * learns from answers only, and without this a candidate whose calls all fail kept its traffic.
 */
export class FailureRates {
  /** Per class: the rate and the time of its last update, per candidate. */
  private readonly classes = new Map<string, Float64Array>();
  private readonly candidates: number;
  private readonly halfLifeMs: number;
  /** The weight of the newest call in the rate. */
  private readonly alpha: number;

  constructor(candidates: number, halfLifeMs: number, alpha = 0.1) {
    this.candidates = candidates;
    this.halfLifeMs = halfLifeMs;
    this.alpha = alpha;
  }

  /** One call of `model` in the class ended; `failed`: with an error instead of an answer. */
  add(classKey: string, model: number, at: number, failed: boolean): void {
    let rates = this.classes.get(classKey);
    if (rates === undefined) {
      // Nothing failed in this class yet: a success changes nothing.
      if (!failed) return;
      this.classes.set(classKey, (rates = new Float64Array(2 * this.candidates)));
    }
    const rate = this.rateAt(rates, model, at);
    rates[2 * model] = rate + this.alpha * ((failed ? 1 : 0) - rate);
    rates[2 * model + 1] = at;
  }

  /** The class's rates (undefined: no call of the class failed yet), for `successIn`. */
  ratesOf(classKey: string): Float64Array | undefined {
    return this.classes.get(classKey);
  }

  /** The chance a call of `model` succeeds now, given its class's rates (1 when none failed). */
  successIn(rates: Float64Array | undefined, model: number, at: number): number {
    return rates === undefined ? 1 : 1 - this.rateAt(rates, model, at);
  }

  private rateAt(rates: Float64Array, model: number, at: number): number {
    const rate = rates[2 * model]!;
    if (rate === 0) return 0;
    const age = Math.max(0, at - rates[2 * model + 1]!);
    return rate * Math.pow(2, -age / this.halfLifeMs);
  }
}
