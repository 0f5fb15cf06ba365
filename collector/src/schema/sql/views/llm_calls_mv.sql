-- One llm_calls row per LLM call span of otel_traces: its model, usage, cost (the span's own,
-- else the catalog's through the price dictionaries, else unknown) and our modelmaxx.* tags.
-- Each column reads our OTel GenAI v1.41 attribute first, then the older OTel / OpenLLMetry
-- names, OpenInference's, then the Vercel AI SDK's (docs/instrumenting.md, "Apps that already
-- use another instrumentation"). Every SpanAttributes key must be a name @modelmaxx/semconv
-- exports (the loader refuses others). The innermost SELECT reads the span; the one around it
-- finds the catalog entries; the next reads their prices; the outer one computes the cost.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.llm_calls_mv{{on_cluster}}
TO {{local:llm_calls}}
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ParentSpanId,
    ServiceName,
    Provider,
    Operation,
    RequestModel,
    ResponseModel,
    Model,
    ResponseId,
    InputTokens,
    OutputTokens,
    CacheReadTokens,
    CacheWriteTokens,
    ReasoningTokens,
    CostUSD,
    CostSource,
    PricingModel,
    DurationMs,
    TimeToFirstChunkMs,
    StatusCode,
    ErrorType,
    FinishReasons,
    Stream,
    Task,
    Feature,
    UserId,
    ConversationId,
    RoutePolicy,
    RouteReason,
    Purpose,
    RouteClass,
    RouteModel,
    RouteReferenceModel
FROM
(
    SELECT
        *,
        multiIf(SpanCost IS NOT NULL, multiIf(ProviderCost, 'provider', EstimatedCost, 'estimate', 'span'), Priced, 'catalog', 'unknown') AS CostSource,
        -- costOf's token semantics: input includes cache reads and writes, output includes reasoning.
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
        if(ModelPriceId IS NOT NULL, dictGetOrDefault('{{database}}.llm_price_entries', 'CatalogModel', ifNull(ModelPriceId, toUInt64(0)), ''), KeyNormalized) AS Model
    FROM
    (
    SELECT
        *,
        dictGetOrDefault('{{database}}.llm_price_entries', 'InputPerMTok', ifNull(PriceId, toUInt64(0)), toFloat64(0)) AS PriceInput,
        dictGetOrDefault('{{database}}.llm_price_entries', 'OutputPerMTok', ifNull(PriceId, toUInt64(0)), toFloat64(0)) AS PriceOutput,
        dictGetOrDefault('{{database}}.llm_price_entries', 'CacheReadPerMTok', ifNull(PriceId, toUInt64(0)), toFloat64(0)) AS PriceCacheRead,
        dictGetOrDefault('{{database}}.llm_price_entries', 'CacheWritePerMTok', ifNull(PriceId, toUInt64(0)), toFloat64(0)) AS PriceCacheWrite,
        dictGetOrDefault('{{database}}.llm_price_entries', 'ReasoningPerMTok', ifNull(PriceId, toUInt64(0)), toFloat64(0)) AS PriceReasoning,
        dictGetOrDefault('{{database}}.llm_price_entries', 'CatalogModel', ifNull(PriceId, toUInt64(0)), '') AS PriceCatalogModel,
        -- A catalog cost needs usage: a span that reports none (an OpenInference stream) is unpriced, not $0; a failed call is priced at its (usually zero) usage.
        isNotNull(PriceId) AND (HasUsage OR StatusCode = 'Error') AS Priced
    FROM
    (
        SELECT
            *,
            -- The entry PriceCatalog.lookup(provider, model) finds: the candidate keys in order (the
            -- id as given, without its leading path segments, normalised); an entry of the span's
            -- provider among them, else of the provider the model's path names (groq/...), else the
            -- first entry of any provider ('', catalog order).
            coalesce(
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64(Provider, 'exact', ModelExact)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64(Provider, 'exact', ModelAfterFirstSlash)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64(Provider, 'exact', ModelAfterLastSlash)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64(Provider, 'normalized', ModelNormalized)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64(PathProvider, 'exact', ModelExact)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64(PathProvider, 'exact', ModelAfterFirstSlash)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64(PathProvider, 'exact', ModelAfterLastSlash)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64(PathProvider, 'normalized', ModelNormalized)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64('', 'exact', ModelExact)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64('', 'exact', ModelAfterFirstSlash)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64('', 'exact', ModelAfterLastSlash)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64('', 'normalized', ModelNormalized))) AS PriceId,
            -- The canonical model (Model): the entry of the request model (else the response model)
            -- as given, else normalised, of any provider: the canonical name does not depend on it.
            coalesce(
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64('', 'exact', KeyExact)),
                dictGetOrNull('{{database}}.llm_price_keys', 'PriceId', cityHash64('', 'normalized', KeyNormalized))) AS ModelPriceId
        FROM
        (
            SELECT
                Timestamp,
                TraceId,
                SpanId,
                ParentSpanId,
                ServiceName,
                -- Ours, then OpenInference's provider and system, then the AI SDK's (openai.chat),
                -- normalised like normalizeProviderName; LowCardinality: the normalisation runs once
                -- per distinct name in a block, not per row.
                {{provider_name:toLowCardinality(multiIf(
                    SpanAttributes['gen_ai.provider.name'] != '', SpanAttributes['gen_ai.provider.name'],
                    SpanAttributes['gen_ai.system'] != '', SpanAttributes['gen_ai.system'],
                    SpanAttributes['llm.provider'] != '', SpanAttributes['llm.provider'],
                    SpanAttributes['llm.system'] != '', SpanAttributes['llm.system'],
                    SpanAttributes['ai.model.provider'] != '', SpanAttributes['ai.model.provider'],
                    ''))}} AS Provider,
                multiIf(
                    SpanAttributes['gen_ai.operation.name'] != '', SpanAttributes['gen_ai.operation.name'],
                    SpanAttributes['openinference.span.kind'] = 'EMBEDDING', 'embeddings',
                    SpanAttributes['openinference.span.kind'] = 'LLM', if(SpanName = 'OpenAI Completions', 'text_completion', 'chat'),
                    SpanAttributes['llm.request.type'] = 'completion', 'text_completion',
                    SpanAttributes['llm.request.type'] = 'embedding', 'embeddings',
                    SpanAttributes['llm.request.type'] != '', SpanAttributes['llm.request.type'],
                    endsWith(SpanAttributes['ai.operationId'], '.doEmbed'), 'embeddings',
                    SpanAttributes['ai.operationId'] != '', 'chat',
                    '') AS Operation,
                -- The model asked for: ours, OpenInference's invocation parameters (else its model
                -- name), the AI SDK's.
                multiIf(
                    SpanAttributes['gen_ai.request.model'] != '', SpanAttributes['gen_ai.request.model'],
                    if(SpanAttributes['openinference.span.kind'] != '', JSONExtractString(SpanAttributes['llm.invocation_parameters'], 'model'), '') != '', if(SpanAttributes['openinference.span.kind'] != '', JSONExtractString(SpanAttributes['llm.invocation_parameters'], 'model'), ''),
                    SpanAttributes['llm.model_name'] != '', SpanAttributes['llm.model_name'],
                    SpanAttributes['embedding.model_name'] != '', SpanAttributes['embedding.model_name'],
                    SpanAttributes['ai.model.id'] != '', SpanAttributes['ai.model.id'],
                    '') AS RequestModel,
                -- The model that answered. OpenInference overwrites llm.model_name with the
                -- response's model when it records the response's usage (not on streams), so it
                -- counts only with token counts.
                multiIf(
                    SpanAttributes['gen_ai.response.model'] != '', SpanAttributes['gen_ai.response.model'],
                    SpanAttributes['ai.response.model'] != '', SpanAttributes['ai.response.model'],
                    if(SpanAttributes['llm.token_count.prompt'] != '' OR SpanAttributes['llm.token_count.completion'] != '', SpanAttributes['llm.model_name'], '') != '', if(SpanAttributes['llm.token_count.prompt'] != '' OR SpanAttributes['llm.token_count.completion'] != '', SpanAttributes['llm.model_name'], ''),
                    '') AS ResponseModel,
                multiIf(
                    SpanAttributes['gen_ai.response.id'] != '', SpanAttributes['gen_ai.response.id'],
                    SpanAttributes['ai.response.id'] != '', SpanAttributes['ai.response.id'],
                    '') AS ResponseId,
                multiIf(
                    SpanAttributes['gen_ai.usage.input_tokens'] != '', SpanAttributes['gen_ai.usage.input_tokens'],
                    SpanAttributes['gen_ai.usage.prompt_tokens'] != '', SpanAttributes['gen_ai.usage.prompt_tokens'],
                    SpanAttributes['llm.token_count.prompt'] != '', SpanAttributes['llm.token_count.prompt'],
                    SpanAttributes['ai.usage.inputTokens'] != '', SpanAttributes['ai.usage.inputTokens'],
                    SpanAttributes['ai.usage.promptTokens'] != '', SpanAttributes['ai.usage.promptTokens'],
                    SpanAttributes['ai.usage.tokens'] != '', SpanAttributes['ai.usage.tokens'],
                    '') AS InputTokensRaw,
                multiIf(
                    SpanAttributes['gen_ai.usage.output_tokens'] != '', SpanAttributes['gen_ai.usage.output_tokens'],
                    SpanAttributes['gen_ai.usage.completion_tokens'] != '', SpanAttributes['gen_ai.usage.completion_tokens'],
                    SpanAttributes['llm.token_count.completion'] != '', SpanAttributes['llm.token_count.completion'],
                    SpanAttributes['ai.usage.outputTokens'] != '', SpanAttributes['ai.usage.outputTokens'],
                    SpanAttributes['ai.usage.completionTokens'] != '', SpanAttributes['ai.usage.completionTokens'],
                    '') AS OutputTokensRaw,
                InputTokensRaw != '' OR OutputTokensRaw != '' AS HasUsage,
                toUInt64OrZero(InputTokensRaw) AS InputTokens,
                toUInt64OrZero(OutputTokensRaw) AS OutputTokens,
                toUInt64OrZero(multiIf(
                    SpanAttributes['gen_ai.usage.cache_read.input_tokens'] != '', SpanAttributes['gen_ai.usage.cache_read.input_tokens'],
                    SpanAttributes['gen_ai.usage.cache_read_input_tokens'] != '', SpanAttributes['gen_ai.usage.cache_read_input_tokens'],
                    SpanAttributes['llm.token_count.prompt_details.cache_read'] != '', SpanAttributes['llm.token_count.prompt_details.cache_read'],
                    SpanAttributes['ai.usage.inputTokenDetails.cacheReadTokens'] != '', SpanAttributes['ai.usage.inputTokenDetails.cacheReadTokens'],
                    SpanAttributes['ai.usage.cachedInputTokens'] != '', SpanAttributes['ai.usage.cachedInputTokens'],
                    '')) AS CacheReadTokens,
                greatest(
                    toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_creation.input_tokens']),
                    toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_write.input_tokens']),
                    toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_creation_input_tokens']),
                    toUInt64OrZero(SpanAttributes['llm.token_count.prompt_details.cache_write']),
                    toUInt64OrZero(SpanAttributes['ai.usage.inputTokenDetails.cacheWriteTokens'])) AS CacheWriteTokens,
                toUInt64OrZero(multiIf(
                    SpanAttributes['gen_ai.usage.reasoning.output_tokens'] != '', SpanAttributes['gen_ai.usage.reasoning.output_tokens'],
                    SpanAttributes['gen_ai.usage.reasoning_tokens'] != '', SpanAttributes['gen_ai.usage.reasoning_tokens'],
                    SpanAttributes['llm.token_count.completion_details.reasoning'] != '', SpanAttributes['llm.token_count.completion_details.reasoning'],
                    SpanAttributes['ai.usage.reasoningTokens'] != '', SpanAttributes['ai.usage.reasoningTokens'],
                    '')) AS ReasoningTokens,
                -- The span's own cost: gen_ai.usage.cost.amount in USD, else ours, else OpenInference's.
                coalesce(
                    if(upper(SpanAttributes['gen_ai.usage.cost.currency']) = 'USD', toFloat64OrNull(SpanAttributes['gen_ai.usage.cost.amount']), toFloat64OrNull(SpanAttributes['modelmaxx.cost.usd'])),
                    toFloat64OrNull(SpanAttributes['llm.cost.total'])) AS SpanCost,
                SpanAttributes['gen_ai.usage.cost.source'] = 'provider' AS ProviderCost,
                -- the gateway's estimate for a stream that ended before the provider's usage
                SpanAttributes['gen_ai.usage.cost.source'] = 'estimate' AS EstimatedCost,
                -- The model a span is priced by (LowCardinality, so that its normalisation runs per distinct name): the one that answered, else the one asked for (as costOf gets it).
                toLowCardinality(if(ResponseModel != '', ResponseModel, RequestModel)) AS PricedModel,
                {{lower_trim:PricedModel}} AS ModelExact,
                if(position(ModelExact, '/') > 0, substring(ModelExact, position(ModelExact, '/') + 1), '') AS ModelAfterFirstSlash,
                if(position(ModelExact, '/') > 0, arrayElement(splitByChar('/', ModelExact), -1), '') AS ModelAfterLastSlash,
                {{model_name:PricedModel}} AS ModelNormalized,
                if(position(PricedModel, '/') > 1, {{provider_name:substring(PricedModel, 1, position(PricedModel, '/') - 1)}}, '') AS PathProvider,
                -- The model a call is grouped by (Model): the one asked for, else the one that answered.
                toLowCardinality(if(RequestModel != '', RequestModel, ResponseModel)) AS ModelKey,
                {{lower_trim:ModelKey}} AS KeyExact,
                {{model_name:ModelKey}} AS KeyNormalized,
                Duration / 1000000 AS DurationMs,
                -- gen_ai.response.time_to_first_chunk and the client metric's name are seconds.
                coalesce(
                    toFloat64OrNull(SpanAttributes['gen_ai.response.time_to_first_chunk']) * 1000,
                    toFloat64OrNull(SpanAttributes['gen_ai.client.operation.time_to_first_chunk']) * 1000,
                    toFloat64OrNull(SpanAttributes['ai.response.msToFirstChunk'])) AS TimeToFirstChunkMs,
                StatusCode,
                -- error.type, else (on an ERROR span) the type of its exception event.
                if(SpanAttributes['error.type'] != '', SpanAttributes['error.type'],
                    if(StatusCode = 'Error', arrayElement(Events.Attributes, indexOf(Events.Name, 'exception'))['exception.type'], '')) AS ErrorType,
                multiIf(
                    SpanAttributes['gen_ai.response.finish_reasons'] != '', SpanAttributes['gen_ai.response.finish_reasons'],
                    SpanAttributes['llm.finish_reason'] != '', SpanAttributes['llm.finish_reason'],
                    SpanAttributes['ai.response.finishReason'] != '', SpanAttributes['ai.response.finishReason'],
                    '') AS FinishReasonsRaw,
                multiIf(startsWith(FinishReasonsRaw, '['), JSONExtract(FinishReasonsRaw, 'Array(String)'), FinishReasonsRaw = '', CAST([], 'Array(String)'), [FinishReasonsRaw]) AS FinishReasons,
                -- Streamed: said so, or (the newer AI SDK, which does not say) it measured a time to first chunk.
                (SpanAttributes['gen_ai.request.stream'] = 'true'
                    OR SpanAttributes['llm.is_streaming'] = 'true'
                    OR SpanAttributes['gen_ai.client.operation.time_to_first_chunk'] != ''
                    OR endsWith(SpanAttributes['ai.operationId'], '.doStream')
                    OR (SpanAttributes['openinference.span.kind'] != '' AND JSONExtractBool(SpanAttributes['llm.invocation_parameters'], 'stream'))) AS Stream,
                SpanAttributes['modelmaxx.task'] AS Task,
                SpanAttributes['modelmaxx.feature'] AS Feature,
                SpanAttributes['enduser.id'] AS UserId,
                SpanAttributes['gen_ai.conversation.id'] AS ConversationId,
                SpanAttributes['modelmaxx.route.policy'] AS RoutePolicy,
                SpanAttributes['modelmaxx.route.reason'] AS RouteReason,
                if(SpanAttributes['modelmaxx.evaluation.role'] != '', 'evaluation', 'app') AS Purpose,
                SpanAttributes['modelmaxx.route.class'] AS RouteClass,
                SpanAttributes['modelmaxx.route.model'] AS RouteModel,
                SpanAttributes['modelmaxx.route.reference_model'] AS RouteReferenceModel
            FROM {{local:otel_traces}}
            -- Which spans are LLM calls (one row per provider call, never its wrappers): a span
            -- with a request or response model, except orchestration spans: gen_ai.operation.name
            -- execute_tool, invoke_agent, create_agent, agent_step (the AI SDK's invoke_agent root
            -- and "step n" spans around its chat span), OpenInference kinds other than LLM /
            -- EMBEDDING (CHAIN, AGENT, TOOL, ...), OpenLLMetry's traceloop.span.kind (workflow,
            -- task, agent, tool), and AI SDK spans other than its provider calls (the outer
            -- ai.generateText / ai.streamText / ai.embed span of each ...doGenerate / ...doStream /
            -- ...doEmbed call). The newer AI SDK (@ai-sdk/otel) opens an outer embeddings (rerank,
            -- decide, extract) span around the provider request's span of the same name; only the
            -- inner one carries usage, so such a span without usage that did not fail is no call.
            WHERE (RequestModel != '' OR ResponseModel != '')
                AND SpanAttributes['gen_ai.operation.name'] NOT IN ('execute_tool', 'invoke_agent', 'create_agent', 'agent_step')
                AND SpanAttributes['openinference.span.kind'] IN ('', 'LLM', 'EMBEDDING')
                AND SpanAttributes['traceloop.span.kind'] NOT IN ('workflow', 'task', 'agent', 'tool')
                AND (SpanAttributes['ai.operationId'] = '' OR match(SpanAttributes['ai.operationId'], '\.do(Generate|Stream|Embed)$'))
                AND NOT (SpanAttributes['gen_ai.operation.name'] IN ('embeddings', 'rerank', 'decide', 'extract') AND NOT HasUsage AND StatusCode != 'Error')
        )
    )
    )
)
-- Lazily evaluated branches lose the LowCardinality optimisation of the name normalisation and
-- made the view four times more expensive.
SETTINGS short_circuit_function_evaluation = 'disable'
