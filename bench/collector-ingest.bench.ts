/**
 * OTLP/protobuf ingest end to end into the embedded ClickHouse, against a raw insert of the same
 * rows into the same engine, measured in the same run:
 * - spans like the instrumentation's (~25 attributes, an evaluation event on every third) are
 *   encoded once to OTLP protobuf `ExportTraceServiceRequest` bodies (hand-encoded here, decoded
 *   by the collector's own decoder, so the two sides share no code);
 * - baseline (child process, fresh data folder): the same rows encoded as the collector encodes
 *   them (ClickHouse Native blocks, one per request), inserted from files with
 *   `ClickHouseStore.engine.insert` into `otel_traces` (materialized views included, exactly what
 *   the collector inserts into) in 100k-row batches → rows/s;
 * - end to end (the standalone collector `collector/dist/main.js` as a child process, fresh data
 *   folder): the bodies POSTed to `/v1/traces` with a few requests in flight (429/503 answered
 *   by waiting Retry-After, like an exporter) until `/metrics` says every span is in ClickHouse
 *   → spans/s; peak RSS of the collector process (`VmHWM`).
 * Run as `node bench/collector-ingest.bench.ts --child raw FILE DIR` it is the baseline child.
 */
import type { SpanRow } from '@modelmaxx/collector';
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOptions, BenchResult } from './types.js';

const benchFile = fileURLToPath(import.meta.url);
const benchDir = dirname(benchFile);
const COLLECTOR_MAIN = join(benchDir, '..', 'collector', 'dist', 'main.js');

/** Rows per insert of the raw baseline. */
const RAW_BATCH_ROWS = 100_000;

// ---------------------------------------------------------------- protobuf encoding

class ProtoWriter {
  private chunks: Buffer[] = [];
  private length = 0;

  private push(buffer: Buffer): void {
    this.chunks.push(buffer);
    this.length += buffer.length;
  }

  private varint(value: number | bigint): void {
    let v = BigInt(value);
    const bytes: number[] = [];
    while (v > 0x7fn) {
      bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    bytes.push(Number(v));
    this.push(Buffer.from(bytes));
  }

  private tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  uint(field: number, value: number | bigint): this {
    this.tag(field, 0);
    this.varint(value);
    return this;
  }

  fixed64(field: number, value: bigint): this {
    this.tag(field, 1);
    const buffer = Buffer.alloc(8);
    buffer.writeBigUInt64LE(value);
    this.push(buffer);
    return this;
  }

  double(field: number, value: number): this {
    this.tag(field, 1);
    const buffer = Buffer.alloc(8);
    buffer.writeDoubleLE(value);
    this.push(buffer);
    return this;
  }

  bytes(field: number, value: Buffer): this {
    this.tag(field, 2);
    this.varint(value.length);
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  message(field: number, build: (writer: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

type AttributeValue = string | number | boolean | string[];

function writeAnyValue(writer: ProtoWriter, value: AttributeValue): void {
  if (typeof value === 'string') writer.string(1, value);
  else if (typeof value === 'boolean') writer.uint(2, value ? 1 : 0);
  else if (typeof value === 'number' && Number.isInteger(value)) writer.uint(3, value);
  else if (typeof value === 'number') writer.double(4, value);
  else
    writer.message(5, (array) => {
      for (const item of value) array.message(1, (any) => writeAnyValue(any, item));
    });
}

function writeAttributes(
  writer: ProtoWriter,
  field: number,
  attributes: Record<string, AttributeValue>,
): void {
  for (const [key, value] of Object.entries(attributes)) {
    writer.message(field, (keyValue) => {
      keyValue.string(1, key);
      keyValue.message(2, (any) => writeAnyValue(any, value));
    });
  }
}

const MODELS = [
  ['openai', 'gpt-4o-mini', 'gpt-4o-mini-2024-07-18', 0.15, 0.6],
  ['openai', 'gpt-4o', 'gpt-4o-2024-08-06', 2.5, 10],
  ['anthropic', 'claude-haiku-4-5', 'claude-haiku-4-5-20251001', 1, 5],
  ['anthropic', 'claude-sonnet-4-5', 'claude-sonnet-4-5-20250929', 3, 15],
] as const;

/** The attributes the instrumentation puts on a chat span (~25). */
function spanAttributes(index: number): Record<string, AttributeValue> {
  const [provider, model, responseModel, inputPrice, outputPrice] = MODELS[index % MODELS.length]!;
  const input = 200 + ((index * 7919) % 3000);
  const output = 20 + ((index * 104_729) % 700);
  const cacheRead = index % 5 === 0 ? Math.floor(input / 2) : 0;
  const cost =
    ((input - cacheRead) * inputPrice + cacheRead * inputPrice * 0.5 + output * outputPrice) / 1e6;
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': provider,
    'gen_ai.request.model': model,
    'gen_ai.response.model': responseModel,
    'gen_ai.response.id': `chatcmpl-${index.toString(36).padStart(10, '0')}`,
    'gen_ai.response.finish_reasons': ['stop'],
    'gen_ai.request.stream': index % 3 === 0,
    'gen_ai.request.max_tokens': 1024,
    'gen_ai.request.temperature': 0.7,
    'gen_ai.request.top_p': 0.95,
    'gen_ai.usage.input_tokens': input,
    'gen_ai.usage.output_tokens': output,
    'gen_ai.usage.cache_read.input_tokens': cacheRead,
    'gen_ai.usage.reasoning.output_tokens': 0,
    'gen_ai.usage.cost.amount': cost,
    'gen_ai.usage.cost.currency': 'USD',
    'gen_ai.usage.cost.source': 'local',
    'modelmaxx.cost.input_usd': ((input - cacheRead) * inputPrice) / 1e6,
    'modelmaxx.cost.output_usd': (output * outputPrice) / 1e6,
    'modelmaxx.pricing.version': '2026-11-20',
    'server.address': provider === 'openai' ? 'api.openai.com' : 'api.anthropic.com',
    'server.port': 443,
    'modelmaxx.task': ['summarize', 'classify', 'extract', 'chat'][index % 4]!,
    'modelmaxx.feature': ['inbox', 'search', 'support'][index % 3]!,
    'enduser.id': `user-${index % 997}`,
    'gen_ai.conversation.id': `conv-${index % 5003}`,
  };
}

const RESOURCE: Record<string, AttributeValue> = {
  'service.name': 'bench-app',
  'service.version': '1.0.0',
  'deployment.environment.name': 'bench',
  'telemetry.sdk.language': 'nodejs',
  'telemetry.sdk.name': 'opentelemetry',
  'telemetry.sdk.version': '3.1.1',
  'host.name': 'bench-host',
  'process.pid': 4242,
};

/** One `ExportTraceServiceRequest` with spans `first … first + count - 1`. */
function encodeRequest(first: number, count: number, startNanos: bigint): Buffer {
  return new ProtoWriter()
    .message(1, (resourceSpans) => {
      resourceSpans.message(1, (resource) => writeAttributes(resource, 1, RESOURCE));
      resourceSpans.message(2, (scopeSpans) => {
        scopeSpans.message(1, (scope) =>
          scope.string(1, '@modelmaxx/instrument').string(2, '0.1.0'),
        );
        for (let index = first; index < first + count; index++) {
          scopeSpans.message(2, (span) => {
            const traceId = Buffer.alloc(16);
            traceId.writeUInt32BE(0x6d6d6178, 0);
            traceId.writeUInt32BE(index, 12);
            const spanId = Buffer.alloc(8);
            spanId.writeUInt32BE(0x62656e63, 0);
            spanId.writeUInt32BE(index, 4);
            const start = startNanos + BigInt(index) * 1_000_000n;
            const attributes = spanAttributes(index);
            span.bytes(1, traceId).bytes(2, spanId);
            span.string(5, `chat ${String(attributes['gen_ai.request.model'])}`);
            span.uint(6, 3); // SPAN_KIND_CLIENT
            span.fixed64(7, start);
            span.fixed64(8, start + BigInt(200 + (index % 2000)) * 1_000_000n);
            writeAttributes(span, 9, attributes);
            if (index % 3 === 0) {
              span.message(11, (event) => {
                event.fixed64(1, start + 150_000_000n);
                event.string(2, 'gen_ai.evaluation.result');
                writeAttributes(event, 3, {
                  'gen_ai.evaluation.name': 'modelmaxx.finish_length',
                  'gen_ai.evaluation.score.value': 1,
                  'gen_ai.evaluation.score.label': 'pass',
                  'gen_ai.response.id': String(attributes['gen_ai.response.id']),
                  'modelmaxx.evaluation.source': 'evaluator',
                });
              });
            }
            span.message(15, () => undefined); // status: unset
          });
        }
      });
    })
    .finish();
}

/** Length-prefixed bodies in one file (for the child). */
function packBodies(bodies: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const body of bodies) {
    const length = Buffer.alloc(4);
    length.writeUInt32LE(body.length);
    parts.push(length, body);
  }
  return Buffer.concat(parts);
}

function unpackBodies(packed: Buffer): Buffer[] {
  const bodies: Buffer[] = [];
  let offset = 0;
  while (offset < packed.length) {
    const length = packed.readUInt32LE(offset);
    bodies.push(packed.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return bodies;
}

// ---------------------------------------------------------------- baseline child: raw insert

async function rawChild(bodiesFile: string, dataDir: string): Promise<void> {
  // The same decoder and Native encoder the collector uses (one block per request, as in its
  // spool segments), written to files before the clock starts: the baseline times only the insert.
  const { decodeTraceRequestProtobuf, openStore, OTEL_TRACES_INSERT_COLUMNS } =
    await import('@modelmaxx/collector');
  const { spanRowsToNative } = (await import('../collector/dist/store/span-row-native.js')) as {
    spanRowsToNative(rows: SpanRow[]): Buffer;
  };
  const bodies = unpackBodies(await readFile(bodiesFile));
  const batchFiles: string[] = [];
  let pending: Buffer[] = [];
  let pendingRows = 0;
  let rows = 0;
  const flushBatch = async () => {
    const file = join(dirname(bodiesFile), `raw-batch-${batchFiles.length}.native`);
    await writeFile(file, Buffer.concat(pending));
    batchFiles.push(file);
    pending = [];
    pendingRows = 0;
  };
  for (const body of bodies) {
    const decoded = decodeTraceRequestProtobuf(body).rows;
    pending.push(spanRowsToNative(decoded));
    pendingRows += decoded.length;
    rows += decoded.length;
    if (pendingRows >= RAW_BATCH_ROWS) await flushBatch();
  }
  if (pendingRows > 0) await flushBatch();
  const store = await openStore({ dataDir, spoolDir: false });
  const started = performance.now();
  for (const file of batchFiles) {
    await store.engine.insert({
      table: 'modelmaxx.otel_traces',
      columns: OTEL_TRACES_INSERT_COLUMNS,
      format: 'Native',
      file,
    });
  }
  const ms = performance.now() - started;
  const counted = await store.engine.query<{ rows: string }>(
    'SELECT count() AS rows FROM modelmaxx.otel_traces',
  );
  const calls = await store.engine.query<{ rows: string }>(
    'SELECT count() AS rows FROM modelmaxx.llm_calls',
  );
  await store.close();
  process.stdout.write(
    `${JSON.stringify({
      rows,
      stored: Number(counted.data[0]?.rows),
      calls: Number(calls.data[0]?.rows),
      ms,
      batches: batchFiles.length,
      peakRssMb: peakRssMb(process.pid),
    })}\n`,
  );
}

/** A `/proc/<pid>/status` memory field in MB (`VmHWM` = peak RSS, `RssAnon`, `RssFile`). */
function memoryMb(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  return match === null ? NaN : Number(match[1]) / 1024;
}

const peakRssMb = (pid: number) => memoryMb(pid, 'VmHWM');

// ---------------------------------------------------------------- parent

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
    const child = spawn(process.execPath, [benchFile, '--child', 'raw', bodiesFile, dataDir], {
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

async function endToEnd(
  bodies: Buffer[],
  spans: number,
  dataDir: string,
  concurrency: number,
): Promise<EndToEndResult> {
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
  try {
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (output.length < 1_000_000) output += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (output.length < 1_000_000) output += chunk;
    });
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
    const idleRssMb = memoryMb(child.pid!, 'VmRSS');
    let next = 0;
    let refusals = 0;
    // node:http with keep-alive, as the OTLP/HTTP exporters send in Node: the load generator
    // shares the two cores with the collector, so it should cost as little as it can.
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    const tracesUrl = new URL('/v1/traces', url);
    const started = performance.now();
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
    await Promise.all(Array.from({ length: concurrency }, sender));
    const senderCpu = process.cpuUsage(cpuStarted);
    agent.destroy();
    while ((await metric(url, 'modelmaxx_spans_stored_total')) < spans) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const ms = performance.now() - started;
    const peak = peakRssMb(child.pid!);
    const anonMb = memoryMb(child.pid!, 'RssAnon');
    const fileMb = memoryMb(child.pid!, 'RssFile');
    const batches = await metric(url, 'modelmaxx_batch_duration_seconds_count');
    const batchSeconds = await metric(url, 'modelmaxx_batch_duration_seconds_sum');
    const stored = await sqlCount(url, 'otel_traces');
    const calls = await sqlCount(url, 'llm_calls');
    return {
      spans,
      ms,
      stored,
      calls,
      refusals,
      peakRssMb: peak,
      batches,
      batchSeconds,
      idleRssMb,
      anonMb,
      fileMb,
      senderCpuUsPerSpan: (senderCpu.user + senderCpu.system) / spans,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => {
      if (child.exitCode !== null) resolve(undefined);
      else child.on('exit', resolve);
    });
  }
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
    const rawRate = raw.rows / (raw.ms / 1000);
    const e2eRate = e2e.spans / (e2e.ms / 1000);
    const setup = `${spans} spans (~26 attributes, an evaluation event on every third) in ${bodies.length} OTLP/protobuf requests of ${perRequest} (${(bodyBytes / bodies.length / 1024).toFixed(0)} KiB each); embedded chDB, otel_traces with its materialized views (llm_calls, llm_scores, rollups, trace-id lookup); ${concurrency} requests in flight`;
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
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === benchFile && process.argv[2] === '--child') {
  if (process.argv[3] === 'raw') await rawChild(process.argv[4]!, process.argv[5]!);
  else throw new Error(`unknown child ${process.argv[3]}`);
}
