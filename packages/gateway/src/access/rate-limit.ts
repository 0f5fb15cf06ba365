/**
 * Requests and tokens per minute: one token bucket per limit and subject (key, user, team),
 * holding at most a minute's allowance and refilled continuously. A request whose estimated
 * tokens exceed a whole minute's allowance passes when the bucket is full and leaves it in debt,
 * so it is never refused forever. Requests in flight: a count per limit and subject, taken at
 * admission and given back when the request settles (or its reservation expires).
 */
import type { RateLimitConfig } from './config.js';
import type { Principal } from './types.js';
import { ANONYMOUS_KEY_ID } from './keys.js';

interface Bucket {
  level: number;
  updatedAt: number;
}

export interface RateCharge {
  readonly bucket: string;
  readonly amount: number;
  readonly kind: 'requests' | 'tokens' | 'concurrent';
}

export type RateCheck =
  | { readonly ok: true; readonly charges: readonly RateCharge[] }
  | {
      readonly ok: false;
      readonly limit: string;
      /** The 429 body's `rate_limit` object. */
      readonly fields: Record<string, unknown>;
      readonly message: string;
      readonly retryAfterMs: number;
    };

export function rateSubject(
  scope: RateLimitConfig['scope'],
  principal: Principal,
  endUser: string | undefined,
): string | undefined {
  switch (scope) {
    case 'global':
      return '*';
    case 'key':
      return principal.keyId === ANONYMOUS_KEY_ID ? undefined : principal.keyId;
    case 'user':
      return principal.user ?? endUser;
    case 'team':
      return principal.team;
  }
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** Requests admitted and not yet settled, per concurrency limit and subject. */
  private readonly inFlight = new Map<string, number>();
  private lastSweep = 0;

  private readonly limits: readonly RateLimitConfig[];

  constructor(limits: readonly RateLimitConfig[]) {
    this.limits = limits;
  }

  /** Checks every limit that applies, without charging anything. */
  check(principal: Principal, endUser: string | undefined, tokens: number, now: number): RateCheck {
    this.sweep(now);
    const charges: RateCharge[] = [];
    for (const limit of this.limits) {
      const subject = rateSubject(limit.scope, principal, endUser);
      if (subject === undefined) continue;
      if (limit.match !== undefined && limit.match !== subject) continue;
      if (limit.concurrentRequests !== undefined) {
        const id = JSON.stringify([limit.name, 'concurrent', subject]);
        if ((this.inFlight.get(id) ?? 0) >= limit.concurrentRequests) {
          // When one of them ends is not known (a stream can run for minutes): retry in a second.
          const most = limit.concurrentRequests;
          const said = `${most} requests in flight at most; retry when one ends`;
          return refusal(limit, subject, 'concurrent', 1000, { concurrent_requests: most }, said);
        }
        charges.push({ bucket: id, amount: 1, kind: 'concurrent' });
      }
      for (const [kind, perMinute, amount] of [
        ['requests', limit.requestsPerMinute, 1],
        ['tokens', limit.tokensPerMinute, tokens],
      ] as const) {
        if (perMinute === undefined) continue;
        const id = JSON.stringify([limit.name, kind, subject]);
        const level = this.level(id, perMinute, now);
        const needed = Math.min(amount, perMinute);
        if (level < needed) {
          const retryAfterMs = Math.ceil(((needed - level) / perMinute) * 60_000);
          const said = `${perMinute} ${kind} per minute; retry in ${Math.ceil(retryAfterMs / 1000)} s`;
          return refusal(limit, subject, kind, retryAfterMs, { per_minute: perMinute }, said);
        }
        charges.push({ bucket: id, amount, kind });
      }
    }
    return { ok: true, charges };
  }

  charge(charges: readonly RateCharge[], now: number): void {
    for (const charge of charges) {
      if (charge.kind === 'concurrent') {
        this.inFlight.set(charge.bucket, (this.inFlight.get(charge.bucket) ?? 0) + 1);
      } else {
        this.adjust(charge.bucket, -charge.amount, now);
      }
    }
  }

  /** The request ended (settled, or its reservation expired): its places in flight are free. */
  release(charges: readonly RateCharge[]): void {
    for (const charge of charges) {
      if (charge.kind !== 'concurrent') continue;
      const left = (this.inFlight.get(charge.bucket) ?? 0) - 1;
      if (left > 0) this.inFlight.set(charge.bucket, left);
      else this.inFlight.delete(charge.bucket);
    }
  }

  /** At settle: give back (or take) the difference between estimated and actual tokens. */
  correctTokens(charges: readonly RateCharge[], actualTokens: number, now: number): void {
    for (const charge of charges) {
      if (charge.kind === 'tokens') this.adjust(charge.bucket, charge.amount - actualTokens, now);
    }
  }

  private perMinuteOf(id: string): number {
    const [name, kind] = JSON.parse(id) as [string, string];
    const limit = this.limits.find((candidate) => candidate.name === name);
    return (kind === 'requests' ? limit?.requestsPerMinute : limit?.tokensPerMinute) ?? Infinity;
  }

  private level(id: string, perMinute: number, now: number): number {
    const bucket = this.buckets.get(id);
    if (bucket === undefined) return perMinute;
    const refilled = bucket.level + ((now - bucket.updatedAt) / 60_000) * perMinute;
    return Math.min(perMinute, refilled);
  }

  private adjust(id: string, delta: number, now: number): void {
    const perMinute = this.perMinuteOf(id);
    const level = this.level(id, perMinute, now);
    this.buckets.set(id, { level: Math.min(perMinute, level + delta), updatedAt: now });
  }

  /** Forgets full buckets once a minute, so idle subjects do not hold memory. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [id, bucket] of this.buckets) {
      const perMinute = this.perMinuteOf(id);
      if (bucket.level + ((now - bucket.updatedAt) / 60_000) * perMinute >= perMinute) {
        this.buckets.delete(id);
      }
    }
  }
}

/** A 429 for `limit`: which limit, whose, its allowance (`allowance`, `said`) and when to retry. */
function refusal(
  limit: RateLimitConfig,
  subject: string,
  kind: RateCharge['kind'],
  retryAfterMs: number,
  allowance: Readonly<Record<string, number>>,
  said: string,
): RateCheck {
  const who = limit.scope === 'global' ? '' : ` (${limit.scope} ${subject})`;
  return {
    ok: false,
    limit: limit.name,
    retryAfterMs,
    fields: {
      name: limit.name,
      scope: limit.scope,
      id: subject,
      kind,
      ...allowance,
      retry_after_seconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    },
    message: `rate limit "${limit.name}"${who}: ${said}`,
  };
}
