/**
 * Attribute and event names that modelmaxx emits and reads.
 *
 * `gen_ai.*` names follow the OpenTelemetry GenAI semantic conventions v1.41
 * (development status); `gen_ai.usage.cost.*` follows the open cost proposal;
 * everything of our own lives under `modelmaxx.*`. This module imports nothing,
 * so instrumentation running inside user apps pays no dependency cost for it.
 */

// --- GenAI semantic conventions (v1.41) ---------------------------------------
export const ATTR_GEN_AI_OPERATION_NAME = 'gen_ai.operation.name' as const;
export const ATTR_GEN_AI_PROVIDER_NAME = 'gen_ai.provider.name' as const;
/** Deprecated predecessor of `gen_ai.provider.name`; read (never written) for older instrumentations. */
export const ATTR_GEN_AI_SYSTEM = 'gen_ai.system' as const;
export const ATTR_GEN_AI_REQUEST_MODEL = 'gen_ai.request.model' as const;
export const ATTR_GEN_AI_REQUEST_MAX_TOKENS = 'gen_ai.request.max_tokens' as const;
export const ATTR_GEN_AI_REQUEST_TEMPERATURE = 'gen_ai.request.temperature' as const;
export const ATTR_GEN_AI_REQUEST_TOP_P = 'gen_ai.request.top_p' as const;
export const ATTR_GEN_AI_REQUEST_TOP_K = 'gen_ai.request.top_k' as const;
export const ATTR_GEN_AI_REQUEST_FREQUENCY_PENALTY = 'gen_ai.request.frequency_penalty' as const;
export const ATTR_GEN_AI_REQUEST_PRESENCE_PENALTY = 'gen_ai.request.presence_penalty' as const;
export const ATTR_GEN_AI_REQUEST_STOP_SEQUENCES = 'gen_ai.request.stop_sequences' as const;
export const ATTR_GEN_AI_REQUEST_SEED = 'gen_ai.request.seed' as const;
export const ATTR_GEN_AI_REQUEST_CHOICE_COUNT = 'gen_ai.request.choice.count' as const;
export const ATTR_GEN_AI_REQUEST_ENCODING_FORMATS = 'gen_ai.request.encoding_formats' as const;
export const ATTR_GEN_AI_REQUEST_STREAM = 'gen_ai.request.stream' as const;
export const ATTR_GEN_AI_OUTPUT_TYPE = 'gen_ai.output.type' as const;
export const ATTR_GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model' as const;
export const ATTR_GEN_AI_RESPONSE_ID = 'gen_ai.response.id' as const;
export const ATTR_GEN_AI_RESPONSE_FINISH_REASONS = 'gen_ai.response.finish_reasons' as const;
export const ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK =
  'gen_ai.response.time_to_first_chunk' as const;
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens' as const;
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens' as const;
export const ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS =
  'gen_ai.usage.cache_read.input_tokens' as const;
export const ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS =
  'gen_ai.usage.cache_creation.input_tokens' as const;
/** The name `@anthropic-ai/sdk`'s own tracing uses for cache writes; read like `cache_creation`. */
export const ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS =
  'gen_ai.usage.cache_write.input_tokens' as const;
export const ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS =
  'gen_ai.usage.reasoning.output_tokens' as const;
export const ATTR_GEN_AI_CONVERSATION_ID = 'gen_ai.conversation.id' as const;
export const ATTR_GEN_AI_INPUT_MESSAGES = 'gen_ai.input.messages' as const;
export const ATTR_GEN_AI_OUTPUT_MESSAGES = 'gen_ai.output.messages' as const;
export const ATTR_GEN_AI_SYSTEM_INSTRUCTIONS = 'gen_ai.system_instructions' as const;
export const ATTR_GEN_AI_TOOL_DEFINITIONS = 'gen_ai.tool.definitions' as const;

// Evaluation results (event `gen_ai.evaluation.result`).
export const EVENT_GEN_AI_EVALUATION_RESULT = 'gen_ai.evaluation.result' as const;
export const ATTR_GEN_AI_EVALUATION_NAME = 'gen_ai.evaluation.name' as const;
export const ATTR_GEN_AI_EVALUATION_SCORE_VALUE = 'gen_ai.evaluation.score.value' as const;
export const ATTR_GEN_AI_EVALUATION_SCORE_LABEL = 'gen_ai.evaluation.score.label' as const;
export const ATTR_GEN_AI_EVALUATION_EXPLANATION = 'gen_ai.evaluation.explanation' as const;

// --- cost (open proposal) -------------------------------------------------------
export const ATTR_GEN_AI_USAGE_COST_AMOUNT = 'gen_ai.usage.cost.amount' as const;
export const ATTR_GEN_AI_USAGE_COST_CURRENCY = 'gen_ai.usage.cost.currency' as const;
export const ATTR_GEN_AI_USAGE_COST_SOURCE = 'gen_ai.usage.cost.source' as const;

// --- general OTel ---------------------------------------------------------------
export const ATTR_SERVER_ADDRESS = 'server.address' as const;
export const ATTR_SERVER_PORT = 'server.port' as const;
export const ATTR_ERROR_TYPE = 'error.type' as const;
export const ATTR_ENDUSER_ID = 'enduser.id' as const;
export const ATTR_SERVICE_NAME = 'service.name' as const;

// --- modelmaxx extensions -------------------------------------------------------
/**
 * The call's cost in USD, for producers whose `gen_ai.usage.cost.currency` is not USD (the
 * collector reads it then). Our instrumentation prices in USD and leaves it out.
 */
export const ATTR_MODELMAXX_COST_USD = 'modelmaxx.cost.usd' as const;
export const ATTR_MODELMAXX_COST_INPUT_USD = 'modelmaxx.cost.input_usd' as const;
export const ATTR_MODELMAXX_COST_CACHE_READ_USD = 'modelmaxx.cost.cache_read_usd' as const;
export const ATTR_MODELMAXX_COST_CACHE_WRITE_USD = 'modelmaxx.cost.cache_write_usd' as const;
export const ATTR_MODELMAXX_COST_OUTPUT_USD = 'modelmaxx.cost.output_usd' as const;
export const ATTR_MODELMAXX_COST_REASONING_USD = 'modelmaxx.cost.reasoning_usd' as const;
/** The catalog model the price was matched to (e.g. `gpt-4o` for `gpt-4o-2024-08-06`). */
export const ATTR_MODELMAXX_PRICING_MODEL = 'modelmaxx.pricing.model' as const;
export const ATTR_MODELMAXX_PRICING_VERSION = 'modelmaxx.pricing.version' as const;
export const ATTR_MODELMAXX_TASK = 'modelmaxx.task' as const;
export const ATTR_MODELMAXX_FEATURE = 'modelmaxx.feature' as const;
export const ATTR_MODELMAXX_ROUTE_POLICY = 'modelmaxx.route.policy' as const;
export const ATTR_MODELMAXX_ROUTE_CLASS = 'modelmaxx.route.class' as const;
export const ATTR_MODELMAXX_ROUTE_MODEL = 'modelmaxx.route.model' as const;
export const ATTR_MODELMAXX_ROUTE_WEIGHT = 'modelmaxx.route.weight' as const;
export const ATTR_MODELMAXX_ROUTE_REASON = 'modelmaxx.route.reason' as const;
export const ATTR_MODELMAXX_ROUTE_ATTEMPT = 'modelmaxx.route.attempt' as const;
/** Source of an evaluation score: `evaluator` | `feedback` | `judge`. */
export const ATTR_MODELMAXX_EVALUATION_SOURCE = 'modelmaxx.evaluation.source' as const;

// --- enumerated values ----------------------------------------------------------
export const GEN_AI_OPERATION_NAME_VALUE_CHAT = 'chat' as const;
export const GEN_AI_OPERATION_NAME_VALUE_EMBEDDINGS = 'embeddings' as const;
export const GEN_AI_OPERATION_NAME_VALUE_TEXT_COMPLETION = 'text_completion' as const;
export const GEN_AI_OPERATION_NAME_VALUE_GENERATE_CONTENT = 'generate_content' as const;
export const GEN_AI_PROVIDER_NAME_VALUE_OPENAI = 'openai' as const;
export const GEN_AI_PROVIDER_NAME_VALUE_ANTHROPIC = 'anthropic' as const;
export const GEN_AI_COST_CURRENCY_VALUE_USD = 'USD' as const;
export const GEN_AI_COST_SOURCE_VALUE_LOCAL = 'local' as const;

export const EVALUATION_SOURCES = ['evaluator', 'feedback', 'judge'] as const;
export type EvaluationSource = (typeof EVALUATION_SOURCES)[number];
export const COST_SOURCES = ['span', 'catalog', 'unknown'] as const;
export type CostSource = (typeof COST_SOURCES)[number];

/** Built-in evaluator names (`gen_ai.evaluation.name`). */
export const EVALUATION_NAME_FINISH_LENGTH = 'modelmaxx.finish_length' as const;
export const EVALUATION_NAME_EMPTY_OUTPUT = 'modelmaxx.empty_output' as const;
export const EVALUATION_NAME_REFUSAL = 'modelmaxx.refusal' as const;
export const EVALUATION_NAME_INVALID_JSON = 'modelmaxx.invalid_json' as const;
export const EVALUATION_NAME_INVALID_TOOL_ARGUMENTS = 'modelmaxx.invalid_tool_arguments' as const;

// --- OpenTelemetry context keys -------------------------------------------------
// Descriptions for `createContextKey()` from `@opentelemetry/api`, which returns
// `Symbol.for(description)`: packages that use the same description share the slot.
/** App context (`{ task, feature, userId, conversationId }`) that `withLlmContext` puts in context. */
export const CONTEXT_KEY_LLM_CONTEXT = 'modelmaxx.llm_context' as const;
/**
 * Route attributes (`modelmaxx.route.*` → value) a router puts in context around the LLM call it
 * makes; the instrumentation copies them onto that call's span.
 */
export const CONTEXT_KEY_ROUTE_ATTRIBUTES = 'modelmaxx.route_attributes' as const;
