-- The exporter's lookup view (exporter/clickhouseexporter/internal/sqltemplates/traces_id_ts_lookup_mv.sql),
-- converting to DateTime explicitly.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.otel_traces_trace_id_ts_mv{{on_cluster}}
TO {{local:otel_traces_trace_id_ts}}
AS SELECT
    TraceId,
    min(toDateTime(Timestamp)) AS Start,
    max(toDateTime(Timestamp)) AS End
FROM {{local:otel_traces}}
WHERE TraceId != ''
GROUP BY TraceId
