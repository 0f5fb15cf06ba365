/**
 * Shadow comparisons and the savings ledger over many seeds (test/support/shadow-ledger.ts: two
 * classes of llm-sim tasks with a known quality gap between gpt-4o-mini and gpt-4o, the router
 * learning from a pairwise judge only, every call instrumented into a collector on the
 * embedded ClickHouse, the ledger from `GET /api/savings`).
 *
 * - `shadow-ledger-coverage`: share of the ledger's 95% intervals (cheap model, per class and
 *   seed) that cover the true difference (the simulator's profiles). Goal >= 0.9 (20 seeds).
 * - `shadow-ledger-convergence`: share of (seed, class) where the right model answers >= 80% of
 *   the last 50 requests. Goal 1.
 * - `shadow-ledger-corrected-coverage`: a judge right 80% of the time, user feedback on half the
 *   cheap answers of one class (hard arithmetic, the cheap model at 0.2) and none on another
 *   (hard JSON, the cheap model at 0.3), both kept on the cheap model: the share of the
 *   judge-corrected intervals (the JSON row by its judge's pooled accuracy) that cover the true
 *   difference, the measured (uncorrected) intervals' share as the baseline. Goal >= 0.9.
 * (`shadow-spend-share` is `shadow-spend.bench.ts`, on the demo's traffic.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { startCollector } from '@modelmaxx/collector';
import type { SavingsRow } from '@modelmaxx/collector';
import type { BenchOptions, BenchResult } from './types.js';

const benchDir = dirname(fileURLToPath(import.meta.url));

/** One seed's run, as test/support/shadow-ledger.ts returns it (rows from `/api/savings`). */
interface SeedResult {
  convergence: Record<string, number>;
  cheapRows: Record<string, SavingsRow | undefined>;
  covered: Record<string, boolean | undefined>;
  measuredCovered: Record<string, boolean | undefined>;
}
/** test/support/shadow-ledger.ts (loaded at run time: plain Node strips its types). */
interface Runner {
  runShadowSeed(
    options: { collectorUrl: string; seed: number; requestsPerClass: number; tail: number } & {
      [setting in 'targetHalfWidth' | 'judgeAccuracy' | 'feedbackRate' | 'qualityMargin']?: number;
    } & { classes?: string[]; feedbackClasses?: string[]; cheapQuality?: Record<string, number> },
    flush: () => Promise<void>,
  ): Promise<SeedResult>;
  trueDifference(classKey: string, cheapQuality?: Record<string, number>): number;
}

/** A collector on a temporary directory and a tracer provider exporting to it over OTLP. */
async function startTelemetry() {
  const dataDir = await mkdtemp(join(tmpdir(), 'mm-shadow-bench-'));
  const collector = await startCollector({ config: { port: 0, dataDir } });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const provider = new TracerProvider({
    // The service the runner's user feedback names (POST /v1/feedback).
    resource: resourceFromAttributes({ 'service.name': 'shadowed-app' }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: `${collector.url}/v1/traces` }),
        scheduledDelayMillis: 50,
        maxQueueSize: 50_000,
        maxExportBatchSize: 2000,
      }),
    ],
  });
  trace.setGlobalTracerProvider(provider);
  return {
    url: collector.url,
    flush: () => provider.forceFlush(),
    async close() {
      await provider.shutdown();
      trace.disable();
      context.disable();
      await collector.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** What the coverage runs found over all seeds and classes. */
interface Coverage {
  intervals: number;
  covering: number;
  converged: number;
  classes: number;
  perSeed: string[];
}

/** Counts one seed's classes into `coverage`; returns the seed's line. */
function countSeed(runner: Runner, seed: number, result: SeedResult, coverage: Coverage): string {
  const parts: string[] = [];
  for (const classKey of ['easy', 'hard']) {
    coverage.classes += 1;
    if ((result.convergence[classKey] ?? 0) >= 0.8) coverage.converged += 1;
    const covered = result.covered[classKey];
    if (covered !== undefined) {
      coverage.intervals += 1;
      if (covered) coverage.covering += 1;
    }
    const quality = result.cheapRows[classKey]?.quality;
    parts.push(
      `${classKey} ${(100 * (result.convergence[classKey] ?? 0)).toFixed(0)}% right, diff ${
        quality === null || quality === undefined
          ? 'n/a'
          : `${quality.difference.toFixed(3)}±${quality.halfWidth?.toFixed(3) ?? '?'} (n ${quality.samples}, truth ${runner.trueDifference(classKey).toFixed(2)}${covered === false ? ', MISSED' : ''})`
      }`,
    );
  }
  return `seed ${seed}: ${parts.join('; ')}`;
}

/** Seeds 1..`seeds` at sample rate 1: do the intervals cover the truth, does routing converge? */
async function coverageRuns(
  runner: Runner,
  telemetry: { url: string; flush: () => Promise<void> },
  seeds: number,
): Promise<Coverage> {
  const coverage: Coverage = { intervals: 0, covering: 0, converged: 0, classes: 0, perSeed: [] };
  for (let seed = 1; seed <= seeds; seed++) {
    const result = await runner.runShadowSeed(
      { collectorUrl: telemetry.url, seed, requestsPerClass: 250, tail: 50 },
      telemetry.flush,
    );
    coverage.perSeed.push(countSeed(runner, seed, result, coverage));
  }
  console.log(coverage.perSeed.join('\n'));
  return coverage;
}

/** The judge-accuracy runs: a judge right 80% of the time, feedback on one class only. */
const JUDGE_RUN = {
  requestsPerClass: 200,
  tail: 50,
  classes: ['hard', 'json'],
  feedbackClasses: ['hard'],
  cheapQuality: { hard: 0.2, json: 0.3 },
  qualityMargin: 1,
  targetHalfWidth: 0.001,
  judgeAccuracy: 0.8,
  feedbackRate: 0.5,
};

/** Seeds 101..: corrected and measured intervals covering the truth, per class. */
async function judgeRuns(
  runner: Runner,
  telemetry: { url: string; flush: () => Promise<void> },
  seeds: number,
): Promise<BenchResult> {
  const counts = { corrected: 0, measured: 0, intervals: 0, pooled: 0 };
  const perSeed: string[] = [];
  for (let seed = 101; seed < 101 + seeds; seed++) {
    const result = await runner.runShadowSeed(
      { ...JUDGE_RUN, collectorUrl: telemetry.url, seed },
      telemetry.flush,
    );
    const parts = JUDGE_RUN.classes.map((classKey) => {
      const quality = result.cheapRows[classKey]?.quality;
      if (result.covered[classKey] === undefined || quality === null || quality === undefined) {
        return `${classKey} n/a`;
      }
      counts.intervals += 1;
      if (result.covered[classKey]) counts.corrected += 1;
      if (result.measuredCovered[classKey]) counts.measured += 1;
      if (quality.judgeAccuracy?.pooled === true && quality.corrected) counts.pooled += 1;
      const measured = quality.measured;
      return `${classKey} ${quality.difference.toFixed(3)}±${quality.halfWidth?.toFixed(3)}${quality.judgeAccuracy?.pooled ? ' (pooled)' : ''} measured ${measured.difference.toFixed(3)}±${measured.halfWidth?.toFixed(3)} (truth ${runner.trueDifference(classKey, JUDGE_RUN.cheapQuality).toFixed(2)}${result.covered[classKey] ? '' : ', MISSED'})`;
    });
    perSeed.push(`seed ${seed}: ${parts.join('; ')}`);
  }
  console.log(perSeed.join('\n'));
  const share = (count: number) => Number((count / Math.max(counts.intervals, 1)).toFixed(3));
  return {
    name: 'shadow-ledger-corrected-coverage',
    value: share(counts.corrected),
    unit: 'ratio',
    baseline: share(counts.measured),
    ratio: null,
    goal: '>= 0.9',
    notes: `${counts.corrected} of ${counts.intervals} judge-corrected 95% intervals cover the true difference (baseline: ${counts.measured} of the measured ones); judge accuracy 0.8, feedback on half the cheap answers of hard arithmetic only (cheap 0.2, truth ${runner.trueDifference('hard', JUDGE_RUN.cheapQuality).toFixed(2)}), none on hard JSON (cheap 0.3, truth ${runner.trueDifference('json', JUDGE_RUN.cheapQuality).toFixed(2)}), ${counts.pooled} rows corrected by the judge's pooled accuracy; ${seeds} seeds, ${JUDGE_RUN.requestsPerClass} requests per class. ${perSeed.join(' | ')}`,
  };
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  // The same runner as test/savings-e2e.test.ts (plain Node strips its types).
  const runner = (await import(
    pathToFileURL(join(benchDir, '..', 'test', 'support', 'shadow-ledger.ts')).href
  )) as Runner;
  const telemetry = await startTelemetry();
  try {
    const seeds = options.quick ? 5 : 20;
    const { intervals, covering, converged, classes, perSeed } = await coverageRuns(
      runner,
      telemetry,
      seeds,
    );
    const judged = await judgeRuns(runner, telemetry, seeds);
    return [
      {
        name: 'shadow-ledger-coverage',
        value: Number((covering / Math.max(intervals, 1)).toFixed(3)),
        unit: 'ratio',
        baseline: null,
        ratio: null,
        goal: '>= 0.9',
        notes: `${covering} of ${intervals} 95% intervals (cheap model per class, ${seeds} seeds, 250 requests per class, judge accuracy 1, sample rate 1, target ±0.05) cover the true difference (easy ${runner.trueDifference('easy').toFixed(2)}, hard ${runner.trueDifference('hard').toFixed(2)}). ${perSeed.join(' | ')}`,
      },
      {
        name: 'shadow-ledger-convergence',
        value: Number((converged / classes).toFixed(3)),
        unit: 'ratio',
        baseline: null,
        ratio: null,
        goal: '>= 1',
        notes: `(seed, class) pairs where the right model (easy: gpt-4o-mini, hard: gpt-4o) answered >= 80% of the last 50 requests; judge verdicts are the only quality signal.`,
      },
      judged,
    ];
  } finally {
    await telemetry.close();
  }
}
