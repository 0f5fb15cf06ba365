/**
 * The server side of the gateway benchmark, each part in a process of its own (as deployed: the
 * gateway is not in the upstream's process):
 *
 * - `node gateway-child.ts sim`: llm-sim, latency 0; prints `{ "sim": URL }`;
 * - `node gateway-child.ts gateway <llm-sim URL>`: the gateway in front of it, whose spans go
 *   through a BatchSpanProcessor and the OTLP/protobuf exporter to a loopback sink that reads and
 *   drops them (recording and exporting are part of what is measured); prints
 *   `{ "gateway": URL }`. `GATEWAY_BENCH_SPANS=off`: no spans at all.
 *
 * Each runs until its stdin closes.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { createGateway, resolveConfig } from '@modelmaxx/gateway';
import { startLlmSim } from '@modelmaxx/llm-sim';

const [mode, simUrl] = process.argv.slice(2);
let stop: () => Promise<void>;
if (mode === 'sim') {
  const sim = await startLlmSim({ seed: 1 });
  process.stdout.write(`${JSON.stringify({ sim: sim.url })}\n`);
  stop = () => sim.close();
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
  const gateway = createGateway({
    config: resolveConfig(
      { limits: { maxConcurrentRequests: 100_000 } },
      { upstreamFlags: [`openai=${simUrl}/v1`] },
    ),
    ...(process.env['GATEWAY_BENCH_SPANS'] === 'off'
      ? {}
      : {
          spanExporter: new OTLPTraceExporter({ url: `http://127.0.0.1:${sinkPort}/v1/traces` }),
        }),
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const { url } = await gateway.listen(0, '127.0.0.1');
  process.stdout.write(`${JSON.stringify({ gateway: url })}\n`);
  stop = async () => {
    await gateway.close();
    sink.close();
    process.stderr.write(`gateway-child: ${spansBytes} bytes of spans exported\n`);
  };
}
process.stdin.resume();
process.stdin.on('end', () => {
  void stop().then(() => process.exit(0));
});
