/**
 * The one DDL source for both engines (embedded chDB and a ClickHouse server), single-node and
 * `ON CLUSTER` alike: the statements are the `.sql` files in `./sql/` (one per table, view,
 * dictionary and data migration), filled in by ./sql-template.ts; this module lists them in
 * creation order with what `migrate` needs to know about each.
 *
 * `sql/tables/otel_traces.sql`, `otel_traces_trace_id_ts.sql` and
 * `sql/views/otel_traces_trace_id_ts_mv.sql` are the OpenTelemetry Collector ClickHouse
 * exporter's own tables (exporter/clickhouseexporter/internal/sqltemplates: traces_table.sql,
 * traces_id_ts_lookup_table.sql, traces_id_ts_lookup_mv.sql), so Grafana's ClickHouse data
 * source and the OTel Collector work against them unchanged. Everything else is ours and is
 * derived from them by materialized views.
 */
import { columnAdditions, dataUpgrades } from './upgrades.js';
import { fillSql, sqlContext, type SqlContext } from './sql-template.js';

export { LATENCY_DD_PARAMETERS } from './sql-template.js';

/**
 * Bumped whenever a statement changes; recorded in `schema_migrations`.
 * 2: the rollups' `LatencyMsDD` (`quantilesDD` state, what `/api/stats` reads: merging it is
 * several times cheaper than the t-digest states of `LatencyMs`, which stay for the dashboards).
 * 3: `llm_calls` reads other GenAI instrumentations' attributes (OpenInference, OpenLLMetry and
 * older OTel GenAI names, the Vercel AI SDK), `CostSource` `provider`, and the canonical `Model`
 * column (backfilled for rows stored before).
 * 4: `llm_calls.Purpose`: `evaluation` for the calls of LLM judges (`modelmaxx.evaluation.role`
 * on the span), else `app` (rows stored before: `app`); the rollups (`/api/stats`, dashboard)
 * count only `app` calls, so evaluation spend is never counted as the app's.
 * 5: `llm_calls.RouteClass`, `RouteModel`, `RouteReferenceModel` (`modelmaxx.route.class`,
 * `.model`, `.reference_model`: the savings ledger's groups and the model a routed call is
 * measured against; on a shadow or judge call, the routed call it evaluates). Rows stored
 * before read ''. The rollups leave the router's shadow verdicts (`modelmaxx.shadow`, relative
 * scores: 0.5 = as good as the reference) out of a model's mean score.
 * 6: `llm_calls.CostSource` `estimate` for a span whose `gen_ai.usage.cost.source` is `estimate`
 * (the gateway's estimate for a stream that ended before the provider's usage); rows stored
 * before read `span`.
 */
export const SCHEMA_VERSION = 6;

export interface SchemaOptions {
  /** Database name; default `modelmaxx`. */
  database?: string;
  /** ClickHouse cluster name: `ON CLUSTER`, `Replicated*MergeTree` and `Distributed` tables. */
  cluster?: string;
  /** Drop raw spans, calls and scores after this many days (rollups and prices are kept). */
  ttlDays?: number;
}

export interface SchemaStatement {
  /** What the statement creates, e.g. `table otel_traces` or `view llm_calls_mv`. */
  name: string;
  sql: string;
  /** Materialized views are dropped and re-created when the recorded version is older than this. */
  replaceBelowVersion?: number;
  /** The object a re-created view or dictionary replaces. */
  dropFirst?: { kind: 'VIEW' | 'DICTIONARY'; name: string };
  /**
   * The schema version that brought this statement (an `ALTER … ADD COLUMN IF NOT EXISTS`):
   * skipped when the recorded version is at least this. Even when the column exists,
   * ClickHouse rewrites the table's metadata file, and on a full disk it leaves that file
   * empty: the database no longer opens. Running it only on the upgrade keeps a restart on a
   * full disk from writing anything.
   */
  addedIn?: number;
}

/** The tables that live on each shard (the `Distributed` table keeps the plain name). */
const TABLES = {
  traces: 'otel_traces',
  traceIdTs: 'otel_traces_trace_id_ts',
  calls: 'llm_calls',
  scores: 'llm_scores',
  prices: 'llm_prices',
  priceKeys: 'llm_price_keys',
  priceEntries: 'llm_price_entries',
  rollup: 'llm_rollup_1m',
  rollupHourly: 'llm_rollup_1h',
  migrations: 'schema_migrations',
} as const;

/** Column order of `otel_traces` as the writer sends it (Native blocks; TabSeparated from older spools). */
export const OTEL_TRACES_INSERT_COLUMNS = [
  'Timestamp',
  'TraceId',
  'SpanId',
  'ParentSpanId',
  'TraceState',
  'SpanName',
  'SpanKind',
  'ServiceName',
  'ResourceAttributes',
  'ScopeName',
  'ScopeVersion',
  'SpanAttributes',
  'Duration',
  'StatusCode',
  'StatusMessage',
  'Events.Timestamp',
  'Events.Name',
  'Events.Attributes',
  'Links.TraceId',
  'Links.SpanId',
  'Links.TraceState',
  'Links.Attributes',
] as const;

/** A table, its file in `sql/tables/` (`<name>.sql` unless said) and how it is spread. */
interface TableFile {
  name: string;
  file?: string;
  /** The rollups' shared file's time column. */
  bucket?: string;
  /**
   * On a cluster a table with a sharding key is split across the shards (`<name>_local`, plus a
   * `Distributed` table under the plain name); the others are replicated to every node in full.
   */
  shardingKey?: string;
}

/** The tables in creation order. */
const TABLE_FILES: readonly TableFile[] = [
  { name: TABLES.traces, shardingKey: 'cityHash64(TraceId)' },
  { name: TABLES.traceIdTs, shardingKey: 'cityHash64(TraceId)' },
  { name: TABLES.calls, shardingKey: 'cityHash64(TraceId)' },
  { name: TABLES.scores, shardingKey: 'cityHash64(TraceId)' },
  { name: TABLES.prices },
  ...(
    [
      [TABLES.rollup, 'Minute'],
      [TABLES.rollupHourly, 'Hour'],
    ] as const
  ).map(([name, bucket]) => ({
    name,
    file: 'llm_rollup.sql',
    bucket,
    shardingKey: 'cityHash64(ServiceName, Model)',
  })),
  { name: TABLES.migrations },
];

/**
 * Views (`sql/views/`) and dictionaries (`sql/dictionaries/`) in creation order: an existing
 * one is dropped and re-created when the recorded schema version is below `replaceBelowVersion`
 * (set it to the new `SCHEMA_VERSION` when you change the file).
 */
const VIEW_FILES: readonly { file: string; replaceBelowVersion: number }[] = [
  // Dictionaries over the newest catalog version in `llm_prices` (reloaded by `loadPrices`).
  { file: 'views/llm_price_keys_source.sql', replaceBelowVersion: 1 },
  { file: 'views/llm_price_entries_source.sql', replaceBelowVersion: 1 },
  { file: 'dictionaries/llm_price_keys.sql', replaceBelowVersion: 1 },
  { file: 'dictionaries/llm_price_entries.sql', replaceBelowVersion: 1 },
  { file: 'views/otel_traces_trace_id_ts_mv.sql', replaceBelowVersion: 1 },
  { file: 'views/llm_calls_mv.sql', replaceBelowVersion: 6 },
  { file: 'views/llm_scores_mv.sql', replaceBelowVersion: 1 },
  { file: 'views/llm_rollup_1m_calls_mv.sql', replaceBelowVersion: 4 },
  { file: 'views/llm_rollup_1m_scores_mv.sql', replaceBelowVersion: 5 },
  { file: 'views/llm_rollup_1h_mv.sql', replaceBelowVersion: 2 },
];

const SHARDED_TABLES: ReadonlySet<string> = new Set(
  TABLE_FILES.filter((table) => table.shardingKey !== undefined).map((table) => table.name),
);

function context(options: SchemaOptions): SqlContext {
  return sqlContext(options, SHARDED_TABLES);
}

/** The `CREATE TABLE` of `table`'s file, as `name` (the table itself, or its shards' table). */
function tableSql(table: TableFile, c: SqlContext, name = table.name): string {
  const file = `tables/${table.file ?? `${table.name}.sql`}`;
  const sharded = name !== table.name;
  return fillSql(file, c, { name, sharded, ...(table.bucket ? { bucket: table.bucket } : {}) });
}

function createTable(table: TableFile, c: SqlContext): SchemaStatement[] {
  if (c.cluster === undefined || table.shardingKey === undefined) {
    return [{ name: `table ${table.name}`, sql: tableSql(table, c) }];
  }
  const local = `${table.name}_local`;
  return [
    { name: `table ${local}`, sql: tableSql(table, c, local) },
    {
      name: `table ${table.name}`,
      sql: `CREATE TABLE IF NOT EXISTS ${c.global(table.name)}${c.onCluster} AS ${c.local(table.name)}\nENGINE = Distributed(${c.cluster}, ${c.database}, ${local}, ${table.shardingKey})`,
    },
  ];
}

function createView(view: (typeof VIEW_FILES)[number], c: SqlContext): SchemaStatement {
  const [folder, fileName] = view.file.split('/') as [string, string];
  const object = fileName.replace(/\.sql$/, '');
  const kind = folder === 'dictionaries' ? 'DICTIONARY' : 'VIEW';
  return {
    name: `${kind.toLowerCase()} ${object}`,
    sql: fillSql(view.file, c),
    replaceBelowVersion: view.replaceBelowVersion,
    dropFirst: { kind, name: `${c.database}.${object}` },
  };
}

/**
 * Every statement `migrate` runs, in order. Each is idempotent
 * (`IF NOT EXISTS`), so running them again changes nothing.
 */
export function schemaStatements(options: SchemaOptions = {}): SchemaStatement[] {
  const c = context(options);
  return [
    {
      name: `database ${c.database}`,
      sql: `CREATE DATABASE IF NOT EXISTS ${c.database}${c.onCluster}`,
    },
    ...TABLE_FILES.flatMap((table) => createTable(table, c)),
    ...columnAdditions(c, (name) =>
      tableSql(
        TABLE_FILES.find((t) => t.name === name)!,
        c,
      ),
    ),
    ...VIEW_FILES.map((view) => createView(view, c)),
  ];
}

/**
 * Data migrations when upgrading from schema `fromVersion`, run after `schemaStatements`
 * (`sql/upgrades/`): from 2 or older, `llm_calls.Model` of the rows already stored (a mutation,
 * waited for); from 1, the `LatencyMsDD` states of the minutes already rolled up.
 */
export function upgradeStatements(
  options: SchemaOptions = {},
  fromVersion?: number,
): SchemaStatement[] {
  return dataUpgrades(context(options), fromVersion);
}

/** Fully qualified names the store reads and writes (the `Distributed` ones on a cluster). */
export function tableNames(options: SchemaOptions = {}): Record<keyof typeof TABLES, string> {
  const c = context(options);
  const names = Object.entries(TABLES).map(([key, table]) => [key, c.global(table)]);
  return Object.fromEntries(names) as Record<keyof typeof TABLES, string>;
}
