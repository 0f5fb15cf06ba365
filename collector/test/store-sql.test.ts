import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/open-store.js';
import { ClickHouseStore } from '../src/store/clickhouse-store.js';
import { SqlRejectedError } from '../src/store/sql-adhoc.js';
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

describe('ad-hoc SQL limits', () => {
  it('fails a query that needs more memory than maxMemoryBytes, naming the limit', async () => {
    // ~200 MB of strings in one array: refused at 64 MiB (no cap before: it ran).
    const hungry = store.querySql(
      "SELECT length(groupArray(repeat('x', 1000))) AS n FROM numbers(200000)",
      { ...limits, maxMemoryBytes: 64 * 1024 * 1024 },
    );
    await expect(hungry).rejects.toThrow(SqlRejectedError);
    await expect(hungry).rejects.toThrow(
      /more memory than ad-hoc SQL may use \(64 MiB: max_memory_usage, MODELMAXX_SQL_MAX_MEMORY_BYTES\).*MEMORY_LIMIT_EXCEEDED|memory limit exceeded/i,
    );
    // The same query fits a larger cap.
    const fits = await store.querySql(
      "SELECT length(groupArray(repeat('x', 1000))) AS n FROM numbers(200000)",
      { ...limits, maxMemoryBytes: 1024 ** 3 },
    );
    expect(Number(fits.rows[0]?.n)).toBe(200_000);
  });

  it('never lets a SETTINGS clause lift the memory, time or result limits', async () => {
    for (const sql of [
      "SELECT length(groupArray(repeat('x', 1000))) AS n FROM numbers(200000) SETTINGS max_memory_usage = 0",
      'SELECT count() FROM system.numbers WHERE sleep(1) = 0 SETTINGS max_execution_time = 1000',
      'SELECT * FROM (SELECT number FROM numbers(10) SETTINGS max_result_bytes = 0, max_result_rows = 0)',
      'SELECT 1 SETTINGS readonly = 0',
      'DESCRIBE TABLE llm_calls SETTINGS max_memory_usage = 0',
      'SHOW TABLES SETTINGS readonly = 0',
      'SHOW CREATE TABLE otel_traces SETTINGS max_execution_time = 0',
      'EXISTS TABLE llm_calls SETTINGS max_memory_usage = 0',
    ]) {
      await expect(
        store.querySql(sql, { ...limits, maxMemoryBytes: 64 * 1024 ** 2 }),
        sql,
      ).rejects.toThrow(/SETTINGS clauses are not allowed/);
    }
  });

  it('cuts a result at maxResultBytes and says so', async () => {
    // 10,000 rows of 10 KB: 100 MB of JSON; kept: what fits in 1 MiB.
    const cut = await store.querySql("SELECT number, repeat('x', 10000) AS s FROM numbers(10000)", {
      ...limits,
      maxRows: 100_000,
      maxResultBytes: 1024 * 1024,
    });
    expect(cut.truncated).toBe(true);
    expect(cut.truncatedBy).toBe('maxResultBytes');
    expect(cut.rows.length).toBeGreaterThan(50);
    expect(cut.rows.length).toBeLessThan(105);
    expect(JSON.stringify(cut.rows).length).toBeLessThan(1.1 * 1024 * 1024);
    expect(cut.rows.map((row) => Number(row.number))).toEqual(cut.rows.map((_row, index) => index));
    const rowsCut = await store.querySql('SELECT number FROM numbers(100)', {
      ...limits,
      maxRows: 5,
    });
    expect(rowsCut).toMatchObject({ truncated: true, truncatedBy: 'maxRows' });
  });
});

describe('DESCRIBE, SHOW and EXISTS', () => {
  it('answers them read-only, with unqualified names in our database', async () => {
    const describe = await store.querySql('DESCRIBE TABLE llm_calls', limits);
    expect(describe.columns.map((column) => column.name)).toContain('type');
    expect(describe.rows.map((row) => row.name)).toEqual(
      expect.arrayContaining(['TraceId', 'RequestModel', 'CostUSD']),
    );
    const short = await store.querySql('DESC modelmaxx.otel_traces', limits);
    expect(short.rows.map((row) => row.name)).toContain('SpanAttributes');

    const tables = await store.querySql('SHOW TABLES', limits);
    expect(tables.columns).toEqual([{ name: 'name', type: 'String' }]);
    expect(tables.rows.map((row) => row.name)).toEqual(
      expect.arrayContaining(['otel_traces', 'llm_calls', 'llm_scores']),
    );
    const databases = await store.querySql('SHOW DATABASES', limits);
    expect(databases.rows.map((row) => row.name)).toEqual(
      expect.arrayContaining(['modelmaxx', 'system']),
    );
    const create = await store.querySql('SHOW CREATE TABLE otel_traces', limits);
    expect(String(create.rows[0]?.statement)).toMatch(/^CREATE TABLE modelmaxx\.otel_traces/);
    const exists = await store.querySql('EXISTS TABLE llm_calls', limits);
    expect(exists.rows).toEqual([{ result: 1 }]);
    const missing = await store.querySql('EXISTS TABLE no_such_table', limits);
    expect(missing.rows).toEqual([{ result: 0 }]);
    const columns = await store.querySql("SHOW COLUMNS FROM llm_calls LIKE 'Cost%'", limits);
    expect(columns.rows.map((row) => row.field)).toContain('CostUSD');
  });

  it('refuses what reads or writes outside the database, and statements that are not reads', async () => {
    const out = join(dir.path, 'out.txt');
    for (const sql of [
      `SHOW TABLES INTO OUTFILE '${out}'`,
      `DESCRIBE TABLE llm_calls INTO OUTFILE '${out}'`,
      `SHOW CREATE TABLE otel_traces INTO OUTFILE '${out}'`,
      'SHOW TABLES FORMAT CSV',
      'EXISTS TABLE llm_calls FORMAT TSV',
      "DESCRIBE TABLE file('/etc/hostname', 'LineAsString')",
      "DESCRIBE TABLE url('http://127.0.0.1:9/x.csv', 'CSV')",
      "DESCRIBE (SELECT * FROM file('/etc/hostname', 'LineAsString'))",
      'KILL QUERY WHERE 1',
      'SYSTEM RELOAD DICTIONARIES',
      'SET max_memory_usage = 0',
      'EXPLAIN SELECT 1',
      'SHOW PROCESSLIST',
      'OPTIMIZE TABLE otel_traces FINAL',
      'RENAME TABLE llm_scores TO x',
      'DETACH TABLE llm_scores',
    ]) {
      await expect(store.querySql(sql, limits), sql).rejects.toThrow(SqlRejectedError);
    }
    expect(existsSync(out)).toBe(false);
  });
});

describe('streamed results', () => {
  it('keeps the names and types out of the rows when the result comes in many blocks', async () => {
    // Blocks of at most 2048 rows: 5000 rows arrive as several chunks, each with its own header.
    const result = await store.querySql(
      'SELECT number, toString(number) AS text FROM numbers(5000)',
      {
        ...limits,
        maxRows: 10_000,
      },
    );
    expect(result.truncated).toBe(false);
    expect(result.columns).toEqual([
      { name: 'number', type: 'UInt64' },
      { name: 'text', type: 'String' },
    ]);
    expect(result.rows).toHaveLength(5000);
    expect(
      result.rows.every((row, index) => Number(row.number) === index && row.text === String(index)),
    ).toBe(true);
  });
});
