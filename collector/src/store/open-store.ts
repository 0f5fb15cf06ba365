/**
 * `openStore`: the one way the collector gets its `SpanStore`. Embedded chDB in
 * `dataDir` unless `clickhouseUrl` is given; schema migrated, prices loaded,
 * spool replayed before it returns.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SchemaOptions } from '../schema/schema.js';
import type { BatchOptions } from '../writer/batch-writer.js';
import { ChdbEngine } from './chdb-engine.js';
import { ClickHouseStore } from './clickhouse-store.js';
import type { ClickHouseEngine } from './engine.js';
import { catalogPriceRows } from './prices.js';
import type { PriceRow } from './prices.js';
import { ServerEngine } from './server-engine.js';

export interface OpenStoreOptions {
  /** Embedded ClickHouse data folder (default `./.modelmaxx/data`). */
  dataDir?: string;
  /** A ClickHouse server (`http://host:8123`); embedded chDB when absent. */
  clickhouseUrl?: string;
  database?: string;
  username?: string;
  password?: string;
  /** `ON CLUSTER` schema (server only). */
  cluster?: string;
  ttlDays?: number;
  /**
   * Spool folder for acknowledged spans not yet in ClickHouse (default
   * `<dataDir>/spool`, or `./.modelmaxx/spool` with a server). `false`: no
   * spool, requests are acknowledged only after the insert.
   */
  spoolDir?: string | false;
  batch?: Partial<BatchOptions>;
  /** Bytes waiting for the disk before 429 (default 64 MiB). */
  maxQueuedBytes?: number;
  /** Spool bytes before 503 (default 1 GiB). */
  maxSpoolBytes?: number;
  /** Free space the spool leaves on its disk for ClickHouse (default 10 % of it, at most 1 GiB). */
  minFreeBytes?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Extra ClickHouse settings for the span inserts (e.g. `{ max_insert_threads: 1 }`). */
  insertSettings?: Record<string, string | number | boolean>;
  /** How long `close()` keeps inserting what is spooled before leaving it for the next start (default 10 s). */
  closeTimeoutMs?: number;
  logger?: Logger;
  /** Price rows for `llm_prices` (default: the `@modelmaxx/pricing` built-in catalog, see `catalogPriceRows`). */
  priceRows?: readonly PriceRow[];
  /** Run `migrate()` before returning (default true). */
  migrate?: boolean;
}

export async function openStore(options: OpenStoreOptions = {}): Promise<ClickHouseStore> {
  const dataDir = options.dataDir ?? join(process.cwd(), '.modelmaxx', 'data');
  let engine: ClickHouseEngine;
  if (options.clickhouseUrl === undefined) {
    if (options.cluster !== undefined)
      throw new Error('--cluster needs a ClickHouse server (--clickhouse-url)');
    engine = new ChdbEngine(dataDir);
  } else {
    engine = new ServerEngine({
      url: options.clickhouseUrl,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
    });
  }
  const spoolDir =
    options.spoolDir === false
      ? undefined
      : (options.spoolDir ??
        (options.clickhouseUrl === undefined
          ? join(dataDir, 'spool')
          : join(process.cwd(), '.modelmaxx', 'spool')));
  const schema: SchemaOptions = {
    ...(options.database === undefined ? {} : { database: options.database }),
    ...(options.cluster === undefined ? {} : { cluster: options.cluster }),
    ...(options.ttlDays === undefined ? {} : { ttlDays: options.ttlDays }),
  };
  const store = new ClickHouseStore({
    ...schema,
    engine,
    ...(spoolDir === undefined ? {} : { spoolDir }),
    ...(options.batch === undefined ? {} : { batch: options.batch }),
    ...(options.maxQueuedBytes === undefined ? {} : { maxQueuedBytes: options.maxQueuedBytes }),
    ...(options.maxSpoolBytes === undefined ? {} : { maxSpoolBytes: options.maxSpoolBytes }),
    ...(options.minFreeBytes === undefined ? {} : { minFreeBytes: options.minFreeBytes }),
    ...(options.retryMinMs === undefined ? {} : { retryMinMs: options.retryMinMs }),
    ...(options.retryMaxMs === undefined ? {} : { retryMaxMs: options.retryMaxMs }),
    ...(options.closeTimeoutMs === undefined ? {} : { closeTimeoutMs: options.closeTimeoutMs }),
    ...(options.insertSettings === undefined ? {} : { insertSettings: options.insertSettings }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    priceRows: options.priceRows ?? catalogPriceRows(),
  });
  try {
    if (options.migrate !== false) await store.migrate();
    await store.start();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}
