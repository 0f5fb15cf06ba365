/**
 * The one DDL source for both engines (embedded chDB and a ClickHouse server),
 * single-node and `ON CLUSTER` alike.
 *
 * `otel_traces`, `otel_traces_trace_id_ts` and `otel_traces_trace_id_ts_mv` are
 * the OpenTelemetry Collector ClickHouse exporter's own tables
 * (exporter/clickhouseexporter/internal/sqltemplates: traces_table.sql,
 * traces_id_ts_lookup_table.sql, traces_id_ts_lookup_mv.sql), so Grafana's
 * ClickHouse data source and the OTel Collector work against them unchanged.
 * Everything else is ours and is derived from them by materialized views.
 */
import {
  ATTR_AI_MODEL_ID,
  ATTR_AI_MODEL_PROVIDER,
  ATTR_AI_OPERATION_ID,
  ATTR_AI_RESPONSE_FINISH_REASON,
  ATTR_AI_RESPONSE_ID,
  ATTR_AI_RESPONSE_MODEL,
  ATTR_AI_RESPONSE_MS_TO_FIRST_CHUNK,
  ATTR_AI_USAGE_CACHE_READ_TOKENS,
  ATTR_AI_USAGE_CACHE_WRITE_TOKENS,
  ATTR_AI_USAGE_CACHED_INPUT_TOKENS,
  ATTR_AI_USAGE_COMPLETION_TOKENS,
  ATTR_AI_USAGE_INPUT_TOKENS,
  ATTR_AI_USAGE_OUTPUT_TOKENS,
  ATTR_AI_USAGE_PROMPT_TOKENS,
  ATTR_AI_USAGE_REASONING_TOKENS,
  ATTR_AI_USAGE_TOKENS,
  ATTR_EMBEDDING_MODEL_NAME,
  ATTR_ENDUSER_ID,
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_CONVERSATION_ID,
  ATTR_GEN_AI_EVALUATION_EXPLANATION,
  ATTR_GEN_AI_EVALUATION_NAME,
  ATTR_GEN_AI_EVALUATION_SCORE_LABEL,
  ATTR_GEN_AI_EVALUATION_SCORE_VALUE,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_STREAM,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
  ATTR_GEN_AI_SYSTEM,
  ATTR_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
  ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_LEGACY,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_LEGACY,
  ATTR_GEN_AI_USAGE_COMPLETION_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_COST_AMOUNT,
  ATTR_GEN_AI_USAGE_COST_CURRENCY,
  ATTR_GEN_AI_USAGE_COST_SOURCE,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_PROMPT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_TOKENS_LEGACY,
  ATTR_LLM_COST_TOTAL,
  ATTR_LLM_FINISH_REASON,
  ATTR_LLM_INVOCATION_PARAMETERS,
  ATTR_LLM_IS_STREAMING,
  ATTR_LLM_MODEL_NAME,
  ATTR_LLM_PROVIDER,
  ATTR_LLM_REQUEST_TYPE,
  ATTR_LLM_SYSTEM,
  ATTR_LLM_TOKEN_COUNT_COMPLETION,
  ATTR_LLM_TOKEN_COUNT_COMPLETION_REASONING,
  ATTR_LLM_TOKEN_COUNT_PROMPT,
  ATTR_LLM_TOKEN_COUNT_PROMPT_CACHE_READ,
  ATTR_LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE,
  ATTR_MODELMAXX_COST_USD,
  ATTR_MODELMAXX_EVALUATION_ROLE,
  ATTR_MODELMAXX_EVALUATION_SOURCE,
  ATTR_MODELMAXX_FEATURE,
  ATTR_MODELMAXX_ROUTE_CLASS,
  ATTR_MODELMAXX_ROUTE_MODEL,
  ATTR_MODELMAXX_ROUTE_POLICY,
  ATTR_MODELMAXX_ROUTE_REASON,
  ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL,
  ATTR_MODELMAXX_TASK,
  ATTR_OPENINFERENCE_SPAN_KIND,
  ATTR_TRACELOOP_SPAN_KIND,
  EVENT_GEN_AI_EVALUATION_RESULT,
  GEN_AI_COST_SOURCE_VALUE_PROVIDER,
} from '@modelmaxx/semconv';
import {
  lowerTrimSqlExpression,
  modelNameSqlExpression,
  providerNameSqlExpression,
  sqlString,
} from './model-name.js';

/**
 * Bumped whenever a statement below changes; recorded in `schema_migrations`.
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
 */
export const SCHEMA_VERSION = 5;

/** `llm_calls` route columns of version 5. */
const CALLS_ROUTE_COLUMNS = [
  'RouteClass LowCardinality(String) CODEC(ZSTD(1))',
  'RouteModel LowCardinality(String) CODEC(ZSTD(1))',
  'RouteReferenceModel LowCardinality(String) CODEC(ZSTD(1))',
] as const;

/** `llm_calls.Purpose`: `app`, or `evaluation` (an LLM judge's call). */
const CALLS_PURPOSE_COLUMN = "Purpose LowCardinality(String) DEFAULT 'app' CODEC(ZSTD(1))";

/** Relative accuracy and levels of the rollups' `LatencyMsDD` state. */
export const LATENCY_DD_PARAMETERS = '0.01, 0.5, 0.95, 0.99';

const LATENCY_DD_TYPE = `AggregateFunction(quantilesDD(${LATENCY_DD_PARAMETERS}), Float64)`;

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
export const TABLES = {
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

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkIdentifier(value: string, what: string): string {
  if (!IDENTIFIER.test(value)) {
    throw new Error(`${what} must match ${IDENTIFIER.source}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `llm_calls.Model`: the catalog's canonical id of the request model (else the response model). */
const CALLS_MODEL_COLUMN = 'Model LowCardinality(String) CODEC(ZSTD(1))';

type EngineKind = 'MergeTree' | 'AggregatingMergeTree' | 'ReplacingMergeTree';

interface TableDefinition {
  name: string;
  body: string;
  engine: EngineKind;
  /** Engine arguments after the replication path and replica (e.g. the version column). */
  engineArguments?: string;
  tail: string;
  /** Sharded by this expression on a cluster; unsharded tables are replicated to every node. */
  shardingKey?: string;
}

const attribute = (name: string, map = 'SpanAttributes') => `${map}[${sqlString(name)}]`;

/**
 * Inserts carry `insert_deduplication_token`, so a batch replayed after a crash
 * is stored once, in the table and in every view's target (replicated tables
 * deduplicate by default; single-node ones need a window).
 */
function dedup(options: SchemaOptions): string {
  return options.cluster === undefined ? ', non_replicated_deduplication_window = 10000' : '';
}

function ttl(expression: string, options: SchemaOptions): string {
  const days = options.ttlDays;
  if (days === undefined || days <= 0) return '';
  if (!Number.isInteger(days)) throw new Error('ttlDays must be a whole number of days');
  return `TTL ${expression} + toIntervalDay(${days})\n`;
}

/** The per-minute and per-hour rollups: the same columns and key, bucketed by `bucket`. */
function rollupTable(
  name: string,
  bucket: 'Minute' | 'Hour',
  options: SchemaOptions,
): TableDefinition {
  return {
    name,
    body: `    ${bucket} DateTime CODEC(Delta(4), ZSTD(1)),
    ServiceName LowCardinality(String),
    Provider LowCardinality(String),
    Model LowCardinality(String),
    Task LowCardinality(String),
    Feature LowCardinality(String),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    CostUSD SimpleAggregateFunction(sum, Float64),
    CostCalls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheWriteTokens SimpleAggregateFunction(sum, UInt64),
    ReasoningTokens SimpleAggregateFunction(sum, UInt64),
    DurationMsSum SimpleAggregateFunction(sum, Float64),
    LatencyMs AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), Float64),
    LatencyMsDD ${LATENCY_DD_TYPE},
    ScoreSum SimpleAggregateFunction(sum, Float64),
    ScoreCount SimpleAggregateFunction(sum, UInt64)`,
    engine: 'AggregatingMergeTree',
    tail: `PARTITION BY toYYYYMM(${bucket})
ORDER BY (${bucket}, ServiceName, Provider, Model, Task, Feature)${dedup(options) === '' ? '' : `\nSETTINGS${dedup(options).slice(1)}`}`,
    shardingKey: 'cityHash64(ServiceName, Model)',
  };
}

function tableDefinitions(options: SchemaOptions): TableDefinition[] {
  return [
    {
      // exporter/clickhouseexporter/internal/sqltemplates/traces_table.sql (bloom-filter variant)
      name: TABLES.traces,
      body: `    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(ResourceAttributes, 'Array(Tuple(String, String))')),
    SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))')),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8`,
      engine: 'MergeTree',
      tail: `PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
${ttl('toDateTime(Timestamp)', options)}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1${dedup(options)}`,
      shardingKey: 'cityHash64(TraceId)',
    },
    {
      // exporter/clickhouseexporter/internal/sqltemplates/traces_id_ts_lookup_table.sql
      name: TABLES.traceIdTs,
      body: `    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))`,
      engine: 'MergeTree',
      tail: `PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
${ttl('toDateTime(Start)', options)}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1${dedup(options)}`,
      shardingKey: 'cityHash64(TraceId)',
    },
    {
      name: TABLES.calls,
      body: `    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    ResponseModel LowCardinality(String) CODEC(ZSTD(1)),
    ${CALLS_MODEL_COLUMN},
    ResponseId String CODEC(ZSTD(1)),
    InputTokens UInt64 CODEC(T64, ZSTD(1)),
    OutputTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheReadTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheWriteTokens UInt64 CODEC(T64, ZSTD(1)),
    ReasoningTokens UInt64 CODEC(T64, ZSTD(1)),
    CostUSD Nullable(Float64) CODEC(ZSTD(1)),
    CostSource LowCardinality(String) CODEC(ZSTD(1)),
    PricingModel LowCardinality(String) CODEC(ZSTD(1)),
    DurationMs Float64 CODEC(ZSTD(1)),
    TimeToFirstChunkMs Nullable(Float64) CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    ErrorType LowCardinality(String) CODEC(ZSTD(1)),
    FinishReasons Array(LowCardinality(String)) CODEC(ZSTD(1)),
    Stream Bool CODEC(ZSTD(1)),
    Task LowCardinality(String) CODEC(ZSTD(1)),
    Feature LowCardinality(String) CODEC(ZSTD(1)),
    UserId String CODEC(ZSTD(1)),
    ConversationId String CODEC(ZSTD(1)),
    RoutePolicy LowCardinality(String) CODEC(ZSTD(1)),
    RouteReason String CODEC(ZSTD(1)),
    ${CALLS_PURPOSE_COLUMN},
    ${CALLS_ROUTE_COLUMNS.join(',\n    ')},
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_response_id ResponseId TYPE bloom_filter(0.001) GRANULARITY 1`,
      engine: 'MergeTree',
      tail: `PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, RequestModel, toDateTime(Timestamp))
${ttl('toDateTime(Timestamp)', options)}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1${dedup(options)}`,
      shardingKey: 'cityHash64(TraceId)',
    },
    {
      name: TABLES.scores,
      body: `    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ResponseId String CODEC(ZSTD(1)),
    Name LowCardinality(String) CODEC(ZSTD(1)),
    Score Nullable(Float64) CODEC(ZSTD(1)),
    Label LowCardinality(String) CODEC(ZSTD(1)),
    Explanation String CODEC(ZSTD(1)),
    Source LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    Model LowCardinality(String) CODEC(ZSTD(1)),
    Task LowCardinality(String) CODEC(ZSTD(1)),
    Feature LowCardinality(String) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_response_id ResponseId TYPE bloom_filter(0.001) GRANULARITY 1`,
      engine: 'MergeTree',
      tail: `PARTITION BY toDate(Timestamp)
ORDER BY (Name, toDateTime(Timestamp))
${ttl('toDateTime(Timestamp)', options)}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1${dedup(options)}`,
      shardingKey: 'cityHash64(TraceId)',
    },
    {
      name: TABLES.prices,
      body: `    Provider LowCardinality(String),
    KeyKind LowCardinality(String),
    Model LowCardinality(String),
    InputPerMTok Float64,
    OutputPerMTok Float64,
    CacheReadPerMTok Float64,
    CacheWritePerMTok Float64,
    ReasoningPerMTok Float64,
    CatalogModel LowCardinality(String),
    Source String,
    PriceDate Date,
    Version String,
    Rank UInt32,
    LoadedAt DateTime64(3)`,
      engine: 'ReplacingMergeTree',
      engineArguments: 'LoadedAt',
      tail: `ORDER BY (Provider, KeyKind, Model, Version, Rank)`,
    },
    rollupTable(TABLES.rollup, 'Minute', options),
    rollupTable(TABLES.rollupHourly, 'Hour', options),
    {
      name: TABLES.migrations,
      body: `    Version UInt32,
    AppliedAt DateTime64(3),
    Description String`,
      engine: 'MergeTree',
      tail: `ORDER BY (Version, AppliedAt)`,
    },
  ];
}

interface Names {
  database: string;
  cluster: string | undefined;
  onCluster: string;
  /** The name of the table that holds rows on this node (`_local` on a cluster for sharded tables). */
  local(table: string): string;
  /** The name queries and inserts use. */
  global(table: string): string;
}

function names(options: SchemaOptions): Names {
  const database = checkIdentifier(options.database ?? 'modelmaxx', 'database');
  const cluster =
    options.cluster === undefined ? undefined : checkIdentifier(options.cluster, 'cluster');
  const sharded = new Set(
    tableDefinitions(options)
      .filter((table) => table.shardingKey !== undefined)
      .map((table) => table.name),
  );
  return {
    database,
    cluster,
    onCluster: cluster === undefined ? '' : ` ON CLUSTER ${cluster}`,
    local: (table) =>
      cluster !== undefined && sharded.has(table)
        ? `${database}.${table}_local`
        : `${database}.${table}`,
    global: (table) => `${database}.${table}`,
  };
}

function createTable(table: TableDefinition, n: Names): SchemaStatement[] {
  const extra = table.engineArguments ?? '';
  if (n.cluster === undefined) {
    return [
      {
        name: `table ${table.name}`,
        sql: `CREATE TABLE IF NOT EXISTS ${n.global(table.name)} (\n${table.body}\n) ENGINE = ${table.engine}(${extra})\n${table.tail}`,
      },
    ];
  }
  if (table.shardingKey === undefined) {
    // Small tables every node needs in full (prices for the views' joins): one replication group.
    const engine = `Replicated${table.engine}('/clickhouse/tables/all/{database}/{table}', '{shard}-{replica}'${extra ? `, ${extra}` : ''})`;
    return [
      {
        name: `table ${table.name}`,
        sql: `CREATE TABLE IF NOT EXISTS ${n.global(table.name)}${n.onCluster} (\n${table.body}\n) ENGINE = ${engine}\n${table.tail}`,
      },
    ];
  }
  const engine = `Replicated${table.engine}('/clickhouse/tables/{shard}/{database}/{table}', '{replica}'${extra ? `, ${extra}` : ''})`;
  return [
    {
      name: `table ${table.name}_local`,
      sql: `CREATE TABLE IF NOT EXISTS ${n.local(table.name)}${n.onCluster} (\n${table.body}\n) ENGINE = ${engine}\n${table.tail}`,
    },
    {
      name: `table ${table.name}`,
      sql: `CREATE TABLE IF NOT EXISTS ${n.global(table.name)}${n.onCluster} AS ${n.local(table.name)}\nENGINE = Distributed(${n.cluster}, ${n.database}, ${table.name}_local, ${table.shardingKey})`,
    },
  ];
}

/** `if(a != '', a, b)` over two span attributes. */
const firstAttribute = (first: string, second: string) =>
  `if(${attribute(first)} != '', ${attribute(first)}, ${attribute(second)})`;

/** The first non-empty of several string expressions (`''` when all are empty). */
const firstNonEmpty = (...expressions: string[]) =>
  `multiIf(${expressions.map((expression) => `${expression} != '', ${expression}`).join(', ')}, '')`;

/** The first non-empty of several span attributes. */
const firstOf = (...names: string[]) => firstNonEmpty(...names.map((name) => attribute(name)));

/*
 * Other GenAI instrumentations (docs/instrumenting.md, "Apps that already use another
 * instrumentation"): each column reads our OTel GenAI v1.41 attribute first, then the older
 * OTel / OpenLLMetry names, OpenInference's, then the Vercel AI SDK's.
 */
const OPENINFERENCE_KIND = attribute(ATTR_OPENINFERENCE_SPAN_KIND);
const AI_SDK_OPERATION = attribute(ATTR_AI_OPERATION_ID);
/** The AI SDK's provider calls (`ai.generateText.doGenerate`, `ai.streamText.doStream`, `ai.embed.doEmbed`, …). */
const AI_SDK_PROVIDER_CALL = `match(${AI_SDK_OPERATION}, '\\.do(Generate|Stream|Embed)$')`;
const INVOCATION_PARAMETERS = attribute(ATTR_LLM_INVOCATION_PARAMETERS);

const INPUT_TOKENS = firstOf(
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_PROMPT_TOKENS,
  ATTR_LLM_TOKEN_COUNT_PROMPT,
  ATTR_AI_USAGE_INPUT_TOKENS,
  ATTR_AI_USAGE_PROMPT_TOKENS,
  ATTR_AI_USAGE_TOKENS,
);
const OUTPUT_TOKENS = firstOf(
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_COMPLETION_TOKENS,
  ATTR_LLM_TOKEN_COUNT_COMPLETION,
  ATTR_AI_USAGE_OUTPUT_TOKENS,
  ATTR_AI_USAGE_COMPLETION_TOKENS,
);
const CACHE_READ_TOKENS = firstOf(
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_LEGACY,
  ATTR_LLM_TOKEN_COUNT_PROMPT_CACHE_READ,
  ATTR_AI_USAGE_CACHE_READ_TOKENS,
  ATTR_AI_USAGE_CACHED_INPUT_TOKENS,
);
const CACHE_WRITE_TOKENS = `greatest(${[
  ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_LEGACY,
  ATTR_LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE,
  ATTR_AI_USAGE_CACHE_WRITE_TOKENS,
]
  .map((name) => `toUInt64OrZero(${attribute(name)})`)
  .join(', ')})`;
const REASONING_TOKENS = firstOf(
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_TOKENS_LEGACY,
  ATTR_LLM_TOKEN_COUNT_COMPLETION_REASONING,
  ATTR_AI_USAGE_REASONING_TOKENS,
);

/** The model asked for: ours, OpenInference's invocation parameters (else its model name), the AI SDK's. */
const REQUEST_MODEL = firstNonEmpty(
  attribute(ATTR_GEN_AI_REQUEST_MODEL),
  `if(${OPENINFERENCE_KIND} != '', JSONExtractString(${INVOCATION_PARAMETERS}, 'model'), '')`,
  attribute(ATTR_LLM_MODEL_NAME),
  attribute(ATTR_EMBEDDING_MODEL_NAME),
  attribute(ATTR_AI_MODEL_ID),
);

/**
 * The model that answered. OpenInference overwrites `llm.model_name` with the response's model
 * when it records the response's usage (not on streams), so it counts only with token counts.
 */
const RESPONSE_MODEL = firstNonEmpty(
  attribute(ATTR_GEN_AI_RESPONSE_MODEL),
  attribute(ATTR_AI_RESPONSE_MODEL),
  `if(${attribute(ATTR_LLM_TOKEN_COUNT_PROMPT)} != '' OR ${attribute(ATTR_LLM_TOKEN_COUNT_COMPLETION)} != '', ${attribute(ATTR_LLM_MODEL_NAME)}, '')`,
);

const OPERATION = `multiIf(
                    ${attribute(ATTR_GEN_AI_OPERATION_NAME)} != '', ${attribute(ATTR_GEN_AI_OPERATION_NAME)},
                    ${OPENINFERENCE_KIND} = 'EMBEDDING', 'embeddings',
                    ${OPENINFERENCE_KIND} = 'LLM', if(SpanName = 'OpenAI Completions', 'text_completion', 'chat'),
                    ${attribute(ATTR_LLM_REQUEST_TYPE)} = 'completion', 'text_completion',
                    ${attribute(ATTR_LLM_REQUEST_TYPE)} = 'embedding', 'embeddings',
                    ${attribute(ATTR_LLM_REQUEST_TYPE)} != '', ${attribute(ATTR_LLM_REQUEST_TYPE)},
                    endsWith(${AI_SDK_OPERATION}, '.doEmbed'), 'embeddings',
                    ${AI_SDK_OPERATION} != '', 'chat',
                    '')`;

/** Streamed: said so, or (the newer AI SDK, which does not say) it measured a time to first chunk. */
const STREAM = `(${attribute(ATTR_GEN_AI_REQUEST_STREAM)} = 'true'
                    OR ${attribute(ATTR_LLM_IS_STREAMING)} = 'true'
                    OR ${attribute(ATTR_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK)} != ''
                    OR endsWith(${AI_SDK_OPERATION}, '.doStream')
                    OR (${OPENINFERENCE_KIND} != '' AND JSONExtractBool(${INVOCATION_PARAMETERS}, 'stream')))`;

const TIME_TO_FIRST_CHUNK_MS = `coalesce(
                    toFloat64OrNull(${attribute(ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)}) * 1000,
                    toFloat64OrNull(${attribute(ATTR_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK)}) * 1000,
                    toFloat64OrNull(${attribute(ATTR_AI_RESPONSE_MS_TO_FIRST_CHUNK)}))`;

/** `error.type`, else (on an ERROR span) the type of its `exception` event. */
const ERROR_TYPE = `if(${attribute(ATTR_ERROR_TYPE)} != '', ${attribute(ATTR_ERROR_TYPE)},
                    if(StatusCode = 'Error', arrayElement(Events.Attributes, indexOf(Events.Name, 'exception'))['exception.type'], ''))`;

/**
 * Which spans are LLM calls (one row per provider call, never its wrappers):
 * - a span with a request or response model (any naming above), except orchestration spans:
 *   `gen_ai.operation.name` `execute_tool`, `invoke_agent`, `create_agent`, `agent_step` (the AI
 *   SDK's `invoke_agent` root and `step n` spans around its `chat` span), OpenInference kinds other
 *   than `LLM` / `EMBEDDING` (`CHAIN`, `AGENT`, `TOOL`, …), OpenLLMetry's `traceloop.span.kind`
 *   (`workflow`, `task`, `agent`, `tool`), and AI SDK spans other than its provider calls (the outer
 *   `ai.generateText` / `ai.streamText` / `ai.embed` span of each `…doGenerate` / `…doStream` /
 *   `…doEmbed` call);
 * - the newer AI SDK (`@ai-sdk/otel` `OpenTelemetry`) opens an outer `embeddings` (`rerank`,
 *   `decide`, `extract`) span around the provider request's span of the same name; only the
 *   inner one carries usage, so such a span without usage that did not fail is not a call.
 */
const LLM_SPAN_FILTER = `(RequestModel != '' OR ResponseModel != '')
      AND ${attribute(ATTR_GEN_AI_OPERATION_NAME)} NOT IN ('execute_tool', 'invoke_agent', 'create_agent', 'agent_step')
      AND ${OPENINFERENCE_KIND} IN ('', 'LLM', 'EMBEDDING')
      AND ${attribute(ATTR_TRACELOOP_SPAN_KIND)} NOT IN ('workflow', 'task', 'agent', 'tool')
      AND (${AI_SDK_OPERATION} = '' OR ${AI_SDK_PROVIDER_CALL})
      AND NOT (${attribute(ATTR_GEN_AI_OPERATION_NAME)} IN ('embeddings', 'rerank', 'decide', 'extract') AND NOT HasUsage AND StatusCode != 'Error')`;

const LLM_CALLS_COLUMNS = [
  'Timestamp',
  'TraceId',
  'SpanId',
  'ParentSpanId',
  'ServiceName',
  'Provider',
  'Operation',
  'RequestModel',
  'ResponseModel',
  'Model',
  'ResponseId',
  'InputTokens',
  'OutputTokens',
  'CacheReadTokens',
  'CacheWriteTokens',
  'ReasoningTokens',
  'CostUSD',
  'CostSource',
  'PricingModel',
  'DurationMs',
  'TimeToFirstChunkMs',
  'StatusCode',
  'ErrorType',
  'FinishReasons',
  'Stream',
  'Task',
  'Feature',
  'UserId',
  'ConversationId',
  'RoutePolicy',
  'RouteReason',
  'Purpose',
  'RouteClass',
  'RouteModel',
  'RouteReferenceModel',
];

/** Stats key for the model in the scores view: the model the app asked for, else the one that answered. */
const MODEL_KEY = `if(${attribute(ATTR_GEN_AI_REQUEST_MODEL)} != '', ${attribute(ATTR_GEN_AI_REQUEST_MODEL)}, ${attribute(ATTR_GEN_AI_RESPONSE_MODEL)})`;

const PRICE_KEYS: [kind: 'exact' | 'normalized', column: string][] = [
  ['exact', 'ModelExact'],
  ['exact', 'ModelAfterFirstSlash'],
  ['exact', 'ModelAfterLastSlash'],
  ['normalized', 'ModelNormalized'],
];

/**
 * The catalog entry `PriceCatalog.lookup(provider, model)` finds, as dictionary
 * look-ups: the candidate keys in order (the id as given, without its leading
 * path segments, normalised); the first entry of the span's provider among them,
 * else of the provider named by the model's path (`groq/…`), else the first
 * entry of any provider (catalog order).
 */
function priceIdLookup(
  n: Names,
  providers: readonly string[] = ['Provider', 'PathProvider', "''"],
  keys: readonly (readonly [kind: 'exact' | 'normalized', column: string])[] = PRICE_KEYS,
): string {
  const lookups: string[] = [];
  for (const provider of providers) {
    for (const [kind, column] of keys) {
      lookups.push(
        `dictGetOrNull('${n.database}.${TABLES.priceKeys}', 'PriceId', cityHash64(${provider}, '${kind}', ${column}))`,
      );
    }
  }
  return `coalesce(\n                ${lookups.join(',\n                ')})`;
}

/**
 * The keys of the canonical-model look-up, of the request model (else the response model), with
 * any provider: the id as given, then normalised (which also drops path segments). Two look-ups
 * instead of the price look-up's twelve: the canonical name does not depend on the provider.
 */
const MODEL_KEYS: readonly (readonly ['exact' | 'normalized', string])[] = [
  ['exact', 'KeyExact'],
  ['normalized', 'KeyNormalized'],
];

function priceAttribute(n: Names, attributeName: string): string {
  const fallback = attributeName === 'CatalogModel' ? "''" : 'toFloat64(0)';
  return `dictGetOrDefault('${n.database}.${TABLES.priceEntries}', '${attributeName}', ifNull(PriceId, toUInt64(0)), ${fallback})`;
}

/** Dictionaries over the newest catalog version in `llm_prices` (reloaded by `loadPrices`). */
function priceLookups(n: Names): SchemaStatement[] {
  const latest = `SELECT *
    FROM ${n.global(TABLES.prices)}
    WHERE Version = (SELECT max(Version) FROM ${n.global(TABLES.prices)})`;
  const statement = (name: string, sql: string): SchemaStatement => {
    const [kind, object] = name.split(' ');
    return {
      name,
      sql,
      replaceBelowVersion: 1,
      dropFirst: {
        kind: kind === 'dictionary' ? 'DICTIONARY' : 'VIEW',
        name: `${n.database}.${object}`,
      },
    };
  };
  return [
    statement(
      `view ${TABLES.priceKeys}_source`,
      `CREATE VIEW IF NOT EXISTS ${n.global(`${TABLES.priceKeys}_source`)}${n.onCluster}
AS SELECT cityHash64(Provider, KeyKind, Model) AS KeyHash, toUInt64(min(Rank)) AS PriceId
FROM
(
    SELECT Provider, KeyKind, Model, Rank FROM (${latest})
    UNION ALL
    SELECT '' AS Provider, KeyKind, Model, Rank FROM (${latest})
)
GROUP BY Provider, KeyKind, Model`,
    ),
    statement(
      `view ${TABLES.priceEntries}_source`,
      `CREATE VIEW IF NOT EXISTS ${n.global(`${TABLES.priceEntries}_source`)}${n.onCluster}
AS SELECT
    toUInt64(Rank) AS PriceId,
    argMax(InputPerMTok, LoadedAt) AS InputPerMTok,
    argMax(OutputPerMTok, LoadedAt) AS OutputPerMTok,
    argMax(CacheReadPerMTok, LoadedAt) AS CacheReadPerMTok,
    argMax(CacheWritePerMTok, LoadedAt) AS CacheWritePerMTok,
    argMax(ReasoningPerMTok, LoadedAt) AS ReasoningPerMTok,
    argMax(CatalogModel, LoadedAt) AS CatalogModel
FROM (${latest})
GROUP BY Rank`,
    ),
    statement(
      `dictionary ${TABLES.priceKeys}`,
      `CREATE DICTIONARY IF NOT EXISTS ${n.global(TABLES.priceKeys)}${n.onCluster}
(
    KeyHash UInt64,
    PriceId UInt64
)
PRIMARY KEY KeyHash
SOURCE(CLICKHOUSE(DB '${n.database}' TABLE '${TABLES.priceKeys}_source'))
LAYOUT(HASHED())
LIFETIME(MIN 60 MAX 120)`,
    ),
    statement(
      `dictionary ${TABLES.priceEntries}`,
      `CREATE DICTIONARY IF NOT EXISTS ${n.global(TABLES.priceEntries)}${n.onCluster}
(
    PriceId UInt64,
    InputPerMTok Float64,
    OutputPerMTok Float64,
    CacheReadPerMTok Float64,
    CacheWritePerMTok Float64,
    ReasoningPerMTok Float64,
    CatalogModel String
)
PRIMARY KEY PriceId
SOURCE(CLICKHOUSE(DB '${n.database}' TABLE '${TABLES.priceEntries}_source'))
LAYOUT(HASHED())
LIFETIME(MIN 60 MAX 120)`,
    ),
  ];
}

function views(n: Names): SchemaStatement[] {
  // LowCardinality: the normalising functions run once per distinct name in a block, not per row.
  const provider = providerNameSqlExpression(
    `toLowCardinality(${firstAttribute(ATTR_GEN_AI_PROVIDER_NAME, ATTR_GEN_AI_SYSTEM)})`,
  );
  // Calls: ours, then OpenInference's provider and system, then the AI SDK's (`openai.chat`).
  const callProvider = providerNameSqlExpression(
    `toLowCardinality(${firstOf(ATTR_GEN_AI_PROVIDER_NAME, ATTR_GEN_AI_SYSTEM, ATTR_LLM_PROVIDER, ATTR_LLM_SYSTEM, ATTR_AI_MODEL_PROVIDER)})`,
  );
  const finishReasonsRaw = firstOf(
    ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
    ATTR_LLM_FINISH_REASON,
    ATTR_AI_RESPONSE_FINISH_REASON,
  );
  const costCurrency = attribute(ATTR_GEN_AI_USAGE_COST_CURRENCY);
  const evaluationSource = attribute(ATTR_MODELMAXX_EVALUATION_SOURCE, 'EventAttributes');
  const scoresParent = `(${MODEL_KEY} = '' AND ParentSpanId != '' AND ${attribute(ATTR_GEN_AI_REQUEST_MODEL, 'EventAttributes')} != '')`;
  const eventProvider = providerNameSqlExpression(
    `toLowCardinality(${attribute(ATTR_GEN_AI_PROVIDER_NAME, 'EventAttributes')})`,
  );
  const view = (
    name: string,
    to: string,
    select: string,
    replaceBelowVersion = 1,
  ): SchemaStatement => ({
    name: `view ${name}`,
    sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS ${n.database}.${name}${n.onCluster}\nTO ${to}\nAS ${select}`,
    replaceBelowVersion,
    dropFirst: { kind: 'VIEW', name: `${n.database}.${name}` },
  });
  return [
    ...priceLookups(n),
    // exporter/clickhouseexporter/internal/sqltemplates/traces_id_ts_lookup_mv.sql
    view(
      `${TABLES.traces}_trace_id_ts_mv`,
      n.local(TABLES.traceIdTs),
      `SELECT
    TraceId,
    min(toDateTime(Timestamp)) AS Start,
    max(toDateTime(Timestamp)) AS End
FROM ${n.local(TABLES.traces)}
WHERE TraceId != ''
GROUP BY TraceId`,
    ),
    view(
      `${TABLES.calls}_mv`,
      n.local(TABLES.calls),
      `SELECT
    ${LLM_CALLS_COLUMNS.join(',\n    ')}
FROM
(
    SELECT
        *,
        multiIf(SpanCost IS NOT NULL, if(ProviderCost, 'provider', 'span'), Priced, 'catalog', 'unknown') AS CostSource,
        coalesce(
            SpanCost,
            (
                toFloat64(greatest(toInt64(InputTokens) - toInt64(CacheReadTokens) - toInt64(CacheWriteTokens), 0)) * PriceInput
                + toFloat64(CacheReadTokens) * PriceCacheRead
                + toFloat64(CacheWriteTokens) * PriceCacheWrite
                + toFloat64(greatest(toInt64(OutputTokens) - toInt64(ReasoningTokens), 0)) * PriceOutput
                + toFloat64(ReasoningTokens) * PriceReasoning
            ) / 1000000 * nullIf(toUInt8(Priced), 0)) AS CostUSD,
        arrayElement(['', PriceCatalogModel], 1 + toUInt8(isNull(SpanCost) AND Priced)) AS PricingModel,
        if(ModelPriceId IS NOT NULL, dictGetOrDefault('${n.database}.${TABLES.priceEntries}', 'CatalogModel', ifNull(ModelPriceId, toUInt64(0)), ''), KeyNormalized) AS Model
    FROM
    (
    SELECT
        *,
        ${priceAttribute(n, 'InputPerMTok')} AS PriceInput,
        ${priceAttribute(n, 'OutputPerMTok')} AS PriceOutput,
        ${priceAttribute(n, 'CacheReadPerMTok')} AS PriceCacheRead,
        ${priceAttribute(n, 'CacheWritePerMTok')} AS PriceCacheWrite,
        ${priceAttribute(n, 'ReasoningPerMTok')} AS PriceReasoning,
        ${priceAttribute(n, 'CatalogModel')} AS PriceCatalogModel,
        -- A catalog cost needs usage: a span that reports none (an OpenInference stream) is unpriced, not $0; a failed call is priced at its (usually zero) usage.
        isNotNull(PriceId) AND (HasUsage OR StatusCode = 'Error') AS Priced
    FROM
    (
        SELECT
            *,
            ${priceIdLookup(n)} AS PriceId,
            ${priceIdLookup(n, ["''"], MODEL_KEYS)} AS ModelPriceId
        FROM
        (
            SELECT
                Timestamp,
                TraceId,
                SpanId,
                ParentSpanId,
                ServiceName,
                ${callProvider} AS Provider,
                ${OPERATION} AS Operation,
                ${REQUEST_MODEL} AS RequestModel,
                ${RESPONSE_MODEL} AS ResponseModel,
                ${firstOf(ATTR_GEN_AI_RESPONSE_ID, ATTR_AI_RESPONSE_ID)} AS ResponseId,
                ${INPUT_TOKENS} AS InputTokensRaw,
                ${OUTPUT_TOKENS} AS OutputTokensRaw,
                InputTokensRaw != '' OR OutputTokensRaw != '' AS HasUsage,
                toUInt64OrZero(InputTokensRaw) AS InputTokens,
                toUInt64OrZero(OutputTokensRaw) AS OutputTokens,
                toUInt64OrZero(${CACHE_READ_TOKENS}) AS CacheReadTokens,
                ${CACHE_WRITE_TOKENS} AS CacheWriteTokens,
                toUInt64OrZero(${REASONING_TOKENS}) AS ReasoningTokens,
                coalesce(
                    if(upper(${costCurrency}) = 'USD', toFloat64OrNull(${attribute(ATTR_GEN_AI_USAGE_COST_AMOUNT)}), toFloat64OrNull(${attribute(ATTR_MODELMAXX_COST_USD)})),
                    toFloat64OrNull(${attribute(ATTR_LLM_COST_TOTAL)})) AS SpanCost,
                ${attribute(ATTR_GEN_AI_USAGE_COST_SOURCE)} = ${sqlString(GEN_AI_COST_SOURCE_VALUE_PROVIDER)} AS ProviderCost,
                -- The model a span is priced by (LowCardinality, so that its normalisation runs per distinct name): the one that answered, else the one asked for (as costOf gets it).
                toLowCardinality(if(ResponseModel != '', ResponseModel, RequestModel)) AS PricedModel,
                ${lowerTrimSqlExpression('PricedModel')} AS ModelExact,
                if(position(ModelExact, '/') > 0, substring(ModelExact, position(ModelExact, '/') + 1), '') AS ModelAfterFirstSlash,
                if(position(ModelExact, '/') > 0, arrayElement(splitByChar('/', ModelExact), -1), '') AS ModelAfterLastSlash,
                ${modelNameSqlExpression('PricedModel')} AS ModelNormalized,
                if(position(PricedModel, '/') > 1, ${providerNameSqlExpression(`substring(PricedModel, 1, position(PricedModel, '/') - 1)`)}, '') AS PathProvider,
                -- The model a call is grouped by (Model): the one asked for, else the one that answered.
                toLowCardinality(if(RequestModel != '', RequestModel, ResponseModel)) AS ModelKey,
                ${lowerTrimSqlExpression('ModelKey')} AS KeyExact,
                ${modelNameSqlExpression('ModelKey')} AS KeyNormalized,
                Duration / 1000000 AS DurationMs,
                ${TIME_TO_FIRST_CHUNK_MS} AS TimeToFirstChunkMs,
                StatusCode,
                ${ERROR_TYPE} AS ErrorType,
                ${finishReasonsRaw} AS FinishReasonsRaw,
                multiIf(startsWith(FinishReasonsRaw, '['), JSONExtract(FinishReasonsRaw, 'Array(String)'), FinishReasonsRaw = '', CAST([], 'Array(String)'), [FinishReasonsRaw]) AS FinishReasons,
                ${STREAM} AS Stream,
                ${attribute(ATTR_MODELMAXX_TASK)} AS Task,
                ${attribute(ATTR_MODELMAXX_FEATURE)} AS Feature,
                ${attribute(ATTR_ENDUSER_ID)} AS UserId,
                ${attribute(ATTR_GEN_AI_CONVERSATION_ID)} AS ConversationId,
                ${attribute(ATTR_MODELMAXX_ROUTE_POLICY)} AS RoutePolicy,
                ${attribute(ATTR_MODELMAXX_ROUTE_REASON)} AS RouteReason,
                if(${attribute(ATTR_MODELMAXX_EVALUATION_ROLE)} != '', 'evaluation', 'app') AS Purpose,
                ${attribute(ATTR_MODELMAXX_ROUTE_CLASS)} AS RouteClass,
                ${attribute(ATTR_MODELMAXX_ROUTE_MODEL)} AS RouteModel,
                ${attribute(ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL)} AS RouteReferenceModel
            FROM ${n.local(TABLES.traces)}
            WHERE ${LLM_SPAN_FILTER}
        )
    )
    )
)
SETTINGS short_circuit_function_evaluation = 'disable'`,
      5,
    ),
    // A score on a span that is not itself an LLM call (`feedback <name>`, `evaluate <name>`:
    // late results the instrumentation parents to the scored call) names the scored call in its
    // event attributes; it is stored against the parent span and counted in the rollups.
    view(
      `${TABLES.scores}_mv`,
      n.local(TABLES.scores),
      `SELECT
    EventTimestamp AS Timestamp,
    TraceId,
    if(${scoresParent}, ParentSpanId, SpanId) AS SpanId,
    if(${attribute(ATTR_GEN_AI_RESPONSE_ID, 'EventAttributes')} != '', ${attribute(ATTR_GEN_AI_RESPONSE_ID, 'EventAttributes')}, ${attribute(ATTR_GEN_AI_RESPONSE_ID)}) AS ResponseId,
    ${attribute(ATTR_GEN_AI_EVALUATION_NAME, 'EventAttributes')} AS Name,
    toFloat64OrNull(${attribute(ATTR_GEN_AI_EVALUATION_SCORE_VALUE, 'EventAttributes')}) AS Score,
    ${attribute(ATTR_GEN_AI_EVALUATION_SCORE_LABEL, 'EventAttributes')} AS Label,
    ${attribute(ATTR_GEN_AI_EVALUATION_EXPLANATION, 'EventAttributes')} AS Explanation,
    if(${evaluationSource} IN ('evaluator', 'feedback', 'judge'), ${evaluationSource}, 'evaluator') AS Source,
    ServiceName,
    multiIf(${MODEL_KEY} != '', ${provider}, ${scoresParent}, ${eventProvider}, '') AS Provider,
    if(${scoresParent}, ${attribute(ATTR_GEN_AI_REQUEST_MODEL, 'EventAttributes')}, ${MODEL_KEY}) AS Model,
    if(${scoresParent}, ${attribute(ATTR_MODELMAXX_TASK, 'EventAttributes')}, ${attribute(ATTR_MODELMAXX_TASK)}) AS Task,
    if(${scoresParent}, ${attribute(ATTR_MODELMAXX_FEATURE, 'EventAttributes')}, ${attribute(ATTR_MODELMAXX_FEATURE)}) AS Feature
FROM ${n.local(TABLES.traces)}
ARRAY JOIN
    Events.Timestamp AS EventTimestamp,
    Events.Name AS EventName,
    Events.Attributes AS EventAttributes
WHERE EventName = ${sqlString(EVENT_GEN_AI_EVALUATION_RESULT)}`,
    ),
    view(
      `${TABLES.rollup}_calls_mv`,
      n.local(TABLES.rollup),
      `SELECT
    toStartOfMinute(c.Timestamp) AS Minute,
    c.ServiceName AS ServiceName,
    c.Provider AS Provider,
    if(c.RequestModel != '', c.RequestModel, c.ResponseModel) AS Model,
    c.Task AS Task,
    c.Feature AS Feature,
    count() AS Calls,
    countIf(c.StatusCode = 'Error' OR c.ErrorType != '') AS Errors,
    sum(ifNull(c.CostUSD, 0)) AS CostUSD,
    countIf(c.CostUSD IS NOT NULL) AS CostCalls,
    sum(c.InputTokens) AS InputTokens,
    sum(c.OutputTokens) AS OutputTokens,
    sum(c.CacheReadTokens) AS CacheReadTokens,
    sum(c.CacheWriteTokens) AS CacheWriteTokens,
    sum(c.ReasoningTokens) AS ReasoningTokens,
    sum(c.DurationMs) AS DurationMsSum,
    quantilesTDigestState(0.5, 0.95, 0.99)(c.DurationMs) AS LatencyMs,
    quantilesDDState(${LATENCY_DD_PARAMETERS})(c.DurationMs) AS LatencyMsDD
FROM ${n.local(TABLES.calls)} AS c
-- A judge's call is evaluation work: in llm_calls (Purpose), never in the app's figures.
WHERE c.Purpose != 'evaluation'
GROUP BY Minute, ServiceName, Provider, Model, Task, Feature`,
      4,
    ),
    view(
      `${TABLES.rollup}_scores_mv`,
      n.local(TABLES.rollup),
      `SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    Provider,
    Model,
    Task,
    Feature,
    sum(assumeNotNull(Score)) AS ScoreSum,
    count() AS ScoreCount
FROM ${n.local(TABLES.scores)}
-- Shadow verdicts are relative (0.5 = as good as the reference), no model's own quality.
WHERE Model != '' AND Score IS NOT NULL AND Name != 'modelmaxx.shadow'
GROUP BY Minute, ServiceName, Provider, Model, Task, Feature`,
      5,
    ),
    // Hourly rollups for long windows: a day is 24 states per group to merge, not 1440.
    view(
      `${TABLES.rollupHourly}_mv`,
      n.local(TABLES.rollupHourly),
      `SELECT
    toStartOfHour(r.Minute) AS Hour,
    r.ServiceName AS ServiceName,
    r.Provider AS Provider,
    r.Model AS Model,
    r.Task AS Task,
    r.Feature AS Feature,
    sum(r.Calls) AS Calls,
    sum(r.Errors) AS Errors,
    sum(r.CostUSD) AS CostUSD,
    sum(r.CostCalls) AS CostCalls,
    sum(r.InputTokens) AS InputTokens,
    sum(r.OutputTokens) AS OutputTokens,
    sum(r.CacheReadTokens) AS CacheReadTokens,
    sum(r.CacheWriteTokens) AS CacheWriteTokens,
    sum(r.ReasoningTokens) AS ReasoningTokens,
    sum(r.DurationMsSum) AS DurationMsSum,
    quantilesTDigestMergeState(0.5, 0.95, 0.99)(r.LatencyMs) AS LatencyMs,
    quantilesDDMergeState(${LATENCY_DD_PARAMETERS})(r.LatencyMsDD) AS LatencyMsDD,
    sum(r.ScoreSum) AS ScoreSum,
    sum(r.ScoreCount) AS ScoreCount
FROM ${n.local(TABLES.rollup)} AS r
GROUP BY Hour, ServiceName, Provider, Model, Task, Feature`,
      2,
    ),
  ];
}

/**
 * Every statement `migrate` runs, in order. Each is idempotent
 * (`IF NOT EXISTS`), so running them again changes nothing.
 */
export function schemaStatements(options: SchemaOptions = {}): SchemaStatement[] {
  const n = names(options);
  const statements: SchemaStatement[] = [
    {
      name: `database ${n.database}`,
      sql: `CREATE DATABASE IF NOT EXISTS ${n.database}${n.onCluster}`,
    },
  ];
  for (const table of tableDefinitions(options)) statements.push(...createTable(table, n));
  statements.push(...columnAdditions(n));
  statements.push(...views(n));
  return statements;
}

/**
 * Columns later versions added to existing tables (`ADD COLUMN IF NOT EXISTS`: a no-op on a
 * table `CREATE` just made), before the views that fill them are re-created.
 */
function columnAdditions(n: Names): SchemaStatement[] {
  const statements: SchemaStatement[] = [];
  // 3: llm_calls.Model (the view that fills it is re-created after).
  for (const target of n.cluster === undefined
    ? [n.global(TABLES.calls)]
    : [n.local(TABLES.calls), n.global(TABLES.calls)]) {
    statements.push({
      name: `column ${target.slice(n.database.length + 1)}.Model`,
      sql: `ALTER TABLE ${target}${n.onCluster} ADD COLUMN IF NOT EXISTS ${CALLS_MODEL_COLUMN} AFTER ResponseModel`,
      addedIn: 3,
    });
    // 4: llm_calls.Purpose (rows stored before read 'app').
    statements.push({
      name: `column ${target.slice(n.database.length + 1)}.Purpose`,
      sql: `ALTER TABLE ${target}${n.onCluster} ADD COLUMN IF NOT EXISTS ${CALLS_PURPOSE_COLUMN} AFTER RouteReason`,
      addedIn: 4,
    });
    // 5: llm_calls route class, model and reference model (rows stored before read '').
    let after = 'Purpose';
    for (const column of CALLS_ROUTE_COLUMNS) {
      const name = column.split(' ')[0]!;
      statements.push({
        name: `column ${target.slice(n.database.length + 1)}.${name}`,
        sql: `ALTER TABLE ${target}${n.onCluster} ADD COLUMN IF NOT EXISTS ${column} AFTER ${after}`,
        addedIn: 5,
      });
      after = name;
    }
  }
  for (const [table, after] of [
    [TABLES.rollup, 'LatencyMs'],
    [TABLES.rollupHourly, 'LatencyMs'],
  ] as const) {
    const targets = n.cluster === undefined ? [n.global(table)] : [n.local(table), n.global(table)];
    for (const target of targets) {
      statements.push({
        name: `column ${target.slice(n.database.length + 1)}.LatencyMsDD`,
        sql: `ALTER TABLE ${target}${n.onCluster} ADD COLUMN IF NOT EXISTS LatencyMsDD ${LATENCY_DD_TYPE} AFTER ${after}`,
        addedIn: 2,
      });
    }
  }
  return statements;
}

/**
 * Data migrations when upgrading from schema `fromVersion`, run after `schemaStatements`:
 * from 2 or older, `llm_calls.Model` of the rows already stored (a mutation, waited for);
 * from 1, the new `LatencyMsDD` states of the minutes already rolled up are computed from
 * `llm_calls` (the hourly rollup gets them through its view); the deduplication token makes a
 * re-run after a crash a no-op.
 */
export function upgradeStatements(
  options: SchemaOptions = {},
  fromVersion?: number,
): SchemaStatement[] {
  const n = names(options);
  if (fromVersion === undefined || fromVersion >= SCHEMA_VERSION) return [];
  const statements: SchemaStatement[] = [];
  if (fromVersion < 3) {
    // Rows stored before version 3 get the normalised name of the model asked for (else the one
    // that answered): the catalog id for dated snapshots (`gpt-4o-2024-08-06` → `gpt-4o`), the
    // name itself for aliases and unknown models. New rows get the catalog's canonical id.
    statements.push({
      name: `backfill ${TABLES.calls}.Model`,
      sql: `ALTER TABLE ${n.local(TABLES.calls)}${n.onCluster}
UPDATE Model = ${modelNameSqlExpression("if(RequestModel != '', RequestModel, ResponseModel)")}
WHERE Model = ''
SETTINGS mutations_sync = 2`,
    });
  }
  if (fromVersion >= 2) return statements;
  return [
    ...statements,
    {
      name: `backfill ${TABLES.rollup}.LatencyMsDD`,
      sql: `INSERT INTO ${n.global(TABLES.rollup)} (Minute, ServiceName, Provider, Model, Task, Feature, LatencyMsDD)
SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    Provider,
    if(RequestModel != '', RequestModel, ResponseModel) AS Model,
    Task,
    Feature,
    quantilesDDState(${LATENCY_DD_PARAMETERS})(DurationMs)
FROM ${n.global(TABLES.calls)}
GROUP BY Minute, ServiceName, Provider, Model, Task, Feature
SETTINGS insert_deduplication_token = 'modelmaxx-upgrade-2-latency-dd'`,
    },
  ];
}

/** Fully qualified names the store reads and writes (the `Distributed` ones on a cluster). */
export function tableNames(options: SchemaOptions = {}): Record<keyof typeof TABLES, string> {
  const n = names(options);
  return {
    traces: n.global(TABLES.traces),
    traceIdTs: n.global(TABLES.traceIdTs),
    calls: n.global(TABLES.calls),
    scores: n.global(TABLES.scores),
    prices: n.global(TABLES.prices),
    priceKeys: n.global(TABLES.priceKeys),
    priceEntries: n.global(TABLES.priceEntries),
    rollup: n.global(TABLES.rollup),
    rollupHourly: n.global(TABLES.rollupHourly),
    migrations: n.global(TABLES.migrations),
  };
}
