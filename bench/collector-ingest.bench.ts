/**
 * OTLP/protobuf ingest end to end into the embedded ClickHouse, against a raw insert of the same
 * rows into the same engine, measured in the same run:
 * - spans like the instrumentation's (~25 attributes, an evaluation event on every third) are
 *   encoded once to OTLP protobuf `ExportTraceServiceRequest` bodies (hand-encoded with the tests'
 *   protobuf writer, decoded by the collector's own decoder, so the two sides share no code);
 * - baseline (child process, fresh data folder): the same rows encoded as the collector encodes
 *   them (ClickHouse Native blocks, one per request), inserted from files with
 *   `ClickHouseStore.engine.insert` into `otel_traces` (materialized views included, exactly what
 *   the collector inserts into) in 100k-row batches → rows/s;
 * - end to end (the standalone collector `collector/dist/main.js` as a child process, fresh data
 *   folder): the bodies POSTed to `/v1/traces` with a few requests in flight (429/503 answered
 *   by waiting Retry-After, like an exporter) until `/metrics` says every span is in ClickHouse
 *   → spans/s; peak RSS of the collector process (`VmHWM`).
 * The request bodies are `collector-ingest-requests.ts`, the baseline child `collector-ingest-child.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeRequest, packBodies } from './collector-ingest-requests.ts';
import { memoryMb, peakRssMb } from './proc-status.ts';
import type { BenchOptions, BenchResult } from './types.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const COLLECTOR_MAIN = join(benchDir, '..', 'collector', 'dist', 'main.js');
const CHILD = join(benchDir, 'collector-ingest-child.ts');

interface RawResult {
  rows: number;
  stored: number;
  calls: number;
  ms: number;
  batches: number;
  peakRssMb: number;
}

function runRawChild(bodiesFile: string, dataDir: string): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, bodiesFile, dataDir], {
      cwd: benchDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`raw insert child exited ${code}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as RawResult);
    });
  });
}

interface EndToEndResult {
  spans: number;
  ms: number;
  stored: number;
  calls: number;
  refusals: number;
  peakRssMb: number;
  batches: number;
  batchSeconds: number;
  idleRssMb: number;
  anonMb: number;
  fileMb: number;
  /** CPU time of this process (the load generator) while sending, per span. */
  senderCpuUsPerSpan: number;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

async function sqlCount(url: string, table: string): Promise<number> {
  const response = await fetch(`${url}/api/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sql: `SELECT count() AS rows FROM modelmaxx.${table}` }),
  });
  const body = (await response.json()) as { rows: { rows: string | number }[] };
  return Number(body.rows[0]?.rows);
}

/** One POST of an OTLP/protobuf body: its status and `Retry-After`. */
function post(
  url: URL,
  body: Buffer,
  agent: Agent,
): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length },
      },
      (response) => {
        response.resume();
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            retryAfter: response.headers['retry-after'],
          }),
        );
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

interface Collector {
  child: ChildProcess;
  url: string;
}

/** The standalone collector as a child process with a fresh data folder; resolves once it listens. */
async function startCollector(dataDir: string): Promise<Collector> {
  // MODELMAXX_BENCH_CPU_PROF=DIR: a V8 CPU profile of the collector process (JS side only).
  const profile = process.env['MODELMAXX_BENCH_CPU_PROF'];
  const child = spawn(
    process.execPath,
    [
      ...(profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profile]),
      COLLECTOR_MAIN,
      '--port',
      '0',
      '--data',
      dataDir,
      '--log-level',
      'info',
    ],
    { cwd: benchDir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: string) => {
    if (output.length < 1_000_000) output += chunk;
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const deadline = Date.now() + 60_000;
      const poll = setInterval(() => {
        const match = /"url":"(http:\/\/[^"]+)".*"msg":"collector listening"/.exec(output);
        if (match !== null) {
          clearInterval(poll);
          resolve(match[1]!);
        } else if (Date.now() > deadline || child.exitCode !== null) {
          clearInterval(poll);
          reject(new Error(`the collector did not start\n${output}`));
        }
      }, 20);
    });
    return { child, url };
  } catch (error) {
    await stopCollector(child);
    throw error;
  }
}

async function stopCollector(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await new Promise((resolve) => {
    if (child.exitCode !== null) resolve(undefined);
    else child.on('exit', resolve);
  });
}

/**
 * POSTs every body with `concurrency` requests in flight, waiting `Retry-After` on 429/503 like
 * an exporter. Returns the refusals and this process's CPU time while sending.
 */
async function sendAll(
  url: string,
  bodies: Buffer[],
  concurrency: number,
): Promise<{ refusals: number; cpuUs: number }> {
  let next = 0;
  let refusals = 0;
  // node:http with keep-alive, as the OTLP/HTTP exporters send in Node: the load generator
  // shares the two cores with the collector, so it should cost as little as it can.
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const tracesUrl = new URL('/v1/traces', url);
  const cpuStarted = process.cpuUsage();
  const sender = async () => {
    while (next < bodies.length) {
      const body = bodies[next++]!;
      for (;;) {
        const { status, retryAfter } = await post(tracesUrl, body, agent);
        if (status === 200) break;
        if (status !== 429 && status !== 503) throw new Error(`/v1/traces answered ${status}`);
        refusals += 1;
        await new Promise((resolve) => setTimeout(resolve, Number(retryAfter ?? 1) * 1000));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, sender));
  } finally {
    agent.destroy();
  }
  const cpu = process.cpuUsage(cpuStarted);
  return { refusals, cpuUs: cpu.user + cpu.system };
}

async function endToEnd(
  bodies: Buffer[],
  spans: number,
  dataDir: string,
  concurrency: number,
): Promise<EndToEndResult> {
  const { child, url } = await startCollector(dataDir);
  try {
    const pid = child.pid!;
    const idleRssMb = memoryMb(pid, 'VmRSS');
    const started = performance.now();
    const { refusals, cpuUs } = await sendAll(url, bodies, concurrency);
    while ((await metric(url, 'modelmaxx_spans_stored_total')) < spans) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const ms = performance.now() - started;
    return {
      spans,
      ms,
      stored: await sqlCount(url, 'otel_traces'),
      calls: await sqlCount(url, 'llm_calls'),
      refusals,
      peakRssMb: peakRssMb(pid),
      batches: await metric(url, 'modelmaxx_batch_duration_seconds_count'),
      batchSeconds: await metric(url, 'modelmaxx_batch_duration_seconds_sum'),
      idleRssMb,
      anonMb: memoryMb(pid, 'RssAnon'),
      fileMb: memoryMb(pid, 'RssFile'),
      senderCpuUsPerSpan: cpuUs / spans,
    };
  } finally {
    await stopCollector(child);
  }
}

function results(raw: RawResult, e2e: EndToEndResult, setup: string): BenchResult[] {
  const rawRate = raw.rows / (raw.ms / 1000);
  const e2eRate = e2e.spans / (e2e.ms / 1000);
  return [
    {
      name: 'collector-ingest-vs-raw',
      value: e2eRate,
      unit: 'spans/s',
      baseline: rawRate,
      ratio: e2eRate / rawRate,
      goal: '>= 0.8',
      notes: `end-to-end spans/s (POST /v1/traces to the standalone collector until /metrics counts every span stored) ÷ raw Native insert rows/s of the same decoded rows (${raw.batches} batches of up to 100k) into the same schema in a separate process. ${setup}; ${e2e.refusals} requests answered 429/503 and retried after Retry-After; the load generator (node:http, keep-alive) used ${e2e.senderCpuUsPerSpan.toFixed(1)} µs of CPU a span on the same machine.`,
    },
    {
      name: 'collector-ingest-spans-per-s',
      value: e2eRate,
      unit: 'spans/s',
      baseline: null,
      ratio: null,
      goal: '>= 100000',
      notes: `${setup}. ${e2e.spans} spans in ${(e2e.ms / 1000).toFixed(1)} s; the collector made ${e2e.batches} ClickHouse inserts (mean ${((e2e.batchSeconds / e2e.batches) * 1000).toFixed(0)} ms, ${(e2e.spans / e2e.batches).toFixed(0)} rows each) against the baseline's ${raw.batches} (mean ${(raw.ms / raw.batches).toFixed(0)} ms).`,
    },
    {
      name: 'collector-peak-rss-mb',
      value: e2e.peakRssMb,
      unit: 'MB',
      baseline: raw.peakRssMb,
      ratio: null,
      goal: '< 300',
      notes: `VmHWM of the collector process after the end-to-end run; baseline = VmHWM of the raw-insert process (100k-row batches). The collector's RSS right after start, before any span: ${e2e.idleRssMb.toFixed(0)} MB; at the end ${e2e.anonMb.toFixed(0)} MB anonymous + ${e2e.fileMb.toFixed(0)} MB file-backed (code pages of the 566 MB libchdb.so count as RSS).`,
    },
  ];
}

export async function run({ quick }: BenchOptions): Promise<BenchResult[]> {
  const spans = quick ? 12_000 : 400_000;
  const perRequest = 500;
  const concurrency = 4;
  const work = await mkdtemp(join(tmpdir(), 'mm-bench-ingest-'));
  try {
    const startNanos = BigInt(Date.now() - 3_600_000) * 1_000_000n;
    const bodies: Buffer[] = [];
    for (let first = 0; first < spans; first += perRequest) {
      bodies.push(encodeRequest(first, Math.min(perRequest, spans - first), startNanos));
    }
    const bodyBytes = bodies.reduce((sum, body) => sum + body.length, 0);
    const bodiesFile = join(work, 'bodies.bin');
    await writeFile(bodiesFile, packBodies(bodies));

    const raw = await runRawChild(bodiesFile, join(work, 'raw'));
    if (raw.stored !== spans || raw.calls !== spans) {
      throw new Error(`raw insert stored ${raw.stored} spans / ${raw.calls} calls of ${spans}`);
    }
    const e2e = await endToEnd(bodies, spans, join(work, 'collector'), concurrency);
    if (e2e.stored !== spans || e2e.calls !== spans) {
      throw new Error(`the collector stored ${e2e.stored} spans / ${e2e.calls} calls of ${spans}`);
    }
    const setup = `${spans} spans (~26 attributes, an evaluation event on every third) in ${bodies.length} OTLP/protobuf requests of ${perRequest} (${(bodyBytes / bodies.length / 1024).toFixed(0)} KiB each); embedded chDB, otel_traces with its materialized views (llm_calls, llm_scores, rollups, trace-id lookup); ${concurrency} requests in flight`;
    return results(raw, e2e, setup);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
