-- The app's calls per minute x service x provider x model x task x feature.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.llm_rollup_1m_calls_mv{{on_cluster}}
TO {{local:llm_rollup_1m}}
AS SELECT
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
    quantilesDDState({{latency_dd_parameters}})(c.DurationMs) AS LatencyMsDD
FROM {{local:llm_calls}} AS c
-- A judge's call is evaluation work: in llm_calls (Purpose), never in the app's figures.
WHERE c.Purpose != 'evaluation'
GROUP BY Minute, ServiceName, Provider, Model, Task, Feature
