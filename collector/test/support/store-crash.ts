/**
 * Store failures as real as a test can make them: ClickHouse refusing span inserts (the
 * `otel_traces` table detached through the store's own engine), and a killed process (the
 * writer stopped with the spool left as it is on disk, the engine closed). The writer is
 * reached through the store's `openWriter` option, the real `BatchWriter` kept on the side.
 */
import { openStore, type OpenStoreOptions } from '../../src/store/open-store.js';
import type { ClickHouseStore } from '../../src/store/clickhouse-store.js';
import { BatchWriter } from '../../src/writer/batch-writer.js';

/** Makes the span inserts fail for real (`outage`), or work again. */
export async function insertOutage(store: ClickHouseStore, outage: boolean): Promise<void> {
  await store.engine.command(`${outage ? 'DETACH' : 'ATTACH'} TABLE ${store.database}.otel_traces`);
}

const writers = new WeakMap<ClickHouseStore, () => BatchWriter | undefined>();

/** `openStore`, with the store's writer kept for `stopWriter` and `crash`. */
export async function openKillableStore(options: OpenStoreOptions): Promise<ClickHouseStore> {
  let writer: BatchWriter | undefined;
  const store = await openStore({
    ...options,
    openWriter: async (writerOptions) => (writer = await BatchWriter.open(writerOptions)),
  });
  writers.set(store, () => writer);
  return store;
}

/** Stops the writer like a killed process would: nothing more is inserted, the spool stays. */
export async function stopWriter(store: ClickHouseStore): Promise<void> {
  const writer = writers.get(store);
  if (writer === undefined) throw new Error('stopWriter takes a store of openKillableStore');
  await writer()?.abandon();
}

/** A killed process: writer stopped, spool left on disk, engine closed. */
export async function crash(store: ClickHouseStore): Promise<void> {
  await stopWriter(store);
  await store.engine.close();
}
