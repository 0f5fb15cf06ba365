/**
 * The attributes the routed client writes: on the `route` span (policy, class, the model that
 * answered, why, how many attempts) and on each call's context (read by the instrumentation
 * onto the LLM call's own span).
 */
import { SpanStatusCode } from '@opentelemetry/api';
import type { Attributes, Span } from '@opentelemetry/api';
import {
  ATTR_MODELMAXX_ROUTE_ATTEMPT,
  ATTR_MODELMAXX_ROUTE_CLASS,
  ATTR_MODELMAXX_ROUTE_MODEL,
  ATTR_MODELMAXX_ROUTE_POLICY,
  ATTR_MODELMAXX_ROUTE_REASON,
  ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL,
  ATTR_MODELMAXX_ROUTE_WEIGHT,
} from '@modelmaxx/semconv';

/** What every attribute set of one routed request shares. */
export interface RouteLabels {
  readonly policy: string;
  readonly classKey: string;
  readonly referenceModel: string;
}

/** The error type attribute of a failure (its class name). */
const errorType = (error: unknown) => (error instanceof Error ? error.constructor.name : 'Error');

/** The `route` span's attributes at its start. */
export function labelRouteSpan(span: Span, labels: RouteLabels): void {
  span.setAttribute(ATTR_MODELMAXX_ROUTE_POLICY, labels.policy);
  span.setAttribute(ATTR_MODELMAXX_ROUTE_CLASS, labels.classKey);
  span.setAttribute(ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL, labels.referenceModel);
}

/** The route attributes of one call: a fallback attempt (weight and attempt number) or a voter. */
export function callAttributes(
  labels: RouteLabels,
  call: { model: string; reason: string; weight?: number; attempt?: number },
): Attributes {
  return {
    [ATTR_MODELMAXX_ROUTE_POLICY]: labels.policy,
    [ATTR_MODELMAXX_ROUTE_CLASS]: labels.classKey,
    [ATTR_MODELMAXX_ROUTE_MODEL]: call.model,
    ...(call.weight === undefined ? {} : { [ATTR_MODELMAXX_ROUTE_WEIGHT]: call.weight }),
    [ATTR_MODELMAXX_ROUTE_REASON]: call.reason,
    ...(call.attempt === undefined ? {} : { [ATTR_MODELMAXX_ROUTE_ATTEMPT]: call.attempt }),
    [ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL]: labels.referenceModel,
  };
}

/** Ends the `route` span of an answered request. */
export function endRouted(
  span: Span,
  routed: { model: string; weight: number; reason: string; attempts: number },
): void {
  span.setAttribute(ATTR_MODELMAXX_ROUTE_MODEL, routed.model);
  span.setAttribute(ATTR_MODELMAXX_ROUTE_WEIGHT, routed.weight);
  span.setAttribute(ATTR_MODELMAXX_ROUTE_REASON, routed.reason);
  span.setAttribute(ATTR_MODELMAXX_ROUTE_ATTEMPT, routed.attempts);
  span.end();
}

/** Ends the `route` span of a request that failed. */
export function endFailed(span: Span, error: unknown, attempts: number): void {
  span.setAttribute(ATTR_MODELMAXX_ROUTE_ATTEMPT, attempts);
  span.setAttribute('error.type', errorType(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
  span.end();
}

/** An event on the `route` span for one failed attempt (the request may still be answered). */
export function attemptFailed(span: Span, model: string, attempt: number, error: unknown): void {
  span.addEvent('route.attempt_failed', {
    [ATTR_MODELMAXX_ROUTE_MODEL]: model,
    [ATTR_MODELMAXX_ROUTE_ATTEMPT]: attempt,
    'error.type': errorType(error),
  });
}
