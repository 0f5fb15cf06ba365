import { diag } from '@opentelemetry/api';
import type { Attributes, Span, SpanContext, Tracer } from '@opentelemetry/api';
import { EVENT_GEN_AI_EVALUATION_RESULT } from '@modelmaxx/semconv';
import { resolveConfig } from './config.js';
import { emitLateEvaluation, evaluationAttributes } from './evaluators.js';
import { ResponseRegistry } from './response-registry.js';
import type { RememberedCall } from './response-registry.js';
import type { FeedbackInput } from './types.js';

/** Recent responses by `gen_ai.response.id` (their span context and identity, never the span or its content). */
const registry = new ResponseRegistry(10_000);

/** Remembers an ended LLM span by its response id, for `feedback({ responseId })`. */
export function rememberResponse(
  responseId: string,
  spanContext: SpanContext,
  tracer: Tracer,
  call?: Attributes,
): void {
  registry.remember(responseId, spanContext, tracer, call);
}

/** The remembered call with this response id (ambiguous ids included, marked). */
export function rememberedResponse(responseId: string): RememberedCall | undefined {
  return registry.get(responseId);
}

function spanContextOf(input: FeedbackInput['span']): SpanContext | undefined {
  if (input === undefined) return undefined;
  if (typeof (input as { spanContext?: unknown }).spanContext === 'function') {
    return (input as { spanContext(): SpanContext }).spanContext();
  }
  return input as SpanContext;
}

/**
 * Records a score that arrives later (thumbs up, a test verdict, a judge) as a
 * `gen_ai.evaluation.result` event with `modelmaxx.evaluation.source = feedback`.
 *
 * When `span` is a live, still recording span, the event goes on it. Otherwise (the usual case:
 * the evaluated span has ended and may already be exported) the event goes on a short span
 * `feedback <name>`, child of and linked to the evaluated span, which is found by `span` or by
 * `responseId` among the last 10,000 responses of this process. A `responseId` that more than
 * one call of this process got (providers or services reusing ids) needs `span` as well; without
 * it nothing is recorded (a warning says why). A `responseId` we do not know still yields a
 * `feedback <name>` span (no parent) with `gen_ai.response.id`, and a warning: the score is
 * stored unlinked (no model, so no figure counts it); `POST /v1/feedback` links by id.
 */
export function feedback(input: FeedbackInput): void {
  try {
    if (typeof input !== 'object' || input === null || typeof input.name !== 'string') {
      diag.warn('modelmaxx: feedback() needs at least { name, score }; ignored');
      return;
    }
    if (typeof input.score !== 'number' || !Number.isFinite(input.score)) {
      diag.warn('modelmaxx: feedback() score must be a finite number; ignored');
      return;
    }
    const explicit = spanContextOf(input.span);
    let registered = input.responseId !== undefined ? registry.get(input.responseId) : undefined;
    if (registered?.ambiguous === true) {
      if (explicit === undefined) {
        diag.warn(
          `modelmaxx: feedback() for response id ${input.responseId ?? ''}: more than one call of this process got this id (a provider or a second service reusing ids); pass span to say which call is scored. Not recorded.`,
        );
        return;
      }
      // The span says which call is meant; the remembered identity is the newest call's.
      if (registered.spanContext.spanId !== explicit.spanId) registered = undefined;
    } else if (
      registered === undefined &&
      explicit === undefined &&
      input.responseId !== undefined
    ) {
      diag.warn(
        `modelmaxx: feedback() for response id ${input.responseId}: not among the last ${registry.capacity} responses of this process; recorded without a link to the call (pass span, or POST /v1/feedback to the collector, which finds the call by id).`,
      );
    }
    const result: { name: string; score: number; label?: string; explanation?: string } = {
      name: input.name,
      score: input.score,
    };
    if (typeof input.label === 'string') result.label = input.label;
    if (typeof input.comment === 'string') result.explanation = input.comment;
    const attributes = evaluationAttributes(result, 'feedback', input.responseId);
    const target = explicit ?? registered?.spanContext;
    if (input.span !== undefined && typeof (input.span as Span).isRecording === 'function') {
      const span = input.span as Span;
      if (span.isRecording()) {
        span.addEvent(EVENT_GEN_AI_EVALUATION_RESULT, attributes);
        return;
      }
    }
    const tracer = registered?.tracer ?? resolveConfig(undefined).tracer;
    emitLateEvaluation(tracer, 'feedback', target, attributes, input.name, registered?.call);
  } catch (error) {
    diag.error('modelmaxx: feedback() failed', error);
  }
}
