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

// --- other GenAI instrumentations (read by the collector, never written) ---------
// The collector's `llm_calls` view maps these onto the same columns as our own attributes;
// docs/instrumenting.md ("Apps that already use another instrumentation") has the table.
/** Older OTel GenAI / OpenLLMetry (Traceloop) token names. */
export const ATTR_GEN_AI_USAGE_PROMPT_TOKENS = 'gen_ai.usage.prompt_tokens' as const;
export const ATTR_GEN_AI_USAGE_COMPLETION_TOKENS = 'gen_ai.usage.completion_tokens' as const;
export const ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_LEGACY =
  'gen_ai.usage.cache_read_input_tokens' as const;
export const ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_LEGACY =
  'gen_ai.usage.cache_creation_input_tokens' as const;
export const ATTR_GEN_AI_USAGE_REASONING_TOKENS_LEGACY = 'gen_ai.usage.reasoning_tokens' as const;
/** OpenLLMetry: `chat` | `completion` | `embedding` | `rerank` (before `gen_ai.operation.name`). */
export const ATTR_LLM_REQUEST_TYPE = 'llm.request.type' as const;
export const ATTR_LLM_IS_STREAMING = 'llm.is_streaming' as const;
export const ATTR_LLM_USAGE_TOTAL_TOKENS = 'llm.usage.total_tokens' as const;
/** OpenLLMetry workflow/task/agent/tool spans (`traceloop.span.kind`): orchestration, not calls. */
export const ATTR_TRACELOOP_SPAN_KIND = 'traceloop.span.kind' as const;
/** The newer AI SDK (`@ai-sdk/otel` `OpenTelemetry`) time to first chunk, in seconds. */
export const ATTR_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK =
  'gen_ai.client.operation.time_to_first_chunk' as const;

/** OpenInference (Arize): `LLM`, `EMBEDDING`, `CHAIN`, `AGENT`, `TOOL`, … */
export const ATTR_OPENINFERENCE_SPAN_KIND = 'openinference.span.kind' as const;
export const ATTR_LLM_MODEL_NAME = 'llm.model_name' as const;
export const ATTR_EMBEDDING_MODEL_NAME = 'embedding.model_name' as const;
export const ATTR_LLM_PROVIDER = 'llm.provider' as const;
export const ATTR_LLM_SYSTEM = 'llm.system' as const;
/** JSON of the request without its messages (may hold `model` and `stream`). */
export const ATTR_LLM_INVOCATION_PARAMETERS = 'llm.invocation_parameters' as const;
export const ATTR_LLM_FINISH_REASON = 'llm.finish_reason' as const;
export const ATTR_LLM_TOKEN_COUNT_PROMPT = 'llm.token_count.prompt' as const;
export const ATTR_LLM_TOKEN_COUNT_COMPLETION = 'llm.token_count.completion' as const;
export const ATTR_LLM_TOKEN_COUNT_PROMPT_CACHE_READ =
  'llm.token_count.prompt_details.cache_read' as const;
export const ATTR_LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE =
  'llm.token_count.prompt_details.cache_write' as const;
export const ATTR_LLM_TOKEN_COUNT_COMPLETION_REASONING =
  'llm.token_count.completion_details.reasoning' as const;
/** Instrumentation-reported cost in USD (`llm.cost.prompt`, `llm.cost.completion`, `llm.cost.total`). */
export const ATTR_LLM_COST_TOTAL = 'llm.cost.total' as const;
export const OPENINFERENCE_SPAN_KIND_LLM = 'LLM' as const;
export const OPENINFERENCE_SPAN_KIND_EMBEDDING = 'EMBEDDING' as const;

/** Vercel AI SDK (`ai` < 7, and `@ai-sdk/otel`'s `LegacyOpenTelemetry`). */
export const ATTR_AI_OPERATION_ID = 'ai.operationId' as const;
export const ATTR_AI_MODEL_ID = 'ai.model.id' as const;
/** `openai.chat`, `openai.responses`, `anthropic.messages`, …: normalised by the alias table. */
export const ATTR_AI_MODEL_PROVIDER = 'ai.model.provider' as const;
export const ATTR_AI_RESPONSE_MODEL = 'ai.response.model' as const;
export const ATTR_AI_RESPONSE_ID = 'ai.response.id' as const;
export const ATTR_AI_RESPONSE_FINISH_REASON = 'ai.response.finishReason' as const;
export const ATTR_AI_RESPONSE_MS_TO_FIRST_CHUNK = 'ai.response.msToFirstChunk' as const;
/** `ai` 4 (and `ai` 5's `generateText`). */
export const ATTR_AI_USAGE_PROMPT_TOKENS = 'ai.usage.promptTokens' as const;
export const ATTR_AI_USAGE_COMPLETION_TOKENS = 'ai.usage.completionTokens' as const;
/** `ai` 5 and later. */
export const ATTR_AI_USAGE_INPUT_TOKENS = 'ai.usage.inputTokens' as const;
export const ATTR_AI_USAGE_OUTPUT_TOKENS = 'ai.usage.outputTokens' as const;
export const ATTR_AI_USAGE_CACHED_INPUT_TOKENS = 'ai.usage.cachedInputTokens' as const;
export const ATTR_AI_USAGE_REASONING_TOKENS = 'ai.usage.reasoningTokens' as const;
export const ATTR_AI_USAGE_CACHE_READ_TOKENS =
  'ai.usage.inputTokenDetails.cacheReadTokens' as const;
export const ATTR_AI_USAGE_CACHE_WRITE_TOKENS =
  'ai.usage.inputTokenDetails.cacheWriteTokens' as const;
/** Embedding calls (`ai.embed.doEmbed`). */
export const ATTR_AI_USAGE_TOKENS = 'ai.usage.tokens' as const;

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
/**
 * The policy's reference model (the one routing is measured against: what the call would have
 * cost and how good it would have been), on each routed call; on a shadow or shadow-judge call,
 * the model of the call it evaluates is `modelmaxx.route.model`.
 */
export const ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL = 'modelmaxx.route.reference_model' as const;
/** Source of an evaluation score: `evaluator` | `feedback` | `judge`. */
export const ATTR_MODELMAXX_EVALUATION_SOURCE = 'modelmaxx.evaluation.source' as const;
/**
 * On an LLM call span made to evaluate another call (an LLM judge): `judge`. Its spend is
 * evaluation spend, not the app's: `llm_calls` rows whose span has it are evaluation work.
 */
export const ATTR_MODELMAXX_EVALUATION_ROLE = 'modelmaxx.evaluation.role' as const;
export const EVALUATION_ROLE_VALUE_JUDGE = 'judge' as const;
/** The router's shadow call to the reference model (evaluation work, like a judge's call). */
export const EVALUATION_ROLE_VALUE_SHADOW = 'shadow' as const;
/** On a judge's call span: the evaluation it produces (`gen_ai.evaluation.name` of the result). */
export const ATTR_MODELMAXX_EVALUATION_NAME = 'modelmaxx.evaluation.name' as const;
/** On a judge's call span: the evaluated call's trace id, span id and response id. */
export const ATTR_MODELMAXX_EVALUATION_TARGET_TRACE_ID =
  'modelmaxx.evaluation.target.trace_id' as const;
export const ATTR_MODELMAXX_EVALUATION_TARGET_SPAN_ID =
  'modelmaxx.evaluation.target.span_id' as const;
export const ATTR_MODELMAXX_EVALUATION_TARGET_RESPONSE_ID =
  'modelmaxx.evaluation.target.response_id' as const;
/** On a pairwise judge's result: where the evaluated answer was shown, `first` or `second`. */
export const ATTR_MODELMAXX_EVALUATION_POSITION = 'modelmaxx.evaluation.position' as const;

// --- enumerated values ----------------------------------------------------------
export const GEN_AI_OPERATION_NAME_VALUE_CHAT = 'chat' as const;
export const GEN_AI_OPERATION_NAME_VALUE_EMBEDDINGS = 'embeddings' as const;
export const GEN_AI_OPERATION_NAME_VALUE_TEXT_COMPLETION = 'text_completion' as const;
export const GEN_AI_OPERATION_NAME_VALUE_GENERATE_CONTENT = 'generate_content' as const;
export const GEN_AI_PROVIDER_NAME_VALUE_OPENAI = 'openai' as const;
export const GEN_AI_PROVIDER_NAME_VALUE_ANTHROPIC = 'anthropic' as const;
export const GEN_AI_COST_CURRENCY_VALUE_USD = 'USD' as const;
export const GEN_AI_COST_SOURCE_VALUE_LOCAL = 'local' as const;
/** The provider reported the cost (e.g. OpenRouter's `usage.cost`). */
export const GEN_AI_COST_SOURCE_VALUE_PROVIDER = 'provider' as const;
/**
 * The gateway estimated the call's usage and priced it from the catalog: a stream ended before the
 * provider said what it used (the app went away, the upstream cut it or went silent). Its
 * `gen_ai.usage.*` token counts are estimates too, not billed figures.
 */
export const GEN_AI_COST_SOURCE_VALUE_ESTIMATE = 'estimate' as const;

export const EVALUATION_SOURCES = ['evaluator', 'feedback', 'judge'] as const;
export type EvaluationSource = (typeof EVALUATION_SOURCES)[number];
/** One `gen_ai.evaluation.result` event: a score, or (no score) a judge error with its reason. */
export interface EvaluationEvent {
  readonly name: string;
  readonly score?: number | undefined;
  readonly label?: string | undefined;
  readonly explanation?: string | undefined;
  readonly source?: EvaluationSource | undefined;
  /** The evaluated call's `gen_ai.response.id` (how late scores find their span). */
  readonly responseId?: string | undefined;
}

/**
 * The attributes of a `gen_ai.evaluation.result` event, as the instrumentation's evaluators,
 * judges and feedback and the router's shadow verdicts write them. Label and explanation are kept
 * only when they are strings (app evaluators' results are checked at run time, not by types).
 */
export function evaluationEventAttributes(event: EvaluationEvent): Record<string, string | number> {
  const attributes: Record<string, string | number> = {
    [ATTR_GEN_AI_EVALUATION_NAME]: event.name,
  };
  if (event.score !== undefined) attributes[ATTR_GEN_AI_EVALUATION_SCORE_VALUE] = event.score;
  if (event.source !== undefined) attributes[ATTR_MODELMAXX_EVALUATION_SOURCE] = event.source;
  if (typeof event.label === 'string') attributes[ATTR_GEN_AI_EVALUATION_SCORE_LABEL] = event.label;
  if (typeof event.explanation === 'string') {
    attributes[ATTR_GEN_AI_EVALUATION_EXPLANATION] = event.explanation;
  }
  if (event.responseId !== undefined) attributes[ATTR_GEN_AI_RESPONSE_ID] = event.responseId;
  return attributes;
}

/**
 * `llm_calls.CostSource`: `span` (the span's own cost: ours, or another instrumentation's), `provider`
 * (the span's cost with `gen_ai.usage.cost.source` = `provider`), `estimate` (the span's cost
 * with `gen_ai.usage.cost.source` = `estimate`: not billed figures), `catalog` (priced from
 * `llm_prices`), `unknown` (no cost).
 */
export const COST_SOURCES = ['span', 'provider', 'estimate', 'catalog', 'unknown'] as const;
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

// --- attribute mappings ---------------------------------------------------------
/** Token counts of one call (the shape of `TokenUsage` in `@modelmaxx/pricing`). */
export interface UsageCounts {
  readonly inputTokens?: number | undefined;
  readonly outputTokens?: number | undefined;
  readonly cacheReadTokens?: number | undefined;
  readonly cacheWriteTokens?: number | undefined;
  readonly reasoningTokens?: number | undefined;
}

/** Puts the known token counts on `target` as `gen_ai.usage.*` attributes. */
export function setUsageAttributes(target: Record<string, unknown>, usage: UsageCounts): void {
  if (usage.inputTokens !== undefined) target[ATTR_GEN_AI_USAGE_INPUT_TOKENS] = usage.inputTokens;
  if (usage.outputTokens !== undefined) {
    target[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] = usage.outputTokens;
  }
  if (usage.cacheReadTokens !== undefined) {
    target[ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cacheReadTokens;
  }
  if (usage.cacheWriteTokens !== undefined) {
    target[ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cacheWriteTokens;
  }
  if (usage.reasoningTokens !== undefined) {
    target[ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoningTokens;
  }
}

/** A priced call (the shape of a known `CostResult` from `@modelmaxx/pricing`). */
export interface CatalogCost {
  readonly amount: number;
  readonly model: string;
  readonly version: string;
  readonly breakdown: {
    readonly input: number;
    readonly cacheRead: number;
    readonly cacheWrite: number;
    readonly output: number;
    readonly reasoning: number;
  };
}

/**
 * Puts a catalog-priced cost on `target`: `gen_ai.usage.cost.*` (USD, source `local`), the
 * breakdown (input and output always; cache and reasoning parts when non-zero) and the
 * `modelmaxx.pricing.*` model and version. No `modelmaxx.cost.usd`: the amount is already USD.
 */
export function setCatalogCostAttributes(target: Record<string, unknown>, cost: CatalogCost): void {
  target[ATTR_GEN_AI_USAGE_COST_AMOUNT] = cost.amount;
  target[ATTR_GEN_AI_USAGE_COST_CURRENCY] = GEN_AI_COST_CURRENCY_VALUE_USD;
  target[ATTR_GEN_AI_USAGE_COST_SOURCE] = GEN_AI_COST_SOURCE_VALUE_LOCAL;
  const { breakdown } = cost;
  target[ATTR_MODELMAXX_COST_INPUT_USD] = breakdown.input;
  if (breakdown.cacheRead !== 0) target[ATTR_MODELMAXX_COST_CACHE_READ_USD] = breakdown.cacheRead;
  if (breakdown.cacheWrite !== 0) {
    target[ATTR_MODELMAXX_COST_CACHE_WRITE_USD] = breakdown.cacheWrite;
  }
  target[ATTR_MODELMAXX_COST_OUTPUT_USD] = breakdown.output;
  if (breakdown.reasoning !== 0) target[ATTR_MODELMAXX_COST_REASONING_USD] = breakdown.reasoning;
  target[ATTR_MODELMAXX_PRICING_MODEL] = cost.model;
  target[ATTR_MODELMAXX_PRICING_VERSION] = cost.version;
}

/**
 * The judge prompt contract that `@modelmaxx/instrument`'s judges and `@modelmaxx/router`'s
 * shadow comparisons both write (and `@modelmaxx/llm-sim` answers): the user turn opens with
 * `modelmaxx-judge/v1 <mode>` and holds the rubric, the question and the answer(s) in `<tag>`
 * sections.
 */
export const JUDGE_PROMPT_MARKER = 'modelmaxx-judge/v1';
export const DEFAULT_JUDGE_RUBRIC =
  'The answer is correct, complete and responsive to the question.';

/** A pairwise verdict as OpenAI strict structured output (every property required). */
export const PAIRWISE_VERDICT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['winner', 'explanation'],
  properties: {
    winner: { type: 'string', enum: ['A', 'B', 'tie'] },
    explanation: { type: 'string', description: 'One or two sentences: why.' },
  },
} as const;

const JUDGE_SECTION_CLOSE = /<\/(rubric|question|answer|answer_a|answer_b)>/gi;

/** One `<tag>` section of a judge prompt: the text capped at `maxChars`, unable to close a section early. */
export function judgePromptSection(tag: string, text: string, maxChars: number): string {
  const capped = text.length > maxChars ? `${text.slice(0, maxChars)} [...]` : text;
  const escaped = capped.replace(JUDGE_SECTION_CLOSE, (_match, name: string) => `<\\/${name}>`);
  return `<${tag}>\n${escaped}\n</${tag}>`;
}

// --- Validation messages ------------------------------------------------------

/** One validation problem: zod's issue shape, read structurally so this module imports nothing. */
export interface ValidationIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

export interface FormatIssuesOptions {
  /** What a problem with the whole value is called (empty path); default `(root)`, `''` for none. */
  readonly root?: string;
  /** Prepended to every path (e.g. the name of the field the value came from). */
  readonly prefix?: string;
  /** Renders a path instead of `a.b.0` (e.g. a CLI names its flags). */
  readonly label?: (path: readonly PropertyKey[]) => string;
  /** Report at most this many problems. */
  readonly limit?: number;
  readonly separator?: string;
}

/**
 * Every validation problem in one line, `path: message` each, as the collector, the router, the
 * gateway and the CLI report bad input: `resourceSpans.0.scopeSpans: expected array; …`.
 */
export function formatIssues(
  issues: readonly ValidationIssue[],
  options: FormatIssuesOptions = {},
): string {
  const { root = '(root)', prefix = '', label, limit = issues.length, separator = '; ' } = options;
  return issues
    .slice(0, limit)
    .map((issue) => {
      const path =
        label?.(issue.path) ??
        [prefix, ...issue.path.map(String)].filter((part) => part !== '').join('.');
      if (path !== '') return `${path}: ${issue.message}`;
      return root === '' ? issue.message : `${root}: ${issue.message}`;
    })
    .join(separator);
}
