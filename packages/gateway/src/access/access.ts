/**
 * `createAccess`: the gateway's access layer — virtual keys, budgets (soft / hard / steer),
 * rate limits, and alerts — behind the `GatewayAccess` seam of ./types.ts. The budget steps of
 * an admission are in ./admission.ts; spend kept across restarts in ./state-file.ts.
 */
import { randomUUID } from 'node:crypto';
import { budgetWarnings, fitCandidates, refuse, steerCandidates } from './admission.js';
import type { BudgetPass } from './admission.js';
import { AlertEngine, collectorAlertStats } from './alerts.js';
import type { AlertStatsFetcher } from './alerts.js';
import { BudgetSync, instanceIdOf } from './budget-sync.js';
import { BudgetLedger } from './budgets.js';
import type { AppliedBudget, BudgetWindowStatus } from './budgets.js';
import { parseAccessConfig } from './config.js';
import type { AccessConfig } from './config.js';
import { KeyRing } from './keys.js';
import { silentLogger } from './logger.js';
import type { AccessLogger } from './logger.js';
import { RateLimiter } from './rate-limit.js';
import { StateLock } from './state-lock.js';
import type { RateCharge } from './rate-limit.js';
import { StateFile } from './state-file.js';
import type {
  Admission,
  AdmissionRequest,
  Authentication,
  GatewayAccess,
  Principal,
  Settlement,
} from './types.js';

export interface AccessOptions {
  /**
   * Where budget spend (`gateway-budgets.json`) and which alert rules are firing
   * (`gateway-alerts.json`) are kept across restarts; none: memory only.
   */
  readonly stateDir?: string;
  /** ms since the epoch; default `Date.now`. */
  readonly clock?: () => number;
  readonly logger?: AccessLogger;
  /** Stats for alert rules; default: `alerts.collector.url`'s `GET /api/stats`. */
  readonly stats?: AlertStatsFetcher;
  /** Longest time settled spend waits before it is written (default 1000 ms). */
  readonly flushIntervalMs?: number;
}

export interface AccessLayer extends GatewayAccess {
  readonly config: AccessConfig;
  readonly alerts: AlertEngine;
  /** This gateway's `service.instance.id`, which the budget sync leaves out of the others' spend. */
  readonly instanceId: string;
  /** Reads the other replicas' spend (`budgetSync`); undefined without it. */
  readonly budgetSync: BudgetSync | undefined;
  /** Budget windows with spend or reservations (for status endpoints and tests). */
  budgetStatus(): BudgetWindowStatus[];
  /** Admissions not settled yet. */
  readonly inFlight: number;
  /** Writes the budget state now. */
  flush(): Promise<void>;
}

interface AdmissionRecord {
  readonly budgets: readonly AppliedBudget[];
  readonly reservedUsd: number;
  readonly at: number;
  readonly charges: readonly RateCharge[];
}

/** Expired admissions remembered for a late settle (their spend still counts); oldest dropped. */
const EXPIRED_REMEMBERED = 10_000;

class Access implements AccessLayer {
  readonly config: AccessConfig;
  readonly alerts: AlertEngine;
  readonly keyed: boolean;
  readonly instanceId: string;
  readonly budgetSync: BudgetSync | undefined;
  private readonly clock: () => number;
  private readonly logger: AccessLogger;
  private readonly keys: KeyRing;
  private readonly ledger: BudgetLedger;
  private readonly limiter: RateLimiter;
  /** Admissions holding reservations, in the order they were made. */
  private readonly admissions = new Map<string, AdmissionRecord>();
  /** Admissions whose reservation expired before they settled. */
  private readonly expired = new Map<string, AdmissionRecord>();
  private readonly reservationTtlMs: number;
  private readonly stateFile: StateFile | undefined;
  /** The state dir held for this gateway alone (./state-lock.ts). */
  private readonly lock: StateLock | undefined;
  private readonly flushIntervalMs: number;
  private flushTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(config: AccessConfig, options: AccessOptions) {
    this.config = config;
    this.clock = options.clock ?? Date.now;
    this.logger = options.logger ?? silentLogger;
    this.keys = new KeyRing(config.keys);
    this.keyed = this.keys.enabled;
    this.ledger = new BudgetLedger(config.budgets);
    this.limiter = new RateLimiter(config.rateLimits);
    const collector = config.alerts.collector;
    const stats =
      options.stats ??
      (collector === undefined
        ? undefined
        : collectorAlertStats({ url: collector.url, token: collector.token }));
    this.alerts = new AlertEngine(config.alerts, stats, this.clock, this.logger, {
      stateDir: options.stateDir,
    });
    this.flushIntervalMs = options.flushIntervalMs ?? 1000;
    this.reservationTtlMs = config.reservationTtlSeconds * 1000;
    this.lock = options.stateDir === undefined ? undefined : StateLock.acquire(options.stateDir);
    // Whatever fails from here to the end of the restore gives the state dir back.
    try {
      // Kept in the state dir, with a budget sync or not: the spans of the spend a restart
      // restores are its own, also when this restart is the one that turns budgetSync on.
      this.instanceId = instanceIdOf(options.stateDir);
      this.stateFile =
        options.stateDir === undefined
          ? undefined
          : new StateFile(options.stateDir, () => ({
              version: 1,
              savedAt: new Date(this.clock()).toISOString(),
              windows: this.ledger.snapshot(this.clock()),
            }));
      this.restoreSpend();
    } catch (error) {
      this.lock?.release();
      throw error;
    }
    const sync = config.budgetSync;
    this.budgetSync =
      sync === undefined
        ? undefined
        : new BudgetSync({
            config: sync,
            ledger: this.ledger,
            instanceId: this.instanceId,
            clock: this.clock,
            logger: this.logger,
          });
    this.alerts.start();
    this.budgetSync?.start();
  }

  /** Puts the state file's spend into the ledger (a corrupt file throws). */
  private restoreSpend(): void {
    if (this.stateFile === undefined) return;
    const restored = this.ledger.restore(this.stateFile.load(), this.clock());
    if (restored > 0) {
      this.logger.info({ file: this.stateFile.path, windows: restored }, 'budget spend restored');
    }
  }

  get inFlight(): number {
    this.expireReservations(this.clock());
    return this.admissions.size;
  }

  /**
   * Releases the reservations of admissions older than the TTL (a request that never settled:
   * a leak). Admissions are kept in the order they were made, so this stops at the first young
   * one. A late settle of an expired admission still records its spend.
   */
  private expireReservations(now: number): void {
    for (const [id, record] of this.admissions) {
      if (now - record.at < this.reservationTtlMs) break;
      this.admissions.delete(id);
      this.limiter.release(record.charges);
      for (const budget of record.budgets) {
        this.ledger.release(budget, record.at, record.reservedUsd);
      }
      this.expired.set(id, record);
      if (this.expired.size > EXPIRED_REMEMBERED) {
        this.expired.delete(this.expired.keys().next().value!);
      }
      this.logger.warn(
        {
          admission: id,
          reservedUsd: record.reservedUsd,
          heldSeconds: Math.round((now - record.at) / 1000),
          budgets: record.budgets.map((budget) => budget.budget.name),
        },
        'budget reservation expired before its request settled; released',
      );
    }
  }

  authenticate(authorization: string | undefined): Authentication {
    return this.keys.authenticate(authorization);
  }

  admit(request: AdmissionRequest): Promise<Admission> {
    try {
      return Promise.resolve(this.admitNow(request));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** Rate limits, then the budget steps; all checked before anything is charged or reserved. */
  private admitNow(request: AdmissionRequest): Admission {
    const now = this.clock();
    this.expireReservations(now);
    const tokens = Math.max(0, request.estimatedTokens);
    const rate = this.limiter.check(request.principal, request.endUser, tokens, now);
    if (!rate.ok) {
      const { message, retryAfterMs, limit, fields } = rate;
      const resetsAt = now + retryAfterMs;
      return refuse('rate_limited', message, retryAfterMs, limit, resetsAt, {
        rate_limit: { ...fields, resets_at: new Date(resetsAt).toISOString() },
      });
    }
    const pass: BudgetPass = {
      ledger: this.ledger,
      applied: this.ledger.applicable(request.principal, request.feature, request.endUser),
      now,
      estimate: (model) => Math.max(0, request.estimatedCostUsd[model] ?? 0),
      candidates: [...request.candidates],
      steeredBecause: [],
    };
    const refused = fitCandidates(pass);
    if (refused !== undefined) return refused;
    steerCandidates(pass);
    const reservedUsd = Math.max(0, ...pass.candidates.map(pass.estimate));
    const warnings = budgetWarnings(pass, reservedUsd);
    // Everything checked: charge the rate limits and reserve in every budget (no await between
    // the checks and here, so concurrent admissions see each other's reservations).
    this.limiter.charge(rate.charges, now);
    for (const budget of pass.applied) this.ledger.entry(budget, now).reserved += reservedUsd;
    const id = randomUUID();
    this.admissions.set(id, { budgets: pass.applied, reservedUsd, at: now, charges: rate.charges });
    return {
      ok: true,
      id,
      candidates: pass.candidates,
      warnings,
      ...(pass.steeredBecause.length === 0 ? {} : { steered: pass.steeredBecause.join('; ') }),
    };
  }

  settle(admission: Extract<Admission, { ok: true }>, settlement: Settlement): void {
    const held = this.admissions.get(admission.id);
    const record = held ?? this.expired.get(admission.id);
    if (record === undefined) {
      this.logger.warn(
        { admission: admission.id },
        'settle of an unknown or already settled admission',
      );
      return;
    }
    this.admissions.delete(admission.id);
    this.expired.delete(admission.id);
    const now = this.clock();
    const cost = Number.isFinite(settlement.costUsd) ? Math.max(0, settlement.costUsd) : 0;
    const tokens = Math.max(0, settlement.inputTokens) + Math.max(0, settlement.outputTokens);
    this.limiter.correctTokens(record.charges, tokens, now);
    // An expired admission's places in flight were given back with its reservation.
    if (held !== undefined) this.limiter.release(record.charges);
    for (const budget of record.budgets) {
      // An expired admission's reservation was released already.
      if (held !== undefined) this.ledger.release(budget, record.at, record.reservedUsd);
      if (cost > 0) this.spend(budget, cost, now);
    }
    if (cost > 0 && record.budgets.length > 0) this.scheduleFlush();
  }

  /** Adds spend to a budget's window; alerts on the thresholds it crosses. */
  private spend(budget: AppliedBudget, cost: number, now: number): void {
    const entry = this.ledger.entry(budget, now);
    // The other replicas' spend too (budget sync): the budget is theirs as much as this one's.
    const before = entry.spent + entry.others;
    entry.spent += cost;
    const after = before + cost;
    for (const threshold of this.alerts.budgetThresholds(budget.budget.name)) {
      const mark = threshold * budget.budget.limitUsd;
      if (before >= mark || after < mark) continue;
      this.alerts.budgetCrossed({
        budget: budget.budget.name,
        scope: budget.budget.scope,
        subject: budget.subject,
        period: budget.budget.period,
        threshold,
        spentUsd: after,
        limitUsd: budget.budget.limitUsd,
        resetsAt: new Date(entry.end).toISOString(),
      });
    }
  }

  private scheduleFlush(): void {
    const stateFile = this.stateFile;
    if (stateFile === undefined || this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      stateFile.save().catch((error: unknown) => {
        this.logger.error(
          { file: stateFile.path, error: String(error) },
          'cannot write budget state',
        );
      });
    }, this.flushIntervalMs);
    this.flushTimer.unref();
  }

  budgetsOf(
    principal: Principal,
    feature: string | undefined,
    endUser: string | undefined,
  ): BudgetWindowStatus[] {
    const now = this.clock();
    this.expireReservations(now);
    return this.ledger.standing(this.ledger.applicable(principal, feature, endUser), now);
  }

  budgetStatus(): BudgetWindowStatus[] {
    const now = this.clock();
    this.expireReservations(now);
    return this.ledger.status(now);
  }

  async flush(): Promise<void> {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.stateFile?.save();
  }

  /** Once: a second close must not write this ledger over the dir's next holder's. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    await this.budgetSync?.close();
    try {
      await this.flush();
    } finally {
      try {
        // Its last evaluation writes gateway-alerts.json: before the dir is given back.
        await this.alerts.close();
      } finally {
        this.lock?.release();
      }
    }
  }
}

/** Builds the access layer; `config` is the parsed access part of the gateway config (or raw input). */
export function createAccess(
  config: AccessConfig | unknown,
  options: AccessOptions = {},
): AccessLayer {
  return new Access(parseAccessConfig(config), options);
}
