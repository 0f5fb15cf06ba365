/**
 * Budgets shared by several gateway replicas. Each replica's spans carry its instance id
 * (`service.instance.id`); every `intervalSeconds` the sync asks the collector they all export to
 * (`POST /api/sql`, one query) what the OTHER replicas spent in each budget's current window, per
 * subject, and the ledger replaces its `others` figures with the answer. Admission then counts
 * own + others + reserved against a limit.
 *
 * What counts is what a replica's budgets charge: the gateway's CLIENT spans of upstream calls
 * with a cost (`gen_ai.usage.cost.amount`; a routed request's `route` span has none, so nothing
 * is counted twice), not shadow or judge calls (`modelmaxx.evaluation.role`), by the window of
 * the span's end (a request is charged when it settles). A failed sync keeps the last figures and
 * logs one warning per streak of failures; admission never waits for a sync.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { othersKey } from './budgets.js';
import type { BudgetLedger } from './budgets.js';
import { callCollector } from './collector-client.js';
import type { BudgetConfig, BudgetSyncConfig } from './config.js';
import { ANONYMOUS_KEY_ID } from './keys.js';
import type { AccessLogger } from './logger.js';
import { windowOf } from './windows.js';

/** The file in a state dir holding the id of the gateway that keeps its spend there. */
export const INSTANCE_ID_FILE = 'gateway-instance-id';

const INSTANCE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,120}$/;

/**
 * The gateway's instance id: with a state dir, the one kept there (made once), so that the spend
 * restored from the state file after a restart is not counted again as another replica's (the
 * spans of the last run carry the same id); without one, a new id.
 */
export function instanceIdOf(stateDir: string | undefined): string {
  if (stateDir === undefined) return randomUUID();
  const path = join(stateDir, INSTANCE_ID_FILE);
  try {
    const kept = readFileSync(path, 'utf8').trim();
    if (INSTANCE_ID_PATTERN.test(kept)) return kept;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const id = randomUUID();
  writeFileSync(path, `${id}\n`, { mode: 0o600 });
  return id;
}

/** `'text'` as a ClickHouse string literal. */
function literal(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

const attribute = (name: string) => `SpanAttributes[${literal(name)}]`;

/** Who a span's spend counts for, per budget scope, as ./budgets.ts `budgetSubject` says. */
const SUBJECT_SQL: Record<BudgetConfig['scope'], string> = {
  global: `'*'`,
  key: `if(${attribute('modelmaxx.gateway.key_id')} = ${literal(ANONYMOUS_KEY_ID)}, '', ${attribute('modelmaxx.gateway.key_id')})`,
  user: `if(${attribute('modelmaxx.gateway.user')} != '', ${attribute('modelmaxx.gateway.user')}, ${attribute('enduser.id')})`,
  team: attribute('modelmaxx.gateway.team'),
  feature: attribute('modelmaxx.feature'),
};

/**
 * One query for every budget: per scope and subject, the other instances' spend since each
 * period's current window start (`day_usd`, `month_usd`), bounded by the earliest of them.
 */
export function othersSpendSql(
  budgets: readonly BudgetConfig[],
  options: { instanceId: string; service?: string | undefined; at: number },
): string {
  const scopes = [...new Set(budgets.map((budget) => budget.scope))];
  const day = windowOf('day', options.at).start;
  const month = windowOf('month', options.at).start;
  const earliest = budgets.some((budget) => budget.period === 'month') ? month : day;
  const pairs = scopes.map((scope) => `(${literal(scope)}, ${SUBJECT_SQL[scope]})`).join(', ');
  const conditions = [
    // A span may start before its window and end in it: a day of slack for the partitions.
    `Timestamp >= fromUnixTimestamp64Milli(toInt64(${earliest - 86_400_000}))`,
    `ScopeName = '@modelmaxx/gateway'`,
    `SpanKind = 'Client'`,
    `mapContains(SpanAttributes, 'modelmaxx.gateway.key_id')`,
    `${attribute('gen_ai.usage.cost.amount')} != ''`,
    `${attribute('modelmaxx.evaluation.role')} = ''`,
    `ResourceAttributes['service.instance.id'] != ${literal(options.instanceId)}`,
    // Spans without an id are from a gateway before budgetSync, maybe this one before an upgrade
    // (its spend is restored from its state file): counted, they would count it twice.
    `ResourceAttributes['service.instance.id'] != ''`,
    ...(options.service === undefined ? [] : [`ServiceName = ${literal(options.service)}`]),
  ];
  return [
    'SELECT scope, subject,',
    `  sumIf(cost, ended >= ${day}) AS day_usd,`,
    `  sumIf(cost, ended >= ${month}) AS month_usd`,
    'FROM (',
    `  SELECT toFloat64OrZero(${attribute('gen_ai.usage.cost.amount')}) AS cost,`,
    '    toUnixTimestamp64Milli(Timestamp) + toInt64(intDiv(Duration, 1000000)) AS ended,',
    `    arrayJoin([${pairs}]) AS pair,`,
    '    tupleElement(pair, 1) AS scope, tupleElement(pair, 2) AS subject',
    '  FROM otel_traces',
    `  WHERE ${conditions.join('\n    AND ')}`,
    ')',
    `WHERE subject != '' AND ended >= ${earliest}`,
    'GROUP BY scope, subject',
    'ORDER BY month_usd DESC',
  ].join('\n');
}

const SpendRowsSchema = z.object({
  rows: z.array(
    z.object({
      scope: z.string(),
      subject: z.string(),
      day_usd: z.coerce.number(),
      month_usd: z.coerce.number(),
    }),
  ),
  truncated: z.boolean().optional(),
});
type SpendRow = z.infer<typeof SpendRowsSchema>['rows'][number];

/** The rows as `replaceOthers` figures: each budget's subjects (its `match` only) in its window. */
export function othersFigures(
  budgets: readonly BudgetConfig[],
  rows: readonly SpendRow[],
): Map<string, number> {
  const figures = new Map<string, number>();
  for (const budget of budgets) {
    for (const row of rows) {
      if (row.scope !== budget.scope) continue;
      if (budget.match !== undefined && budget.match !== row.subject) continue;
      const usd = budget.period === 'day' ? row.day_usd : row.month_usd;
      if (usd > 0) figures.set(othersKey(budget.name, row.subject), usd);
    }
  }
  return figures;
}

export interface BudgetSyncOptions {
  readonly config: BudgetSyncConfig;
  readonly ledger: BudgetLedger;
  readonly instanceId: string;
  readonly clock: () => number;
  readonly logger: AccessLogger;
}

export class BudgetSync {
  private readonly options: BudgetSyncOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<boolean> | undefined;
  /** A failure was logged and no sync succeeded since. */
  private failing = false;
  private closed = false;
  /** When the last sync that succeeded started (ms), for status and tests. */
  lastSyncAt: number | undefined;

  constructor(options: BudgetSyncOptions) {
    this.options = options;
  }

  /** Syncs now, then every `intervalSeconds` (the timer keeps no process alive). */
  start(): void {
    if (this.options.ledger.budgets.length === 0) return;
    void this.sync();
    this.timer = setInterval(() => void this.sync(), this.options.config.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** One sync (joins the one running); true when the figures were replaced. */
  sync(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.running ??= this.syncOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async syncOnce(): Promise<boolean> {
    const { config, ledger, instanceId, clock, logger } = this.options;
    const at = clock();
    try {
      const sql = othersSpendSql(ledger.budgets, { instanceId, service: config.service, at });
      const answer = await callCollector(
        { url: config.collector, token: config.token },
        { path: '/api/sql', json: { sql } },
        SpendRowsSchema,
      );
      if (this.closed) return false;
      ledger.replaceOthers(othersFigures(ledger.budgets, answer.rows), at);
      this.lastSyncAt = at;
      if (answer.truncated === true) {
        logger.warn(
          { collector: config.collector, rows: answer.rows.length },
          "budget sync: the collector's answer was cut at its row limit; the smallest subjects' spend by other replicas is missing",
        );
      }
      if (this.failing) logger.info({ collector: config.collector }, 'budget sync recovered');
      this.failing = false;
      return true;
    } catch (error) {
      if (!this.failing && !this.closed) {
        logger.warn(
          { collector: config.collector, error: (error as Error).message },
          "budget sync failed: admission goes on with the other replicas' last known spend",
        );
      }
      this.failing = true;
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
