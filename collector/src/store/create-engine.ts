/**
 * `createEngine`: the one place a `ClickHouseEngine` is chosen and built — a ClickHouse
 * server when a URL is given, else embedded chDB in a data folder.
 */
import { ChdbEngine } from './chdb-engine.js';
import type { ClickHouseEngine } from './engine.js';
import { ServerEngine } from './server-engine.js';

export interface EngineConfig {
  /** Embedded chDB data folder (used when `clickhouseUrl` is absent). */
  dataDir?: string | undefined;
  /** A ClickHouse server, e.g. `http://clickhouse:8123`. */
  clickhouseUrl?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  /** Per-request timeout against a server (default 60 s). */
  requestTimeoutMs?: number | undefined;
}

export function createEngine(config: EngineConfig): ClickHouseEngine {
  if (config.clickhouseUrl !== undefined) {
    return new ServerEngine({
      url: config.clickhouseUrl,
      username: config.username,
      password: config.password,
      requestTimeoutMs: config.requestTimeoutMs,
    });
  }
  if (config.dataDir === undefined)
    throw new TypeError('a ClickHouse engine needs a data folder or a server URL');
  return new ChdbEngine(config.dataDir);
}
