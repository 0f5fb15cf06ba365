/**
 * `createGateway`: the gateway over node:http. The request pipeline is in ./pipeline.ts
 * (front door, body, candidates, admission) and ./exchange.ts (attempts, fallbacks, relay,
 * accounting); targets and the policies' engines in ./targets.ts; spans in ./spans.ts.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import type { RandomSource, ShadowStats } from '@modelmaxx/router';
import type { GatewayAccess } from './access/types.js';
import { GatewayConfigError } from './config.js';
import type { GatewayConfig } from './config.js';
import { stderrLogger } from './context.js';
import type { GatewayContext, GatewayLogger, GatewayMetrics } from './context.js';
import { sendError, sendJson } from './http.js';
import { openAccess } from './open-access.js';
import { handleRequest } from './pipeline.js';
import { createShadows } from './shadow.js';
import type { SpanExporterInWorker } from './span-worker-types.js';
import { createSpanRecorder } from './spans.js';
import { Targets } from './targets.js';

export type { GatewayLogger, GatewayMetrics } from './context.js';
export type { SpanExporterInWorker } from './span-worker-types.js';

export interface GatewayOptions {
  readonly config: GatewayConfig;
  /** Keys, budgets and rate limits; default `openAccess()` (loopback only). */
  readonly access?: GatewayAccess;
  /**
   * Where spans go (OTLP, or the co-located collector's store); none: no spans. An exporter
   * given as a module (`{ module, exportName, options }`) is built and run in a worker thread:
   * serializing span batches then never holds the gateway's event loop.
   */
  readonly spanExporter?: SpanExporter | SpanExporterInWorker;
  /** `service.name` of the gateway's spans (default `modelmaxx-gateway`). */
  readonly serviceName?: string;
  readonly logger?: GatewayLogger;
  /** The router engines' random source (default Math.random). */
  readonly random?: RandomSource;
  readonly now?: () => number;
}

export interface Gateway {
  /** Handles a gateway route and returns true; false for any other path (left to the caller). */
  handle(request: IncomingMessage, response: ServerResponse): boolean;
  /** Its own server (`modelmaxx gateway`): gateway routes and `GET /healthz`. */
  listen(port: number, host: string): Promise<{ url: string; port: number; server: Server }>;
  metrics(): GatewayMetrics;
  /** Engines' cooldowns, per policy: model → until (ms). */
  cooldowns(policy: string): ReadonlyMap<string, number>;
  forceFlush(): Promise<void>;
  /** Resolves when no shadow comparison is queued or running (tests, before shutdown). */
  shadowsIdle(): Promise<void>;
  /** What a policy's shadow comparisons did so far (undefined: the policy runs none). */
  shadows(policy: string): ShadowStats | undefined;
  /** Stops the server (when `listen` ran), flushes spans, closes the access layer. */
  close(): Promise<void>;
}

/** Whether a listen address stays on this machine. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

/** No binding beyond loopback without gateway keys: anyone on the network could spend the upstream keys. */
export function assertSafeToBind(host: string, access: GatewayAccess | undefined): void {
  if (isLoopbackHost(host) || access?.keyed === true) return;
  throw new GatewayConfigError(
    `refusing to listen on ${host} without gateway keys: anyone who reaches it could spend the upstream keys. Configure keys (see docs/gateway.md) or listen on 127.0.0.1`,
  );
}

const HEADERS_TIMEOUT_MS = 30_000;

/** The gateway's own server: its routes, `GET /healthz`, 404 for anything else. */
async function listenOn(
  handle: Gateway['handle'],
  config: GatewayConfig,
  port: number,
  host: string,
): Promise<{ url: string; port: number; server: Server }> {
  const server = createServer((request, response) => {
    if (handle(request, response)) return;
    request.resume();
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/healthz' && request.method === 'GET') {
      sendJson(response, 200, '{"status":"ok"}');
      return;
    }
    sendError(response, undefined, 404, 'not_found_error', `no route ${request.method} ${path}`);
  });
  server.keepAliveTimeout = 65_000;
  // A request's head within 30 s; its body has the gateway's own bound (`limits.bodyTimeoutMs`,
  // a 408 in the endpoint's shape), which node:http's backstop must not cut first.
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = HEADERS_TIMEOUT_MS + config.bodyTimeoutMs + 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return { url: `http://${shown}:${bound}`, port: bound, server };
}

export function createGateway(options: GatewayOptions): Gateway {
  const access = options.access ?? openAccess();
  const now = options.now ?? Date.now;
  const log = options.logger ?? stderrLogger;
  const recorder =
    options.spanExporter === undefined
      ? undefined
      : createSpanRecorder(
          options.spanExporter,
          options.serviceName ?? 'modelmaxx-gateway',
          (message) => log.error(message),
          access.instanceId,
        );
  const targets = new Targets(options.config, options.random ?? Math.random);
  const shadows = createShadows({ config: options.config, targets, recorder, log, now });
  const context: GatewayContext = {
    config: options.config,
    access,
    estimates: options.access !== undefined,
    now,
    log,
    tracer: recorder,
    metrics: {
      requests: 0,
      inFlight: 0,
      rejectedBusy: 0,
      upstreamErrors: 0,
      fallbacks: 0,
      clientAborts: 0,
      costDisagreements: 0,
    },
    targets,
    shadows,
    running: new Set(),
    closing: false,
  };
  const handle = (request: IncomingMessage, response: ServerResponse) =>
    handleRequest(context, request, response);
  let server: Server | undefined;
  return {
    handle,
    async listen(port, host) {
      assertSafeToBind(host, access);
      const listening = await listenOn(handle, options.config, port, host);
      server = listening.server;
      return listening;
    },
    metrics: () => ({ ...context.metrics }),
    cooldowns: (name) => new Map(context.targets.policies.get(name)?.cooldownUntil ?? []),
    shadows: (policy) => shadows.get(policy)?.stats(),
    shadowsIdle: async () => {
      await Promise.all([...shadows.values()].map((dispatcher) => dispatcher.idle()));
    },
    forceFlush: async () => {
      await recorder?.processor.forceFlush();
    },
    async close() {
      context.closing = true;
      if (server !== undefined) {
        const closing = server;
        await new Promise<void>((resolve) => {
          closing.close(() => resolve());
          closing.closeIdleConnections();
        });
      }
      // Mounted on another server (`serve --gateway`), nothing above waited for the requests in
      // flight: each settles its admission before the access layer closes.
      while (context.running.size > 0) await Promise.allSettled([...context.running]);
      // Shadow comparisons in flight finish (each bounded by its timeouts) before the last flush.
      await Promise.all([...shadows.values()].map((dispatcher) => dispatcher.idle()));
      await recorder?.processor.shutdown();
      await access.close();
    },
  };
}
