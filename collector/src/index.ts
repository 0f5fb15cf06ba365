/**
 * `@modelmaxx/collector`: `startCollector()` runs the OTLP/HTTP receiver and its
 * APIs over a ClickHouse store (embedded chDB by default). Used by `main.ts`,
 * the `modelmaxx serve` command, the demo and the tests.
 */
import type { AddressInfo } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { createApp } from './app.js';
import { assertSafeToListen, loadConfig, type Config, type ConfigInput } from './config.js';
import { CollectorMetrics } from './metrics.js';
import { DecodePool } from './otlp/decode-pool.js';
import { openStore } from './store/open-store.js';
import type { SpanStore } from './store/span-store.js';

export interface StartCollectorOptions {
  /** Settings; anything missing comes from `env` / `argv`, then the defaults. */
  config?: Partial<ConfigInput>;
  /** Environment to read `MODELMAXX_*` from (default: none, only `config`). */
  env?: Record<string, string | undefined>;
  argv?: string[];
  logger?: Logger;
  /** A store opened by the caller; it stays open after `close()`. */
  store?: SpanStore;
  /**
   * Requests this returns true for are answered by it instead of the collector's routes (the
   * gateway of `modelmaxx serve --gateway`, on the same port).
   */
  handler?: (request: IncomingMessage, response: ServerResponse) => boolean;
  /** The longest a `handler`'s request body may take, ms: node:http's backstop stays above it. */
  handlerBodyTimeoutMs?: number;
}

export interface RunningCollector {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  port: number;
  config: Config;
  store: SpanStore;
  /** Stops accepting connections, waits for requests in progress, drains and closes the store it opened. */
  close(): Promise<void>;
}

export async function startCollector(
  options: StartCollectorOptions = {},
): Promise<RunningCollector> {
  const config = loadConfig({
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.argv === undefined ? {} : { argv: options.argv }),
    ...(options.config === undefined ? {} : { overrides: options.config }),
  });
  assertSafeToListen(config);
  const logger = options.logger ?? pino({ level: 'silent' });
  const ownStore = options.store === undefined;
  const store =
    options.store ??
    (await openStore({
      dataDir: join(config.dataDir, 'data'),
      spoolDir: join(config.dataDir, 'spool'),
      database: config.database,
      ...(config.spoolMinFreeBytes === undefined ? {} : { minFreeBytes: config.spoolMinFreeBytes }),
      logger,
      ...(config.clickhouseUrl === undefined ? {} : { clickhouseUrl: config.clickhouseUrl }),
      ...(config.clickhouseUser === undefined ? {} : { username: config.clickhouseUser }),
      ...(config.clickhousePassword === undefined ? {} : { password: config.clickhousePassword }),
    }));
  const app = createApp({ config, store, logger, metrics: new CollectorMetrics() });
  const handler = options.handler;
  const server =
    handler === undefined
      ? createServer(app)
      : createServer((request, response) => {
          if (!handler(request, response)) app(request, response);
        });
  // A backstop for every route: export bodies have their own, shorter limit
  // (`ingestBodyTimeoutSeconds`, answered 408 by the route), which this must not cut first.
  const bodyTimeoutMs = Math.max(
    config.ingestBodyTimeoutSeconds * 1000,
    options.handlerBodyTimeoutMs ?? 0,
  );
  server.requestTimeout = Math.max(60_000, bodyTimeoutMs + 30_000);
  server.headersTimeout = 30_000;
  try {
    await listen(server, config.port, config.host);
  } catch (error) {
    if (ownStore) await store.close().catch(() => undefined);
    throw error;
  }
  // Decode threads ready before the first export rather than started by it.
  DecodePool.shared(config.decodeThreads).warm();
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    config,
    store,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        if (ownStore) await store.close();
      })();
      return closing;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export { createApp } from './app.js';
export type { CreateAppOptions } from './app.js';
export { assertSafeToListen, isLoopbackHost, loadConfig } from './config.js';
export type { Config, ConfigInput, LoadConfigOptions } from './config.js';
export { decodeTraceRequestJson } from './otlp/decode-json.js';
export {
  decodeTraceRequestProtobuf,
  decodeTraceRequestProtobufToNative,
} from './otlp/decode-protobuf.js';
export type { DecodedTraces, EncodedTraces } from './otlp/to-span-rows.js';
export { openStore } from './store/open-store.js';
export { dataFolderHolder } from './store/data-folder.js';
export type { OpenStoreOptions } from './store/open-store.js';
export type { SpanRow, SpanStore, StoreReader, WriteResult } from './store/span-store.js';
export { schemaStatements } from './schema/schema.js';
export type { SchemaOptions, SchemaStatement } from './schema/schema.js';
export { ingestHeaderHint, serve } from './serve.js';
export type { ServeOptions } from './serve.js';
export { OTEL_TRACES_INSERT_COLUMNS } from './schema/schema.js';
export { clickhouseStatsSource } from './stats-source.js';
export type { ClickHouseStatsSource, ClickHouseStatsSourceOptions } from './stats-source.js';
export { SavingsQuerySchema, savingsLedger } from './savings/savings.js';
export type { SavingsLedger, SavingsQuery, SavingsRow } from './savings/savings.js';
