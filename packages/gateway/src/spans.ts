/**
 * Span recording: the gateway's span recorder (./tracer.ts, a BatchSpanProcessor over the given
 * exporter, or one in a worker thread), a `route <policy>` span per routed request, and a CLIENT span per upstream attempt
 * with the attributes `@modelmaxx/instrument` records for an SDK call.
 */
import { randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import {
  ATTR_ENDUSER_ID,
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_MODELMAXX_FEATURE,
  ATTR_MODELMAXX_ROUTE_ATTEMPT,
  ATTR_MODELMAXX_ROUTE_CLASS,
  ATTR_MODELMAXX_ROUTE_MODEL,
  ATTR_MODELMAXX_ROUTE_POLICY,
  ATTR_MODELMAXX_ROUTE_REASON,
  ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL,
  ATTR_MODELMAXX_ROUTE_WEIGHT,
  ATTR_MODELMAXX_TASK,
} from '@modelmaxx/semconv';
import type { Principal } from './access/types.js';
import type { GatewayRequest } from './request.js';
import type { Target } from './targets.js';
import {
  ATTR_MODELMAXX_GATEWAY_APP,
  ATTR_MODELMAXX_GATEWAY_KEY_ID,
  ATTR_MODELMAXX_GATEWAY_TEAM,
  ATTR_MODELMAXX_GATEWAY_UPSTREAM,
  ATTR_MODELMAXX_GATEWAY_UPSTREAM_API,
  ATTR_MODELMAXX_GATEWAY_USER,
  requestAttributes,
} from './telemetry.js';
import { WorkerSpanProcessor } from './span-thread.js';
import type { SpanExporterInWorker } from './span-worker-types.js';
import { SpanRecorder } from './tracer.js';

/** The candidate an attempt goes to, as the router chose it. */
export interface Choice {
  readonly model: string;
  readonly weight: number;
  readonly reason: string;
}

/** Which policy and class a routed attempt belongs to. */
export interface RouteLabels {
  readonly policy: string;
  readonly classKey: string;
  /** The model routed calls are measured against (the savings ledger's reference). */
  readonly referenceModel: string;
}

const SCOPE_NAME = '@modelmaxx/gateway';

/**
 * The gateway's spans, batched to `exporter`; flushed and shut down through the processor. An
 * exporter given as a module (`SpanExporterInWorker`) runs in a thread of its own (./span-thread.ts),
 * so that serializing a batch never holds the event loop.
 */
export function createSpanRecorder(
  exporter: SpanExporter | SpanExporterInWorker,
  serviceName: string,
  onError: (message: string) => void,
  instanceId: string = randomUUID(),
): SpanRecorder {
  const processor =
    'export' in exporter
      ? new BatchSpanProcessor({
          exporter,
          // Small batches often: serializing a batch holds the event loop, and requests that
          // arrive meanwhile wait. At 500 req/s, batches of up to 32 every 50 ms (about 27 spans)
          // hold it 0.3-0.4 ms each (thread CPU, p99 2-3 ms on the loaded bench machine) where 128
          // every 200 ms (about 100) held it 1.8-2.4 ms (p99 7-18 ms), for no more export CPU in
          // all; and a quarter as many spans wait in the queue (alive when a scavenge runs).
          scheduledDelayMillis: 50,
          maxExportBatchSize: 32,
          maxQueueSize: 16_384,
        })
      : new WorkerSpanProcessor({
          exporter,
          serviceName,
          instanceId,
          scopeName: SCOPE_NAME,
          onError,
        });
  return new SpanRecorder(
    // service.instance.id: which gateway replica (a budget sync leaves its own spend out).
    resourceFromAttributes({ 'service.name': serviceName, 'service.instance.id': instanceId }),
    { name: SCOPE_NAME },
    processor,
  );
}

/** The attributes every attempt of a request shares: the request's and the caller's. */
export function requestSpanAttributes(request: GatewayRequest, principal: Principal): Attributes {
  const attributes = requestAttributes(request.wire, request.body, request.requested);
  attributes[ATTR_GEN_AI_OPERATION_NAME] = request.endpoint.operation;
  if (request.task !== undefined) attributes[ATTR_MODELMAXX_TASK] = request.task;
  if (request.feature !== undefined) attributes[ATTR_MODELMAXX_FEATURE] = request.feature;
  const user = request.endUser ?? principal.user;
  if (user !== undefined) attributes[ATTR_ENDUSER_ID] = user;
  // Who called (a gateway key's id and metadata, never the key): for spend per key and team.
  attributes[ATTR_MODELMAXX_GATEWAY_KEY_ID] = principal.keyId;
  if (principal.team !== undefined) attributes[ATTR_MODELMAXX_GATEWAY_TEAM] = principal.team;
  if (principal.app !== undefined) attributes[ATTR_MODELMAXX_GATEWAY_APP] = principal.app;
  // enduser.id is the app's end user first; a key's user is what user budgets charge.
  if (principal.user !== undefined) attributes[ATTR_MODELMAXX_GATEWAY_USER] = principal.user;
  return attributes;
}

/**
 * A request the access layer refused (budget or rate limit 429): an INTERNAL `gateway refused`
 * span (child of the app's `traceparent`) with who asked, `error.type` (`budget_exceeded` /
 * `rate_limited`), the budget or limit's name and the 429's message. No `gen_ai.request.model`:
 * no upstream was called, so it is no `llm_calls` row (the model asked for is
 * `modelmaxx.gateway.requested_model`).
 */
export function recordRefusal(
  tracer: SpanRecorder | undefined,
  parent: Context,
  request: GatewayRequest,
  principal: Principal,
  refusal: { type: string; message: string; limit: string | undefined },
): void {
  if (tracer === undefined) return;
  const attributes = requestSpanAttributes(request, principal);
  delete attributes[ATTR_GEN_AI_REQUEST_MODEL];
  attributes['modelmaxx.gateway.requested_model'] = request.requested;
  attributes[ATTR_ERROR_TYPE] = refusal.type;
  if (refusal.limit !== undefined) attributes['modelmaxx.gateway.refused_by'] = refusal.limit;
  const span = tracer.startSpan('gateway refused', SpanKind.INTERNAL, attributes, parent);
  span.setStatus({ code: SpanStatusCode.ERROR, message: refusal.message });
  span.end();
}

/** The router's choice for an attempt, as `modelmaxx.route.*` attributes. */
function routeChoice(choice: Choice, attempt: number): Attributes {
  return {
    [ATTR_MODELMAXX_ROUTE_MODEL]: choice.model,
    [ATTR_MODELMAXX_ROUTE_WEIGHT]: choice.weight,
    [ATTR_MODELMAXX_ROUTE_REASON]: choice.reason,
    [ATTR_MODELMAXX_ROUTE_ATTEMPT]: attempt,
  };
}

/** One upstream attempt's CLIENT span, and the `traceparent` the upstream gets. */
export function startAttemptSpan(
  tracer: SpanRecorder | undefined,
  parent: Context,
  base: Attributes,
  target: Target,
  operation: string,
  route: { labels: RouteLabels; choice: Choice; attempt: number } | undefined,
): { span: Span | undefined; traceparent: string | undefined } {
  if (tracer === undefined) return { span: undefined, traceparent: undefined };
  // As the instrumentation records an SDK call: the model the upstream is asked for.
  const attributes: Attributes = { ...base, [ATTR_GEN_AI_REQUEST_MODEL]: target.model };
  attributes[ATTR_GEN_AI_PROVIDER_NAME] = target.provider;
  Object.assign(attributes, target.server);
  attributes[ATTR_MODELMAXX_GATEWAY_UPSTREAM] = target.upstream.name;
  attributes[ATTR_MODELMAXX_GATEWAY_UPSTREAM_API] = target.wire;
  if (route !== undefined) {
    attributes[ATTR_MODELMAXX_ROUTE_POLICY] = route.labels.policy;
    attributes[ATTR_MODELMAXX_ROUTE_CLASS] = route.labels.classKey;
    attributes[ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL] = route.labels.referenceModel;
    Object.assign(attributes, routeChoice(route.choice, route.attempt));
  }
  const span = tracer.startSpan(
    `${operation} ${target.model}`,
    SpanKind.CLIENT,
    attributes,
    parent,
  );
  const context = span.spanContext();
  const traceparent = `00-${context.traceId}-${context.spanId}-0${context.traceFlags.toString(16)}`;
  return { span, traceparent };
}

/** Marks a span failed (`error.type` and status) and ends it. */
export function endFailed(span: Span | undefined, type: string, message: string): void {
  if (span === undefined) return;
  span.setAttribute(ATTR_ERROR_TYPE, type);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  span.end();
}

/** A routed request's `route <policy>` span (as the routed client records it), parent of each attempt's. */
export function startRouteSpan(
  tracer: SpanRecorder | undefined,
  parent: Context,
  labels: RouteLabels | undefined,
): { span: Span | undefined; parent: Context } {
  if (tracer === undefined || labels === undefined) return { span: undefined, parent };
  const span = tracer.startSpan(
    `route ${labels.policy}`,
    SpanKind.INTERNAL,
    {
      [ATTR_MODELMAXX_ROUTE_POLICY]: labels.policy,
      [ATTR_MODELMAXX_ROUTE_CLASS]: labels.classKey,
      [ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL]: labels.referenceModel,
    },
    parent,
  );
  return { span, parent: trace.setSpan(parent, span) };
}

/**
 * Ends the route span with the last attempt's choice; when no attempt answered, an error with the
 * last failure's `error.type` and message (as the routed client's route span), or
 * `no_candidate` when no attempt was made.
 */
export function endRouteSpan(
  span: Span | undefined,
  routed: { choice: Choice; attempt: number } | undefined,
  failure: { type: string; message: string } | undefined,
): void {
  if (span === undefined) return;
  if (routed !== undefined) span.setAttributes(routeChoice(routed.choice, routed.attempt));
  if (failure !== undefined) {
    span.setAttribute(ATTR_ERROR_TYPE, failure.type);
    span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
  }
  span.end();
}
