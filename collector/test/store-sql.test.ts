import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/open-store.js';
import { ClickHouseStore, SqlRejectedError } from '../src/store/clickhouse-store.js';
import { llmSpan, tempDir } from './store-fixtures.js';

const dir = tempDir('mm-sql-');
let store: ClickHouseStore;
const limits = { maxRows: 1000, maxExecutionSeconds: 5 };

beforeAll(async () => {
  store = await openStore({ dataDir: dir.path, spoolDir: false, batch: { maxDelayMs: 10 } });
  expect(store).toBeInstanceOf(ClickHouseStore);
  expect(
    await store.write([llmSpan({ model: 'gpt-4o' }), llmSpan({ model: 'gpt-4o-mini' })]),
  ).toMatchObject({ status: 'ok' });
});
afterAll(async () => {
  await store.close();
  dir.remove();
});

describe('read-only SQL', () => {
  it('answers SELECTs with column names, types and rows', async () => {
    const result = await store.querySql(
      'SELECT RequestModel AS model, count() AS calls FROM modelmaxx.llm_calls GROUP BY model ORDER BY model',
      limits,
    );
    expect(result.columns).toEqual([
      { name: 'model', type: 'LowCardinality(String)' },
      { name: 'calls', type: 'UInt64' },
    ]);
    expect(result.rows.map((row) => [row.model, Number(row.calls)])).toEqual([
      ['gpt-4o', 1],
      ['gpt-4o-mini', 1],
    ]);
    expect(result.truncated).toBe(false);
  });

  it('refuses writes and DDL, and anything that would lift the limits', async () => {
    for (const sql of [
      "INSERT INTO modelmaxx.llm_scores (Name) VALUES ('x')",
      'DROP TABLE modelmaxx.otel_traces',
      'ALTER TABLE modelmaxx.otel_traces DELETE WHERE 1',
      'CREATE TABLE modelmaxx.t (a Int8) ENGINE = Memory',
      'TRUNCATE TABLE modelmaxx.otel_traces',
      'SET readonly = 0',
      'SYSTEM DROP DNS CACHE',
    ]) {
      await expect(store.querySql(sql, limits), sql).rejects.toThrow(SqlRejectedError);
    }
    await expect(
      store.querySql('SELECT * FROM (SELECT 1 SETTINGS readonly = 0)', limits),
    ).rejects.toThrow(/SETTINGS clauses are not allowed/);
    await expect(store.querySql('SELECT 1 FORMAT CSV', limits)).rejects.toThrow(SqlRejectedError);
    await expect(store.querySql("SELECT 1 INTO OUTFILE '/tmp/x.csv'", limits)).rejects.toThrow(
      SqlRejectedError,
    );
    // Table functions read and write outside the database: ClickHouse refuses them in readonly mode.
    await expect(
      store.querySql("SELECT * FROM file('/etc/hostname', 'LineAsString')", limits),
    ).rejects.toThrow(/Cannot execute query in readonly mode/);
    // Two statements: ClickHouse's parser says no.
    await expect(
      store.querySql('SELECT 1; DROP TABLE modelmaxx.otel_traces', limits),
    ).rejects.toThrow(/Multi-statements are not allowed/);
    const tables = await store.querySql(
      "SELECT count() AS n FROM system.tables WHERE database = 'modelmaxx' AND name = 'otel_traces'",
      limits,
    );
    expect(Number(tables.rows[0]?.n)).toBe(1);
  });

  it("cuts results at maxRows and stops slow queries with ClickHouse's own error", async () => {
    const cut = await store.querySql('SELECT number FROM system.numbers LIMIT 100000', {
      maxRows: 10,
      maxExecutionSeconds: 5,
    });
    expect(cut.truncated).toBe(true);
    expect(cut.rows.map((row) => Number(row.number))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const exact = await store.querySql('SELECT number FROM numbers(10)', {
      maxRows: 10,
      maxExecutionSeconds: 5,
    });
    expect(exact.truncated).toBe(false);
    expect(exact.rows).toHaveLength(10);

    // Rows come out while it runs, then ClickHouse stops it.
    const slow = store.querySql('SELECT number FROM system.numbers WHERE number % 100000 = 0', {
      maxRows: 1_000_000,
      maxExecutionSeconds: 1,
    });
    await expect(slow).rejects.toThrow(SqlRejectedError);
    await expect(slow).rejects.toThrow(/time limit for ad-hoc SQL \(1 s.*TIMEOUT_EXCEEDED/);
    // The next query sees only its own result.
    const next = await store.querySql('SELECT 42 AS answer', limits);
    expect(next.rows).toEqual([{ answer: 42 }]);
  });
});
