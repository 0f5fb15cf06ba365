import type { SpanContext, TracerProvider } from '@opentelemetry/api';
import type { PriceCatalog } from '@modelmaxx/pricing';

/** Token counts of one call. `inputTokens` includes cached tokens; `outputTokens` includes reasoning tokens. */
export interface TokenUsage {
  inputTokens?: number;
  outputTokens?: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
  reasoningTokens?: number;
}

/** A tool call the model asked for. `arguments` is the raw JSON string (OpenAI) or the parsed object (Anthropic). */
export interface ToolCallSummary {
  id?: string;
  name?: string;
  arguments: unknown;
}

/** A message part in the GenAI semantic-convention (v1.41) shape. */
export interface MessagePart {
  type: string;
  [key: string]: unknown;
}

/** A chat message in the GenAI semantic-convention (v1.41) shape, as written to `gen_ai.input.messages` / `gen_ai.output.messages`. */
export interface ChatMessage {
  role: string;
  parts: MessagePart[];
  finish_reason?: string;
  name?: string;
}

export type ContentKind = 'input' | 'output' | 'system';

/** Rewrites captured messages before they go on a span (drop PII, truncate). Return the messages to record. */
export type Redactor = (messages: ChatMessage[], info: { kind: ContentKind }) => ChatMessage[];

/** One score about one LLM response. `score` 1 = pass, 0 = fail, anything in between allowed. */
export interface EvaluationResult {
  name: string;
  score: number;
  label?: string;
  explanation?: string;
}

/** What an evaluator sees about a finished call. */
export interface EvaluatorCall {
  provider: string;
  operation: string;
  /** The request body as the app passed it. */
  request: unknown;
  /** The SDK's parsed response (non-streaming calls), or `undefined` for streams. */
  response: unknown;
  stream: boolean;
  requestModel?: string;
  responseModel?: string;
  responseId?: string;
  /** Text of the (first choice's) output, '' when there is none. */
  outputText: string;
  finishReasons: string[];
  toolCalls: ToolCallSummary[];
  usage?: TokenUsage;
  /** The call's `modelmaxx.task` / `modelmaxx.feature` (app context), when it has them. */
  task?: string;
  feature?: string;
  /** The LLM call's span, for evaluators that emit their own telemetry. */
  spanContext: SpanContext;
}

export type Evaluator = (
  call: EvaluatorCall,
) =>
  | EvaluationResult
  | EvaluationResult[]
  | undefined
  | void
  | Promise<EvaluationResult | EvaluationResult[] | undefined | void>;

/** App context recorded on LLM spans (`modelmaxx.task`, `modelmaxx.feature`, `enduser.id`, `gen_ai.conversation.id`). */
export interface LlmContextAttributes {
  task?: string;
  feature?: string;
  userId?: string;
  conversationId?: string;
}

export interface InstrumentConfig {
  /** Tracer provider for our spans; default: the globally registered one. */
  tracerProvider?: TracerProvider;
  /** Record `gen_ai.input.messages` / `gen_ai.output.messages`; default: env `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`. */
  captureMessageContent?: boolean;
  /** Applied to captured messages before they are recorded. */
  redact?: Redactor;
  /** User evaluators, run after every successful call. */
  evaluators?: readonly Evaluator[];
  /** Run the built-in evaluators (finish length, empty output, refusal, invalid JSON, invalid tool arguments); default true. */
  builtinEvaluators?: boolean;
  /** Price catalog from `@modelmaxx/pricing` (`loadCatalog().catalog`); default: the built-in catalog plus `MODELMAXX_PRICES`. */
  catalog?: PriceCatalog;
}

export interface FeedbackInput {
  /** `gen_ai.response.id` of the evaluated response. */
  responseId?: string;
  /** The evaluated span (or its context). */
  span?: { spanContext(): SpanContext } | SpanContext;
  name: string;
  score: number;
  label?: string;
  comment?: string;
}
