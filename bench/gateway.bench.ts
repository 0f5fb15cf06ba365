/**
 * Gateway overhead (SPEC: `gateway-added-latency-p99-ms`, `gateway-ttfc-added-p99-ms` <= 1;
 * `gateway-max-rps` reported). llm-sim (latency 0) and the gateway in front of it run in two
 * child processes (gateway-child.ts; the gateway's spans recorded and exported over
 * OTLP/protobuf to a sink); this process is the load generator: open loop at a fixed rate over
 * kept-alive node:http connections, the same chat request sent straight to llm-sim ("direct")
 * and through the gateway, in alternating phases of the same run.
 *
 * - added latency: p99 of the gateway's request latency minus p99 of direct, non-streaming, at
 *   500 requests/s;
 * - ttfc added: the same for streaming requests, time to the first body chunk;
 * - max rps: the highest rate of a rising ladder at which the gateway still answers everything
 *   with p99 < 50 ms and keeps up (>= 95% of the offered rate); direct's figure is the baseline.
 *
 * `GATEWAY_BENCH_BASELINE=<path of another build's dist/index.js>` (e.g. the previous commit's,
 * built apart): that build runs as a third target on the same llm-sim, in the same alternating
 * phases, and the notes give its figures and diagnostics beside the workspace build's (A/B). Its
 * spans go to an exporter object (`GATEWAY_BENCH_BASELINE_SPANS=worker`: to the span export
 * thread, as the workspace build's; see gateway-child.ts).
 *
 * `GATEWAY_BENCH_FLOORS=http,undici,undici-dispatch,net,llhttp` (any of them; `all`): bare proxies
 * (gateway-floor.ts: read the body, parse it, call llm-sim, parse the answer, send it; streams
 * passed through) run as more targets, `floor-<client>`, in the same phases, each with that
 * upstream client: node:http's, the `undici` package's Pool `request()` or its `dispatch()`, or
 * (`net`) no HTTP stack at all, raw sockets on both sides (gateway-floor-net.ts), or (`llhttp`)
 * the same raw sockets read by Node's own parser, llhttp (gateway-floor-llhttp.ts). Their
 * added p99 is what any Node proxy pays here, the gateway's floor; the notes give it beside the
 * gateway's, and their processes' CPU per request in the diagnostics.
 * `GATEWAY_BENCH_LADDER=off` skips the max-rps ladder (`gateway-max-rps` is then NaN): quicker A/B
 * runs of the latency figures. `GATEWAY_BENCH_SAMPLES=<file>` writes the 500 req/s samples (ms)
 * per figure, target and phase there as JSON (`{ plain, firstChunk }`), e.g. to compare p99s
 * phase by phase, apart from the machine's stalls that hit one phase.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BenchOptions, BenchResult } from './types.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 1024 });

const PLAIN = Buffer.from(
  JSON.stringify({
    model: 'gpt-4o-mini',
    max_tokens: 16,
    messages: [{ role: 'user', content: 'What is 37 * 48?' }],
  }),
);
const STREAM = Buffer.from(
  JSON.stringify({
    model: 'gpt-4o-mini',
    max_tokens: 16,
    stream: true,
    messages: [{ role: 'user', content: 'What is 37 * 48?' }],
  }),
);

interface Sample {
  ms: number;
  ttfcMs: number;
  ok: boolean;
  end: number;
}

function once(url: string, body: Buffer): Promise<Sample> {
  const started = performance.now();
  return new Promise((resolve) => {
    const call = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (response) => {
        let first: number | undefined;
        response.on('data', () => {
          first ??= performance.now();
        });
        response.on('end', () => {
          const end = performance.now();
          resolve({
            ms: end - started,
            ttfcMs: (first ?? end) - started,
            ok: response.statusCode === 200,
            end,
          });
        });
      },
    );
    call.on('error', () => {
      const end = performance.now();
      resolve({ ms: end - started, ttfcMs: end - started, ok: false, end });
    });
    call.end(body);
  });
}

interface Phase {
  samples: Sample[];
  errors: number;
  /** Requests answered per second over the phase. */
  achieved: number;
}

/** Open loop: requests go out on schedule whatever the answers do. */
async function phase(url: string, body: Buffer, rate: number, durationMs: number): Promise<Phase> {
  const total = Math.max(1, Math.round((rate * durationMs) / 1000));
  const pending: Promise<Sample>[] = [];
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    while (sent < due) {
      pending.push(once(url, body));
      sent += 1;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const samples = await Promise.all(pending);
  const last = Math.max(...samples.map((sample) => sample.end));
  return {
    samples,
    errors: samples.filter((sample) => !sample.ok).length,
    achieved: (total * 1000) / Math.max(1, last - start),
  };
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

type Targets = Readonly<Record<string, string>>;
type PerTarget = Record<string, number[]>;

/** Alternating phases over the targets (reversed every other round); the first round is warm-up. */
async function compare(
  urls: Targets,
  body: Buffer,
  rate: number,
  rounds: number,
  durationMs: number,
  pick: (sample: Sample) => number,
): Promise<{ values: PerTarget; phases: Record<string, number[][]>; errors: number }> {
  const names = Object.keys(urls);
  const values: PerTarget = Object.fromEntries(names.map((name) => [name, []]));
  const phases: Record<string, number[][]> = Object.fromEntries(names.map((name) => [name, []]));
  let errors = 0;
  for (let round = 0; round <= rounds; round += 1) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const target of order) {
      const measured = await phase(urls[target]!, body, rate, durationMs);
      if (round === 0) continue;
      errors += measured.errors;
      const picked = measured.samples.filter((sample) => sample.ok).map(pick);
      values[target]!.push(...picked);
      phases[target]!.push(picked);
    }
  }
  return { values, phases, errors };
}

/** One request at a time (no queueing): the added latency of the hop itself, p50 and p99. */
async function sequential(urls: Targets, body: Buffer, count: number): Promise<string> {
  const names = Object.keys(urls);
  const times: PerTarget = Object.fromEntries(names.map((name) => [name, []]));
  for (let index = 0; index < count * 1.1; index += 1) {
    for (const target of names) {
      const sample = await once(urls[target]!, body);
      if (index >= count * 0.1) times[target]!.push(sample.ms);
    }
  }
  const at = (q: number) =>
    names
      .filter((name) => name !== 'direct')
      .map((name) => `${quantile(times[name]!, q).toFixed(3)}`)
      .concat(`${quantile(times['direct']!, q).toFixed(3)} ms`)
      .join(' vs ');
  return `one at a time (interleaved, ${times['direct']!.length} each; ${names.filter((name) => name !== 'direct').join(' vs ')} vs direct): p50 ${at(0.5)}, p99 ${at(0.99)}`;
}

async function maxRps(
  url: string,
  body: Buffer,
  ladder: readonly number[],
  durationMs: number,
): Promise<{ rps: number; steps: string[] }> {
  let best = 0;
  const steps: string[] = [];
  for (const rate of ladder) {
    const measured = await phase(url, body, rate, durationMs);
    const p99 = quantile(
      measured.samples.map((sample) => sample.ms),
      0.99,
    );
    steps.push(`${rate}: p99 ${p99.toFixed(1)} ms, ${measured.achieved.toFixed(0)}/s`);
    if (measured.errors > 0 || p99 >= 50 || measured.achieved < 0.95 * rate) break;
    best = rate;
    // Let queued work drain before the next step.
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return { rps: best, steps };
}

/** The bench's server processes (gateway-child.ts), stopped by closing their stdin. */
class Children {
  private readonly children: ChildProcess[] = [];
  /** What the children wrote to stderr (the gateway's diagnostics, on exit). */
  private stderr = '';

  /** Starts one part and reads the URL it prints. */
  async start(args: string[], env: Record<string, string> = {}): Promise<Record<string, string>> {
    const child = spawn(process.execPath, [join(benchDir, 'gateway-child.ts'), ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.children.push(child);
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
      process.stderr.write(chunk);
    });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) =>
        reject(new Error(`gateway-child ${args[0]} exited with ${code}`)),
      );
    });
    return JSON.parse(line) as Record<string, string>;
  }

  /** Stops them all; returns the gateway's diagnostics lines. */
  async stop(): Promise<string> {
    for (const child of this.children.reverse()) {
      child.stdin!.end();
      await new Promise((resolve) => child.once('exit', resolve));
    }
    return this.stderr
      .split('\n')
      .map((line) => line.replace(/^gateway-child: /, '').trim())
      .filter((line) => line !== '')
      .join('; ');
  }
}

type Compared = Awaited<ReturnType<typeof compare>>;

interface Measured {
  rate: number;
  oneByOne: string;
  plain: Compared;
  streamed: Compared;
  /** Per target (direct, gateway, baseline when given): the ladder's result. */
  max: Record<string, { rps: number; steps: string[] }>;
}

async function measure(urls: Targets, quick: boolean): Promise<Measured> {
  const rounds = quick ? 2 : 5;
  const durationMs = quick ? 1500 : 3000;
  const rate = 500;
  const oneByOne = await sequential(urls, PLAIN, quick ? 500 : 2000);
  const plain = await compare(urls, PLAIN, rate, rounds, durationMs, (sample) => sample.ms);
  const streamed = await compare(urls, STREAM, rate, rounds, durationMs, (sample) => sample.ttfcMs);
  // From 100 req/s: on a loaded machine the gateway may not keep up with 500.
  const ladder = quick
    ? [100, 250, 500, 1000, 1500, 2000, 3000]
    : [100, 250, 500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000];
  const stepMs = quick ? 1000 : 2000;
  const max: Measured['max'] = {};
  const skip = process.env['GATEWAY_BENCH_LADDER'] === 'off';
  for (const [name, url] of Object.entries(urls)) {
    max[name] = skip ? { rps: NaN, steps: ['not run'] } : await maxRps(url, PLAIN, ladder, stepMs);
  }
  return { rate, oneByOne, plain, streamed, max };
}

/** p50 and p99 of each gateway build against direct. */
function describe(values: PerTarget): string {
  const builds = Object.keys(values).filter((name) => name !== 'direct');
  const at = (q: number) =>
    [...builds, 'direct'].map((name) => quantile(values[name]!, q).toFixed(3)).join(' vs ');
  const counts = [...builds, 'direct'].map((name) => values[name]!.length).join(' + ');
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms (${builds.join(' vs ')} vs direct; ${counts} requests)`;
}

/** p99 of `build` minus direct's. */
function addedP99(values: PerTarget, build: string): number {
  return quantile(values[build]!, 0.99) - quantile(values['direct']!, 0.99);
}

/** Where each build's spans are exported from (gateway-child.ts, GATEWAY_BENCH_SPANS). */
function spansNote(): string {
  const where = (mode: string) =>
    mode === 'worker' ? 'the span export thread' : mode === 'main' ? 'the main thread' : 'nowhere';
  const gateway = `gateway: ${where(process.env['GATEWAY_BENCH_SPANS'] ?? 'worker')}`;
  const baseline = process.env['GATEWAY_BENCH_BASELINE'];
  if (baseline === undefined || baseline === '') return gateway;
  return `${gateway}, baseline: ${where(process.env['GATEWAY_BENCH_BASELINE_SPANS'] ?? 'main')}`;
}

const FLOOR_CLIENTS = ['http', 'undici', 'undici-dispatch', 'net', 'llhttp'];

/** The bare proxies' upstream clients asked for by GATEWAY_BENCH_FLOORS. */
function floorClients(): string[] {
  const asked = (process.env['GATEWAY_BENCH_FLOORS'] ?? '').split(',').map((name) => name.trim());
  if (asked.includes('all')) return FLOOR_CLIENTS;
  const unknown = asked.filter((name) => name !== '' && !FLOOR_CLIENTS.includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `GATEWAY_BENCH_FLOORS: unknown client ${unknown.join(', ')} (${FLOOR_CLIENTS.join(', ')} or all)`,
    );
  }
  return FLOOR_CLIENTS.filter((name) => asked.includes(name));
}

/** The baseline build's and the floors' figures, when they ran. */
function baselineNote(values: PerTarget): string {
  return Object.keys(values)
    .filter((name) => name === 'baseline' || name.startsWith('floor-'))
    .map((name) => {
      const what = name === 'baseline' ? 'baseline build' : `${name} (bare proxy)`;
      return `; ${what}: added p99 ${addedP99(values, name).toFixed(2)} ms`;
    })
    .join('');
}

function report(measured: Measured): BenchResult[] {
  const { rate, plain, streamed, max } = measured;
  const direct = max['direct']!;
  const steps = Object.entries(max)
    .map(([name, result]) => `${name} ${result.rps} (${result.steps.join('; ')})`)
    .join(' | ');
  return [
    {
      name: 'gateway-added-latency-p99-ms',
      value: addedP99(plain.values, 'gateway'),
      unit: 'ms',
      baseline: quantile(plain.values['direct']!, 0.99),
      ratio: null,
      goal: '<= 1',
      notes: `non-streaming chat at ${rate} req/s open loop, llm-sim latency 0, spans exported over OTLP/protobuf (${spansNote()}); ${describe(plain.values)}${baselineNote(plain.values)}; errors ${plain.errors}; ${measured.oneByOne}`,
    },
    {
      name: 'gateway-ttfc-added-p99-ms',
      value: addedP99(streamed.values, 'gateway'),
      unit: 'ms',
      baseline: quantile(streamed.values['direct']!, 0.99),
      ratio: null,
      goal: '<= 1',
      notes: `streaming chat, time to first body chunk, at ${rate} req/s; ${describe(streamed.values)}${baselineNote(streamed.values)}; errors ${streamed.errors}`,
    },
    {
      name: 'gateway-max-rps',
      value: max['gateway']!.rps,
      unit: 'req/s',
      baseline: direct.rps,
      ratio: direct.rps === 0 ? null : max['gateway']!.rps / direct.rps,
      goal: 'report',
      notes: `highest rate of the ladder with p99 < 50 ms, no errors and >= 95% of the offered rate kept up (load generator, gateway and llm-sim each in a process of its own on this 2-core machine); ${steps}`,
    },
  ];
}

/** llm-sim, the gateway and (when given) the baseline build; their chat URLs by target. */
async function startTargets(children: Children): Promise<Targets> {
  // Each reports where its time went (event loop, GC, span export, CPU) on exit.
  const diag = { GATEWAY_BENCH_DIAG: '1' };
  const { sim } = await children.start(['sim'], diag);
  const { gateway } = await children.start(['gateway', sim!], diag);
  const urls: Record<string, string> = {
    direct: `${sim}/v1/chat/completions`,
    gateway: `${gateway}/v1/chat/completions`,
  };
  const baseline = process.env['GATEWAY_BENCH_BASELINE'];
  if (baseline !== undefined && baseline !== '') {
    // A build from before the span export thread takes its exporter as an object only.
    const spans = process.env['GATEWAY_BENCH_BASELINE_SPANS'] ?? 'main';
    const env = {
      ...diag,
      GATEWAY_BENCH_MODULE: baseline,
      GATEWAY_BENCH_LABEL: 'baseline',
      GATEWAY_BENCH_SPANS: spans,
    };
    const started = await children.start(['gateway', sim!], env);
    urls['baseline'] = `${started['gateway']}/v1/chat/completions`;
  }
  for (const client of floorClients()) {
    const env = { ...diag, GATEWAY_BENCH_LABEL: `floor-${client}` };
    const started = await children.start(['floor', sim!, client], env);
    urls[`floor-${client}`] = `${started['gateway']}/v1/chat/completions`;
  }
  return urls;
}

/** `GATEWAY_BENCH_SAMPLES=<file>`: every 500 req/s sample (ms) per figure, target and phase, as JSON. */
function writeSamples(measured: Measured): void {
  const file = process.env['GATEWAY_BENCH_SAMPLES'];
  if (file === undefined || file === '') return;
  const { plain, streamed } = measured;
  writeFileSync(file, JSON.stringify({ plain: plain.phases, firstChunk: streamed.phases }));
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const children = new Children();
  const loadBefore = loadavg();
  let results: BenchResult[] = [];
  try {
    const measured = await measure(await startTargets(children), options.quick);
    writeSamples(measured);
    results = report(measured);
  } finally {
    const diagnostics = await children.stop();
    const load = (values: number[]) => values.map((value) => value.toFixed(1)).join(' ');
    const conditions = `load average ${load(loadBefore)} before, ${load(loadavg())} after (1, 5, 15 min; 2 cores shared with other work); processes over the whole run: ${diagnostics}`;
    const [first, ...rest] = results;
    if (first !== undefined) first.notes = `${first.notes}; ${conditions}`;
    for (const result of rest) result.notes = `${result.notes}; load average as above`;
  }
  return results;
}
