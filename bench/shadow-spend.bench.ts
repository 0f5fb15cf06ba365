/**
 * `shadow-spend-share` on the demo's traffic: `modelmaxx demo` (three services, eight task
 * classes, three candidate models routed by the `demo` policy, a fifth of the cheaper calls
 * shadowed against gpt-4o and judged pairwise, user feedback on a quarter of the answers) with
 * llm-sim latency 0 and no simulated failures (a 429's one-second cooldown would cover
 * hundreds of requests), into a collector on the embedded ClickHouse. The share is the savings
 * ledger's `evaluationShare` ((shadow + judge spend) ÷ the routed calls' spend), read as of the
 * V-th routed call for growing V from the same run (`savingsLedger` with `now` at that call), with
 * the total quality difference's 95% half-width reached by then (as measured by the verdicts,
 * and corrected for the judge where feedback measures it). The demo's default 300 requests give
 * about 250 routed calls: the first volume.
 *
 * Three configurations, each its own run and collector, the three services' routers sharing one
 * stop rule (as the demo does): `before`, the demo's previous shadow settings (`allocation:
 * 'class'`: per class and model, sampling stops at ±2 points; no reference cache; the judge
 * gpt-4o-mini); `after`, the demo's defaults since
 * (`allocation: 'total'`: ±2 points on the policy's traffic-weighted difference, shadows
 * spread over classes by Neyman allocation, calls whose verdict needs a reference call sampled
 * less where counterfactual shadows can give it; `referenceCache`: a repeated prompt is judged
 * against the kept reference answer); and `exploring`, `after` as it was before counterfactual
 * shadows (`counterfactual: false`, `explore: 0.5`, the previous defaults). The value is the
 * `after` share at the largest volume, the baseline the `before` one; the notes give the curves,
 * where the measured interval first reaches ±2 points and where `after` falls below 0.05.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDemo } from '@modelmaxx/cli';
import { savingsLedger, startCollector } from '@modelmaxx/collector';
import type { BenchOptions, BenchResult } from './types.js';

/** A demo configuration: changes to the policy's shadow settings and the judge model. */
interface Configuration {
  name: string;
  shadow: Record<string, unknown>;
  judgeModel?: string;
}

/** The ledger's figures as of one volume (routed calls). */
interface Point {
  calls: number;
  share: number;
  verdicts: number;
  /** 95% half-width of the total difference as the verdicts measure it, and as corrected. */
  measured: number | null;
  corrected: number | null;
}

const VOLUMES = [250, 500, 1000, 2000, 4000, 8000, 16000, 24000, 32000];

/** The ledger total as of the `volume`-th routed call of the run (undefined past the last). */
async function pointAt(
  store: Parameters<typeof savingsLedger>[0] & { database: string },
  volume: number,
): Promise<Point | undefined> {
  const { data } = await store.query<{ at: string }>(
    `SELECT toUnixTimestamp64Milli(Timestamp) AS at FROM ${store.database}.llm_calls
     WHERE Purpose = 'app' AND RoutePolicy = 'demo' ORDER BY Timestamp LIMIT 1 OFFSET {offset:UInt64}`,
    { offset: volume - 1 },
  );
  if (data[0] === undefined) return undefined;
  const { total } = await savingsLedger(
    store,
    { window: '1h', groupBy: [] },
    { database: store.database, now: Number(data[0].at) },
  );
  const quality = total.quality;
  return {
    calls: total.calls,
    share: total.evaluationShare,
    verdicts: quality?.samples ?? 0,
    measured: quality?.measured.halfWidth ?? null,
    corrected: quality?.corrected === true ? quality.halfWidth : null,
  };
}

/** One demo run of `requests` requests in a collector of its own; the ledger at each volume. */
async function demoRun(configuration: Configuration, requests: number): Promise<Point[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mm-shadow-spend-'));
  const collector = await startCollector({ config: { port: 0, dataDir } });
  try {
    await runDemo({
      url: collector.url,
      requests,
      exit: true,
      seed: 1,
      latencyScale: 0,
      // Without latency a 429's one-second cooldown covers hundreds of requests: no failures.
      failures: false,
      // Without latency the traffic outruns the exporters' default queue: no span may be dropped.
      exportQueueSize: 1_000_000,
      shadow: configuration.shadow,
      ...(configuration.judgeModel === undefined ? {} : { judgeModel: configuration.judgeModel }),
      stdout: () => undefined,
    });
    const { data } = await collector.store.query<{ n: string }>(
      `SELECT count() AS n FROM ${collector.store.database}.llm_calls WHERE Purpose = 'app' AND RoutePolicy = 'demo'`,
    );
    const routed = Number(data[0]?.n ?? 0);
    const points: Point[] = [];
    // The volumes the run passed, and the whole run.
    for (const volume of [...VOLUMES.filter((volume) => volume < routed), routed]) {
      const point = await pointAt(collector.store, volume);
      if (point !== undefined) points.push(point);
    }
    return points;
  } finally {
    await collector.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const width = (value: number | null) => (value === null ? 'n/a' : `±${value.toFixed(3)}`);

function describe(points: readonly Point[]): string {
  return points
    .map(
      (point) =>
        `${point.calls} calls: ${point.share.toFixed(3)} (${point.verdicts} verdicts, ${width(point.measured)} measured, ${width(point.corrected)} corrected)`,
    )
    .join('; ');
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const requests = options.quick ? 3000 : 40_000;
  const configurations: Configuration[] = [
    // The demo's settings until 2026-12-07 (per class and model, no reference cache).
    { name: 'before', shadow: { allocation: 'class', referenceCache: 0 } },
    // The demo's defaults (`modelmaxx demo`: allocation 'total', referenceCache 5000).
    { name: 'after', shadow: {} },
    { name: 'exploring', shadow: { counterfactual: false, explore: 0.5 } },
  ];
  const curves = new Map<string, Point[]>();
  for (const configuration of configurations) {
    const points = await demoRun(configuration, requests);
    curves.set(configuration.name, points);
    console.log(`shadow-spend-share ${configuration.name}: ${describe(points)}`);
  }
  const before = curves.get('before')!;
  const after = curves.get('after')!;
  const last = after.at(-1)!;
  const below = after.find((point) => point.share <= 0.05);
  const tight = (points: readonly Point[]) => {
    const point = points.find((each) => each.measured !== null && each.measured <= 0.02);
    return point === undefined
      ? 'not reached'
      : `${point.calls} calls, share ${point.share.toFixed(3)}`;
  };
  return [
    {
      name: 'shadow-spend-share',
      value: Number(last.share.toFixed(4)),
      unit: 'ratio',
      baseline: before.length > 0 ? Number(before.at(-1)!.share.toFixed(4)) : null,
      ratio: null,
      goal: '<= 0.05',
      notes: `modelmaxx demo traffic (${requests} requests, llm-sim latency 0), (shadow + judge spend) ÷ routed spend as of the V-th routed call. after (the demo's defaults: allocation 'total', referenceCache): ${describe(after)}. ${below === undefined ? 'Not below 0.05 in this run.' : `Below 0.05 from ${below.calls} routed calls (total interval ${width(below.measured)} measured, ${width(below.corrected)} corrected).`} before (the demo's previous settings: allocation 'class', per class ±0.02): ${describe(before)}. exploring (after with counterfactual: false, explore 0.5): ${describe(curves.get('exploring')!)}. Measured interval first ±0.02: after ${tight(after)}; exploring ${tight(curves.get('exploring')!)}; before ${tight(before)}. The demo's default 300 requests are the first volume.`,
    },
  ];
}
