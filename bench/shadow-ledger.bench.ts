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
 * - `shadow-spend-share`: (shadow + judge spend) ÷ app spend of a longer run with the default
 *   sample rate (0.2) and a ±2-point target half-width. Goal <= 0.05.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { startCollector } from '@modelmaxx/collector';
import type { SavingsRow } from '@modelmaxx/collector';
import type { ShadowStats } from '@modelmaxx/router';
import type { BenchOptions, BenchResult } from './types.js';

const benchDir = dirname(fileURLToPath(import.meta.url));

/** One seed's run, as test/support/shadow-ledger.ts returns it (rows from `/api/savings`). */
interface SeedResult {
  convergence: Record<string, number>;
  cheapRows: Record<string, SavingsRow | undefined>;
  covered: Record<string, boolean | undefined>;
  stats: ShadowStats;
  rows: SavingsRow[];
  appUsd: number;
}
/** test/support/shadow-ledger.ts (loaded at run time: plain Node strips its types). */
interface Runner {
  runShadowSeed(
    options: { collectorUrl: string; seed: number; requestsPerClass: number; tail: number } & {
      [setting in 'sampleRate' | 'targetHalfWidth']?: number;
    },
    flush: () => Promise<void>,
  ): Promise<SeedResult>;
  trueDifference(classKey: string): number;
}

/** A collector on a temporary directory and a tracer provider exporting to it over OTLP. */
async function startTelemetry() {
  const dataDir = await mkdtemp(join(tmpdir(), 'mm-shadow-bench-'));
  const collector = await startCollector({ config: { port: 0, dataDir } });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const provider = new TracerProvider({
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

/** The spend share of a longer run at the default sample rate and a ±2-point target. */
function spendShareResult(long: SeedResult, requests: number): BenchResult {
  const evaluationUsd = long.stats.shadowUsd + long.stats.judgeUsd;
  const share = evaluationUsd / long.appUsd;
  const easy = long.cheapRows['easy']?.quality;
  const estimates = long.stats.estimates
    .map(
      (estimate) =>
        `${estimate.classKey}: n ${estimate.samples}, ±${estimate.halfWidth.toFixed(3)}, ${estimate.state}`,
    )
    .join('; ');
  console.log(`spend share run: ${JSON.stringify(long.rows)}`);
  return {
    name: 'shadow-spend-share',
    value: Number(share.toFixed(4)),
    unit: 'ratio',
    baseline: null,
    ratio: null,
    goal: '<= 0.05',
    notes: `(shadow $${long.stats.shadowUsd.toFixed(4)} + judge $${long.stats.judgeUsd.toFixed(4)}) ÷ app $${long.appUsd.toFixed(4)} over ${requests} requests per class (sample rate 0.2, target ±0.02, monitor rate 0.01); easy-class ledger interval ${easy === null || easy === undefined ? 'n/a' : `${easy.difference.toFixed(3)}±${easy.halfWidth?.toFixed(3)} (n ${easy.samples})`}; monitor: ${estimates}. The reference (gpt-4o) costs ~16x the cheap model per call, so each shadow costs ~17 cheap calls: the share falls as traffic grows past the samples a ±2-point interval needs.`,
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
    const requests = options.quick ? 600 : 2500;
    const long = await runner.runShadowSeed(
      {
        collectorUrl: telemetry.url,
        seed: 101,
        requestsPerClass: requests,
        tail: 200,
        sampleRate: 0.2,
        targetHalfWidth: 0.02,
      },
      telemetry.flush,
    );
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
      spendShareResult(long, requests),
    ];
  } finally {
    await telemetry.close();
  }
}
