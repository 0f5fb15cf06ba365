/** Models cooling down after a retryable failure (429, 5xx, timeout), until a time in ms. */
import type { FailureClass } from './route-errors.js';

export class Cooldowns {
  private readonly until = new Map<string, number>();
  private readonly now: () => number;
  private readonly defaultMs: number;

  /** `defaultMs`: the cooldown when the error carries no `retry-after`. */
  constructor(now: () => number, defaultMs: number) {
    this.now = now;
    this.defaultMs = defaultMs;
  }

  /** The models cooling down at `time` (expired entries are dropped). */
  active(time: number): Set<string> {
    const cooling = new Set<string>();
    for (const [model, until] of this.until) {
      if (until > time) cooling.add(model);
      else this.until.delete(model);
    }
    return cooling;
  }

  /** Starts a model's cooldown after a retryable failure (`retryAfterMs`, else the default). */
  start(model: string, failure: FailureClass & { status: 'retryable' }): void {
    this.until.set(model, this.now() + (failure.retryAfterMs ?? this.defaultMs));
  }

  /** Models cooling down now, with the time (ms) they become available again. */
  snapshot(): ReadonlyMap<string, number> {
    return new Map(this.until);
  }
}
