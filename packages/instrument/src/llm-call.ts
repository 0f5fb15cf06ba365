import { SpanKind, SpanStatusCode, context, diag } from '@opentelemetry/api';
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
import {
  ATTR_ENDUSER_ID,
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_CONVERSATION_ID,
  ATTR_GEN_AI_INPUT_MESSAGES,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_OUTPUT_MESSAGES,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
  ATTR_GEN_AI_SYSTEM_INSTRUCTIONS,
  ATTR_MODELMAXX_EVALUATION_ROLE,
  ATTR_MODELMAXX_FEATURE,
  ATTR_MODELMAXX_TASK,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  EVENT_GEN_AI_EVALUATION_RESULT,
  setUsageAttributes,
} from '@modelmaxx/semconv';
import type { ResolvedConfig } from './config.js';
import { getLlmContext, getRouteAttributes } from './context.js';
import { addCostAttributes } from './cost.js';
import {
  builtinEvaluations,
  emitLateEvaluation,
  evaluationAttributes,
  normalizeResults,
  spanEvaluationAttributes,
} from './evaluators.js';
import { rememberResponse } from './feedback.js';
import type { ApiAdapter, ResponseSummary } from './internal-types.js';
import type {
  ChatMessage,
  ContentKind,
  EvaluationResult,
  EvaluatorCall,
  LlmContextAttributes,
} from './types.js';
import { errorType, guard, isThenable } from './util.js';
import type { Dict } from './util.js';

export function serverAttributes(baseURL: unknown): Attributes {
  if (typeof baseURL !== 'string') return {};
  try {
    const url = new URL(baseURL);
    const port =
      url.port !== ''
        ? Number(url.port)
        : url.protocol === 'https:'
          ? 443
          : url.protocol === 'http:'
            ? 80
            : undefined;
    const attributes: Attributes = { [ATTR_SERVER_ADDRESS]: url.hostname.replace(/^\[|\]$/g, '') };
    if (port !== undefined) attributes[ATTR_SERVER_PORT] = port;
    return attributes;
  } catch {
    return {};
  }
}

const SERVER_CACHE_LIMIT = 64;
/** `serverAttributes` by base URL: a client's base URL rarely changes, and parsing a URL is not free. */
const serverCache = new Map<string, Attributes>();

function cachedServerAttributes(baseURL: unknown): Attributes | undefined {
  if (typeof baseURL !== 'string') return undefined;
  let attributes = serverCache.get(baseURL);
  if (attributes === undefined) {
    attributes = serverAttributes(baseURL);
    if (serverCache.size >= SERVER_CACHE_LIMIT) serverCache.clear();
    serverCache.set(baseURL, attributes);
  }
  return attributes;
}

/** Copies the own enumerable properties of `source` into `target` (as a spread would). */
function assignAll(target: Attributes, source: Attributes): void {
  for (const key of Object.keys(source)) target[key] = source[key];
}

/** App context: the per-call values win over the context's (both hold only defined strings). */
function addContextAttributes(
  attributes: Attributes,
  app: LlmContextAttributes,
  perCall: LlmContextAttributes,
): void {
  const task = perCall.task ?? app.task;
  const feature = perCall.feature ?? app.feature;
  const userId = perCall.userId ?? app.userId;
  const conversationId = perCall.conversationId ?? app.conversationId;
  if (task !== undefined) attributes[ATTR_MODELMAXX_TASK] = task;
  if (feature !== undefined) attributes[ATTR_MODELMAXX_FEATURE] = feature;
  if (userId !== undefined) attributes[ATTR_ENDUSER_ID] = userId;
  if (conversationId !== undefined) attributes[ATTR_GEN_AI_CONVERSATION_ID] = conversationId;
}

export interface StartCallInput {
  adapter: ApiAdapter;
  config: ResolvedConfig;
  /** The body the app passed (before we added anything). */
  body: Dict;
  baseURL: unknown;
  perCall: LlmContextAttributes;
}

const EVALUATE: { evaluate: boolean } = { evaluate: true };

/** One LLM call: its span, from the public SDK call until the response (or the stream) ends. */
export class LlmCall {
  readonly span: Span;
  readonly adapter: ApiAdapter;
  readonly config: ResolvedConfig;
  readonly body: Dict;
  readonly stream: boolean;
  private readonly requestModel: string | undefined;
  /** The context the call was made in (the span's parent). */
  readonly parentContext: Context;
  /** Start attributes, kept for late scores (feedback, async evaluators) to name this call. */
  private readonly startAttributes: Attributes;
  /** For a stream's time to first chunk (`performance.now()`); 0 for other calls. */
  private readonly startedAt: number;
  private firstChunkAt: number | undefined;
  private ended = false;

  constructor(input: StartCallInput) {
    const { adapter, config, body } = input;
    this.adapter = adapter;
    this.config = config;
    this.body = body;
    this.stream = adapter.isStream(body);
    this.startedAt = this.stream ? performance.now() : 0;
    const requestModel = adapter.requestModel(body);
    this.requestModel = requestModel;
    // One object, filled in the order a spread of (operation, provider, request, server, route,
    // app context) would give; requestAttributes returns a fresh object per call.
    const attributes: Attributes = adapter.requestAttributes(body);
    attributes[ATTR_GEN_AI_OPERATION_NAME] = adapter.operation;
    attributes[ATTR_GEN_AI_PROVIDER_NAME] = adapter.provider;
    const server = cachedServerAttributes(input.baseURL);
    if (server !== undefined) assignAll(attributes, server);
    const active = context.active();
    this.parentContext = active;
    assignAll(attributes, getRouteAttributes(active));
    addContextAttributes(attributes, getLlmContext(active), input.perCall);
    const name =
      requestModel !== undefined ? `${adapter.operation} ${requestModel}` : adapter.operation;
    this.startAttributes = attributes;
    this.span = config.tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, active);
    if (config.captureMessageContent && this.span.isRecording()) {
      try {
        this.captureInput();
      } catch (error) {
        diag.error('modelmaxx: capturing input messages failed', error);
      }
    }
  }

  private captureInput(): void {
    const content = this.adapter.inputContent(this.body);
    if (content === undefined) return;
    this.setContent(ATTR_GEN_AI_INPUT_MESSAGES, content.messages, 'input');
    if (content.system !== undefined && content.system.length > 0) {
      const system = this.redacted([{ role: 'system', parts: content.system }], 'system');
      if (system !== undefined) {
        this.span.setAttribute(
          ATTR_GEN_AI_SYSTEM_INSTRUCTIONS,
          JSON.stringify(system.flatMap((message) => message.parts)),
        );
      }
    }
  }

  get tracer(): Tracer {
    return this.config.tracer;
  }

  private redacted(messages: ChatMessage[], kind: ContentKind): ChatMessage[] | undefined {
    const redact = this.config.redact;
    if (redact === undefined) return messages;
    try {
      const result = redact(messages, { kind });
      return Array.isArray(result) ? result : undefined;
    } catch (error) {
      // Content whose redaction failed is never recorded.
      diag.error('modelmaxx: redact() threw; message content not recorded', error);
      return undefined;
    }
  }

  private setContent(attribute: string, messages: ChatMessage[], kind: ContentKind): void {
    const redacted = this.redacted(messages, kind);
    if (redacted !== undefined) this.span.setAttribute(attribute, JSON.stringify(redacted));
  }

  markChunk(): void {
    if (this.stream) this.firstChunkAt ??= performance.now();
  }

  /** Success: records the response, cost and evaluations, then ends the span. */
  succeed(
    summary: ResponseSummary,
    rawResponse: unknown,
    options: { evaluate: boolean } = EVALUATE,
  ): void {
    if (this.ended) return;
    this.ended = true;
    try {
      this.recordSummary(summary);
    } catch (error) {
      diag.error('modelmaxx: recording the response failed', error);
    }
    if (options.evaluate) {
      try {
        this.evaluate(summary, rawResponse);
      } catch (error) {
        diag.error('modelmaxx: running evaluators failed', error);
      }
    }
    this.endSpan();
  }

  /** Failure: `error.type` = the error's class name, status ERROR. The error itself is untouched. */
  fail(error: unknown, summary?: ResponseSummary): void {
    if (this.ended) return;
    this.ended = true;
    guard('recording the error', () => {
      if (summary !== undefined) this.recordSummary(summary);
      this.span.setAttribute(ATTR_ERROR_TYPE, errorType(error));
      const message = error instanceof Error ? error.message : undefined;
      this.span.setStatus(
        message !== undefined
          ? { code: SpanStatusCode.ERROR, message }
          : { code: SpanStatusCode.ERROR },
      );
    });
    this.endSpan();
  }

  /** The app read the raw `Response` (`.asResponse()`) and no body will be parsed: end with what we know. */
  endWithoutBody(): void {
    if (this.ended) return;
    this.ended = true;
    this.endSpan();
  }

  isEnded(): boolean {
    return this.ended;
  }

  private endSpan(): void {
    try {
      this.span.end();
    } catch (error) {
      diag.error('modelmaxx: ending the span failed', error);
    }
  }

  private recordSummary(summary: ResponseSummary): void {
    const span = this.span;
    const attributes: Attributes = {};
    if (summary.model !== undefined) attributes[ATTR_GEN_AI_RESPONSE_MODEL] = summary.model;
    if (summary.id !== undefined) {
      attributes[ATTR_GEN_AI_RESPONSE_ID] = summary.id;
      rememberResponse(summary.id, span.spanContext(), this.config.tracer, this.startAttributes);
    }
    if (summary.finishReasons.length > 0)
      attributes[ATTR_GEN_AI_RESPONSE_FINISH_REASONS] = summary.finishReasons;
    const usage = summary.usage;
    if (usage !== undefined) setUsageAttributes(attributes, usage);
    if (this.stream && this.firstChunkAt !== undefined) {
      attributes[ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] =
        (this.firstChunkAt - this.startedAt) / 1000;
    }
    // A chat call without an output count (a stream that stopped early) has no known cost.
    const priced = usage?.outputTokens !== undefined || this.adapter.operation !== 'chat';
    try {
      addCostAttributes(
        attributes,
        this.adapter.provider,
        summary.model,
        this.requestModel,
        priced ? usage : undefined,
        this.config.catalog,
      );
    } catch (error) {
      diag.error('modelmaxx: computing the cost failed', error);
    }
    span.setAttributes(attributes);
    if (this.config.captureMessageContent && summary.outputMessages.length > 0) {
      this.setContent(ATTR_GEN_AI_OUTPUT_MESSAGES, summary.outputMessages, 'output');
    }
  }

  private evaluate(summary: ResponseSummary, rawResponse: unknown): void {
    // Evaluation work (a judge's own call) is not evaluated: its checks would count as the app's.
    if (this.startAttributes[ATTR_MODELMAXX_EVALUATION_ROLE] !== undefined) return;
    const responseId = summary.id;
    if (this.config.builtinEvaluators) {
      let results: readonly EvaluationResult[] | undefined;
      try {
        results = builtinEvaluations(summary, {
          operation: this.adapter.operation,
          jsonRequested: this.adapter.jsonRequested(this.body),
          refusal: summary.refusal,
        });
      } catch (error) {
        diag.error('modelmaxx: built-in evaluators failed', error);
      }
      if (results !== undefined) {
        for (const result of results) this.addEvaluation(result);
      }
    }
    const evaluators = this.config.evaluators;
    if (evaluators.length === 0) return;
    const evaluatorCall: EvaluatorCall = {
      provider: this.adapter.provider,
      operation: this.adapter.operation,
      request: this.body,
      response: rawResponse ?? summary.final,
      stream: this.stream,
      outputText: summary.outputText,
      finishReasons: summary.finishReasons,
      toolCalls: summary.toolCalls,
      spanContext: this.span.spanContext(),
    };
    if (this.requestModel !== undefined) evaluatorCall.requestModel = this.requestModel;
    if (summary.model !== undefined) evaluatorCall.responseModel = summary.model;
    if (responseId !== undefined) evaluatorCall.responseId = responseId;
    if (summary.usage !== undefined) evaluatorCall.usage = summary.usage;
    const task = this.startAttributes[ATTR_MODELMAXX_TASK];
    if (typeof task === 'string') evaluatorCall.task = task;
    const feature = this.startAttributes[ATTR_MODELMAXX_FEATURE];
    if (typeof feature === 'string') evaluatorCall.feature = feature;
    for (const evaluator of evaluators) {
      let returned: unknown;
      try {
        returned = evaluator(evaluatorCall);
      } catch (error) {
        diag.error('modelmaxx: an evaluator threw; its result is lost', error);
        continue;
      }
      if (isThenable(returned)) {
        // Async evaluators never delay the app; their results land after the span has ended,
        // on a short child span `evaluate <name>` linked to it.
        const parent = this.span.spanContext();
        Promise.resolve(returned).then(
          (value) => {
            for (const result of normalizeResults(value)) {
              guard('recording a late evaluation', () =>
                emitLateEvaluation(
                  this.config.tracer,
                  'evaluate',
                  parent,
                  evaluationAttributes(result, 'evaluator', responseId),
                  result.name,
                  this.startAttributes,
                ),
              );
            }
          },
          (error: unknown) =>
            diag.error('modelmaxx: an async evaluator failed; its result is lost', error),
        );
        continue;
      }
      for (const result of normalizeResults(returned)) this.addEvaluation(result);
    }
  }

  /**
   * An event on the evaluated span itself: no `gen_ai.response.id` (semconv recommends it to
   * correlate an evaluation when the span is not available; here the span carries it).
   */
  private addEvaluation(result: EvaluationResult): void {
    this.span.addEvent(EVENT_GEN_AI_EVALUATION_RESULT, spanEvaluationAttributes(result));
  }
}
