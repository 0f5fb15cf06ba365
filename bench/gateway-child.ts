/**
 * The server side of the gateway benchmark, in a process of its own: llm-sim (latency 0) and the
 * gateway in front of it, whose spans go through a BatchSpanProcessor and the OTLP/protobuf
 * exporter to a loopback sink that reads and drops them (the cost of recording and exporting is
 * part of what is measured). Prints one JSON line `{ "sim": URL, "gateway": URL }`, then runs
 * until its stdin closes.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { createGateway, resolveConfig } from '@modelmaxx/gateway';
import { startLlmSim } from '@modelmaxx/llm-sim';

const sim = await startLlmSim({ seed: 1 });
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
const gateway = createGateway({
  config: resolveConfig(
    { limits: { maxConcurrentRequests: 100_000 } },
    { upstreamFlags: [`openai=${sim.openaiBaseURL}`] },
  ),
  // GATEWAY_BENCH_SPANS=off: no spans at all (to see what recording and exporting cost).
  ...(process.env['GATEWAY_BENCH_SPANS'] === 'off'
    ? {}
    : { spanExporter: new OTLPTraceExporter({ url: `http://127.0.0.1:${sinkPort}/v1/traces` }) }),
  logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
});
const { url } = await gateway.listen(0, '127.0.0.1');
process.stdout.write(`${JSON.stringify({ sim: sim.url, gateway: url })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void (async () => {
    await gateway.close();
    await sim.close();
    sink.close();
    process.stderr.write(`gateway-child: ${spansBytes} bytes of spans exported\n`);
    process.exit(0);
  })();
});
