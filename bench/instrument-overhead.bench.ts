/**
 * Per-call overhead of `@modelmaxx/instrument` on `chat.completions.create`, against the bare SDK
 * and against `@opentelemetry/instrumentation-openai`, all calling llm-sim (latency 0) on loopback.
 * The client runs in child processes (overhead-child.ts) with three independent copies of openai,
 * interleaved in short blocks; overheads are medians of per-block differences to the bare copy.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { BenchOptions, BenchResult } from './types.js';

const execFileAsync = promisify(execFile);
const benchDir = dirname(fileURLToPath(import.meta.url));
type Variant = 'bare' | 'ours' | 'contrib';

interface ChildResult {
  blockMeansUs: Record<Variant, number[]>;
  blockCpuUs: Record<Variant, number[]>;
  stubbed: { blockMeansUs: Record<Variant, number[]>; blockCpuUs: Record<Variant, number[]> };
  callsPerVariant: number;
  spans: Record<string, number>;
}

const EXPECTED_SCOPES: Record<Exclude<Variant, 'bare'>, string> = {
  ours: '@modelmaxx/instrument',
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

export async function run({ quick }: BenchOptions): Promise<BenchResult[]> {
  const processes = quick ? 1 : 3;
  const blocks = quick ? 40 : 100;
  const callsPerBlock = 20;
  const warmup = quick ? 150 : 300;
  const sim = await startLlmSim({ latencyScale: 0 });
  const bare: number[] = [];
  const oursAdded: number[] = [];
  const contribAdded: number[] = [];
  const bareCpu: number[] = [];
  const oursCpuAdded: number[] = [];
  const contribCpuAdded: number[] = [];
  const stubBare: number[] = [];
  const stubOursAdded: number[] = [];
  const stubContribAdded: number[] = [];
  try {
    for (let index = 0; index < processes; index += 1) {
      const { blockMeansUs, blockCpuUs, stubbed } = await runChild(
        sim.openaiBaseURL,
        blocks,
        callsPerBlock,
        warmup,
      );
      for (let block = 0; block < blocks; block += 1) {
        const bareUs = blockMeansUs.bare[block] ?? NaN;
        bare.push(bareUs);
        oursAdded.push((blockMeansUs.ours[block] ?? NaN) - bareUs);
        contribAdded.push((blockMeansUs.contrib[block] ?? NaN) - bareUs);
        const bareCpuUs = blockCpuUs.bare[block] ?? NaN;
        bareCpu.push(bareCpuUs);
        oursCpuAdded.push((blockCpuUs.ours[block] ?? NaN) - bareCpuUs);
        contribCpuAdded.push((blockCpuUs.contrib[block] ?? NaN) - bareCpuUs);
        const stubBareUs = stubbed.blockCpuUs.bare[block] ?? NaN;
        stubBare.push(stubBareUs);
        stubOursAdded.push((stubbed.blockCpuUs.ours[block] ?? NaN) - stubBareUs);
        stubContribAdded.push((stubbed.blockCpuUs.contrib[block] ?? NaN) - stubBareUs);
      }
      console.log(
        `  process ${index + 1}/${processes}: median per call: bare ${median(blockMeansUs.bare).toFixed(1)} µs, ours ${median(blockMeansUs.ours).toFixed(1)} µs, contrib ${median(blockMeansUs.contrib).toFixed(1)} µs`,
      );
    }
  } finally {
    await sim.close();
  }
  const bareUs = median(bare);
  const oursAddedUs = median(oursAdded);
  const contribAddedUs = median(contribAdded);
  const cpu = {
    bare: median(bareCpu),
    ours: median(oursCpuAdded),
    contrib: median(contribCpuAdded),
  };
  const stub = {
    bare: median(stubBare),
    ours: median(stubOursAdded),
    contrib: median(stubContribAdded),
  };
  const stubNote = `With an in-process fetch stub returning the simulator's recorded response (client work only, no sockets), CPU time: bare ${stub.bare.toFixed(1)} µs/call, ours +${stub.ours.toFixed(1)} µs, contrib +${stub.contrib.toFixed(1)} µs (ours ÷ contrib ${(stub.ours / stub.contrib).toFixed(3)}).`;
  const cpuNote = `Client-process CPU time (less sensitive to load elsewhere): bare ${cpu.bare.toFixed(1)} µs/call, ours +${cpu.ours.toFixed(1)} µs, contrib +${cpu.contrib.toFixed(1)} µs (ours ÷ contrib ${(cpu.ours / cpu.contrib).toFixed(3)}, ours ÷ bare wall ${(cpu.ours / bareUs).toFixed(3)}).`;
  const setting = `${processes} process(es) × ${blocks} blocks × ${callsPerBlock} sequential calls per variant (+${warmup} warm-up), the three variants (bare, ours, contrib) as separate copies of openai ${'7.x'} in one client process, blocks interleaved in rotating order; llm-sim latencyScale 0 on loopback in another process; spans through a BatchSpanProcessor into a counting no-op exporter (one span per call checked); medians of per-block differences`;
  return [
    {
      name: 'instrument-overhead-vs-contrib',
      value: oursAddedUs,
      unit: 'µs/call',
      baseline: contribAddedUs,
      ratio: contribAddedUs > 0 ? oursAddedUs / contribAddedUs : null,
      goal: '<= 0.33',
      notes: `our added µs per chat call ÷ @opentelemetry/instrumentation-openai 0.22's added µs (applied with its own module definition's patch(), since it declares openai <7). ${setting}. ${cpuNote} ${stubNote}`,
    },
    {
      name: 'instrument-overhead-vs-bare',
      value: oursAddedUs,
      unit: 'µs/call',
      baseline: bareUs,
      ratio: oursAddedUs / bareUs,
      goal: '<= 0.06',
      notes: `our added µs per chat call ÷ the bare openai SDK call (median ${bareUs.toFixed(1)} µs). ${setting}. ${cpuNote} ${stubNote}`,
    },
  ];
}
