/**
 * Shadow comparisons and the savings ledger end to end: the routed client (real openai SDK,
 * instrumented, against llm-sim) learns per class from a pairwise judge only, the spans go over
 * the real OTLP/HTTP exporter into a collector on the embedded ClickHouse, and `GET
 * /api/savings` gives the ledger. llm-sim knows the truth (each model's quality per task), so
 * the test checks that the router converges to the right model per class and that the
 * ledger's 95% interval covers the true quality difference (here for 3 seeds; the 20-seed
 * coverage is `bench/shadow-ledger.bench.ts`). With a judge right 80% of the time and user
 * feedback on half the cheap answers, the ledger's judge-corrected interval covers the truth
 * where the measured one is biased toward 0 (5 seeds; 20 seeds measured: docs/routing-measurements.md).
 * The runner is deterministic (a virtual clock, each request's shadow drained before the
 * next): a seed gives the same routing, verdicts and ledger on every run and machine load, so
 * the bounds below hold or fail for a seed, never by scheduling.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '@modelmaxx/cli';
import { startCollector, type RunningCollector } from '@modelmaxx/collector';
import { CHEAP, REFERENCE, runShadowSeed, trueDifference } from './support/shadow-ledger.js';
import type { SeedResult } from './support/shadow-ledger.js';

let collector: RunningCollector;
let dataDir: string;
let provider: TracerProvider;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-savings-e2e-'));
  collector = await startCollector({ config: { port: 0, dataDir } });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'shadowed-app' }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: `${collector.url}/v1/traces` }),
        scheduledDelayMillis: 50,
        maxQueueSize: 20_000,
        maxExportBatchSize: 1000,
      }),
    ],
  });
  trace.setGlobalTracerProvider(provider);
}, 60_000);

afterAll(async () => {
  await provider?.shutdown();
  trace.disable();
  context.disable();
  await collector?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function sql(query: string): Promise<Record<string, unknown>[]> {
  const response = await fetch(`${collector.url}/api/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sql: query }),
  });
  const body = (await response.json()) as { rows: Record<string, unknown>[] };
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body.rows;
}

/** `modelmaxx savings --by policy,class,model --format json`: its lines (the total last). */
async function savingsJsonLines(): Promise<Record<string, unknown>[]> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    [
      'savings',
      '--url',
      collector.url,
      '--window',
      '1h',
      '--by',
      'policy,class,model',
      '--format',
      'json',
    ],
    { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), env: {} },
  );
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

// Timeouts are generous: each request waits for its shadow, and the judge-accuracy test took
// 75 s at a load average of 9 and 222 s at 26 on the shared 2-core machine.

/** The convergence runs' size: requests per class, and the tail convergence is measured over. */
const CONVERGENCE_RUN = { requestsPerClass: 250, tail: 50 };

describe('shadow comparisons into the savings ledger', () => {
  const results: SeedResult[] = [];

  it('converges to the right model per class from judge verdicts alone; the interval covers the truth', async () => {
    for (const seed of [1, 2, 3]) {
      const result = await runShadowSeed(
        { ...CONVERGENCE_RUN, collectorUrl: collector.url, seed },
        () => provider.forceFlush(),
      );
      results.push(result);
    }
    // The right model answers at least 80% of the last 50 requests of each class (exploration
    // 5%) in all 6 (seed, class) pairs. Routing exploits the estimate; the measurement comes
    // from shadows of every call, whichever model answered it (counterfactual shadows of the
    // reference's calls). Seeds 1-3 give 6 of 6 (94-100%); seeds 1-20: 40 of 40 (the bench).
    // Before, when a class the engine sent to the reference was measured by sending the app's
    // calls to the cheap model (shadow exploration) until its interval cleared the margin, seed
    // 3's hard class was still half on the cheap model at the end (62%; 37 of 40 over 20 seeds).
    const pairs = results.flatMap((result) => [
      result.convergence['easy']!,
      result.convergence['hard']!,
    ]);
    expect(
      pairs.filter((share) => share >= 0.8).length,
      JSON.stringify(results.map((result) => [result.seed, result.convergence, result.cheapRows])),
    ).toBe(6);
    for (const result of results) {
      const label = JSON.stringify({
        seed: result.seed,
        convergence: result.convergence,
        rows: result.cheapRows,
      });
      // Every verdict the router recorded is in the ledger's sample of the cheap model's rows.
      const samples =
        (result.cheapRows['easy']?.quality?.samples ?? 0) +
        (result.cheapRows['hard']?.quality?.samples ?? 0);
      expect(samples, label).toBe(result.stats.judged);
      expect(result.cheapRows['easy']?.quality?.samples, label).toBeGreaterThanOrEqual(30);
      // The hard class is shadowed at the sample rate (1) whatever answered it: 250 verdicts
      // (before counterfactual shadows, 55-105 in seeds 1-3, and the bandit without shadow
      // exploration left the cheap model after 21-29). Most of them are counterfactual: the app
      // got the reference's answer, and the cheap model was called off the response path.
      expect(result.cheapRows['hard']?.quality?.samples, label).toBe(250);
      expect(result.stats.candidateCalls, label).toBeGreaterThanOrEqual(200);
      const hardRight = result.timeline['hard']!.map((point) => point.right);
      const share = hardRight.reduce((sum, right) => sum + right, 0) / hardRight.length;
      // The reference answered at least 85% of all 250 hard requests, the start included (seeds
      // 1-3: 97%, 93%, 96%; with shadow exploration: 78%, 74%, 58%).
      expect(share, label).toBeGreaterThanOrEqual(0.85);
    }
    // 95% intervals: of the 6 (seed, class) intervals with a width, at most one may miss.
    // Seeds 1-3: all 6 cover; seeds 1-20: 39 of 40 (the miss: seed 16 easy, 0.018 ±0.048 from
    // 56 verdicts, its low end a hair above the truth -0.03). Before: 38 of 40 with shadow
    // exploration (the misses: hard intervals from 50-64 verdicts, taken as exploration ended),
    // 36 of 40 without (classes the bandit left after an unlucky start froze their estimate),
    // 34 of 40 before a run of ties got an interval wider than ±0.
    const intervals = results.flatMap((result) =>
      Object.values(result.covered).filter((value) => value !== undefined),
    );
    expect(intervals.length).toBeGreaterThanOrEqual(3);
    expect(intervals.filter((value) => value === false).length).toBeLessThanOrEqual(1);
    // The intervals tell the classes apart: none of the easy class's holds the hard truth.
    for (const result of results) {
      const quality = result.cheapRows['easy']!.quality!;
      expect(quality.high!).toBeLessThan(0.1);
      expect(quality.high!).toBeGreaterThan(trueDifference('hard'));
    }
  }, 300_000);

  it('gives the same routing, verdicts and ledger for the same seed, run after run', async () => {
    // Verdicts that landed while later requests were routed, and a wall clock for the engine,
    // made the ledger depend on the machine's scheduling (a CI flake of the coverage bounds);
    // the runner now drains each request's shadow and routes on a virtual clock. Seed 1 again
    // (as the first test ran it), into a policy of its own.
    const first = results[0]!;
    const again = await runShadowSeed(
      { ...CONVERGENCE_RUN, collectorUrl: collector.url, seed: first.seed, policySuffix: '-again' },
      () => provider.forceFlush(),
    );
    const figures = (result: SeedResult) => ({
      convergence: result.convergence,
      stats: result.stats,
      appUsd: result.appUsd,
      rows: result.rows.map(({ policy: _policy, ...row }) => row),
    });
    expect(figures(again)).toEqual(figures(first));
  }, 300_000);

  it('books spend, reference cost and the shadow/judge spend per policy, class and model', async () => {
    const result = results[0]!;
    const rows = result.rows;
    const easyCheap = rows.find((row) => row.class === 'easy' && row.model === CHEAP)!;
    const hardReference = rows.find((row) => row.class === 'hard' && row.model === REFERENCE)!;
    expect(easyCheap.cheaperShare).toBe(1);
    expect(hardReference.cheaperShare).toBe(0);
    // The reference answering itself saves nothing; the cheap model saves what gpt-4o would cost.
    expect(hardReference.grossSavingUsd).toBeCloseTo(0, 9);
    expect(hardReference.quality).toBeNull();
    expect(easyCheap.referenceUsd).toBeGreaterThan(easyCheap.spendUsd * 10);
    // Shadow + judge spend is booked on the cheap model's rows, and the net subtracts it.
    expect(easyCheap.shadowUsd).toBeGreaterThan(0);
    expect(easyCheap.judgeUsd).toBeGreaterThan(0);
    expect(easyCheap.netSavingUsd).toBeCloseTo(
      easyCheap.grossSavingUsd - easyCheap.shadowUsd - easyCheap.judgeUsd,
      9,
    );
    // What the ledger books as app spend is what the router priced (catalog, same usage).
    const app = rows.reduce((sum, row) => sum + row.spendUsd, 0);
    expect(app).toBeCloseTo(result.appUsd, 6);
    // The shadow and judge calls are evaluation work: in llm_calls as Purpose = evaluation.
    const purposes = await sql(
      `SELECT Purpose, RequestModel, count() AS n, round(sum(CostUSD), 9) AS usd FROM modelmaxx.llm_calls
       WHERE RoutePolicy = '${result.policy}' GROUP BY Purpose, RequestModel ORDER BY Purpose, RequestModel`,
    );
    const evaluation = purposes.filter((row) => row['Purpose'] === 'evaluation');
    const shadowCalls = evaluation
      .filter((row) => row['RequestModel'] === REFERENCE)
      .reduce((sum, row) => sum + Number(row['n']), 0);
    expect(shadowCalls).toBe(result.stats.shadowCalls);
    const shadowUsd = rows.reduce((sum, row) => sum + row.shadowUsd, 0);
    expect(shadowUsd).toBeCloseTo(result.stats.shadowUsd, 6);
    // Shadow verdicts are relative (a tie is 0.5): the rollups (/api/stats) leave them out of a
    // model's mean score, which counts the instrumentation's other scores only.
    const [scores] = await sql(
      `SELECT countIf(Name != 'modelmaxx.shadow') AS other, countIf(Name = 'modelmaxx.shadow') AS shadow
       FROM modelmaxx.llm_scores WHERE Model = '${CHEAP}' AND Score IS NOT NULL`,
    );
    expect(Number(scores!['shadow'])).toBeGreaterThan(0);
    const stats = await fetch(`${collector.url}/api/stats?window=1h&groupBy=model`);
    const body = (await stats.json()) as { rows: { model: string; scoreCount: number }[] };
    const mini = body.rows.find((row) => row.model === CHEAP)!;
    expect(mini.scoreCount).toBe(Number(scores!['other']));
  }, 60_000);

  it('modelmaxx savings prints the same ledger (json lines, then the total)', async () => {
    const result = results[0]!;
    const lines = await savingsJsonLines();
    const easy = lines.find(
      (line) =>
        line['policy'] === result.policy && line['class'] === 'easy' && line['model'] === CHEAP,
    )!;
    const row = result.cheapRows['easy']!;
    expect(easy['calls']).toBe(row.calls);
    expect(easy['net_usd']).toBeCloseTo(row.netSavingUsd, 9);
    expect(easy['quality_diff']).toBeCloseTo(row.quality!.difference, 6);
    expect(easy['n']).toBe(row.quality!.samples);
    expect(lines.at(-1)!['policy']).toBe('total');
    let table = '';
    expect(
      await runCli(['savings', '--url', collector.url, '--window', '1h'], {
        stdout: (text) => (table += text),
        stderr: () => undefined,
        env: {},
      }),
    ).toBe(0);
    expect(table).toMatch(/^policy\s+class\s+feature\s+model\s+reference\s+calls/);
    expect(table).toMatch(/pts/);
    let usage = '';
    expect(
      await runCli(['savings', '--url', collector.url, '--by', 'colour'], {
        stdout: () => undefined,
        stderr: (text) => (usage += text),
        env: {},
      }),
    ).toBe(2);
    expect(usage).toMatch(/--by: unknown groupBy "colour"/);
  });

  it('corrects for a judge right 80% of the time, measured against user feedback on half the answers', async () => {
    // The cheap model answers hard arithmetic right 20% of the time against the reference's 86%
    // (true difference -0.66); the policy's margin keeps it on the cheap model. A judge right
    // with probability 0.8 measures (3 × 0.8 - 1) / 2 = 0.7 of that (about -0.46); the feedback
    // (the truth about the cheap answer) on half the answers lets the ledger measure the judge.
    const options = {
      collectorUrl: collector.url,
      requestsPerClass: 200,
      tail: 50,
      classes: ['hard'],
      cheapQuality: { hard: 0.2 },
      qualityMargin: 1,
      targetHalfWidth: 0.001,
      judgeAccuracy: 0.8,
      feedbackRate: 0.5,
    };
    const truth = trueDifference('hard', options.cheapQuality);
    expect(truth).toBeCloseTo(-0.66, 9);
    const seeds: SeedResult[] = [];
    for (const seed of [11, 12, 13, 14, 15]) {
      seeds.push(await runShadowSeed({ ...options, seed }, () => provider.forceFlush()));
    }
    const rows = seeds.map((result) => result.cheapRows['hard']!.quality!);
    const label = JSON.stringify(
      seeds.map((result, index) => ({
        seed: result.seed,
        feedback: result.feedback,
        quality: rows[index],
      })),
    );
    for (const quality of rows) {
      expect(quality.samples, label).toBeGreaterThanOrEqual(100);
      expect(quality.corrected, label).toBe(true);
      expect(quality.judgeAccuracy!.pairs, label).toBeGreaterThanOrEqual(40);
      // Wider than measured: k < 1 and its own uncertainty.
      expect(quality.halfWidth!, label).toBeGreaterThan(quality.measured.halfWidth!);
    }
    const corrected = seeds.filter((result) => result.covered['hard'] === true).length;
    const measured = seeds.filter((result) => result.measuredCovered['hard'] === true).length;
    // A 95% interval misses 2 or more of 5 seeds with probability 2.3%; the measured one
    // (centred on about -0.46, ±0.1) holds -0.66 in about 5% of seeds: 2 or more of 5 in 2%.
    // Deterministic runner: seeds 11-15 give 5 corrected and 0 measured; seeds 101-120, 19 of
    // 20 corrected (mean -0.634, spread 0.068, ±0.18) and 0 of 20 measured (mean -0.441, ±0.10;
    // the closest low end -0.649).
    expect(corrected, label).toBeGreaterThanOrEqual(4);
    expect(measured, label).toBeLessThanOrEqual(1);
    // modelmaxx savings prints the corrected figures too.
    const last = seeds.at(-1)!;
    const line = (await savingsJsonLines()).find(
      (entry) => entry['policy'] === last.policy && entry['model'] === CHEAP,
    )!;
    expect(line['quality_diff']).toBeCloseTo(rows.at(-1)!.difference, 6);
    expect(line['judge_accuracy']).toBeCloseTo(rows.at(-1)!.judgeAccuracy!.value, 6);
    // The judge's accuracy, measured from contradicted verdicts, is about 0.8.
    const accuracy = rows.reduce((sum, quality) => sum + quality.judgeAccuracy!.value, 0) / 5;
    expect(accuracy, label).toBeGreaterThan(0.7);
    expect(accuracy, label).toBeLessThan(0.9);
  }, 600_000);

  it('rejects a bad query with a 400 saying what is wrong', async () => {
    const bad = await fetch(`${collector.url}/api/savings?window=2y&groupBy=policy,colour`);
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: string };
    expect(body.error).toMatch(/window/);
    expect(body.error).toMatch(/colour/);
  });
});
