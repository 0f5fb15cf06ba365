import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { schemaStatements, tableNames, upgradeStatements } from '../src/schema/schema.js';

const SQL_DIR = new URL('../src/schema/sql/', import.meta.url);

/** A schema file as written, without its leading comment. */
const file = (name: string) =>
  readFileSync(new URL(name, SQL_DIR), 'utf8')
    .replace(/^(?:--[^\n]*\n)+/, '')
    .trimEnd();

const statement = (statements: { name: string; sql: string }[], name: string) => {
  const found = statements.find((candidate) => candidate.name === name);
  if (found === undefined) throw new Error(`no statement ${name}`);
  return found;
};

describe('schema .sql files', () => {
  it('are the statements: the exporter table is its file with the placeholders filled in', () => {
    const text = file('tables/otel_traces.sql');
    const single = statement(
      schemaStatements({ database: 'obs', ttlDays: 7 }),
      'table otel_traces',
    );
    expect(single.sql).toBe(
      text
        .replace('{{database}}.{{table}}{{on_cluster}}', 'obs.otel_traces')
        .replace('{{engine:MergeTree()}}', 'MergeTree()')
        .replace('{{ttl:toDateTime(Timestamp)}}', 'TTL toDateTime(Timestamp) + toIntervalDay(7)')
        .replace('{{dedup_window}}', ', non_replicated_deduplication_window = 10000'),
    );
    // Without a TTL the placeholder's line goes; on a cluster the shards' table is replicated.
    expect(statement(schemaStatements(), 'table otel_traces').sql).toBe(
      text
        .replace('{{database}}.{{table}}{{on_cluster}}', 'modelmaxx.otel_traces')
        .replace('{{engine:MergeTree()}}', 'MergeTree()')
        .replace('{{ttl:toDateTime(Timestamp)}}\n', '')
        .replace('{{dedup_window}}', ', non_replicated_deduplication_window = 10000'),
    );
    const cluster = schemaStatements({ database: 'obs', cluster: 'c1' });
    expect(statement(cluster, 'table otel_traces_local').sql).toBe(
      text
        .replace('{{database}}.{{table}}{{on_cluster}}', 'obs.otel_traces_local ON CLUSTER c1')
        .replace(
          '{{engine:MergeTree()}}',
          "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')",
        )
        .replace('{{ttl:toDateTime(Timestamp)}}\n', '')
        .replace('{{dedup_window}}', ''),
    );
    expect(statement(cluster, 'table llm_prices').sql).toContain(
      "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{shard}-{replica}', LoadedAt)",
    );
  });

  it('views and dictionaries are their files, reading the shards’ tables on a cluster', () => {
    const statements = schemaStatements({ database: 'obs', cluster: 'c1' });
    expect(statement(statements, 'view otel_traces_trace_id_ts_mv').sql).toBe(
      file('views/otel_traces_trace_id_ts_mv.sql')
        .replace(
          '{{database}}.otel_traces_trace_id_ts_mv{{on_cluster}}',
          'obs.otel_traces_trace_id_ts_mv ON CLUSTER c1',
        )
        .replace('{{local:otel_traces_trace_id_ts}}', 'obs.otel_traces_trace_id_ts_local')
        .replace('{{local:otel_traces}}', 'obs.otel_traces_local'),
    );
    expect(statement(statements, 'dictionary llm_price_keys')).toEqual({
      name: 'dictionary llm_price_keys',
      sql: file('dictionaries/llm_price_keys.sql')
        .replace('{{database}}.llm_price_keys{{on_cluster}}', 'obs.llm_price_keys ON CLUSTER c1')
        .replace("DB '{{database}}'", "DB 'obs'"),
      replaceBelowVersion: 1,
      dropFirst: { kind: 'DICTIONARY', name: 'obs.llm_price_keys' },
    });
  });

  it('adds a later column with the definition and position its table file gives it, only when upgrading', () => {
    const statements = schemaStatements({ database: 'obs' });
    expect(statement(statements, 'column llm_calls.Purpose')).toEqual({
      name: 'column llm_calls.Purpose',
      sql: "ALTER TABLE obs.llm_calls ADD COLUMN IF NOT EXISTS Purpose LowCardinality(String) DEFAULT 'app' CODEC(ZSTD(1)) AFTER RouteReason",
      addedIn: 4,
    });
    expect(statement(statements, 'column llm_rollup_1h.LatencyMsDD')).toEqual({
      name: 'column llm_rollup_1h.LatencyMsDD',
      sql: 'ALTER TABLE obs.llm_rollup_1h ADD COLUMN IF NOT EXISTS LatencyMsDD AggregateFunction(quantilesDD(0.01, 0.5, 0.95, 0.99), Float64) AFTER LatencyMs',
      addedIn: 2,
    });
    expect(file('tables/llm_calls.sql')).toMatch(
      /RouteReason String CODEC\(ZSTD\(1\)\),\n {4}Purpose LowCardinality\(String\) DEFAULT 'app' CODEC\(ZSTD\(1\)\),\n/,
    );
    // A database the statements just created, or one at the current version, needs no ALTER.
    expect(statements.filter((s) => s.sql.startsWith('ALTER')).every((s) => s.addedIn! >= 2)).toBe(
      true,
    );
    expect(upgradeStatements({}, undefined)).toEqual([]);
    expect(upgradeStatements({}, 5)).toEqual([]);
    expect(upgradeStatements({}, 2).map((s) => s.name)).toEqual(['backfill llm_calls.Model']);
    expect(upgradeStatements({ cluster: 'c1' }, 1).map((s) => s.sql.split('\n')[0])).toEqual([
      'ALTER TABLE modelmaxx.llm_calls_local ON CLUSTER c1',
      'INSERT INTO modelmaxx.llm_rollup_1m (Minute, ServiceName, Provider, Model, Task, Feature, LatencyMsDD)',
    ]);
  });

  it('uses every file, fills every placeholder and refuses a bad database or cluster name', () => {
    const statements = [
      ...schemaStatements({ cluster: 'c1', ttlDays: 30 }),
      ...upgradeStatements({ cluster: 'c1' }, 0),
    ];
    for (const { name, sql } of statements) expect(sql, name).not.toMatch(/\{\{|\}\}/);
    // A statement is a file's when it holds the file's text between placeholders, in order.
    const isInstance = (sql: string, text: string) => {
      let from = 0;
      for (const fragment of text.split(/\{\{[^]*?\}\}/).map((part) => part.trim())) {
        const at = sql.indexOf(fragment, from);
        if (at < 0) return false;
        from = at + fragment.length;
      }
      return true;
    };
    for (const folder of ['tables', 'views', 'dictionaries', 'upgrades']) {
      for (const name of readdirSync(new URL(`${folder}/`, SQL_DIR))) {
        const text = file(`${folder}/${name}`);
        const uses = statements.filter((s) => isInstance(s.sql, text)).map((s) => s.name);
        // The two rollups share one file (the hourly view copies every minute column).
        expect(uses, `${folder}/${name}`).toHaveLength(name === 'llm_rollup.sql' ? 2 : 1);
      }
    }
    for (const bad of ['obs; DROP TABLE x', 'obs.x', '1obs', '']) {
      expect(() => schemaStatements({ database: bad })).toThrow(/database must match/);
      expect(() => tableNames({ database: bad })).toThrow(/database must match/);
      expect(() => schemaStatements({ cluster: bad })).toThrow(/cluster must match/);
    }
    expect(() => schemaStatements({ ttlDays: 1.5 })).toThrow(/whole number of days/);
  });
});
