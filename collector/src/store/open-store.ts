/**
 * `openStore`: the one way the collector gets its `SpanStore`. Embedded chDB in
 * `dataDir` unless `clickhouseUrl` is given; schema migrated, prices loaded,
 * spool replayed before it returns.
 */
import { join } from 'node:path';
import { llmPriceRows } from '@modelmaxx/pricing';
import { ClickHouseStore } from './clickhouse-store.js';
import type { ClickHouseStoreOptions } from './clickhouse-store.js';
import { createEngine } from './create-engine.js';
import type { EngineConfig } from './create-engine.js';

export interface OpenStoreOptions
  extends
    Omit<ClickHouseStoreOptions, 'engine' | 'spoolDir'>,
    Omit<EngineConfig, 'requestTimeoutMs'> {
  /** Embedded ClickHouse data folder (default `./.modelmaxx/data`). */
  dataDir?: string;
  /**
   * Spool folder for acknowledged spans not yet in ClickHouse (default
   * `<dataDir>/spool`, or `./.modelmaxx/spool` with a server). `false`: no
   * spool, requests are acknowledged only after the insert.
   */
  spoolDir?: string | false;
  /** Run `migrate()` before returning (default true). */
  migrate?: boolean;
}

/** The spool folder `options` ask for; `undefined` for none. */
function spoolDirOf(options: OpenStoreOptions, dataDir: string): string | undefined {
  if (options.spoolDir === false) return undefined;
  if (options.spoolDir !== undefined) return options.spoolDir;
  return options.clickhouseUrl === undefined
    ? join(dataDir, 'spool')
    : join(process.cwd(), '.modelmaxx', 'spool');
}

export async function openStore(options: OpenStoreOptions = {}): Promise<ClickHouseStore> {
  const dataDir = options.dataDir ?? join(process.cwd(), '.modelmaxx', 'data');
  if (options.clickhouseUrl === undefined && options.cluster !== undefined)
    throw new Error('--cluster needs a ClickHouse server (--clickhouse-url)');
  const { clickhouseUrl, username, password, migrate, ...rest } = options;
  const { dataDir: _dataDir, spoolDir: _spoolDir, ...storeOptions } = rest;
  const spoolDir = spoolDirOf(options, dataDir);
  const store = new ClickHouseStore({
    ...storeOptions,
    engine: createEngine({ dataDir, clickhouseUrl, username, password }),
    ...(spoolDir === undefined ? {} : { spoolDir }),
    priceRows: options.priceRows ?? llmPriceRows(),
  });
  try {
    if (migrate !== false) await store.migrate();
    await store.start();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}
