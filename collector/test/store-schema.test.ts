import { describe, expect, it } from 'vitest';
import { ClickHouseStore } from '../src/store/clickhouse-store.js';
import {
  LATENCY_DD_PARAMETERS,
  OTEL_TRACES_INSERT_COLUMNS,
  SCHEMA_VERSION,
  schemaStatements,
} from '../src/schema/schema.js';
import { spanRowsToNative } from '../src/store/span-row-native.js';
import { llmPriceRows } from '@modelmaxx/pricing';
import { hex, llmSpan, nanos, spanRow } from './store-fixtures.js';
import { useTestStore } from './support/test-store.js';

const db = useTestStore('mm-schema-', { spoolDir: false, batch: { maxDelayMs: 10 } });

describe('schema', () => {
  it('is created once: migrating again changes nothing', async () => {
    const before = await db.query(
      `SELECT name, engine, create_table_query FROM system.tables WHERE database = 'modelmaxx' ORDER BY name`,
    );
    const prices = await db.query<{ n: string }>(
      'SELECT toString(count()) AS n FROM modelmaxx.llm_prices',
    );
    await db.store.migrate();
    await db.store.migrate();
    const after = await db.query(
      `SELECT name, engine, create_table_query FROM system.tables WHERE database = 'modelmaxx' ORDER BY name`,
    );
    expect(after).toEqual(before);
    expect(before.map((table) => table.name)).toEqual([
      'llm_calls',
      'llm_calls_mv',
      'llm_price_entries',
      'llm_price_entries_source',
      'llm_price_keys',
      'llm_price_keys_source',
      'llm_prices',
      'llm_rollup_1h',
      'llm_rollup_1h_mv',
      'llm_rollup_1m',
      'llm_rollup_1m_calls_mv',
      'llm_rollup_1m_scores_mv',
      'llm_scores',
      'llm_scores_mv',
      'otel_traces',
      'otel_traces_trace_id_ts',
      'otel_traces_trace_id_ts_mv',
      'schema_migrations',
    ]);
    expect(
      await db.query<{ n: string }>('SELECT toString(count()) AS n FROM modelmaxx.llm_prices'),
    ).toEqual(prices);
    expect(Number(prices[0]?.n)).toBeGreaterThan(10);
    expect(await db.query('SELECT Version FROM modelmaxx.schema_migrations')).toEqual([
      { Version: SCHEMA_VERSION },
    ]);
  });

  it('gives otel_traces the OpenTelemetry Collector ClickHouse exporter columns, codecs, keys and indexes', async () => {
    const columns = await db.query(
      `SELECT name, type, compression_codec AS codec FROM system.columns
       WHERE database = 'modelmaxx' AND table = 'otel_traces' ORDER BY position`,
    );
    const zstd = 'CODEC(ZSTD(1))';
    expect(columns).toEqual([
      { name: 'Timestamp', type: 'DateTime64(9)', codec: 'CODEC(Delta(8), ZSTD(1))' },
      { name: 'TraceId', type: 'String', codec: zstd },
      { name: 'SpanId', type: 'String', codec: zstd },
      { name: 'ParentSpanId', type: 'String', codec: zstd },
      { name: 'TraceState', type: 'String', codec: zstd },
      { name: 'SpanName', type: 'LowCardinality(String)', codec: zstd },
      { name: 'SpanKind', type: 'LowCardinality(String)', codec: zstd },
      { name: 'ServiceName', type: 'LowCardinality(String)', codec: zstd },
      { name: 'ResourceAttributes', type: 'Map(LowCardinality(String), String)', codec: zstd },
      { name: 'ScopeName', type: 'String', codec: zstd },
      { name: 'ScopeVersion', type: 'String', codec: zstd },
      { name: 'SpanAttributes', type: 'Map(LowCardinality(String), String)', codec: zstd },
      { name: 'Duration', type: 'UInt64', codec: 'CODEC(T64, ZSTD(1))' },
      { name: 'StatusCode', type: 'LowCardinality(String)', codec: zstd },
      { name: 'StatusMessage', type: 'String', codec: zstd },
      { name: 'Events.Timestamp', type: 'Array(DateTime64(9))', codec: zstd },
      { name: 'Events.Name', type: 'Array(LowCardinality(String))', codec: zstd },
      {
        name: 'Events.Attributes',
        type: 'Array(Map(LowCardinality(String), String))',
        codec: zstd,
      },
      { name: 'Links.TraceId', type: 'Array(String)', codec: zstd },
      { name: 'Links.SpanId', type: 'Array(String)', codec: zstd },
      { name: 'Links.TraceState', type: 'Array(String)', codec: zstd },
      { name: 'Links.Attributes', type: 'Array(Map(LowCardinality(String), String))', codec: zstd },
      { name: 'ResourceAttributeItems', type: 'Array(String)', codec: '' },
      { name: 'SpanAttributeItems', type: 'Array(String)', codec: '' },
    ]);
    const [table] = await db.query(
      `SELECT engine, partition_key, sorting_key, primary_key FROM system.tables
       WHERE database = 'modelmaxx' AND name = 'otel_traces'`,
    );
    expect(table).toEqual({
      engine: 'MergeTree',
      partition_key: 'toDate(Timestamp)',
      sorting_key: 'ServiceName, SpanName, toDateTime(Timestamp), Timestamp',
      primary_key: 'ServiceName, SpanName, toDateTime(Timestamp)',
    });
    const indexes = await db.query(
      `SELECT name, type_full AS type, expr, granularity FROM system.data_skipping_indices
       WHERE database = 'modelmaxx' AND table = 'otel_traces' ORDER BY name`,
    );
    expect(indexes).toEqual([
      { name: 'idx_duration', type: 'minmax', expr: 'Duration', granularity: 1 },
      {
        name: 'idx_lower_span_name',
        type: 'tokenbf_v1(32768, 3, 0)',
        expr: 'lower(SpanName)',
        granularity: 8,
      },
      {
        name: 'idx_res_attr_key',
        type: 'bloom_filter(0.01)',
        expr: 'mapKeys(ResourceAttributes)',
        granularity: 1,
      },
      {
        name: 'idx_res_attr_value',
        type: 'bloom_filter(0.01)',
        expr: 'mapValues(ResourceAttributes)',
        granularity: 1,
      },
      {
        name: 'idx_span_attr_key',
        type: 'bloom_filter(0.01)',
        expr: 'mapKeys(SpanAttributes)',
        granularity: 1,
      },
      {
        name: 'idx_span_attr_value',
        type: 'bloom_filter(0.01)',
        expr: 'mapValues(SpanAttributes)',
        granularity: 1,
      },
      { name: 'idx_trace_id', type: 'bloom_filter(0.001)', expr: 'TraceId', granularity: 1 },
    ]);
    const lookup = await db.query(
      `SELECT name, type FROM system.columns
       WHERE database = 'modelmaxx' AND table = 'otel_traces_trace_id_ts' ORDER BY position`,
    );
    expect(lookup).toEqual([
      { name: 'TraceId', type: 'String' },
      { name: 'Start', type: 'SimpleAggregateFunction(min, DateTime)' },
      { name: 'End', type: 'SimpleAggregateFunction(max, DateTime)' },
    ]);
  });

  it('stores a span unchanged, and Grafana finds its trace through otel_traces_trace_id_ts', async () => {
    const traceId = hex(16);
    const start = Date.now() - 60_000;
    const root = spanRow({
      Timestamp: nanos(start, 999_999),
      TraceId: traceId,
      TraceState: 'vendor=a,other=b',
      SpanAttributes: {
        'http.route': '/checkout',
        "tricky 'quote'": 'tab\there\nnewline \\ backslash {}[]:,',
        'unicode.ü': '日本語 ✓',
        empty: '',
      },
      Events: {
        Timestamp: [nanos(start + 5, 1)],
        Name: ['exception'],
        Attributes: [{ 'exception.message': "it's\tbroken" }],
      },
      Links: {
        TraceId: [hex(16)],
        SpanId: [hex(8)],
        TraceState: ['k=v'],
        Attributes: [{ 'link.kind': 'follows' }],
      },
      StatusCode: 'Error',
      StatusMessage: 'boom\\n',
    });
    const child = spanRow({
      Timestamp: nanos(start + 2_500, 7),
      TraceId: traceId,
      ParentSpanId: root.SpanId,
      SpanName: 'SELECT orders',
    });
    expect(await db.store.write([root, child, spanRow()])).toEqual({
      status: 'ok',
      durability: 'clickhouse',
    });
    const stored = await db.query(
      `SELECT toString(toUnixTimestamp64Nano(Timestamp)) AS Timestamp, TraceId, SpanId, ParentSpanId, TraceState,
              SpanName, SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes,
              toString(Duration) AS Duration, StatusCode, StatusMessage,
              arrayMap(t -> toString(toUnixTimestamp64Nano(t)), Events.Timestamp) AS EventsTimestamp,
              Events.Name AS EventsName, Events.Attributes AS EventsAttributes,
              Links.TraceId AS LinksTraceId, Links.SpanId AS LinksSpanId, Links.TraceState AS LinksTraceState,
              Links.Attributes AS LinksAttributes
       FROM modelmaxx.otel_traces WHERE SpanId = {spanId:String}`,
      { spanId: root.SpanId },
    );
    expect(stored).toEqual([
      {
        Timestamp: root.Timestamp,
        TraceId: root.TraceId,
        SpanId: root.SpanId,
        ParentSpanId: root.ParentSpanId,
        TraceState: root.TraceState,
        SpanName: root.SpanName,
        SpanKind: root.SpanKind,
        ServiceName: root.ServiceName,
        ResourceAttributes: root.ResourceAttributes,
        ScopeName: root.ScopeName,
        ScopeVersion: root.ScopeVersion,
        SpanAttributes: root.SpanAttributes,
        Duration: root.Duration,
        StatusCode: root.StatusCode,
        StatusMessage: root.StatusMessage,
        EventsTimestamp: root.Events.Timestamp,
        EventsName: root.Events.Name,
        EventsAttributes: root.Events.Attributes,
        LinksTraceId: root.Links.TraceId,
        LinksSpanId: root.Links.SpanId,
        LinksTraceState: root.Links.TraceState,
        LinksAttributes: root.Links.Attributes,
      },
    ]);
    // The query Grafana's ClickHouse data source runs for a trace id (trace view).
    const trace = await db.query(
      `WITH {traceId:String} AS trace_id,
            (SELECT min(Start) FROM modelmaxx.otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_start,
            (SELECT max(End) + 1 FROM modelmaxx.otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_end
       SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, ServiceName AS serviceName,
              SpanName AS operationName, Duration / 1000000 AS duration
       FROM modelmaxx.otel_traces
       WHERE traceID = trace_id AND Timestamp >= trace_start AND Timestamp <= trace_end AND (Duration > 0)
       ORDER BY Timestamp ASC`,
      { traceId },
    );
    expect(trace).toEqual([
      {
        traceID: traceId,
        spanID: root.SpanId,
        parentSpanID: '',
        serviceName: 'shop',
        operationName: 'GET /',
        duration: 1.5,
      },
      {
        traceID: traceId,
        spanID: child.SpanId,
        parentSpanID: root.SpanId,
        serviceName: 'shop',
        operationName: 'SELECT orders',
        duration: 1.5,
      },
    ]);
    const bounds = await db.query(
      `SELECT toUnixTimestamp(min(Start)) AS start, toUnixTimestamp(max(End)) AS end
       FROM modelmaxx.otel_traces_trace_id_ts WHERE TraceId = {traceId:String}`,
      { traceId },
    );
    expect(bounds).toEqual([
      { start: Math.floor(start / 1000), end: Math.floor((start + 2_500) / 1000) },
    ]);
  });

  it('upgrades a version 2 schema: llm_calls gets Model, filled for the rows already there and by the re-created view', async () => {
    const database = 'upgrade_v2_check';
    const priceRows = llmPriceRows();
    const old = new ClickHouseStore({ engine: db.store.engine, database, priceRows });
    await old.migrate();
    // What version 2 had: llm_calls without Model, filled by a view that does not know it.
    await db.store.engine.command(`DROP VIEW ${database}.llm_calls_mv`);
    await db.store.engine.command(`ALTER TABLE ${database}.llm_calls DROP COLUMN Model`);
    await db.store.engine.command(`TRUNCATE TABLE ${database}.schema_migrations`);
    await db.store.engine.command(
      `INSERT INTO ${database}.schema_migrations VALUES (2, now64(3), 'modelmaxx schema v2')`,
    );
    const oldRows = [
      { id: 'a1', request: 'gpt-4o', response: 'gpt-4o-2024-08-06', status: 'Unset' },
      { id: 'a2', request: 'gpt-4o', response: '', status: 'Error' },
      { id: 'a3', request: '', response: 'claude-sonnet-4-5-20250929', status: 'Unset' },
      { id: 'a4', request: 'My-Model', response: '', status: 'Unset' },
    ];
    for (const row of oldRows) {
      await db.store.engine.command(
        `INSERT INTO ${database}.llm_calls (Timestamp, TraceId, SpanId, RequestModel, ResponseModel, StatusCode, CostSource)
         VALUES (now64(9), 't', {id:String}, {request:String}, {response:String}, {status:String}, 'unknown')`,
        row,
      );
    }
    const upgraded = new ClickHouseStore({ engine: db.store.engine, database, priceRows });
    for (let run = 0; run < 2; run++) {
      await upgraded.migrate();
      expect(
        await db.query(`SELECT max(Version) AS version FROM ${database}.schema_migrations`),
      ).toEqual([{ version: SCHEMA_VERSION }]);
      expect(
        await db.query(`SELECT SpanId, Model FROM ${database}.llm_calls ORDER BY SpanId`),
      ).toEqual([
        { SpanId: 'a1', Model: 'gpt-4o' },
        { SpanId: 'a2', Model: 'gpt-4o' },
        { SpanId: 'a3', Model: 'claude-sonnet-4-5' },
        { SpanId: 'a4', Model: 'my-model' },
      ]);
    }
    const fresh = llmSpan({ model: 'gpt-4o-mini', responseModel: 'gpt-4o-mini-2024-07-18' });
    await db.store.engine.insert({
      table: `${database}.otel_traces`,
      columns: OTEL_TRACES_INSERT_COLUMNS,
      format: 'Native',
      body: spanRowsToNative([fresh]),
    });
    expect(
      await db.query(
        `SELECT Model, CostSource FROM ${database}.llm_calls WHERE SpanId = {id:String}`,
        {
          id: fresh.SpanId,
        },
      ),
    ).toEqual([{ Model: 'gpt-4o-mini', CostSource: 'catalog' }]);
    expect(SCHEMA_VERSION).toBe(6);
  });

  it('upgrades a version 1 schema: latency sketches added to the rollups and computed for the minutes already there', async () => {
    const database = 'upgrade_check';
    const old = new ClickHouseStore({ engine: db.store.engine, database, priceRows: [] });
    await old.migrate();
    // Make it what version 1 created: rollups and their views without LatencyMsDD.
    const v1Views = schemaStatements({ database })
      .filter((statement) => /^view llm_rollup_(1m_calls|1h)_mv$/.test(statement.name))
      .map((statement) =>
        statement.sql
          .replace(/,\n\s*quantilesDDState[^\n]*\n/, '\n')
          .replace(/\n\s*quantilesDDMergeState[^\n]*,/, ''),
      );
    expect(v1Views).toHaveLength(2);
    for (const view of ['llm_rollup_1m_calls_mv', 'llm_rollup_1h_mv'])
      await db.store.engine.command(`DROP VIEW ${database}.${view}`);
    for (const table of ['llm_rollup_1m', 'llm_rollup_1h'])
      await db.store.engine.command(`ALTER TABLE ${database}.${table} DROP COLUMN LatencyMsDD`);
    for (const sql of v1Views) {
      expect(sql).not.toContain('LatencyMsDD');
      await db.store.engine.command(sql);
    }
    await db.store.engine.command(`TRUNCATE TABLE ${database}.schema_migrations`);
    await db.store.engine.command(
      `INSERT INTO ${database}.schema_migrations VALUES (1, now64(3), 'modelmaxx schema v1')`,
    );
    const spans = Array.from({ length: 40 }, (_, index) =>
      llmSpan({
        model: index % 2 === 0 ? 'gpt-4o' : 'claude-haiku-4-5',
        durationMs: 100 + index * 25,
      }),
    );
    await db.store.engine.insert({
      table: `${database}.otel_traces`,
      columns: OTEL_TRACES_INSERT_COLUMNS,
      format: 'Native',
      body: spanRowsToNative(spans),
    });

    const upgraded = new ClickHouseStore({ engine: db.store.engine, database, priceRows: [] });
    for (let run = 0; run < 2; run++) {
      await upgraded.migrate();
      expect(
        await db.query(`SELECT max(Version) AS version FROM ${database}.schema_migrations`),
      ).toEqual([{ version: SCHEMA_VERSION }]);
      for (const table of ['llm_rollup_1m', 'llm_rollup_1h']) {
        const [rolled] = await db.query<{ calls: string; sketched: string[] }>(
          `SELECT toString(sum(Calls)) AS calls,
                  arrayMap(x -> toString(round(x, 6)), quantilesDDMerge(${LATENCY_DD_PARAMETERS})(LatencyMsDD)) AS sketched
           FROM ${database}.${table}`,
        );
        const [direct] = await db.query<{ sketched: string[] }>(
          `SELECT arrayMap(x -> toString(round(x, 6)), quantilesDD(${LATENCY_DD_PARAMETERS})(DurationMs)) AS sketched
           FROM ${database}.llm_calls`,
        );
        expect(rolled).toEqual({ calls: '40', sketched: direct?.sketched });
      }
    }
    const stats = await upgraded.stats({ window: '1h', groupBy: ['model'] });
    expect(stats.rows.map((row) => [row.model, row.calls])).toEqual([
      ['claude-haiku-4-5', 20],
      ['gpt-4o', 20],
    ]);
    for (const row of stats.rows) expect(row.latencyP50Ms).toBeGreaterThan(100);
  });

  it('adds the exporter-style TTL to raw tables when asked, and keeps rollups', async () => {
    for (const statement of schemaStatements({ database: 'ttl_check', ttlDays: 7 })) {
      await db.store.engine.command(statement.sql);
    }
    const tables = await db.query<{ name: string; ttl: boolean }>(
      `SELECT name, toBool(position(create_table_query, 'TTL ') > 0) AS ttl FROM system.tables
       WHERE database = 'ttl_check' AND engine LIKE '%MergeTree' ORDER BY name`,
    );
    expect(tables).toEqual([
      { name: 'llm_calls', ttl: true },
      { name: 'llm_prices', ttl: false },
      { name: 'llm_rollup_1h', ttl: false },
      { name: 'llm_rollup_1m', ttl: false },
      { name: 'llm_scores', ttl: true },
      { name: 'otel_traces', ttl: true },
      { name: 'otel_traces_trace_id_ts', ttl: true },
      { name: 'schema_migrations', ttl: false },
    ]);
    const [traces] = await db.query<{ ttl: string }>(
      `SELECT extract(create_table_query, 'TTL [^S]+') AS ttl FROM system.tables
       WHERE database = 'ttl_check' AND name = 'otel_traces'`,
    );
    expect(traces?.ttl.trim()).toBe('TTL toDateTime(Timestamp) + toIntervalDay(7)');
  });

  it('generates ON CLUSTER DDL (Replicated*MergeTree, Distributed by trace id) that ClickHouse parses', async () => {
    const statements = schemaStatements({ cluster: 'llm_cluster', database: 'obs', ttlDays: 30 });
    for (const statement of statements) {
      const [parsed] = await db.query<{ q: string }>('SELECT formatQuery({sql:String}) AS q', {
        sql: statement.sql,
      });
      expect(parsed?.q, statement.name).toContain('ON CLUSTER llm_cluster');
    }
    const byName = new Map(statements.map((statement) => [statement.name, statement.sql]));
    expect(byName.get('table otel_traces_local')).toContain(
      "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')",
    );
    expect(byName.get('table otel_traces_local')).toContain(
      'TTL toDateTime(Timestamp) + toIntervalDay(30)',
    );
    expect(byName.get('table otel_traces')).toContain(
      'ENGINE = Distributed(llm_cluster, obs, otel_traces_local, cityHash64(TraceId))',
    );
    expect(byName.get('table llm_calls')).toContain(
      'Distributed(llm_cluster, obs, llm_calls_local, cityHash64(TraceId))',
    );
    expect(byName.get('table llm_rollup_1m_local')).toContain('ReplicatedAggregatingMergeTree(');
    expect(byName.get('table llm_prices')).toContain(
      "ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{shard}-{replica}', LoadedAt)",
    );
    expect(byName.get('view llm_calls_mv')).toContain('TO obs.llm_calls_local');
    expect(byName.get('view llm_calls_mv')).toContain('FROM obs.otel_traces_local');
    // Every sharded table has its Distributed twin.
    const locals = statements.filter((statement) => statement.name.endsWith('_local'));
    expect(locals.map((statement) => statement.name)).toEqual([
      'table otel_traces_local',
      'table otel_traces_trace_id_ts_local',
      'table llm_calls_local',
      'table llm_scores_local',
      'table llm_rollup_1m_local',
      'table llm_rollup_1h_local',
    ]);
  });
});
