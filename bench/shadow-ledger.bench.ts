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
import type { BenchOptions, BenchResult } from './types.js';

const benchDir = dirname(fileURLToPath(import.meta.url));

interface Quality {
  difference: number;
  halfWidth: number | null;
  low: number | null;
  high: number | null;
  samples: number;
}
interface SeedResult {
  seed: number;
  convergence: Record<string, number>;
  cheapRows: Record<string, { quality: Quality | null } | undefined>;
  covered: Record<string, boolean | undefined>;
  stats: {
    shadowUsd: number;
    judgeUsd: number;
    judged: number;
    estimates: { classKey: string; halfWidth: number; samples: number; state: string }[];
  };
  rows: { class?: string; model?: string; spendUsd: number; shadowUsd: number; judgeUsd: number }[];
  appUsd: number;
}
interface Runner {
  runShadowSeed(
    options: {
      collectorUrl: string;
      seed: number;
      requestsPerClass: number;
      tail: number;
      sampleRate?: number;
      targetHalfWidth?: number;
    },
    flush: () => Promise<void>,
  ): Promise<SeedResult>;
  trueDifference(classKey: string): number;
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  // The same runner as test/savings-e2e.test.ts (plain Node strips its types).
  const runner = (await import(
    pathToFileURL(join(benchDir, '..', 'test', 'support', 'shadow-ledger.ts')).href
  )) as Runner;
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
  const flush = () => provider.forceFlush();
  try {
    const seeds = options.quick ? 5 : 20;
    const perSeed: string[] = [];
    let intervals = 0;
    let covering = 0;
    let converged = 0;
    let classes = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const result = await runner.runShadowSeed(
        { collectorUrl: collector.url, seed, requestsPerClass: 250, tail: 50 },
        flush,
      );
      const parts: string[] = [];
      for (const classKey of ['easy', 'hard']) {
        classes += 1;
        if ((result.convergence[classKey] ?? 0) >= 0.8) converged += 1;
        const covered = result.covered[classKey];
        if (covered !== undefined) {
          intervals += 1;
          if (covered) covering += 1;
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
      perSeed.push(`seed ${seed}: ${parts.join('; ')}`);
    }
    console.log(perSeed.join('\n'));

    // Spend share: a longer run at the default sample rate and a ±2-point target.
    const requests = options.quick ? 600 : 2500;
    const long = await runner.runShadowSeed(
      {
        collectorUrl: collector.url,
        seed: 101,
        requestsPerClass: requests,
        tail: 200,
        sampleRate: 0.2,
        targetHalfWidth: 0.02,
      },
      flush,
    );
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
      {
        name: 'shadow-spend-share',
        value: Number(share.toFixed(4)),
        unit: 'ratio',
        baseline: null,
        ratio: null,
        goal: '<= 0.05',
        notes: `(shadow $${long.stats.shadowUsd.toFixed(4)} + judge $${long.stats.judgeUsd.toFixed(4)}) ÷ app $${long.appUsd.toFixed(4)} over ${requests} requests per class (sample rate 0.2, target ±0.02, monitor rate 0.01); easy-class ledger interval ${easy === null || easy === undefined ? 'n/a' : `${easy.difference.toFixed(3)}±${easy.halfWidth?.toFixed(3)} (n ${easy.samples})`}; monitor: ${estimates}. The reference (gpt-4o) costs ~16x the cheap model per call, so each shadow costs ~17 cheap calls: the share falls as traffic grows past the samples a ±2-point interval needs.`,
      },
    ];
  } finally {
    await provider.shutdown();
    trace.disable();
    context.disable();
    await collector.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
