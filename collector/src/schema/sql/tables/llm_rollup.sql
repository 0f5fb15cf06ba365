-- The rollups, per bucket (Minute: llm_rollup_1m, filled from llm_calls and llm_scores by
-- views/llm_rollup_1m_*_mv.sql; Hour: llm_rollup_1h, from the minute rollup by
-- views/llm_rollup_1h_mv.sql) x service x provider x model x task x feature: what /api/stats and
-- the dashboards read (the hourly one from 6 h windows on: 24 states a day to merge, not 1440).
CREATE TABLE IF NOT EXISTS {{database}}.{{table}}{{on_cluster}} (
    {{bucket}} DateTime CODEC(Delta(4), ZSTD(1)),
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
    LatencyMsDD AggregateFunction(quantilesDD({{latency_dd_parameters}}), Float64),
    ScoreSum SimpleAggregateFunction(sum, Float64),
    ScoreCount SimpleAggregateFunction(sum, UInt64)
) ENGINE = {{engine:AggregatingMergeTree()}}
PARTITION BY toYYYYMM({{bucket}})
ORDER BY ({{bucket}}, ServiceName, Provider, Model, Task, Feature)
SETTINGS index_granularity = 8192{{dedup_window}}
