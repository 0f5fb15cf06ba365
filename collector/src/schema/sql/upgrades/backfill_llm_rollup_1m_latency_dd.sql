-- From schema version 1: the LatencyMsDD sketches of the minutes already rolled up, computed from
-- llm_calls (the hourly rollup gets them through its view). The deduplication token makes a
-- re-run after a crash a no-op.
INSERT INTO {{database}}.llm_rollup_1m (Minute, ServiceName, Provider, Model, Task, Feature, LatencyMsDD)
SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    Provider,
    if(RequestModel != '', RequestModel, ResponseModel) AS Model,
    Task,
    Feature,
    quantilesDDState({{latency_dd_parameters}})(DurationMs)
FROM {{database}}.llm_calls
GROUP BY Minute, ServiceName, Provider, Model, Task, Feature
SETTINGS insert_deduplication_token = 'modelmaxx-upgrade-2-latency-dd'
