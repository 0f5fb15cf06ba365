-- Hourly rollups for long windows, merged from the minute rollup.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.llm_rollup_1h_mv{{on_cluster}}
TO {{local:llm_rollup_1h}}
AS SELECT
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
    quantilesDDMergeState({{latency_dd_parameters}})(r.LatencyMsDD) AS LatencyMsDD,
    sum(r.ScoreSum) AS ScoreSum,
    sum(r.ScoreCount) AS ScoreCount
FROM {{local:llm_rollup_1m}} AS r
GROUP BY Hour, ServiceName, Provider, Model, Task, Feature
