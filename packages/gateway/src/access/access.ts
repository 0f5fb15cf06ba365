/**
 * `createAccess`: the gateway's access layer — virtual keys, budgets (soft / hard / steer),
 * rate limits, and alerts — behind the `GatewayAccess` seam of ./types.ts.
 */
import { randomUUID } from 'node:crypto';
import { AlertEngine, collectorAlertStats } from './alerts.js';
import type { AlertStatsFetcher } from './alerts.js';
import { BudgetLedger, describeBudget } from './budgets.js';
import type { AppliedBudget, BudgetWindowStatus } from './budgets.js';
import { parseAccessConfig } from './config.js';
import type { AccessConfig } from './config.js';
import { KeyRing } from './keys.js';
import { silentLogger } from './logger.js';
import type { AccessLogger } from './logger.js';
import { RateLimiter } from './rate-limit.js';
import type { RateCharge } from './rate-limit.js';
import { StateFile } from './state-file.js';
import type {
  Admission,
  AdmissionRequest,
  Authentication,
  GatewayAccess,
  Settlement,
} from './types.js';
import { elapsedShare, formatUsd } from './windows.js';

/** Sums of float dollars drift: a nano-dollar either way is no overspend. */
const EPSILON_USD = 1e-9;

export interface AccessOptions {
  /** Where budget spend is kept across restarts (`gateway-budgets.json`); none: memory only. */
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

/** Builds the access layer; `config` is the parsed access part of the gateway config (or raw input). */
export function createAccess(
  config: AccessConfig | unknown,
  options: AccessOptions = {},
): AccessLayer {
  const parsed = parseAccessConfig(config);
  const clock = options.clock ?? Date.now;
  const logger = options.logger ?? silentLogger;
  const keys = new KeyRing(parsed.keys);
  const ledger = new BudgetLedger(parsed.budgets);
  const limiter = new RateLimiter(parsed.rateLimits);
  const stats =
    options.stats ??
    (parsed.alerts.collector === undefined
      ? undefined
      : collectorAlertStats({
          url: parsed.alerts.collector.url,
          token: parsed.alerts.collector.token,
        }));
  const alerts = new AlertEngine(parsed.alerts, stats, clock, logger);
  const admissions = new Map<string, AdmissionRecord>();
  const flushIntervalMs = options.flushIntervalMs ?? 1000;

  const stateFile =
    options.stateDir === undefined
      ? undefined
      : new StateFile(options.stateDir, () => ({
          version: 1,
          savedAt: new Date(clock()).toISOString(),
          windows: ledger.snapshot(clock()),
        }));
  if (stateFile !== undefined) {
    const restored = ledger.restore(stateFile.load(), clock());
    if (restored > 0)
      logger.info({ file: stateFile.path, windows: restored }, 'budget spend restored');
  }
  let flushTimer: NodeJS.Timeout | undefined;
  const scheduleFlush = () => {
    if (stateFile === undefined || flushTimer !== undefined) return;
    flushTimer = setTimeout(() => {
      flushTimer = undefined;
      stateFile.save().catch((error: unknown) => {
        logger.error({ file: stateFile.path, error: String(error) }, 'cannot write budget state');
      });
    }, flushIntervalMs);
    flushTimer.unref();
  };
  alerts.start();

  function refuse(
    type: 'budget_exceeded' | 'rate_limited',
    message: string,
    retryAfterMs: number,
    budget?: string,
    resetsAt?: number,
  ): Admission {
    return {
      ok: false,
      status: 429,
      error: {
        type,
        message,
        ...(budget === undefined ? {} : { budget }),
        ...(resetsAt === undefined ? {} : { resetsAt: new Date(resetsAt).toISOString() }),
      },
      retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    };
  }

  function admitNow(request: AdmissionRequest): Admission {
    const now = clock();
    const rate = limiter.check(
      request.principal,
      request.endUser,
      Math.max(0, request.estimatedTokens),
      now,
    );
    if (!rate.ok) {
      return refuse(
        'rate_limited',
        rate.message,
        rate.retryAfterMs,
        rate.limit,
        now + rate.retryAfterMs,
      );
    }
    const estimate = (model: string) => Math.max(0, request.estimatedCostUsd[model] ?? 0);
    const applied = ledger.applicable(request.principal, request.feature, request.endUser);
    let candidates = [...request.candidates];
    const steeredBecause: string[] = [];
    // Hard and steer budgets: only candidates whose estimate still fits, in every budget.
    for (const budget of applied) {
      if (budget.budget.mode === 'soft') continue;
      const entry = ledger.entry(budget, now);
      const left = budget.budget.limitUsd - entry.spent - entry.reserved;
      const fitting = candidates.filter((model) => estimate(model) <= left + EPSILON_USD);
      if (fitting.length === 0) {
        const inFlight =
          entry.reserved > 0
            ? ` and ${formatUsd(entry.reserved)} reserved by requests in flight`
            : '';
        return refuse(
          'budget_exceeded',
          `${describeBudget(budget)} is exhausted: ${formatUsd(entry.spent)} spent${inFlight} of ${formatUsd(budget.budget.limitUsd)}; this request may cost up to ${formatUsd(Math.min(...candidates.map(estimate)))}; resets at ${new Date(entry.end).toISOString()}`,
          entry.end - now,
          budget.budget.name,
          entry.end,
        );
      }
      if (fitting.length < candidates.length) {
        const dropped = candidates.filter((model) => !fitting.includes(model));
        steeredBecause.push(
          `${dropped.join(', ')} left out: estimate over the ${formatUsd(left)} left in ${describeBudget(budget)}`,
        );
        candidates = fitting;
      }
    }
    // Steer budgets running ahead of plan: cheapest candidates first.
    for (const budget of applied) {
      if (budget.budget.mode !== 'steer' || candidates.length < 2) continue;
      const entry = ledger.entry(budget, now);
      const used = entry.spent + entry.reserved;
      if (used < budget.budget.steerMinSpend * budget.budget.limitUsd) continue;
      const burn = ledger.burnRate(budget, now);
      if (burn <= 1) continue;
      const reordered = [...candidates].sort((a, b) => estimate(a) - estimate(b));
      if (reordered.every((model, index) => model === candidates[index])) continue;
      candidates = reordered;
      steeredBecause.push(
        `${describeBudget(budget)} runs ahead of plan: ${formatUsd(used)} of ${formatUsd(budget.budget.limitUsd)} used with ${(elapsedShare(entry, now) * 100).toFixed(1)}% of the period gone (burn rate ${burn.toFixed(2)}x): cheapest candidates first`,
      );
    }
    const reservedUsd = Math.max(0, ...candidates.map(estimate));
    const warnings: string[] = [];
    for (const budget of applied) {
      const entry = ledger.entry(budget, now);
      const limit = budget.budget.limitUsd;
      const after = entry.spent + entry.reserved + reservedUsd;
      const resets = new Date(entry.end).toISOString();
      if (budget.budget.mode === 'soft' && after > limit) {
        warnings.push(
          `${describeBudget(budget)} is over its limit: ${formatUsd(entry.spent)} spent, ${formatUsd(entry.reserved + reservedUsd)} in flight, of ${formatUsd(limit)}; resets at ${resets}`,
        );
      } else if (after >= budget.budget.warnAt * limit) {
        warnings.push(
          `${describeBudget(budget)} is at ${Math.round((after / limit) * 100)}% of ${formatUsd(limit)} (${formatUsd(entry.spent)} spent, ${formatUsd(entry.reserved + reservedUsd)} in flight); resets at ${resets}`,
        );
      }
    }
    // Everything checked: charge the rate limits and reserve in every budget (no await between
    // the checks and here, so concurrent admissions see each other's reservations).
    limiter.charge(rate.charges, now);
    for (const budget of applied) ledger.entry(budget, now).reserved += reservedUsd;
    const id = randomUUID();
    admissions.set(id, { budgets: applied, reservedUsd, at: now, charges: rate.charges });
    return {
      ok: true,
      id,
      candidates,
      warnings,
      ...(steeredBecause.length === 0 ? {} : { steered: steeredBecause.join('; ') }),
    };
  }

  return {
    config: parsed,
    alerts,
    keyed: keys.enabled,
    get inFlight() {
      return admissions.size;
    },

    authenticate(authorization: string | undefined): Authentication {
      return keys.authenticate(authorization);
    },

    admit(request: AdmissionRequest): Promise<Admission> {
      try {
        return Promise.resolve(admitNow(request));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },

    settle(admission, settlement: Settlement): void {
      const record = admissions.get(admission.id);
      if (record === undefined) {
        logger.warn(
          { admission: admission.id },
          'settle of an unknown or already settled admission',
        );
        return;
      }
      admissions.delete(admission.id);
      const now = clock();
      const cost = Number.isFinite(settlement.costUsd) ? Math.max(0, settlement.costUsd) : 0;
      const tokens = Math.max(0, settlement.inputTokens) + Math.max(0, settlement.outputTokens);
      limiter.correctTokens(record.charges, tokens, now);
      for (const budget of record.budgets) {
        ledger.release(budget, record.at, record.reservedUsd);
        if (cost === 0) continue;
        const entry = ledger.entry(budget, now);
        const before = entry.spent;
        entry.spent += cost;
        for (const threshold of alerts.budgetThresholds(budget.budget.name)) {
          const mark = threshold * budget.budget.limitUsd;
          if (before < mark && entry.spent >= mark) {
            alerts.budgetCrossed({
              budget: budget.budget.name,
              scope: budget.budget.scope,
              subject: budget.subject,
              period: budget.budget.period,
              threshold,
              spentUsd: entry.spent,
              limitUsd: budget.budget.limitUsd,
              resetsAt: new Date(entry.end).toISOString(),
            });
          }
        }
      }
      if (cost > 0 && record.budgets.length > 0) scheduleFlush();
    },

    budgetStatus(): BudgetWindowStatus[] {
      return ledger.status(clock());
    },

    async flush(): Promise<void> {
      if (flushTimer !== undefined) clearTimeout(flushTimer);
      flushTimer = undefined;
      await stateFile?.save();
    },

    async close(): Promise<void> {
      if (flushTimer !== undefined) clearTimeout(flushTimer);
      flushTimer = undefined;
      await stateFile?.save();
      await alerts.close();
    },
  };
}
