import type { Attributes } from '@opentelemetry/api';
import type { ChatMessage, MessagePart, TokenUsage, ToolCallSummary } from './types.js';
import type { Dict } from './util.js';

/** What one response (or one finished stream) says, in provider-neutral form. */
export interface ResponseSummary {
  id?: string;
  model?: string;
  finishReasons: string[];
  usage?: TokenUsage;
  /** Text of the first choice / the whole output. */
  outputText: string;
  /** Refusal text or marker when the provider said so in a structured way. */
  refusal?: string;
  toolCalls: ToolCallSummary[];
  outputMessages: ChatMessage[];
  /** Set by streams whose final event carries the whole response (Responses API). */
  final?: unknown;
}

export interface StreamAccumulator {
  add(item: unknown): void;
  summary(): ResponseSummary;
}

export interface InputContent {
  messages: ChatMessage[];
  system?: MessagePart[];
}

/** One patched API (chat completions, responses, embeddings, anthropic messages). */
export interface ApiAdapter {
  provider: string;
  operation: string;
  /**
   * For streaming requests: a copy of `body` with what the instrumentation adds (stream usage),
   * and whether to hide the extra chunk. Not called for other requests.
   */
  prepare(body: Dict): { body: Dict; hideUsageChunk: boolean };
  requestModel(body: Dict): string | undefined;
  /** A fresh object per call (the caller adds to it). */
  requestAttributes(body: Dict): Attributes;
  isStream(body: Dict): boolean;
  jsonRequested(body: Dict): boolean;
  inputContent(body: Dict): InputContent | undefined;
  /**
   * `withContent` false (message content is not captured): `outputMessages` may be left empty.
   * Everything else is summarized alike.
   */
  summarize(response: unknown, withContent?: boolean): ResponseSummary;
  accumulator(): StreamAccumulator;
  /** Whether a stream item is the usage-only chunk the instrumentation asked for. */
  isUsageOnlyChunk?(item: unknown): boolean;
}
