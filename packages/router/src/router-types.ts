/**
 * The routed client's public shapes: the options of `createRouter`, the `Router` it returns, the
 * SDK client shapes it calls, and what shadow comparisons report.
 */
import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';
import type { Tracer } from '@opentelemetry/api';
import type { WeightTable } from './decision.js';
import type { Decision, LabelledExample, RoutingEngine } from './engine.js';
import type { Embedder } from './features.js';
import type { Policy, PolicyInput } from './policy.js';
import type { RandomSource } from './random.js';
import type { PairwiseJudge, ShadowEstimate, ShadowMonitor } from './shadow.js';

export type ChatParams = OpenAI.Chat.ChatCompletionCreateParams;
export type ChatCompletion = OpenAI.Chat.ChatCompletion;
export type ChatChunk = OpenAI.Chat.ChatCompletionChunk;
/** What one routed call returns: a completion, or a stream of chunks. */
export type ChatResult = ChatCompletion | AsyncIterable<ChatChunk>;

/** One finished shadow comparison (`createRouter({ onShadow })`). */
export interface ShadowResult {
  readonly policy: string;
  readonly classKey: string;
  readonly model: string;
  readonly referenceModel: string;
  /** The verdict's score for the routed answer (1 win, 0.5 tie, 0 loss); undefined on error. */
  readonly score?: number;
  readonly label: string;
  readonly error?: string;
  /** USD of the reference call and of judging. */
  readonly shadowCostUsd: number;
  readonly judgeCostUsd: number;
  readonly responseId?: string;
  readonly traceId: string;
  /** The reference answered the app and `model` was called in the shadow (`counterfactual`). */
  readonly counterfactual?: boolean;
}

/** What the shadow comparisons did so far (`router.shadows()`). */
export interface ShadowStats {
  readonly referenceModel: string;
  /** Routed calls that could be shadowed, once per cheaper model (also when the reference answered). */
  offered: number;
  notSampled: number;
  /** Dropped because the queue was full. */
  dropped: number;
  /** Not shadowed because the hourly or daily cap was reached. */
  overBudget: number;
  shadowCalls: number;
  /** Counterfactual shadows: a cheaper candidate called for a call the reference answered. */
  candidateCalls: number;
  /** Shadows judged against a kept reference answer to the same request (no reference call). */
  referencesReused: number;
  shadowErrors: number;
  judged: number;
  judgeErrors: number;
  /** USD of the shadow calls (reference and counterfactual) and of the judge calls. */
  shadowUsd: number;
  judgeUsd: number;
  queued: number;
  running: number;
  /** Per class and routed model: the difference, its 95% half-width and the sampling state. */
  estimates: ShadowEstimate[];
}

/** The part of an openai client the router uses. */
export interface OpenAILike {
  readonly chat: {
    readonly completions: {
      create(params: ChatParams, options?: OpenAI.RequestOptions): PromiseLike<unknown>;
    };
  };
}

/** The part of an anthropic client the router uses. */
export interface AnthropicLike {
  readonly messages: {
    create(
      params: Anthropic.MessageCreateParams,
      options?: Anthropic.RequestOptions,
    ): PromiseLike<unknown>;
  };
}

export interface RouterOptions {
  readonly policy: Policy | PolicyInput;
  /**
   * Clients by name: a candidate uses `clients[candidate.client]`, else `clients[candidate.provider]`
   * (`openai` / `anthropic`). Pass the app's own SDK instances.
   */
  readonly clients: Readonly<Record<string, OpenAILike | AnthropicLike>>;
  /** Where weights come from: a `WeightUpdater` (its `current`), a table, or a function. */
  readonly weights?: { readonly current: WeightTable } | WeightTable | (() => WeightTable);
  readonly random?: RandomSource;
  readonly now?: () => number;
  readonly tracer?: Tracer;
  /**
   * Cascade check (with `policy.cascade.voters`): return false to escalate even when the
   * voters agree, e.g. when the answer fails to parse or a unit test fails.
   */
  readonly check?: (completion: ChatCompletion, params: ChatParams) => boolean;
  /**
   * Scores a completed (non-streamed) call at once (0..1), so the engine learns from it
   * immediately: a check, a unit test, or a recorded outcome. Without it the engine learns
   * calls, costs and errors only (quality comes from the collector's stats via `weights`).
   */
  readonly score?: (
    completion: ChatCompletion,
    params: ChatParams,
    model: string,
  ) => number | undefined;
  /** Cost of a completed call in USD (default: its usage × the candidate's price or the catalog). */
  readonly cost?: (
    completion: ChatCompletion,
    params: ChatParams,
    model: string,
  ) => number | undefined;
  /**
   * Embedder for per-request routing (`predictor.enabled`): texts in, vectors out, e.g. an
   * embeddings model through the observed openai client. Cached by content hash.
   */
  readonly embed?: Embedder;
  /**
   * The pairwise judge of shadow comparisons (`policy.shadow`): e.g. `pairwiseJudge({ client,
   * model })` from this package, or any function with the same contract. Without it the policy's
   * shadow settings are ignored (one warning).
   */
  readonly judge?: PairwiseJudge;
  /** Called with each finished shadow comparison (after it is recorded and learned from). */
  readonly onShadow?: (result: ShadowResult) => void;
  /**
   * The shadow stop rule's state, shared by routers of the same policy in one process (e.g. one
   * per service): their verdicts count together toward `targetHalfWidth` (default: its own).
   */
  readonly shadowMonitor?: ShadowMonitor;
}

/** Per-call router options, given as the second argument next to the SDK's request options. */
export interface RouteRequestOptions extends OpenAI.RequestOptions {
  /** The app's task label (`modelmaxx.task`), used as the routing class. */
  readonly task?: string;
}

export interface RouteAttempt {
  readonly model: string;
  readonly outcome: 'ok' | 'retryable' | 'failed';
  readonly error?: string;
}

export interface Router {
  readonly policy: Policy;
  /** The routing engine (decisions, weight table, explanations). */
  readonly engine: RoutingEngine;
  readonly chat: {
    readonly completions: {
      create(
        params: ChatParams & { stream: true },
        options?: RouteRequestOptions,
      ): Promise<AsyncIterable<ChatChunk>>;
      create(
        params: ChatParams & { stream?: false | null },
        options?: RouteRequestOptions,
      ): Promise<ChatCompletion>;
      create(
        params: ChatParams,
        options?: RouteRequestOptions,
      ): Promise<ChatCompletion | AsyncIterable<ChatChunk>>;
    };
  };
  /**
   * Learns a labelled history (`engine.fit`, e.g. `labelledExamples(loadRecorded(files),
   * policy)`) on this router's clock: the examples keep their spacing, the last one is stamped
   * `now()`. (`labelledExamples` stamps from 0, the replay's clock; given to `router.engine.fit`
   * directly, that history is decades old to a router on `Date.now()` and decays away at once.)
   */
  fit(examples: Iterable<LabelledExample>): void;
  /**
   * The engine's decision behind a completion (or stream) this router returned, for
   * `router.engine.explain(decision)`; undefined for a pinned model or an over-budget pick.
   */
  decisionOf(result: object): Decision | undefined;
  /** Models cooling down now, with the time (ms) they become available again. */
  cooldowns(): ReadonlyMap<string, number>;
  /**
   * USD spent through this router in the current budget period (non-streamed calls with
   * usage; priced by the candidate's `price` override, else `@modelmaxx/pricing`).
   */
  spend(): { readonly periodStart: number; readonly spentUsd: number };
  /** The model routed calls are measured against (`policy.shadow.referenceModel` or the dearest). */
  readonly referenceModel: string;
  /** Shadow comparisons so far. */
  shadows(): ShadowStats;
  /** Resolves when no shadow comparison is queued or running (tests, graceful shutdown). */
  idle(): Promise<void>;
}
