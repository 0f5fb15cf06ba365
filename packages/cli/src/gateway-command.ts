/**
 * `modelmaxx gateway` (the gateway alone, spans over OTLP) and `modelmaxx serve --gateway` (the
 * gateway on the collector's port, spans written straight into the collector's store).
 */
import { parseArgs } from 'node:util';
import { ExportResultCode } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import {
  decodeTraceRequestProtobufToNative,
  ingestHeaderHint,
  loadConfig,
  startCollector,
} from '@modelmaxx/collector';
import type { SpanStore } from '@modelmaxx/collector';
import {
  GatewayConfigError,
  assertSafeToBind,
  baseUrlWarnings,
  priceWarnings,
  createGateway,
  readConfigFile,
  resolveConfig,
} from '@modelmaxx/gateway';
import type { GatewayAccess, GatewayConfig, GatewayLogger } from '@modelmaxx/gateway';
import { accessFromConfig, keysCommand } from './gateway-access.js';
import type { AccessWiring } from './gateway-access.js';
import { UsageError } from './query-source.js';

type Env = Record<string, string | undefined>;

export const GATEWAY_HELP = `Usage: modelmaxx gateway [options]

Runs the OpenAI- and Anthropic-compatible gateway alone: POST /v1/chat/completions, /v1/responses,
/v1/embeddings, /v1/messages, GET /v1/models; "model" is a real model or route:<policy>. Spans go
over OTLP to a collector. See docs/gateway.md.

Options (flag, or environment variable):
  --upstream NAME=URL   an upstream (repeatable): openai=https://api.openai.com/v1,
                        anthropic=https://api.anthropic.com, any OpenAI-compatible base URL; its key
                        from MODELMAXX_UPSTREAM_<NAME>_KEY, its wire format from the name or --config
  --config FILE         MODELMAXX_GATEWAY_CONFIG; JSON: upstreams, models, policies, limits, keys,
                        budgets, budgetSync, rateLimits, alerts (docs/gateway.md)
  --host H              MODELMAXX_GATEWAY_HOST; default 127.0.0.1 (other hosts need gateway keys)
  --port N              MODELMAXX_GATEWAY_PORT; default 4000 (0: any free port)
  --service-name NAME   service.name of the gateway's spans (default modelmaxx-gateway)
  -h, --help            this text

modelmaxx gateway keys create [--id ID] [--team T] [--user U] [--app A] [--config FILE]
                        a new gateway key, printed once; its SHA-256 goes in the config's "keys"
                        (added to FILE with --config)

Budget spend is kept in MODELMAXX_GATEWAY_STATE_DIR (default MODELMAXX_DATA_DIR, else
./.modelmaxx; with serve --gateway, the collector's --data) as gateway-budgets.json.

Environment only: OTEL_EXPORTER_OTLP_ENDPOINT (the collector, default http://localhost:4318),
OTEL_EXPORTER_OTLP_HEADERS (e.g. its ingest token), MODELMAXX_UPSTREAM_<NAME>_KEY.
Stops on SIGTERM / Ctrl-C after the requests in flight. Exit codes: 0 stopped, 1 failed, 2 bad
configuration.
`;

/** The flags `serve --gateway` adds to the collector's (see \`modelmaxx serve --help\`). */
export const SERVE_GATEWAY_HELP = `  --gateway             also serve the gateway on this port (/v1/chat/completions, /v1/responses,
                        /v1/embeddings, /v1/messages, /v1/models); its spans go straight into
                        this collector's store (docs/gateway.md)
  --upstream NAME=URL   with --gateway: an upstream (repeatable); key from MODELMAXX_UPSTREAM_<NAME>_KEY
  --config FILE         with --gateway: the gateway's JSON config (MODELMAXX_GATEWAY_CONFIG)`;

/** The access layer for a config: keys, budgets, rate limits, alerts (open when none). */
export function accessFor(
  config: GatewayConfig,
  env: Env,
  wiring: AccessWiring = {},
): GatewayAccess {
  return accessFromConfig(config, env, wiring);
}

/** A base URL as printed: without any user:password in it. */
function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(invalid URL)';
  }
}

function stderrLogger(): GatewayLogger {
  const line = (level: string, message: string, fields?: Record<string, unknown>) =>
    process.stderr.write(
      `${JSON.stringify({ level, time: new Date().toISOString(), msg: message, ...fields })}\n`,
    );
  return {
    info: (message, fields) => line('info', message, fields),
    warn: (message, fields) => line('warn', message, fields),
    error: (message, fields) => line('error', message, fields),
  };
}

function loadGatewayConfig(
  configFile: string | undefined,
  upstreams: readonly string[],
  env: Env,
  warn: (text: string) => void,
): GatewayConfig {
  const file = configFile ?? env['MODELMAXX_GATEWAY_CONFIG'];
  const input = file === undefined ? {} : readConfigFile(file);
  const config = resolveConfig(input, {
    upstreamFlags: upstreams,
    env,
    ...(file === undefined ? {} : { source: file }),
  });
  if (config.upstreams.size === 0) {
    throw new GatewayConfigError(
      'no upstream: give --upstream NAME=URL (e.g. openai=https://api.openai.com/v1) or upstreams in --config',
    );
  }
  for (const warning of [...baseUrlWarnings(config), ...priceWarnings(config)]) warn(warning);
  return config;
}

/**
 * A SpanExporter that hands spans to the co-located collector without HTTP: serialized as an
 * OTLP protobuf request (what an app's exporter would send) and decoded by the collector's own
 * decoder into the Native block its store writes, so the rows are those of `/v1/traces`.
 */
export function storeSpanExporter(store: SpanStore): SpanExporter {
  let pending = new Set<Promise<unknown>>();
  return {
    export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
      let write: Promise<unknown>;
      try {
        const bytes = ProtobufTraceSerializer.serializeRequest(spans);
        if (bytes === undefined) throw new Error('spans could not be serialized');
        const encoded = decodeTraceRequestProtobufToNative(bytes);
        write =
          encoded.spans === 0 ? Promise.resolve() : store.writeNative(encoded.block, encoded.spans);
      } catch (error) {
        done({ code: ExportResultCode.FAILED, error: error as Error });
        return;
      }
      const tracked = write.then(
        () => done({ code: ExportResultCode.SUCCESS }),
        (error: unknown) => done({ code: ExportResultCode.FAILED, error: error as Error }),
      );
      pending.add(tracked);
      void tracked.finally(() => pending.delete(tracked));
    },
    async forceFlush() {
      await Promise.all(pending);
    },
    async shutdown() {
      await Promise.all(pending);
      pending = new Set();
    },
  };
}

function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

function fail(io: { stderr: (text: string) => void }, error: unknown, name: string): number {
  if (error instanceof GatewayConfigError) {
    io.stderr(`modelmaxx ${name}: ${error.message}\n`);
    return 2;
  }
  throw error;
}

export async function gatewayCommand(
  args: string[],
  io: { stdout: (text: string) => void; stderr: (text: string) => void; env: Env },
): Promise<number> {
  if (args[0] === 'keys') return keysCommand(args.slice(1), io);
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        upstream: { type: 'string', multiple: true },
        config: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        'service-name': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const host = values.host ?? io.env['MODELMAXX_GATEWAY_HOST'] ?? '127.0.0.1';
  const portText = values.port ?? io.env['MODELMAXX_GATEWAY_PORT'] ?? '4000';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port takes 0..65535; got ${JSON.stringify(portText)}`);
  }
  let config: GatewayConfig;
  let access: GatewayAccess | undefined;
  try {
    config = loadGatewayConfig(values.config, values.upstream ?? [], io.env, (text) =>
      io.stderr(`modelmaxx gateway: warning: ${text}\n`),
    );
    access = accessFor(config, io.env, {
      logger: stderrLogger(),
      source: values.config ?? io.env['MODELMAXX_GATEWAY_CONFIG'],
    });
    assertSafeToBind(host, access);
  } catch (error) {
    // The access layer holds the state dir (its lock) and runs timers: given back first.
    await access?.close();
    return fail(io, error, 'gateway');
  }
  const gateway = createGateway({
    config,
    access,
    // OTLP/protobuf from the gateway's span export thread (OTEL_EXPORTER_OTLP_* as usual):
    // serializing span batches never holds the event loop.
    spanExporter: { module: import.meta.resolve('@opentelemetry/exporter-trace-otlp-proto') },
    serviceName: values['service-name'] ?? 'modelmaxx-gateway',
    logger: stderrLogger(),
  });
  const { url } = await gateway.listen(port, host);
  io.stderr(
    `modelmaxx gateway listening on ${url} (upstreams: ${[...config.upstreams.values()]
      .map(
        (upstream) =>
          `${upstream.name}=${shownUrl(upstream.baseURL)}${upstream.key === undefined ? ` (no key: ${upstream.keyEnv} not set)` : ''}`,
      )
      .join(', ')})\n` + `  OpenAI SDKs: base URL ${url}/v1    Anthropic SDKs: base URL ${url}\n`,
  );
  const signal = await waitForSignal();
  io.stderr(`modelmaxx gateway: ${signal}, stopping\n`);
  await gateway.close();
  return 0;
}

/** Removes the gateway's flags from a `serve` command line; what is left goes to the collector. */
export function splitServeArgs(args: string[]): {
  gateway: boolean;
  upstreams: string[];
  config: string | undefined;
  rest: string[];
} {
  const rest: string[] = [];
  const upstreams: string[] = [];
  let gateway = false;
  let config: string | undefined;
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index]!;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    if (flag === '--gateway') gateway = true;
    else if (flag === '--upstream' || flag === '--config') {
      const value = inline ?? args[(index += 1)];
      if (value === undefined) throw new UsageError(`${flag} needs a value`);
      if (flag === '--upstream') upstreams.push(value);
      else config = value;
    } else rest.push(arg);
  }
  if (!gateway && (upstreams.length > 0 || config !== undefined)) {
    throw new UsageError('--upstream and --config go with --gateway');
  }
  return { gateway, upstreams, config, rest };
}

/** `modelmaxx serve --gateway`: collector and gateway in one process, on one port. */
export async function serveWithGateway(
  split: { upstreams: string[]; config: string | undefined; rest: string[] },
  io: { stdout: (text: string) => void; stderr: (text: string) => void; env: Env },
): Promise<number> {
  let config: GatewayConfig;
  let access: GatewayAccess | undefined;
  const listening: { url?: string } = {};
  try {
    config = loadGatewayConfig(split.config, split.upstreams, io.env, (text) =>
      io.stderr(`modelmaxx serve: warning: ${text}\n`),
    );
    // Before anything listens: the host the collector will bind (its own checks follow).
    let host: string | undefined;
    let dataDir: string | undefined;
    try {
      ({ host, dataDir } = loadConfig({ env: io.env, argv: split.rest }));
    } catch {
      host = undefined; // the collector reports its own configuration errors below
    }
    // Budget spend beside the collector's data; alert rules read this collector's stats.
    access = accessFor(config, io.env, {
      source: split.config ?? io.env['MODELMAXX_GATEWAY_CONFIG'],
      stateDir: dataDir,
      collectorUrl: () => listening.url,
      logger: stderrLogger(),
    });
    if (host !== undefined) assertSafeToBind(host, access);
  } catch (error) {
    await access?.close();
    return fail(io, error, 'serve');
  }
  const opened: { store?: SpanStore } = {};
  const exporter = storeSpanExporter({
    writeNative: (block: Buffer, rows: number) => {
      if (opened.store === undefined) return Promise.reject(new Error('the store is not open yet'));
      return opened.store.writeNative(block, rows);
    },
  } as SpanStore);
  const gateway = createGateway({
    config,
    access,
    spanExporter: exporter,
    serviceName: 'modelmaxx-gateway',
    logger: stderrLogger(),
  });
  let collector;
  try {
    collector = await startCollector({
      env: io.env,
      argv: split.rest,
      handler: (request, response) => gateway.handle(request, response),
      handlerBodyTimeoutMs: config.bodyTimeoutMs,
    });
  } catch (error) {
    await gateway.close();
    io.stderr(`modelmaxx serve: ${(error as Error).message}\n`);
    return (error as { name?: string }).name === 'ConfigError' ? 2 : 1;
  }
  opened.store = collector.store;
  listening.url = collector.url;
  io.stderr(
    `modelmaxx collector and gateway listening on ${collector.url} (storage: ${collector.config.clickhouseUrl ?? collector.config.dataDir})\n` +
      `  apps send spans with  OTEL_EXPORTER_OTLP_ENDPOINT=${collector.url}\n` +
      ingestHeaderHint(collector.config.ingestToken) +
      `  gateway: OpenAI SDKs base URL ${collector.url}/v1, Anthropic SDKs ${collector.url} (upstreams: ${[...config.upstreams.values()].map((upstream) => (upstream.key === undefined ? `${upstream.name} (no key: ${upstream.keyEnv} not set)` : upstream.name)).join(', ')})\n` +
      `  dashboard             ${collector.url}/\n`,
  );
  const signal = await waitForSignal();
  io.stderr(`modelmaxx serve: ${signal}, stopping\n`);
  // The gateway first: its last spans go into the store before the store closes.
  await gateway.close();
  await collector.close();
  return 0;
}
