/**
 * `modelmaxx report`: spend, calls, tokens, latency, errors and quality per
 * model / service / task / feature / user over a window, read from `llm_calls` and
 * `llm_scores`, or per gateway team / key / app (their span attributes joined from `otel_traces`). The SQL is fixed text; the only variable parts are a column
 * from a whitelist and a window validated to a whole number of seconds.
 */
import { cleanAmount, formatUsd } from './format.js';
import type { OutputFormat, Tabular } from './format.js';
import { UsageError } from './query-source.js';

/** The report's dollar columns. */
const MONEY_COLUMNS = ['spend_usd', 'baseline_usd'];

/**
 * Money as people read it: in a table, `formatUsd` (cents from $1, three significant digits
 * below) and "unpriced" where no call of the group has a price; in json and csv, numbers without
 * float noise, and null where unpriced.
 */
export function presentReport<T extends Tabular>(result: T, format: OutputFormat): T {
  const rows = result.rows.map((row) => {
    const shown: Record<string, unknown> = { ...row };
    for (const column of MONEY_COLUMNS) {
      if (!(column in row)) continue;
      const value = row[column];
      const amount = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (format === 'table') {
        shown[column] = typeof amount === 'number' ? formatUsd(amount) : 'unpriced';
      } else {
        shown[column] = typeof amount === 'number' ? cleanAmount(amount) : null;
      }
    }
    return shown;
  });
  return { ...result, rows };
}

export const REPORT_GROUPS = {
  // The catalog's canonical id of the model asked for: a dated snapshot and its alias, and a
  // failed call (no response model), all count under one name (llm_calls.Model, schema v3).
  model: 'Model',
  provider: 'Provider',
  service: 'ServiceName',
  task: 'Task',
  feature: 'Feature',
  user: 'UserId',
  // Who called through the gateway: span attributes, not llm_calls columns (joined from otel_traces).
  team: 'GatewaySubject',
  key: 'GatewaySubject',
  app: 'GatewaySubject',
} as const;
export type ReportGroup = keyof typeof REPORT_GROUPS;

/** The gateway's span attribute behind each of its groups (docs/gateway.md, What is recorded). */
const GATEWAY_ATTRIBUTES: Partial<Record<ReportGroup, string>> = {
  team: 'modelmaxx.gateway.team',
  key: 'modelmaxx.gateway.key_id',
  app: 'modelmaxx.gateway.app',
};

/**
 * The window's calls; for a gateway group with the calling key's attribute beside them
 * (`GatewaySubject`, '' for a call that did not come through the gateway).
 */
function callsSql(database: string, by: ReportGroup, since: number): string {
  const window = `Timestamp >= now64(9) - toIntervalSecond(${since})`;
  const attribute = GATEWAY_ATTRIBUTES[by];
  if (attribute === undefined) return `SELECT * FROM ${database}.llm_calls WHERE ${window}`;
  return `SELECT c.*, t.GatewaySubject AS GatewaySubject FROM ${database}.llm_calls AS c
    LEFT JOIN (
      SELECT TraceId, SpanId, SpanAttributes['${attribute}'] AS GatewaySubject
      FROM ${database}.otel_traces WHERE ${window}
    ) AS t ON c.TraceId = t.TraceId AND c.SpanId = t.SpanId
    WHERE c.${window}`;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** `90s`, `15m`, `24h`, `7d`, `2w` → seconds. */
export function parseSince(text: string): number {
  const match = /^(\d{1,7})([smhdw])$/.exec(text.trim());
  if (match === null) {
    throw new UsageError(
      `--since takes a number and a unit (s, m, h, d, w), e.g. 24h; got ${JSON.stringify(text)}`,
    );
  }
  const seconds = Number(match[1]) * (UNITS[match[2] ?? 's'] ?? 1);
  if (seconds <= 0) throw new UsageError('--since must be longer than zero');
  return seconds;
}

export function parseGroup(text: string): ReportGroup {
  if (!Object.hasOwn(REPORT_GROUPS, text)) {
    throw new UsageError(
      `--by takes one of ${Object.keys(REPORT_GROUPS).join(', ')}; got ${JSON.stringify(text)}`,
    );
  }
  return text as ReportGroup;
}

const MODEL_NAME = /^[A-Za-z0-9._:/@+-]{1,128}$/;

/** `--baseline`: a model name as the price catalog spells it (letters, digits, . _ : / @ + -). */
export function parseBaseline(text: string): string {
  if (!MODEL_NAME.test(text)) {
    throw new UsageError(
      `--baseline takes a model name such as gpt-4o; got ${JSON.stringify(text)}`,
    );
  }
  return text.toLowerCase();
}

/** The latest catalog price of `model` (exact, lower-cased key), as `llm_prices` holds it. */
export function baselinePriceSql(model: string, database = 'modelmaxx'): string {
  // `model` passes parseBaseline, so no quote or backslash can reach the literal.
  return `SELECT InputPerMTok, OutputPerMTok FROM ${checkDatabase(database)}.llm_prices
WHERE KeyKind = 'exact' AND Model = '${parseBaseline(model)}'
ORDER BY Version DESC, Rank
LIMIT 1`;
}

function checkDatabase(database: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database))
    throw new UsageError(`bad database name ${database}`);
  return database;
}

export function reportSql(options: {
  by: ReportGroup;
  sinceSeconds: number;
  database?: string;
  /** Adds `baseline_usd` (the same tokens at this model's list prices) and `savings`. */
  baseline?: string;
}): string {
  const database = checkDatabase(options.database ?? 'modelmaxx');
  const key = REPORT_GROUPS[options.by];
  const since = Math.floor(options.sinceSeconds);
  return `
WITH
  calls AS (
    ${callsSql(database, options.by, since)}
  ),
  ${
    options.baseline === undefined
      ? ''
      : `baseline AS (${baselinePriceSql(options.baseline, database)}),
  `
  }scores AS (
    SELECT SpanId, avg(Score) AS Score FROM ${database}.llm_scores
    WHERE SpanId IN (SELECT SpanId FROM calls)
    GROUP BY SpanId
  )
SELECT
  ${key} AS ${options.by},
  if(countIf(CostUSD IS NOT NULL) = 0, NULL, sum(CostUSD)) AS spend_usd,
  count() AS calls,
  countIf(CostUSD IS NULL) AS unpriced_calls,
  sum(InputTokens) AS input_tokens,
  sum(OutputTokens) AS output_tokens,
  round(quantile(0.95)(DurationMs), 1) AS p95_ms,
  round(countIf(StatusCode = 'Error') / count(), 4) AS error_rate,
  round(avgIf(scores.Score, scores.SpanId != ''), 3) AS mean_quality,
  round(spend_usd / nullIf(sum(sum(ifNull(CostUSD, 0))) OVER (), 0), 4) AS spend_share${
    options.baseline === undefined
      ? ''
      : `,
  sum(InputTokens) * (SELECT InputPerMTok FROM baseline) / 1e6
    + sum(OutputTokens) * (SELECT OutputPerMTok FROM baseline) / 1e6 AS baseline_usd,
  round(1 - spend_usd / nullIf(baseline_usd, 0), 4) AS savings`
  }
FROM calls
LEFT JOIN scores ON scores.SpanId = calls.SpanId
GROUP BY ${options.by}
ORDER BY spend_usd DESC NULLS LAST, calls DESC`;
}
