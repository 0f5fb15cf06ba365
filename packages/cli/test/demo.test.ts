import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import { runDemo } from '../src/demo.js';
import { DEMO_SERVICES } from '../src/demo-setup.js';
import { formatUsd } from '../src/format.js';
import { formatSummary } from '../src/demo-summary.js';
import type { DemoSummary } from '../src/demo-setup.js';
import { httpSource } from '../src/query-source.js';

describe('modelmaxx demo', () => {
  let dataDir: string;
  let collector: RunningCollector;
  let output = '';
  let summary: DemoSummary;

  const query = async (sql: string): Promise<Record<string, unknown>[]> => {
    const source = httpSource(collector.url, undefined);
    try {
      const result = await source.query(sql);
      return result.rows.map((row) =>
        Array.isArray(row)
          ? Object.fromEntries(result.columns.map((column, index) => [column.name, row[index]]))
          : (row as Record<string, unknown>),
      );
    } finally {
      await source.close();
    }
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'mm-demo-'));
    collector = await startCollector({ config: { port: 0, dataDir } });
    summary = await runDemo({
      url: collector.url,
      requests: 90,
      exit: true,
      seed: 3,
      stdout: (text) => {
        output += text;
      },
    });
  }, 90_000);

  afterAll(async () => {
    await collector?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('uses the collector that answers instead of starting one', () => {
    expect(output).not.toContain('starting one here');
    expect(output).toContain(`into ${collector.url}`);
  });

  it('stores LLM calls with costs from every simulated service', async () => {
    const rows = await query(
      `SELECT ServiceName AS service, count() AS calls, sum(ifNull(CostUSD, 0)) AS cost,
         countIf(CostSource = 'span') AS priced
       FROM modelmaxx.llm_calls GROUP BY ServiceName ORDER BY ServiceName`,
    );
    expect(rows.map((row) => row['service'])).toEqual([...DEMO_SERVICES].sort());
    for (const row of rows) {
      expect(Number(row['calls']), JSON.stringify(row)).toBeGreaterThan(5);
      expect(Number(row['cost']), JSON.stringify(row)).toBeGreaterThan(0);
      expect(Number(row['priced']), JSON.stringify(row)).toBeGreaterThan(0);
    }
    const total = rows.reduce((sum, row) => sum + Number(row['calls']), 0);
    // Routed attempts, streams, tool calls and embeddings: at least one call per request, except
    // requests the router refused because every candidate was cooling down (failures on purpose).
    expect(summary.failedRequests).toBeLessThan(30);
    expect(total).toBeGreaterThanOrEqual(90 - summary.failedRequests);
  });

  it('mixes streams, tool calls, embeddings, tasks, features and routed calls', async () => {
    const [row] = await query(
      `SELECT countIf(Stream) AS streams, countIf(has(FinishReasons, 'tool_calls')) AS tool_calls,
         countIf(Operation = 'embeddings') AS embeddings, uniqExact(Task) AS tasks,
         uniqExact(Feature) AS features, uniqExact(UserId) AS users,
         countIf(RoutePolicy = 'demo') AS routed, uniqExact(RequestModel) AS models
       FROM modelmaxx.llm_calls`,
    );
    expect(row).toBeDefined();
    expect(Number(row!['streams'])).toBeGreaterThan(0);
    expect(Number(row!['tool_calls'])).toBeGreaterThan(0);
    expect(Number(row!['embeddings'])).toBeGreaterThan(0);
    expect(Number(row!['tasks'])).toBeGreaterThanOrEqual(4);
    expect(Number(row!['features'])).toBeGreaterThanOrEqual(3);
    expect(Number(row!['users'])).toBeGreaterThan(3);
    expect(Number(row!['routed'])).toBeGreaterThan(30);
    expect(Number(row!['models'])).toBeGreaterThanOrEqual(4);
  });

  it('records correctness scores from the evaluator and feedback scores', async () => {
    const rows = await query(
      `SELECT Name AS name, Source AS source, count() AS scores, min(Score) AS low, max(Score) AS high
       FROM modelmaxx.llm_scores WHERE Name IN ('demo.correct', 'user.thumbs') GROUP BY Name, Source ORDER BY Name`,
    );
    expect(rows.map((row) => [row['name'], row['source']])).toEqual([
      ['demo.correct', 'evaluator'],
      ['user.thumbs', 'feedback'],
    ]);
    const correct = rows[0]!;
    expect(Number(correct['scores'])).toBeGreaterThan(30);
    // The simulated models are right most of the time but not always.
    expect(Number(correct['low'])).toBe(0);
    expect(Number(correct['high'])).toBe(1);
  });

  it('prints a summary that matches what the collector stored', async () => {
    const [row] = await query(
      `SELECT count() AS calls, sum(ifNull(CostUSD, 0)) AS spend FROM modelmaxx.llm_calls WHERE Operation = 'chat'`,
    );
    expect(summary.calls).toBe(Number(row!['calls']));
    expect(summary.spendUsd).toBeCloseTo(Number(row!['spend']), 9);
    expect(summary.services).toBe(3);
    expect(summary.frontierSpendUsd).toBeGreaterThan(summary.spendUsd);
    expect(summary.scores).toBeGreaterThan(0);
    expect(output).toContain('modelmaxx demo: done');
    expect(output).toContain(`chat calls stored    ${summary.calls} from 3 services`);
    expect(output).toContain(`${summary.failedRequests} requests failed after fallbacks`);
    expect(output).toContain(`spend                $${formatUsd(summary.spendUsd)}`);
    expect(output).toContain('router weights now');
    expect(output).toContain(`dashboard            ${collector.url}/`);
  });

  it('books its shadow comparisons in the savings ledger, per class with their intervals', async () => {
    const response = await fetch(
      new URL('/api/savings?window=1h&groupBy=policy,class', collector.url),
    );
    expect(response.status).toBe(200);
    const ledger = (await response.json()) as {
      rows: { policy: string; class: string; quality: { samples: number } | null }[];
      total: { shadowUsd: number; judgeUsd: number; evaluationShare: number; calls: number };
    };
    expect(ledger.total.calls).toBeGreaterThan(30);
    // A fifth of the routed calls are shadowed and judged: spend of its own, never the app's.
    expect(ledger.total.shadowUsd).toBeGreaterThan(0);
    expect(ledger.total.judgeUsd).toBeGreaterThan(0);
    const estimated = ledger.rows.filter((row) => row.policy === 'demo' && row.quality !== null);
    expect(estimated.length, JSON.stringify(ledger.rows)).toBeGreaterThanOrEqual(3);
    const verdicts = estimated.reduce((sum, row) => sum + row.quality!.samples, 0);
    expect(verdicts).toBeGreaterThan(5);
  });

  it('prints commands for the collector it used', () => {
    const other = formatSummary(summary, 'http://127.0.0.1:14318');
    expect(other).toContain(
      'modelmaxx savings --by policy,class,model --url http://127.0.0.1:14318',
    );
    expect(other).toContain('modelmaxx report --by model --url http://127.0.0.1:14318');
    const usual = formatSummary(summary, 'http://127.0.0.1:4318');
    expect(usual).toContain('modelmaxx savings --by policy,class,model\n');
    expect(usual).not.toContain('--url');
  });

  it("shows the router's weights recomputed from /api/stats by its WeightUpdater", () => {
    // Fresh stats (no "note: stats unavailable / stale" line), and no longer the priors.
    expect(summary.weightsAfter).not.toContain('note:');
    expect(summary.weightsAfter).not.toBe(summary.weightsBefore);
    expect(output).toContain(
      `router weights now (from ${collector.url}/api/stats):\n${summary.weightsAfter}`,
    );
  });
});
