/**
 * Alert rules over the collector's stats (`GET /api/stats`), evaluated on an interval: spend in a
 * window, error rate, p95 latency per model, a drop of a quality score against a longer baseline.
 * A rule sends `firing` when its condition becomes true (again every `repeatMinutes` while it
 * holds) and `resolved` when it stops. Budget-threshold alerts come from the budget ledger
 * (`budgetCrossed`), not from stats. Which rules are firing is kept in the state dir across
 * restarts (./alert-state.ts).
 */
import { StatsResponseSchema } from '@modelmaxx/semconv/schemas';
import type { StatsResponse, StatsRow } from '@modelmaxx/semconv/schemas';
import { AlertStateStore, ruleStateId } from './alert-state.js';
import type { RuleState } from './alert-state.js';
import { callCollector } from './collector-client.js';
import type { CollectorEndpoint } from './collector-client.js';
import type { AlertRuleConfig, AlertsConfig } from './config.js';
import type { AccessLogger } from './logger.js';
import { WebhookSender } from './webhooks.js';
import type { AlertPayload, DeliveryResult } from './webhooks.js';
import { formatPercent, formatUsd } from './windows.js';

export interface StatsQueryArgs {
  readonly window: string;
  /** Extra group keys besides `model`. */
  readonly groupBy: readonly ('feature' | 'service')[];
  readonly service?: string;
}

/** Stats for alert rules: the collector's `/api/stats`, or a function the host passes. */
export type AlertStatsFetcher = (query: StatsQueryArgs) => Promise<StatsResponse>;

/**
 * Reads `GET /api/stats` of a collector. (`collectorStatsSource` of @modelmaxx/router asks for
 * one window grouped by model and task; rules need several windows and feature/service groups.)
 */
export function collectorAlertStats(options: CollectorEndpoint): AlertStatsFetcher {
  return async (query) => {
    const search: Record<string, string> = {
      window: query.window,
      groupBy: ['model', ...query.groupBy].join(','),
    };
    if (query.service !== undefined) search['service'] = query.service;
    return callCollector(options, { path: '/api/stats', search }, StatsResponseSchema);
  };
}

type StatsRule = Exclude<AlertRuleConfig, { kind: 'budget' }>;

interface Finding {
  readonly group: Record<string, string>;
  readonly value: number;
  readonly threshold: number;
  readonly text: string;
}

export interface BudgetCrossing {
  readonly budget: string;
  readonly scope: string;
  readonly subject: string;
  readonly period: string;
  readonly threshold: number;
  readonly spentUsd: number;
  readonly limitUsd: number;
  readonly resetsAt: string;
}

export class AlertEngine {
  readonly sender: WebhookSender;
  private readonly state = new Map<string, RuleState>();
  private timer: NodeJS.Timeout | undefined;
  private evaluating: Promise<void> | undefined;
  readonly statsRules: StatsRule[];
  readonly budgetRules: Extract<AlertRuleConfig, { kind: 'budget' }>[];

  private readonly config: AlertsConfig;
  private readonly stats: AlertStatsFetcher | undefined;
  private readonly clock: () => number;
  private readonly logger: AccessLogger;
  /** The firing state on disk (with a state dir); restored once, at `start`. */
  private readonly store: AlertStateStore | undefined;
  private restored = false;

  constructor(
    config: AlertsConfig,
    stats: AlertStatsFetcher | undefined,
    clock: () => number,
    logger: AccessLogger,
    options: { readonly stateDir?: string | undefined } = {},
  ) {
    this.config = config;
    this.stats = stats;
    this.clock = clock;
    this.logger = logger;
    this.sender = new WebhookSender(config.webhooks, config.retry, config.queueSize, logger);
    this.store =
      options.stateDir === undefined
        ? undefined
        : new AlertStateStore(options.stateDir, this.state, clock, logger);
    this.statsRules = config.rules.filter((rule): rule is StatsRule => rule.kind !== 'budget');
    this.budgetRules = config.rules.filter(
      (rule): rule is Extract<AlertRuleConfig, { kind: 'budget' }> => rule.kind === 'budget',
    );
    if (this.statsRules.length > 0 && stats === undefined) {
      logger.warn(
        { rules: this.statsRules.map((rule) => rule.name) },
        'alert rules over stats need alerts.collector.url (or a stats source): they are not evaluated',
      );
    }
    if (config.rules.length > 0 && config.webhooks.length === 0) {
      logger.warn(
        { rules: config.rules.map((rule) => rule.name) },
        'alert rules without alerts.webhooks: their alerts are only logged, never sent',
      );
    }
  }

  /** Evaluates the stats rules every `intervalSeconds` (the timer does not keep the process up). */
  start(): void {
    if (!this.restored) {
      this.restored = true;
      this.store?.restore(new Set(this.statsRules.map((rule) => rule.name)));
    }
    if (this.timer !== undefined || this.stats === undefined || this.statsRules.length === 0) {
      return;
    }
    this.timer = setInterval(() => {
      if (this.evaluating === undefined) {
        this.evaluating = this.evaluate()
          .then(() => undefined)
          .catch((error: unknown) =>
            this.logger.error({ error: String(error) }, 'alert evaluation failed'),
          )
          .finally(() => {
            this.evaluating = undefined;
          });
      }
    }, this.config.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** One evaluation of every stats rule; resolves when its alerts are queued. */
  async evaluate(): Promise<AlertPayload[]> {
    const stats = this.stats;
    if (stats === undefined) return [];
    const cache = new Map<string, Promise<StatsResponse>>();
    const fetchOnce = (query: StatsQueryArgs) => {
      const id = JSON.stringify(query);
      let result = cache.get(id);
      if (result === undefined) {
        result = stats(query);
        cache.set(id, result);
      }
      return result;
    };
    const sent: AlertPayload[] = [];
    for (const rule of this.statsRules) {
      let findings: Finding[];
      let groups: string[];
      try {
        ({ findings, groups } = await this.check(rule, fetchOnce));
      } catch (error) {
        this.logger.warn(
          { alert: rule.name, error: (error as Error).message },
          'alert rule not evaluated: stats unavailable',
        );
        continue;
      }
      const now = this.clock();
      const firingNow = new Set<string>();
      for (const finding of findings) {
        const id = ruleStateId(rule.name, finding.group);
        firingNow.add(id);
        const state = this.state.get(id) ?? { firing: false, lastSent: 0 };
        if (!state.firing || now - state.lastSent >= this.config.repeatMinutes * 60_000) {
          const payload = this.payload(rule, 'firing', finding, now);
          sent.push(payload);
          void this.sender.send(payload);
          state.lastSent = now;
        }
        state.firing = true;
        this.state.set(id, state);
      }
      for (const [id, state] of this.state) {
        if (!id.startsWith(`${rule.name}\u0000`) || !state.firing || firingNow.has(id)) continue;
        const group = JSON.parse(id.slice(rule.name.length + 1)) as Record<string, string>;
        // Only groups the stats still answer for are resolved (others: no data, keep state).
        if (!groups.includes(JSON.stringify(group)) && Object.keys(group).length > 0) continue;
        state.firing = false;
        const payload = this.payload(
          rule,
          'resolved',
          { group, value: NaN, threshold: NaN, text: `${rule.name}: back to normal` },
          now,
        );
        sent.push(payload);
        void this.sender.send(payload);
      }
    }
    await this.store?.save();
    return sent;
  }

  /** From the budget ledger: a budget's spend crossed a share of its limit. */
  budgetCrossed(crossing: BudgetCrossing): void {
    for (const rule of this.budgetRules) {
      if (rule.budget !== undefined && rule.budget !== crossing.budget) continue;
      if (!rule.thresholds.includes(crossing.threshold)) continue;
      const who =
        crossing.scope === 'global' ? 'all traffic' : `${crossing.scope} ${crossing.subject}`;
      void this.sender.send({
        source: 'modelmaxx',
        status: 'firing',
        rule: rule.name,
        kind: 'budget',
        text: `budget "${crossing.budget}" (${who}, UTC ${crossing.period}) passed ${formatPercent(crossing.threshold)} of ${formatUsd(crossing.limitUsd)}: ${formatUsd(crossing.spentUsd)} spent; resets at ${crossing.resetsAt}`,
        value: crossing.spentUsd,
        threshold: crossing.threshold * crossing.limitUsd,
        labels: {
          budget: crossing.budget,
          scope: crossing.scope,
          subject: crossing.subject,
          resetsAt: crossing.resetsAt,
        },
        at: new Date(this.clock()).toISOString(),
      });
    }
  }

  /** Every budget threshold any rule watches (the ledger reports crossings of these). */
  budgetThresholds(budget: string): number[] {
    const result = new Set<number>();
    for (const rule of this.budgetRules) {
      if (rule.budget === undefined || rule.budget === budget) {
        for (const threshold of rule.thresholds) result.add(threshold);
      }
    }
    return [...result];
  }

  /** A sample alert to every webhook (`modelmaxx alerts test`). */
  test(): Promise<DeliveryResult[]> {
    return this.sender.send({
      source: 'modelmaxx',
      status: 'test',
      rule: 'modelmaxx-alerts-test',
      kind: 'test',
      text: 'modelmaxx alerts test: a sample alert; webhook delivery works',
      labels: {},
      at: new Date(this.clock()).toISOString(),
    });
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.evaluating;
    await this.store?.idle();
    await this.sender.close();
  }

  private payload(
    rule: StatsRule,
    status: 'firing' | 'resolved',
    finding: Finding,
    now: number,
  ): AlertPayload {
    return {
      source: 'modelmaxx',
      status,
      rule: rule.name,
      kind: rule.kind,
      text: finding.text,
      ...(Number.isFinite(finding.value) ? { value: finding.value } : {}),
      ...(Number.isFinite(finding.threshold) ? { threshold: finding.threshold } : {}),
      window: rule.window,
      labels: finding.group,
      at: new Date(now).toISOString(),
    };
  }

  private async check(
    rule: StatsRule,
    fetchStats: (query: StatsQueryArgs) => Promise<StatsResponse>,
  ): Promise<RuleCheck> {
    const groupBy: ('feature' | 'service')[] = [];
    if (rule.feature !== undefined) groupBy.push('feature');
    if (rule.service !== undefined) groupBy.push('service');
    const rowsOf = async (window: string) =>
      (
        await fetchStats({
          window,
          groupBy,
          ...(rule.service === undefined ? {} : { service: rule.service }),
        })
      ).rows.filter(
        (row) =>
          (rule.model === undefined || row.model === rule.model) &&
          (rule.feature === undefined || row.feature === rule.feature) &&
          (rule.service === undefined || row.service === rule.service),
      );
    const rows = await rowsOf(rule.window);
    switch (rule.kind) {
      case 'spend':
        return spendCheck(rule, rows);
      case 'errorRate':
        return errorRateCheck(rule, rows);
      case 'latencyP95':
        return latencyCheck(rule, rows);
      case 'qualityDrop':
        return qualityCheck(rule, rows, await rowsOf(rule.baselineWindow));
    }
  }
}

/** A rule's findings, and the groups the stats answered for (to resolve the others). */
interface RuleCheck {
  readonly findings: Finding[];
  readonly groups: string[];
}

type RuleOf<K extends StatsRule['kind']> = Extract<StatsRule, { kind: K }>;

function spendCheck(rule: RuleOf<'spend'>, rows: readonly StatsRow[]): RuleCheck {
  const spend = rows.reduce((sum, row) => sum + row.costUsd, 0);
  if (!(spend > rule.aboveUsd)) return { findings: [], groups: [] };
  const text = `${rule.name}: spend ${formatUsd(spend)} in the last ${rule.window}${describeFilter(rule)} is above ${formatUsd(rule.aboveUsd)}`;
  return { findings: [{ group: {}, value: spend, threshold: rule.aboveUsd, text }], groups: [] };
}

function errorRateCheck(rule: RuleOf<'errorRate'>, rows: readonly StatsRow[]): RuleCheck {
  const calls = rows.reduce((sum, row) => sum + row.calls, 0);
  const errors = rows.reduce((sum, row) => sum + row.errors, 0);
  const rate = calls > 0 ? errors / calls : 0;
  if (!(calls >= rule.minCalls && rate > rule.above)) return { findings: [], groups: [] };
  const text = `${rule.name}: error rate ${(rate * 100).toFixed(1)}% (${errors} of ${calls} calls) in the last ${rule.window}${describeFilter(rule)} is above ${(rule.above * 100).toFixed(1)}%`;
  return { findings: [{ group: {}, value: rate, threshold: rule.above, text }], groups: [] };
}

function latencyCheck(rule: RuleOf<'latencyP95'>, rows: readonly StatsRow[]): RuleCheck {
  const findings: Finding[] = [];
  for (const row of rows) {
    if (row.calls < rule.minCalls || row.latencyP95Ms === null) continue;
    if (row.latencyP95Ms <= rule.aboveMs) continue;
    findings.push({
      group: labelsOf(row),
      value: row.latencyP95Ms,
      threshold: rule.aboveMs,
      text: `${rule.name}: p95 latency of ${describeRow(row)} is ${Math.round(row.latencyP95Ms)} ms over the last ${rule.window} (above ${rule.aboveMs} ms, ${row.calls} calls)`,
    });
  }
  return { findings, groups: rows.map((row) => JSON.stringify(labelsOf(row))) };
}

function qualityCheck(
  rule: RuleOf<'qualityDrop'>,
  rows: readonly StatsRow[],
  baseline: readonly StatsRow[],
): RuleCheck {
  const recent = qualityByModel(rows, rule.score);
  const before = qualityByModel(baseline, rule.score);
  const findings: Finding[] = [];
  for (const [model, now] of recent) {
    const then = before.get(model);
    if (then === undefined || now.count < rule.minCount || then.count < rule.minCount) continue;
    if (!(now.mean < then.mean - rule.dropBy)) continue;
    findings.push({
      group: { model },
      value: now.mean,
      threshold: then.mean - rule.dropBy,
      text: `${rule.name}: ${rule.score} of ${model}${describeFilter(rule)} fell to ${now.mean.toFixed(3)} over the last ${rule.window} (${now.count} scores) from ${then.mean.toFixed(3)} over ${rule.baselineWindow} (drop > ${rule.dropBy})`,
    });
  }
  return { findings, groups: [...recent.keys()].map((model) => JSON.stringify({ model })) };
}

function describeFilter(rule: StatsRule): string {
  const parts = [
    rule.model === undefined ? undefined : `model ${rule.model}`,
    rule.feature === undefined ? undefined : `feature ${rule.feature}`,
    rule.service === undefined ? undefined : `service ${rule.service}`,
  ].filter((part) => part !== undefined);
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

function labelsOf(row: StatsRow): Record<string, string> {
  return {
    model: row.model,
    ...(row.feature === undefined ? {} : { feature: row.feature }),
    ...(row.service === undefined ? {} : { service: row.service }),
  };
}

function describeRow(row: StatsRow): string {
  return Object.values(labelsOf(row)).join(' / ');
}

function qualityByModel(
  rows: readonly StatsRow[],
  score: Extract<AlertRuleConfig, { kind: 'qualityDrop' }>['score'],
): Map<string, { mean: number; count: number }> {
  const sums = new Map<string, { total: number; count: number }>();
  for (const row of rows) {
    const [value, count] =
      score === 'meanScore'
        ? [row.meanScore, row.scoreCount]
        : score === 'judgeScore'
          ? [row.judgeScore ?? null, row.judgeCount ?? 0]
          : score === 'feedbackScore'
            ? [row.feedbackScore ?? null, row.feedbackCount ?? 0]
            : [row.passRate ?? null, row.evaluatedCalls ?? 0];
    if (value === null || count === 0) continue;
    const entry = sums.get(row.model) ?? { total: 0, count: 0 };
    entry.total += value * count;
    entry.count += count;
    sums.set(row.model, entry);
  }
  return new Map(
    [...sums].map(([model, entry]) => [
      model,
      { mean: entry.total / entry.count, count: entry.count },
    ]),
  );
}
