-- The exporter's trace id lookup table
-- (exporter/clickhouseexporter/internal/sqltemplates/traces_id_ts_lookup_table.sql): the first
-- and last second of each trace, for Grafana's trace-by-id query.
CREATE TABLE IF NOT EXISTS {{database}}.{{table}}{{on_cluster}} (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = {{engine:MergeTree()}}
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
{{ttl:toDateTime(Start)}}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1{{dedup_window}}
