/**
 * The server side of the gateway benchmark, each part in a process of its own (as deployed: the
 * gateway is not in the upstream's process):
 *
 * - `node gateway-child.ts sim`: llm-sim, latency 0; prints `{ "sim": URL }`;
 * - `node gateway-child.ts gateway <llm-sim URL>`: the gateway in front of it, whose spans go
 *   through a BatchSpanProcessor and the OTLP/protobuf exporter to a loopback sink that reads and
 *   drops them (recording and exporting are part of what is measured); prints
 *   `{ "gateway": URL }`. `GATEWAY_BENCH_SPANS`: `worker` (default) builds that exporter in the
 *   gateway's span export thread, `main` gives it to the gateway as an object (export on the main
 *   thread, as builds before the thread did), `off` records no spans at all.
 *
 * - `node gateway-child.ts floor <llm-sim URL> <http|undici|undici-dispatch|net|llhttp>`: the bare
 *   proxy of gateway-floor.ts with that upstream client (the floor any Node proxy pays); prints
 *   `{ "gateway": URL }`.
 *
 * `GATEWAY_BENCH_MODULE=<path of a build's dist/index.js>`: that build of the gateway instead of the
 * workspace's (the bench's A/B against a baseline build), `GATEWAY_BENCH_LABEL` names it in the
 * diagnostics.
 *
 * `GATEWAY_BENCH_DIAG=1`: on exit, the gateway process prints where its time went to stderr:
 * event-loop delay percentiles, GC pauses by kind, and the synchronous part of each span
 * export (serialization) — the evidence for tail latency.
 *
 * Each runs until its stdin closes.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { subscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type * as GatewayModule from '@modelmaxx/gateway';
import { startLlmSim } from '@modelmaxx/llm-sim';
import { startFloor } from './gateway-floor.ts';
import type { FloorClient } from './gateway-floor.ts';

const [mode, simUrl] = process.argv.slice(2);
const diagnose = process.env['GATEWAY_BENCH_DIAG'] === '1';
const label = process.env['GATEWAY_BENCH_LABEL'] ?? 'gateway';
const gatewayModule = process.env['GATEWAY_BENCH_MODULE'];

const quantiles = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return `n ${sorted.length}, p50 ${at(0.5).toFixed(2)}, p99 ${at(0.99).toFixed(2)}, max ${at(1).toFixed(2)} ms, total ${sorted.reduce((sum, value) => sum + value, 0).toFixed(0)} ms`;
};

/** The main thread's time on a CPU and waiting for one while runnable (ms; Linux). */
function schedstat(): { running: number; waiting: number } {
  try {
    const [running = 0, waiting = 0] = readFileSync('/proc/thread-self/schedstat', 'utf8')
      .split(' ')
      .map(Number);
    return { running: running / 1e6, waiting: waiting / 1e6 };
  } catch {
    return { running: NaN, waiting: NaN };
  }
}

/** CPU time per request, user and system (µs). */
function cpuSplit(usage: NodeJS.CpuUsage, requests: number): string {
  const per = (us: number) => (us / Math.max(1, requests)).toFixed(0);
  return `user ${per(usage.user)} + system ${per(usage.system)} µs per request`;
}

/** Event-loop delay, GC pauses and the synchronous time of each span export, printed on exit. */
function diagnostics(exporter: SpanExporter | undefined): {
  exporter?: SpanExporter;
  report(requests: number): string;
} {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const gc = new Map<number, number[]>();
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind ?? 0;
      gc.set(kind, [...(gc.get(kind) ?? []), entry.duration]);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const exports: number[] = [];
  let connections = 0;
  subscribe('net.client.socket', () => (connections += 1));
  const exportCpu: number[] = [];
  const cpu = () => {
    const usage = process.threadCpuUsage();
    return (usage.user + usage.system) / 1000;
  };
  const cpuAtStart = cpu();
  const threadAtStart = process.threadCpuUsage();
  const processAtStart = process.cpuUsage();
  const schedAtStart = schedstat();
  const timed: SpanExporter | undefined =
    exporter === undefined
      ? undefined
      : {
          export(spans, done) {
            const started = performance.now();
            const cpuBefore = cpu();
            exporter.export(spans, done);
            exports.push(performance.now() - started);
            exportCpu.push(cpu() - cpuBefore);
          },
          shutdown: () => exporter.shutdown(),
          forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
        };
  const ms = (ns: number) => (ns / 1e6).toFixed(2);
  return {
    ...(timed === undefined ? {} : { exporter: timed }),
    report: (requests) =>
      [
        `main thread waiting for a CPU while runnable: ${(((schedstat().waiting - schedAtStart.waiting) / Math.max(1, requests)) * 1000).toFixed(0)} µs per request`,
        `client sockets opened (upstream and span export): ${connections}`,
        `main thread CPU: ${(((cpu() - cpuAtStart) / Math.max(1, requests)) * 1000).toFixed(0)} µs per request (${cpuSplit(process.threadCpuUsage(threadAtStart), requests)}; ${requests} requests)`,
        `whole process CPU (GC and other threads too): ${cpuSplit(process.cpuUsage(processAtStart), requests)}`,
        `event-loop delay: p50 ${ms(loop.percentile(50))}, p99 ${ms(loop.percentile(99))}, p99.9 ${ms(loop.percentile(99.9))}, max ${ms(loop.max)} ms`,
        // kind 1 scavenge (young), 2 mark-compact, 4 incremental marking, 8 weak callbacks.
        ...[...gc].map(([kind, pauses]) => `gc kind ${kind}: ${quantiles(pauses)}`),
        ...(timed === undefined
          ? ['span export: none on the main thread (in the span export thread, or spans off)']
          : [
              `span export (synchronous part, wall): ${quantiles(exports)}`,
              `span export (synchronous part, thread CPU): ${quantiles(exportCpu)}`,
            ]),
      ].join('\n'),
  };
}
let stop: () => Promise<void>;
if (mode === 'sim') {
  const sim = await startLlmSim({ seed: 1 });
  // The upstream's own cost, to set the gateway's against.
  let requests = 0;
  subscribe('http.server.request.start', () => (requests += 1));
  const cpuAtStart = process.threadCpuUsage();
  const schedAtStart = schedstat();
  process.stdout.write(`${JSON.stringify({ sim: sim.url })}\n`);
  stop = async () => {
    await sim.close();
    if (!diagnose) return;
    const cpu = process.threadCpuUsage(cpuAtStart);
    const perRequest = (ms: number) => ((ms / Math.max(1, requests)) * 1000).toFixed(0);
    process.stderr.write(
      `gateway-child: llm-sim main thread CPU: ${perRequest((cpu.user + cpu.system) / 1000)} µs per request, waiting for a CPU while runnable: ${perRequest(schedstat().waiting - schedAtStart.waiting)} µs per request (${requests} requests)\n`,
    );
  };
} else if (mode === 'floor') {
  const client = process.argv[4] as FloorClient;
  const diag = diagnose ? diagnostics(undefined) : undefined;
  const floor = await startFloor(client, simUrl!);
  process.stdout.write(`${JSON.stringify({ gateway: floor.url })}\n`);
  stop = async () => {
    await floor.close();
    if (diag !== undefined) {
      const lines = diag
        .report(floor.requests())
        .split('\n')
        .filter((line) => !line.startsWith('span export'));
      process.stderr.write(lines.map((line) => `gateway-child: ${label}: ${line}\n`).join(''));
    }
  };
} else {
  let spansBytes = 0;
  const sink = createServer((request, response) => {
    request.on('data', (chunk: Buffer) => (spansBytes += chunk.length));
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/x-protobuf' });
      response.end();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', () => resolve()));
  const sinkPort = (sink.address() as AddressInfo).port;
  const spans = process.env['GATEWAY_BENCH_SPANS'] ?? 'worker';
  const sinkUrl = `http://127.0.0.1:${sinkPort}/v1/traces`;
  const otlp = spans === 'main' ? new OTLPTraceExporter({ url: sinkUrl }) : undefined;
  const diag = diagnose ? diagnostics(otlp) : undefined;
  // The same exporter, built and run in the gateway's span export thread.
  const inWorker = {
    module: import.meta.resolve('@opentelemetry/exporter-trace-otlp-proto'),
    options: { url: sinkUrl },
  };
  const spanExporter = spans === 'worker' ? inWorker : diag === undefined ? otlp : diag.exporter;
  const { createGateway, resolveConfig } = (await import(
    gatewayModule === undefined ? '@modelmaxx/gateway' : pathToFileURL(gatewayModule).href
  )) as typeof GatewayModule;
  const gateway = createGateway({
    config: resolveConfig(
      { limits: { maxConcurrentRequests: 100_000 } },
      { upstreamFlags: [`openai=${simUrl}/v1`] },
    ),
    ...(spanExporter === undefined ? {} : { spanExporter }),
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const { url } = await gateway.listen(0, '127.0.0.1');
  process.stdout.write(`${JSON.stringify({ gateway: url })}\n`);
  stop = async () => {
    await gateway.close();
    sink.close();
    process.stderr.write(`gateway-child: ${label}: ${spansBytes} bytes of spans exported\n`);
    if (diag !== undefined) {
      const lines = diag.report(gateway.metrics().requests).split('\n');
      process.stderr.write(lines.map((line) => `gateway-child: ${label}: ${line}\n`).join(''));
    }
  };
}
process.stdin.resume();
process.stdin.on('end', () => {
  void stop().then(() => process.exit(0));
});
