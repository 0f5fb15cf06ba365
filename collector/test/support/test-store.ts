/**
 * An embedded store for one test file: opened in a fresh temporary data folder before the file's
 * tests (`beforeAll`), closed and removed after them (`afterAll`).
 */
import { afterAll, beforeAll } from 'vitest';
import type { ClickHouseStore } from '../../src/store/clickhouse-store.js';
import { openStore } from '../../src/store/open-store.js';
import type { OpenStoreOptions } from '../../src/store/open-store.js';
import { tempDir } from '../store-fixtures.js';

export interface TestStore {
  /** The open store (from `beforeAll` on). */
  readonly store: ClickHouseStore;
  /** Rows of a SQL query on the store's engine. */
  query<Row = Record<string, unknown>>(
    sql: string,
    params?: Record<string, unknown>,
  ): Promise<Row[]>;
}

/** Registers the hooks that open and close a store with `options` in a `prefix…` temporary folder. */
export function useTestStore(
  prefix: string,
  options: Omit<OpenStoreOptions, 'dataDir'>,
): TestStore {
  const dir = tempDir(prefix);
  let opened: ClickHouseStore | undefined;
  beforeAll(async () => {
    opened = await openStore({ dataDir: dir.path, ...options });
  });
  afterAll(async () => {
    await opened?.close();
    dir.remove();
  });
  return {
    get store(): ClickHouseStore {
      if (opened === undefined) throw new Error('the test store opens in beforeAll');
      return opened;
    },
    async query<Row>(sql: string, params?: Record<string, unknown>): Promise<Row[]> {
      return (await this.store.engine.query<Row>(sql, params)).data;
    },
  };
}
