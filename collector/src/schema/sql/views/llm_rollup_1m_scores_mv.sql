-- Scores of LLM calls per minute and group (a model's mean score).
CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.llm_rollup_1m_scores_mv{{on_cluster}}
TO {{local:llm_rollup_1m}}
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    Provider,
    Model,
    Task,
    Feature,
    sum(assumeNotNull(Score)) AS ScoreSum,
    count() AS ScoreCount
FROM {{local:llm_scores}}
-- Shadow verdicts are relative (0.5 = as good as the reference), no model's own quality.
WHERE Model != '' AND Score IS NOT NULL AND Name != 'modelmaxx.shadow'
GROUP BY Minute, ServiceName, Provider, Model, Task, Feature
