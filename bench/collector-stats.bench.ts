/**
 * `GET /api/stats` latency over many stored spans (SPEC: 10 M, goal < 50 ms), in a child process
 * with its own embedded ClickHouse data folder:
 * - synthetic GenAI spans (4 models, 2 services, 4 tasks, 3 features, 2% errors, spread over the
 *   last 40 minutes) are inserted with `INSERT INTO otel_traces … SELECT … FROM numbers(N)`, so the
 *   collector's own materialized views fill `llm_calls` and the per-minute rollup;
 * - the collector (`startCollector` over that store) answers `GET /api/stats?window=1h` (group by
 *   model, and by model × task × service); median and p95 of 20 calls after 3 warm-ups;
 * - baseline: the same aggregation straight over `llm_calls` (no rollup), timed the same way.
 * Run as `node bench/collector-stats.bench.ts --child SPANS DIR` it is the child.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOptions, BenchResult } from './types.js';

const benchFile = fileURLToPath(import.meta.url);
const benchDir = dirname(benchFile);

const CALLS = 20;
const WARMUP = 3;

interface Timing {
  medianMs: number;
  p95Ms: number;
}

interface ChildResult {
  spans: number;
  fillSeconds: number;
  settleSeconds: number;
  rollupRows: number;
  statsCalls: number;
  stats: Timing;
  statsGrouped: Timing;
  raw: Timing;
  rawGrouped: Timing;
  floor: Timing;
}

function timing(samples: number[]): Timing {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { medianMs: at(0.5), p95Ms: at(0.95) };
}

async function time(task: () => Promise<unknown>): Promise<Timing> {
  for (let index = 0; index < WARMUP; index++) await task();
  const samples: number[] = [];
  for (let index = 0; index < CALLS; index++) {
    const started = performance.now();
    await task();
    samples.push(performance.now() - started);
  }
  return timing(samples);
}

const MODELS = `['gpt-4o-mini', 'gpt-4o', 'claude-haiku-4-5', 'claude-sonnet-4-5']`;
const RESPONSE_MODELS = `['gpt-4o-mini-2024-07-18', 'gpt-4o-2024-08-06', 'claude-haiku-4-5-20251001', 'claude-sonnet-4-5-20250929']`;

function fillStatement(first: number, count: number, total: number, now: number): string {
  return `INSERT INTO modelmaxx.otel_traces
    (Timestamp, TraceId, SpanId, SpanName, SpanKind, ServiceName, ResourceAttributes, ScopeName,
     ScopeVersion, SpanAttributes, Duration, StatusCode)
  SELECT
    toDateTime64(${now} - 2400 + intDiv(number * 2399, ${total}), 9),
    concat(hex(cityHash64(number, 1)), hex(cityHash64(number, 2))),
    hex(cityHash64(number, 3)),
    concat('chat ', ${MODELS}[number % 4 + 1]),
    'Client',
    ['app-a', 'app-b'][number % 2 + 1],
    map('service.name', ['app-a', 'app-b'][number % 2 + 1]),
    '@modelmaxx/instrument',
    '0.1.0',
    map(
      'gen_ai.operation.name', 'chat',
      'gen_ai.provider.name', ['openai', 'openai', 'anthropic', 'anthropic'][number % 4 + 1],
      'gen_ai.request.model', ${MODELS}[number % 4 + 1],
      'gen_ai.response.model', ${RESPONSE_MODELS}[number % 4 + 1],
      'gen_ai.response.id', concat('chatcmpl-', toString(number)),
      'gen_ai.usage.input_tokens', toString(200 + number % 3000),
      'gen_ai.usage.output_tokens', toString(20 + number % 700),
      'gen_ai.usage.cost.amount', toString((200 + number % 3000) * 0.0000025 + (20 + number % 700) * 0.00001),
      'gen_ai.usage.cost.currency', 'USD',
      'modelmaxx.task', ['summarize', 'classify', 'extract', 'chat'][intDiv(number, 4) % 4 + 1],
      'modelmaxx.feature', ['inbox', 'search', 'support'][number % 3 + 1],
      'error.type', if(number % 50 = 0, 'RateLimitError', '')
    ),
    (200 + number % 2000) * 1000000,
    if(number % 50 = 0, 'Error', 'Unset')
  FROM numbers(${first}, ${count})`;
}

/** The stats aggregation without the rollup: straight over `llm_calls`. */
function rawStatsSql(groupBy: string[]): string {
  const columns: Record<string, string> = {
    model: "if(RequestModel != '', RequestModel, ResponseModel)",
    task: 'Task',
    service: 'ServiceName',
  };
  return `SELECT ${groupBy.map((key) => `${columns[key]} AS ${key}`).join(', ')},
      count() AS calls,
      countIf(StatusCode = 'Error' OR ErrorType != '') AS errors,
      sum(ifNull(CostUSD, 0)) AS cost,
      countIf(CostUSD IS NOT NULL) AS costCalls,
      sum(InputTokens) AS inputTokens,
      sum(OutputTokens) AS outputTokens,
      quantilesTDigest(0.5, 0.95, 0.99)(DurationMs) AS latency
    FROM modelmaxx.llm_calls
    WHERE Timestamp >= now() - INTERVAL 1 HOUR
    GROUP BY ${groupBy.join(', ')}
    ORDER BY calls DESC`;
}

async function child(spans: number, dataDir: string): Promise<void> {
  const { openStore, startCollector } = await import('@modelmaxx/collector');
  const store = await openStore({ dataDir, spoolDir: false });
  const now = Math.floor(Date.now() / 1000);
  const chunk = 1_000_000;
  const filling = performance.now();
  for (let first = 0; first < spans; first += chunk) {
    await store.engine.command(fillStatement(first, Math.min(chunk, spans - first), spans, now));
  }
  const fillSeconds = (performance.now() - filling) / 1000;
  // Measure a settled store, not one busy merging the parts the fill just wrote (at most 3 min).
  const settling = performance.now();
  for (;;) {
    const merges = await store.engine.query<{ running: string }>(
      'SELECT count() AS running FROM system.merges',
    );
    if (Number(merges.data[0]?.running) === 0 || performance.now() - settling > 180_000) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const settleSeconds = (performance.now() - settling) / 1000;
  const rollup = await store.engine.query<{ rows: string }>(
    'SELECT count() AS rows FROM modelmaxx.llm_rollup_1m',
  );
  const collector = await startCollector({ store, config: { port: 0 } });
  try {
    const get = async (query: string) => {
      const response = await fetch(`${collector.url}/api/stats?${query}`);
      if (response.status !== 200) throw new Error(`/api/stats answered ${response.status}`);
      return (await response.json()) as { rows: { calls: number }[] };
    };
    const check = await get('window=1h');
    const statsCalls = check.rows.reduce((sum, row) => sum + row.calls, 0);
    const stats = await time(() => get('window=1h'));
    const statsGrouped = await time(() => get('window=1h&groupBy=task,service'));
    const raw = await time(() => store.engine.query(rawStatsSql(['model'])));
    const rawGrouped = await time(() =>
      store.engine.query(rawStatsSql(['model', 'task', 'service'])),
    );
    const floor = await time(() => store.engine.query('SELECT 1 AS one'));
    const result: ChildResult = {
      spans,
      fillSeconds,
      settleSeconds,
      rollupRows: Number(rollup.data[0]?.rows),
      statsCalls,
      stats,
      statsGrouped,
      raw,
      rawGrouped,
      floor,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await collector.close();
    await store.close();
  }
}

function runChild(spans: number, dataDir: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const process_ = spawn(process.execPath, [benchFile, '--child', String(spans), dataDir], {
      cwd: benchDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    process_.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    process_.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    process_.on('error', reject);
    process_.on('close', (code) => {
      if (code !== 0) reject(new Error(`stats child exited ${code}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as ChildResult);
    });
  });
}

export async function run({ quick }: BenchOptions): Promise<BenchResult[]> {
  const spans = quick ? 100_000 : 10_000_000;
  const work = await mkdtemp(join(tmpdir(), 'mm-bench-stats-'));
  try {
    const result = await runChild(spans, join(work, 'data'));
    if (result.statsCalls !== spans) {
      throw new Error(`/api/stats counted ${result.statsCalls} calls of ${spans}`);
    }
    const ms = (value: number) => value.toFixed(1);
    return [
      {
        name: 'stats-latency-ms',
        value: result.stats.medianMs,
        unit: 'ms',
        baseline: result.raw.medianMs,
        ratio: null,
        goal: '< 50',
        notes: `GET /api/stats?window=1h (by model) over ${spans} stored spans (${result.rollupRows} rollup rows; filled by INSERT … SELECT FROM numbers through the materialized views in ${result.fillSeconds.toFixed(0)} s, then ${result.settleSeconds.toFixed(0)} s until no merge was running), median of ${CALLS} calls after ${WARMUP} warm-ups: ${ms(result.stats.medianMs)} ms (p95 ${ms(result.stats.p95Ms)}); by model × task × service ${ms(result.statsGrouped.medianMs)} ms (p95 ${ms(result.statsGrouped.p95Ms)}). Baseline, the same aggregation over raw llm_calls without the rollup: ${ms(result.raw.medianMs)} ms (p95 ${ms(result.raw.p95Ms)}), grouped ${ms(result.rawGrouped.medianMs)} ms, so the rollup is ${(result.raw.medianMs / result.stats.medianMs).toFixed(1)}× faster. Floor: SELECT 1 through the same embedded engine ${ms(result.floor.medianMs)} ms. (ratio left empty: the goal is on the value.)`,
      },
    ];
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === benchFile && process.argv[2] === '--child') {
  await child(Number(process.argv[3]), process.argv[4]!);
}
