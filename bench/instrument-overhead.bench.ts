/**
 * Per-call overhead of `@modelmaxx/instrument` on `chat.completions.create`, against the bare SDK,
 * against the same patch installed through `@opentelemetry/instrumentation`'s `InstrumentationBase`
 * (instrumentation-base-prototype.ts) and against `@opentelemetry/instrumentation-openai`, all
 * calling llm-sim (latency 0) on loopback. The client runs in child processes (overhead-child.ts)
 * with four independent copies of openai, interleaved in short blocks; overheads are medians of
 * per-block differences to the bare copy.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startLlmSim } from '@modelmaxx/llm-sim';
import { PROTOTYPE_SCOPE } from './instrumentation-base-prototype.ts';
import type { BenchOptions, BenchResult } from './types.js';

const execFileAsync = promisify(execFile);
const benchDir = dirname(fileURLToPath(import.meta.url));
type Variant = 'bare' | 'ours' | 'base' | 'contrib';
const INSTRUMENTED = ['ours', 'base', 'contrib'] as const;
type Instrumented = (typeof INSTRUMENTED)[number];

interface ChildResult {
  blockMeansUs: Record<Variant, number[]>;
  blockCpuUs: Record<Variant, number[]>;
  stubbed: { blockMeansUs: Record<Variant, number[]>; blockCpuUs: Record<Variant, number[]> };
  callsPerVariant: number;
  spans: Record<string, number>;
}

const EXPECTED_SCOPES: Record<Instrumented, string> = {
  ours: '@modelmaxx/instrument',
  base: PROTOTYPE_SCOPE,
  contrib: '@opentelemetry/instrumentation-openai',
};

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? NaN)
    : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2;
}

async function runChild(
  baseURL: string,
  blocks: number,
  callsPerBlock: number,
  warmup: number,
): Promise<ChildResult> {
  const { stdout } = await execFileAsync(
    process.execPath,
    [
      join(benchDir, 'overhead-child.ts'),
      baseURL,
      String(blocks),
      String(callsPerBlock),
      String(warmup),
    ],
    {
      cwd: benchDir,
      env: { ...process.env, OTEL_SDK_DISABLED: undefined, NODE_OPTIONS: undefined },
      maxBuffer: 16 << 20,
    },
  );
  const line = stdout.trim().split('\n').at(-1) ?? '';
  const result = JSON.parse(line) as ChildResult;
  for (const [variant, scope] of Object.entries(EXPECTED_SCOPES)) {
    // Each instrumented copy must really have produced one span per call, or the numbers mean nothing.
    if (result.spans[scope] !== result.callsPerVariant) {
      throw new Error(
        `${variant}: ${result.spans[scope] ?? 0} spans from ${scope}, expected ${result.callsPerVariant}`,
      );
    }
  }
  return result;
}

/** What one series measures: loopback wall time, loopback client CPU, stubbed-fetch client CPU. */
type Series = 'wall' | 'cpu' | 'stub';
const SERIES: readonly Series[] = ['wall', 'cpu', 'stub'];

function seriesOf(result: ChildResult, series: Series): Record<Variant, number[]> {
  if (series === 'wall') return result.blockMeansUs;
  return series === 'cpu' ? result.blockCpuUs : result.stubbed.blockCpuUs;
}

/** Per-block figures of one series, pooled over the child processes. */
interface Pooled {
  bare: number[];
  /** Per block: the variant's µs minus the bare copy's. */
  added: Record<Instrumented, number[]>;
  /** Per block: the InstrumentationBase prototype's µs minus ours (paired in the same block). */
  baseMinusOurs: number[];
}

function emptyPooled(): Pooled {
  return { bare: [], added: { ours: [], base: [], contrib: [] }, baseMinusOurs: [] };
}

function pool(into: Pooled, perVariant: Record<Variant, number[]>): void {
  perVariant.bare.forEach((bareUs, block) => {
    into.bare.push(bareUs);
    for (const variant of INSTRUMENTED)
      into.added[variant].push((perVariant[variant][block] ?? NaN) - bareUs);
    into.baseMinusOurs.push((perVariant.base[block] ?? NaN) - (perVariant.ours[block] ?? NaN));
  });
}

/** Medians of a pooled series: bare µs, each variant's added µs, and base − ours. */
interface Summary {
  bare: number;
  added: Record<Instrumented, number>;
  baseMinusOurs: number;
}

function summarize(pooled: Pooled): Summary {
  return {
    bare: median(pooled.bare),
    added: {
      ours: median(pooled.added.ours),
      base: median(pooled.added.base),
      contrib: median(pooled.added.contrib),
    },
    baseMinusOurs: median(pooled.baseMinusOurs),
  };
}

const us = (value: number): string => value.toFixed(1);

function seriesNote(label: string, summary: Summary): string {
  const { bare, added } = summary;
  return `${label}: bare ${us(bare)} µs/call, ours +${us(added.ours)} µs (÷ bare ${(added.ours / bare).toFixed(3)}), InstrumentationBase prototype +${us(added.base)} µs (paired base − ours ${us(summary.baseMinusOurs)} µs = ${((100 * summary.baseMinusOurs) / added.ours).toFixed(1)}% of ours), contrib +${us(added.contrib)} µs (ours ÷ contrib ${(added.ours / added.contrib).toFixed(3)}).`;
}

async function measureAll(
  processes: number,
  blocks: number,
  warmup: number,
): Promise<Record<Series, Summary>> {
  const pooled: Record<Series, Pooled> = {
    wall: emptyPooled(),
    cpu: emptyPooled(),
    stub: emptyPooled(),
  };
  const sim = await startLlmSim({ latencyScale: 0 });
  try {
    for (let index = 0; index < processes; index += 1) {
      const result = await runChild(sim.openaiBaseURL, blocks, CALLS_PER_BLOCK, warmup);
      for (const series of SERIES) pool(pooled[series], seriesOf(result, series));
      const wall = result.blockMeansUs;
      console.log(
        `  process ${index + 1}/${processes}: median per call: bare ${us(median(wall.bare))} µs, ours ${us(median(wall.ours))} µs, base ${us(median(wall.base))} µs, contrib ${us(median(wall.contrib))} µs`,
      );
    }
  } finally {
    await sim.close();
  }
  return { wall: summarize(pooled.wall), cpu: summarize(pooled.cpu), stub: summarize(pooled.stub) };
}

const CALLS_PER_BLOCK = 20;

export async function run({ quick }: BenchOptions): Promise<BenchResult[]> {
  const processes = quick ? 1 : 3;
  const blocks = quick ? 40 : 100;
  const warmup = quick ? 150 : 300;
  const { wall, cpu, stub } = await measureAll(processes, blocks, warmup);
  const setting = `${processes} process(es) × ${blocks} blocks × ${CALLS_PER_BLOCK} sequential calls per variant (+${warmup} warm-up), the four variants (bare, ours, InstrumentationBase prototype, contrib) as separate copies of openai 7.x in one client process, blocks interleaved in rotating order; llm-sim latencyScale 0 on loopback in another process; spans through a BatchSpanProcessor into a counting no-op exporter (one span per call checked); medians of per-block differences`;
  const notes = [
    seriesNote('Loopback wall time', wall),
    seriesNote('Client-process CPU time (less sensitive to load elsewhere)', cpu),
    seriesNote(
      "CPU time with an in-process fetch stub returning the simulator's recorded response (client work only, no sockets)",
      stub,
    ),
  ].join(' ');
  const oursUs = wall.added.ours;
  return [
    {
      name: 'instrument-overhead-vs-contrib',
      value: oursUs,
      unit: 'µs/call',
      baseline: wall.added.contrib,
      ratio: wall.added.contrib > 0 ? oursUs / wall.added.contrib : null,
      goal: '<= 0.33',
      notes: `our added µs per chat call ÷ @opentelemetry/instrumentation-openai 0.22's added µs (applied with its own module definition's patch(), since it declares openai <7). ${setting}. ${notes}`,
    },
    {
      name: 'instrument-overhead-vs-bare',
      value: oursUs,
      unit: 'µs/call',
      baseline: wall.bare,
      ratio: oursUs / wall.bare,
      goal: '<= 0.06',
      notes: `our added µs per chat call ÷ the bare openai SDK call (median ${us(wall.bare)} µs). ${setting}. ${notes}`,
    },
    {
      name: 'instrument-overhead-instrumentation-base',
      value: stub.added.ours + stub.baseMinusOurs,
      unit: 'µs/call',
      baseline: stub.added.ours,
      ratio: stub.added.ours > 0 ? 1 + stub.baseMinusOurs / stub.added.ours : null,
      goal: '<= 1.05',
      notes: `client CPU µs added per chat call by our patch installed through InstrumentationBase (module definition + require-in-the-middle + _wrap), as ours + the median paired per-block difference base − ours, ÷ ours (instrumentOpenAI), with the in-process fetch stub (client work only). ${setting}. ${notes}`,
    },
  ];
}
