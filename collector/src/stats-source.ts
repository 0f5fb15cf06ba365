/**
 * Aggregate stats straight from ClickHouse, without the collector's HTTP API: a function that
 * returns what `GET /api/stats?groupBy=model,task` returns, through the very same stats query
 * (`ClickHouseStore.stats`, over the rollups). Its shape is the router's `StatsSource`
 * (`() => Promise<StatsResponse>`), so `new WeightUpdater({ source: clickhouseStatsSource(…) })`
 * works without the router depending on the collector.
 *
 * Where the stats come from:
 * - `store`: a store this process already owns (e.g. `collector.store` of an in-process
 *   collector, or the `openStore()` result of an app that embeds the collector).
 * - `clickhouseUrl`: a ClickHouse server (`@clickhouse/client`) that collectors write into;
 *   read-only, nothing is created or migrated.
 * - `dataDir`: an embedded chDB data folder (the collector's `<data>/data`). chDB opens one data
 *   folder per process and a folder must not be opened by two processes: this only works in a
 *   process that has no other chDB folder open, while no collector runs on that folder (for a
 *   running collector use `store` in its own process, `/api/stats`, or a ClickHouse server).
 */
import { StatsQuerySchema } from '@modelmaxx/semconv/schemas';
import type { StatsResponse } from '@modelmaxx/semconv/schemas';
import { ClickHouseStore } from './store/clickhouse-store.js';
import { createEngine } from './store/create-engine.js';
import type { ClickHouseEngine } from './store/engine.js';
import type { StoreReader } from './store/span-store.js';

export interface ClickHouseStatsSourceOptions {
  /** A store opened in this process (e.g. `collector.store`); it is not closed by `close()`. */
  readonly store?: Pick<StoreReader, 'stats'>;
  /** A ClickHouse server, e.g. `http://clickhouse:8123`. */
  readonly clickhouseUrl?: string;
  readonly username?: string;
  readonly password?: string;
  /** Per-request timeout against the server (default 10 s). */
  readonly requestTimeoutMs?: number;
  /** An embedded chDB data folder not open in any other process (see the module comment). */
  readonly dataDir?: string;
  /** Database of the collector's tables (default `modelmaxx`); with `clickhouseUrl` / `dataDir`. */
  readonly database?: string;
  /** Stats window, e.g. `1h` (the policy's `statsWindow`); default `1h`. */
  readonly window?: string;
  /** Only calls of this service (`service.name`). */
  readonly service?: string;
  /** Quality from these evaluation names only (`gen_ai.evaluation.name`); default: all. */
  readonly scores?: readonly string[];
}

/** A router-compatible stats source; `close()` releases the connection it opened (if any). */
export type ClickHouseStatsSource = (() => Promise<StatsResponse>) & {
  close(): Promise<void>;
};

/**
 * A `StatsSource` for the router's `WeightUpdater` that reads ClickHouse directly, grouped by
 * model and task like `collectorStatsSource` asks `/api/stats`. Give exactly one of `store`,
 * `clickhouseUrl`, `dataDir`.
 */
export function clickhouseStatsSource(
  options: ClickHouseStatsSourceOptions,
): ClickHouseStatsSource {
  const given = [options.store, options.clickhouseUrl, options.dataDir].filter(
    (value) => value !== undefined,
  ).length;
  if (given !== 1) {
    throw new TypeError(
      `clickhouseStatsSource takes exactly one of store, clickhouseUrl, dataDir (got ${given})`,
    );
  }
  // The same validation (and defaults) as `GET /api/stats`.
  const query = StatsQuerySchema.parse({
    window: options.window ?? '1h',
    groupBy: 'model,task',
    // The router reads no separate quality figures: one query, over the rollup only.
    quality: 'false',
    ...(options.service === undefined ? {} : { service: options.service }),
    ...(options.scores === undefined ? {} : { scores: options.scores.join(',') }),
  });
  let engine: ClickHouseEngine | undefined;
  let store: Pick<StoreReader, 'stats'>;
  if (options.store !== undefined) {
    store = options.store;
  } else {
    engine = createEngine({ ...options, requestTimeoutMs: options.requestTimeoutMs ?? 10_000 });
    // Read-only use of the store: no migrate(), no start() (no writer, no spool).
    store = new ClickHouseStore({
      engine,
      ...(options.database === undefined ? {} : { database: options.database }),
    });
  }
  let closed = false;
  const source = async (): Promise<StatsResponse> => {
    if (closed) throw new Error('this ClickHouse stats source is closed');
    return store.stats(query);
  };
  return Object.assign(source, {
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await engine?.close();
    },
  });
}
