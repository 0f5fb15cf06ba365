/** The end of `modelmaxx demo`: what the collector stored from the run, and the summary printed. */
import { costOf } from '@modelmaxx/pricing';
import { DEMO_FRONTIER_MODEL, DEMO_SERVICES } from './demo-setup.js';
import type { DemoSummary } from './demo-setup.js';
import { formatUsd } from './format.js';
import { DEFAULT_COLLECTOR_URL, httpSource } from './query-source.js';

/** Waits (at most 30 s) until the collector has inserted every span it acknowledged. */
async function waitForStored(url: string, token: string | undefined): Promise<void> {
  const metric = (text: string, name: string) =>
    Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      const response = await fetch(new URL('/metrics', url), {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(5000),
      });
      if (!response.ok) return;
      const text = await response.text();
      const accepted = metric(text, 'modelmaxx_spans_accepted_total');
      const stored = metric(text, 'modelmaxx_spans_stored_total');
      if (!(stored < accepted)) return;
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export async function summarize(
  url: string,
  token: string | undefined,
  since: Date,
  expectedChatCalls: number,
  weightsBefore: string,
  weightsAfter: string,
): Promise<Omit<DemoSummary, 'failedRequests'>> {
  await waitForStored(url, token);
  const source = httpSource(url, token);
  const services = DEMO_SERVICES.map((name) => `'${name}'`).join(', ');
  const sinceText = since.toISOString().replace('T', ' ').replace('Z', '');
  const where = `ServiceName IN (${services}) AND Timestamp >= toDateTime64('${sinceText}', 3, 'UTC')`;
  try {
    let calls: Record<string, unknown> = {};
    // The collector acknowledges spans once they are durable and inserts them in batches:
    // wait until every chat span sent is in llm_calls (at most 30 s).
    for (let attempt = 0; attempt < 60; attempt++) {
      const result = await source.query(
        `SELECT count() AS calls, uniqExact(ServiceName) AS services, countIf(StatusCode = 'Error') AS errors,
           sum(ifNull(CostUSD, 0)) AS spend, sum(InputTokens) AS input, sum(OutputTokens) AS output,
           sum(CacheReadTokens) AS cache_read
         FROM modelmaxx.llm_calls WHERE ${where} AND Operation = 'chat'`,
      );
      calls = rowObject(result);
      if (Number(calls['calls'] ?? 0) >= expectedChatCalls) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const scores = rowObject(
      await source.query(
        `SELECT count() AS scores FROM modelmaxx.llm_scores
         WHERE TraceId IN (SELECT TraceId FROM modelmaxx.llm_calls WHERE ${where})`,
      ),
    );
    const frontier = costOf({
      provider: 'openai',
      model: DEMO_FRONTIER_MODEL,
      usage: {
        inputTokens: Number(calls['input'] ?? 0),
        outputTokens: Number(calls['output'] ?? 0),
        cacheReadTokens: Number(calls['cache_read'] ?? 0),
      },
    });
    const spendUsd = Number(calls['spend'] ?? 0);
    const frontierSpendUsd = frontier.known ? frontier.amount : Number.NaN;
    return {
      calls: Number(calls['calls'] ?? 0),
      services: Number(calls['services'] ?? 0),
      errors: Number(calls['errors'] ?? 0),
      spendUsd,
      frontierSpendUsd,
      savingsShare: frontierSpendUsd > 0 ? 1 - spendUsd / frontierSpendUsd : Number.NaN,
      scores: Number(scores['scores'] ?? 0),
      weightsBefore,
      weightsAfter,
    };
  } finally {
    await source.close();
  }
}

function rowObject(result: {
  columns: readonly { name: string }[];
  rows: readonly unknown[];
}): Record<string, unknown> {
  const row = result.rows[0];
  if (row === undefined) return {};
  if (Array.isArray(row)) {
    return Object.fromEntries(result.columns.map((column, index) => [column.name, row[index]]));
  }
  return row as Record<string, unknown>;
}

export function formatSummary(summary: DemoSummary, url: string): string {
  const usd = (value: number) => `$${formatUsd(value)}`;
  // The commands ask the default collector unless told otherwise, also when the demo started
  // the collector itself (on the host and port of `--url`).
  const data = url === DEFAULT_COLLECTOR_URL ? '' : ` --url ${url}`;
  return `
modelmaxx demo: done
  chat calls stored    ${summary.calls} from ${summary.services} services (${summary.errors} failed attempts, ${summary.failedRequests} requests failed after fallbacks)
  spend                ${usd(summary.spendUsd)}
  always-${DEMO_FRONTIER_MODEL} would cost ${usd(summary.frontierSpendUsd)} (same tokens, ${DEMO_FRONTIER_MODEL} prices)
  savings              ${Number.isFinite(summary.savingsShare) ? `${(summary.savingsShare * 100).toFixed(1)}%` : 'n/a'}
  quality scores       ${summary.scores}
  router weights at the start (priors):
${summary.weightsBefore}
  router weights now (from ${url}/api/stats):
${summary.weightsAfter}

Where to look:
  dashboard            ${url}/
  report               pnpm exec modelmaxx report --by model${data}
                       pnpm exec modelmaxx report --by service --baseline ${DEMO_FRONTIER_MODEL}${data}
  savings ledger       pnpm exec modelmaxx savings --by policy,class,model${data}
  SQL                  pnpm exec modelmaxx sql${data} "SELECT Task, RequestModel, count() AS calls, round(sum(CostUSD), 4) AS usd FROM modelmaxx.llm_calls GROUP BY Task, RequestModel ORDER BY Task, usd DESC"
  traces (Jaeger API)  ${url}/api/traces?service=support-bot&limit=5
  more                 docs/sql-cookbook.md, docs/traces.md
`;
}
