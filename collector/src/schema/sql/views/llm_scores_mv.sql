-- One llm_scores row per gen_ai.evaluation.result span event. A score on a span that is not
-- itself an LLM call (feedback <name>, evaluate <name>: late results the instrumentation parents
-- to the scored call) names the scored call in its event attributes; it is stored against the
-- parent span (ScoredParent) and counted in the rollups.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.llm_scores_mv{{on_cluster}}
TO {{local:llm_scores}}
AS WITH
    -- The stats key for the model: the one the app asked for, else the one that answered.
    if(SpanAttributes['gen_ai.request.model'] != '', SpanAttributes['gen_ai.request.model'], SpanAttributes['gen_ai.response.model']) AS SpanModel,
    (SpanModel = '' AND ParentSpanId != '' AND EventAttributes['gen_ai.request.model'] != '') AS ScoredParent,
    EventAttributes['modelmaxx.evaluation.source'] AS EvaluationSource
SELECT
    EventTimestamp AS Timestamp,
    TraceId,
    if(ScoredParent, ParentSpanId, SpanId) AS SpanId,
    if(EventAttributes['gen_ai.response.id'] != '', EventAttributes['gen_ai.response.id'], SpanAttributes['gen_ai.response.id']) AS ResponseId,
    EventAttributes['gen_ai.evaluation.name'] AS Name,
    toFloat64OrNull(EventAttributes['gen_ai.evaluation.score.value']) AS Score,
    EventAttributes['gen_ai.evaluation.score.label'] AS Label,
    EventAttributes['gen_ai.evaluation.explanation'] AS Explanation,
    if(EvaluationSource IN ('evaluator', 'feedback', 'judge'), EvaluationSource, 'evaluator') AS Source,
    ServiceName,
    multiIf(
        SpanModel != '', {{provider_name:toLowCardinality(if(SpanAttributes['gen_ai.provider.name'] != '', SpanAttributes['gen_ai.provider.name'], SpanAttributes['gen_ai.system']))}},
        ScoredParent, {{provider_name:toLowCardinality(EventAttributes['gen_ai.provider.name'])}},
        '') AS Provider,
    if(ScoredParent, EventAttributes['gen_ai.request.model'], SpanModel) AS Model,
    if(ScoredParent, EventAttributes['modelmaxx.task'], SpanAttributes['modelmaxx.task']) AS Task,
    if(ScoredParent, EventAttributes['modelmaxx.feature'], SpanAttributes['modelmaxx.feature']) AS Feature
FROM {{local:otel_traces}}
ARRAY JOIN
    Events.Timestamp AS EventTimestamp,
    Events.Name AS EventName,
    Events.Attributes AS EventAttributes
WHERE EventName = 'gen_ai.evaluation.result'
