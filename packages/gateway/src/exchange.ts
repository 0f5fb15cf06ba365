/**
 * One admitted request's attempts: choose a candidate, call its upstream (with the attempt's
 * span and `traceparent`), fall back on 429 / 5xx / timeouts / connection errors while the policy
 * allows, pass the answer through, and account for it — the span's response attributes and cost,
 * the engine's outcomes, and the access layer's settlement, exactly once.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { INVALID_SPAN_CONTEXT, ROOT_CONTEXT, defaultTextMapGetter } from '@opentelemetry/api';
import type { Attributes, Context, Span } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK } from '@modelmaxx/semconv';
import type { Admission, Principal } from './access/types.js';
import type { ClientState, GatewayContext } from './context.js';
import { HeldAnswer, runGatewayPlan } from './cascade.js';
import type { PlanCallResult } from './cascade.js';
import { sendError } from './http.js';
import { offerShadow } from './shadow.js';
import { noAnswer, relay } from './relay.js';
import type { RelayResult } from './relay.js';
import type { GatewayRequest } from './request.js';
import type { TranslateOptions } from './translate/sinks.js';
import type { Routing } from './routing.js';
import {
  endFailed,
  endRouteSpan,
  requestSpanAttributes,
  startAttemptSpan,
  startRouteSpan,
} from './spans.js';
import type { Choice } from './spans.js';
import type { Target } from './targets.js';
import { accountedSummary, responseAttributes } from './telemetry.js';
import type { UpstreamAnswer, UpstreamCall } from './upstream.js';
import {
  UpstreamConnectionError,
  UpstreamTimeoutError,
  callUpstream,
  forwardedHeaders,
  retryAfterMs,
  warnIfNoKey,
} from './upstream.js';

const propagator = new W3CTraceContextPropagator();

/** The status message of a call the app gave up on (not the upstream's doing). */
const CLIENT_GONE = 'the app closed the connection before the answer ended';

type Admitted = Extract<Admission, { ok: true }>;

/** A call without an answer whose request reached the upstream; undefined: it never did. */
const reached = (call: UpstreamCall) => (call.sent ? noAnswer() : undefined);

/** One attempt in flight: its candidate, target and span. */
interface Attempt {
  readonly number: number;
  readonly choice: Choice;
  readonly target: Target;
  readonly span: Span | undefined;
  readonly started: number;
}

export interface ExchangeParts {
  readonly request: GatewayRequest;
  readonly headers: IncomingHttpHeaders;
  readonly principal: Principal;
  readonly admission: Admitted;
  readonly routing: Routing;
  readonly response: ServerResponse;
  readonly client: ClientState;
  /** Headers of every answer (budget warnings). */
  readonly extraHeaders: Readonly<Record<string, string>>;
}

export class Exchange {
  private readonly context: GatewayContext;
  private readonly parts: ExchangeParts;
  private readonly request: GatewayRequest;
  private readonly routing: Routing;
  private readonly appHeaders: Record<string, string>;
  private readonly baseAttributes: Attributes;
  private readonly routeSpan: Span | undefined;
  private readonly parent: Context;
  /** What the access layer is told when the request is over. */
  private readonly tally: { model: string; costUsd: number; input: number; output: number };
  private ok = false;
  /** The last failure, for the route span when no attempt answered. */
  private failure: { type: string; message: string } | undefined;
  private routed: { choice: Choice; attempt: number } | undefined;
  private settled = false;
  /** A plan's calls in flight (destroyed when the app goes away). */
  private readonly planRequests = new Set<UpstreamCall>();

  constructor(context: GatewayContext, parts: ExchangeParts) {
    this.context = context;
    this.parts = parts;
    this.request = parts.request;
    this.routing = parts.routing;
    this.appHeaders = forwardedHeaders(parts.headers);
    this.baseAttributes = requestSpanAttributes(parts.request, parts.principal);
    const incoming = propagator.extract(ROOT_CONTEXT, parts.headers, defaultTextMapGetter);
    const route = startRouteSpan(context.tracer, incoming, parts.routing.labels);
    this.routeSpan = route.span;
    this.parent = route.parent;
    this.tally = { model: parts.routing.candidates[0]!, costUsd: 0, input: 0, output: 0 };
  }

  /** Attempts until one answers (or none is left), then settles. */
  async run(): Promise<void> {
    try {
      const refusal = this.routing.refusal;
      if (refusal !== undefined) {
        this.failure = refusal;
        sendError(this.parts.response, this.request.wire, 400, refusal.type, refusal.message);
        return;
      }
      if (this.routing.plan !== undefined && (await this.runPlan())) return;
      for (let attempt = 1; attempt <= this.routing.maxAttempts; attempt += 1) {
        if (this.parts.client.aborted) {
          this.failure = { type: 'client_aborted', message: CLIENT_GONE };
          return;
        }
        const choice = this.routing.choose(attempt);
        if (choice === undefined) {
          if (attempt === 1) {
            const message = `policy "${this.routing.labels?.policy}": every candidate is cooling down, excluded or over budget`;
            this.failure = { type: 'no_candidate', message };
            sendError(this.parts.response, this.request.wire, 503, 'overloaded_error', message, {
              'retry-after': '1',
            });
          }
          return;
        }
        if (!(await this.attempt(choice, attempt))) return;
      }
    } finally {
      this.settle();
    }
  }

  /** A call's span and upstream request; `callNumber` counts the request's calls. */
  private start(choice: Choice, number: number, callNumber: number) {
    const { context, request } = this;
    const target = context.targets.of(this.routing, choice.model, request.wire)!;
    this.tally.model = choice.model;
    const labels = this.routing.labels;
    const { span, traceparent } = startAttemptSpan(
      context.tracer,
      this.parent,
      this.baseAttributes,
      target,
      request.endpoint.operation,
      labels === undefined ? undefined : { labels, choice, attempt: callNumber },
    );
    const current: Attempt = { number, choice, target, span, started: performance.now() };
    const call = callUpstream(
      target.upstream,
      target.url,
      target.wire,
      this.routing.body(choice.model, target),
      this.appHeaders,
      traceparent,
      this.routing.policy?.policy.fallback.timeoutMs ?? target.upstream.timeoutMs,
    );
    return { current, call };
  }

  /** One attempt; true when the next one should follow (a fallback). */
  private async attempt(choice: Choice, number: number): Promise<boolean> {
    const callNumber = number + this.routing.planCalls;
    this.routed = { choice, attempt: callNumber };
    const { current, call } = this.start(choice, number, callNumber);
    this.parts.client.abort = abortOf(call);
    let answer: UpstreamAnswer;
    try {
      answer = await call.response;
    } catch (error) {
      return this.callFailed(current, error as Error, 'timeout', reached(call));
    }
    const status = answer.statusCode;
    const retryable = status === 429 || status >= 500;
    if (retryable && this.retryableStatus(current, answer, status)) return true;
    return this.pass(current, answer, status, retryable);
  }

  /**
   * No answer (timeout, connection error, app gone, or a silent upstream before the app got
   * anything): fall back, or answer 504 / 502. `type`: a timeout's error type; `had`: what the
   * upstream had of the call, when its request reached it (then accounted by its estimate).
   */
  private callFailed(attempt: Attempt, error: Error, type: string, had?: RelayResult): boolean {
    const { context, parts } = this;
    context.metrics.upstreamErrors += 1;
    if (parts.client.aborted) {
      this.unanswered(attempt, 'client_aborted', CLIENT_GONE, had);
      return false;
    }
    const timeout = error instanceof UpstreamTimeoutError;
    if (!timeout) type = error instanceof UpstreamConnectionError ? 'connection_error' : 'error';
    const costUsd = this.unanswered(attempt, type, error.message, had);
    this.routing.failed(attempt.choice.model, undefined, context.now(), costUsd);
    if (this.fallBack(attempt, { error: type })) return true;
    sendError(
      parts.response,
      this.request.wire,
      timeout ? 504 : 502,
      timeout ? 'timeout' : 'api_connection_error',
      error.message,
    );
    return false;
  }

  /** 429 or 5xx: the candidate cools down; true when another attempt follows. */
  private retryableStatus(attempt: Attempt, answer: UpstreamAnswer, status: number): boolean {
    const now = this.context.now();
    this.context.metrics.upstreamErrors += 1;
    this.routing.failed(attempt.choice.model, retryAfterMs(answer.headers, now), now);
    if (!this.routing.canFallBack(attempt.number)) return false;
    answer.resume();
    this.fail(attempt.span, String(status), `upstream answered ${status}`);
    return this.fallBack(attempt, { status });
  }

  private fallBack(attempt: Attempt, why: Record<string, unknown>): boolean {
    if (!this.routing.canFallBack(attempt.number)) return false;
    this.context.metrics.fallbacks += 1;
    this.context.log.warn('upstream failed, falling back', {
      model: attempt.choice.model,
      upstream: attempt.target.upstream.name,
      ...why,
    });
    return true;
  }

  /**
   * Passes the answer through as the upstream sent it (or translated), then records it; true
   * when the upstream went silent before anything reached the app and another attempt follows.
   */
  private async pass(
    attempt: Attempt,
    answer: UpstreamAnswer,
    status: number,
    retryable: boolean,
  ): Promise<boolean> {
    const { target } = attempt;
    // An answer that may be shadowed is held whole (as a JSON answer mostly is anyway), then sent.
    const shadows = this.routing.shadowable
      ? this.context.shadows.get(this.routing.labels!.policy)
      : undefined;
    const held = shadows === undefined ? undefined : new HeldAnswer();
    const sink = held === undefined ? this.parts.response : (held as unknown as ServerResponse);
    const result = await relay(answer, sink, this.relayOptions(attempt));
    // Silent before anything reached the app: a fallback or a 504 (its response untouched).
    if (result.idle && !result.sent) {
      const seconds = target.upstream.streamIdleTimeoutMs / 1000;
      return this.callFailed(
        attempt,
        new UpstreamTimeoutError(`upstream ${target.upstream.name} sent nothing for ${seconds} s`),
        'stream_idle_timeout',
        status < 400 ? result : undefined,
      );
    }
    if (held !== undefined) {
      if (result.complete) held.sendTo(this.parts.response);
      else this.parts.response.destroy();
    }
    const ok = status < 400 && result.complete && result.summary.streamError === undefined;
    const costUsd = this.account(attempt, result, ok, status);
    if (status >= 400 && !retryable) this.context.metrics.upstreamErrors += 1;
    warnIfNoKey(this.context.log, target.upstream, status);
    // A retryable status was counted (and cooled down) already.
    if (!retryable) {
      this.routing.outcomes.push({
        model: attempt.choice.model,
        costUsd,
        ...(ok ? {} : { failed: true }),
      });
    }
    if (ok && held !== undefined) {
      offerShadow(shadows!, {
        wire: this.request.wire,
        model: attempt.choice.model,
        classKey: this.routing.labels!.classKey,
        decision: this.routing.decision!,
        body: this.request.body,
        answer: held.body(),
        routeSpan: this.routeSpan?.spanContext() ?? INVALID_SPAN_CONTEXT,
        task: this.request.task,
        explored: this.routing.explored === attempt.choice.model,
      });
    }
    return false;
  }

  private relayOptions(attempt: Attempt): TranslateOptions {
    const { request, parts } = this;
    const { target } = attempt;
    return {
      wire: request.wire,
      request: request.body,
      upstreamWire: target.wire,
      hideUsage: request.hideUsage && target.wire === request.wire,
      includeUsage: request.wire === 'chat' && request.stream && !request.hideUsage,
      idleTimeoutMs: target.upstream.streamIdleTimeoutMs,
      extraHeaders: {
        ...parts.extraHeaders,
        'x-modelmaxx-model': attempt.choice.model,
        'x-modelmaxx-upstream': target.upstream.name,
      },
    };
  }

  /**
   * A cascade plan's calls (./cascade.ts); true when the request is over: the app got the answer
   * the plan settled on, or went away. Else the attempt loop makes the escalation or a fallback.
   */
  private async runPlan(): Promise<boolean> {
    const { routing, parts } = this;
    const plan = routing.plan!;
    parts.client.abort = abortAllOf(this.planRequests);
    const end = await runGatewayPlan(
      routing,
      plan,
      this.request.wire,
      this.context.now,
      (...call) => this.planCall(...call),
    );
    if (parts.client.aborted) {
      this.ok = false;
      return true;
    }
    if (end.kind === 'answered') {
      this.ok = true;
      this.tally.model = end.model;
      const choice = { model: end.model, weight: plan.weight, reason: end.reason };
      this.routed = { choice, attempt: routing.planCalls };
      end.answer.sendTo(parts.response);
      return true;
    }
    const escalation =
      end.kind === 'escalate' ? { model: end.model, weight: 1, reason: end.reason } : undefined;
    routing.afterPlan(end.exclude, escalation);
    this.ok = false;
    return false;
  }

  /** One call of a plan (none once the app is gone): its answer read whole and held, its cost. */
  private async planCall(model: string, role: string, number: number): Promise<PlanCallResult> {
    if (this.parts.client.aborted) return { retryable: false, cooldownMs: undefined, costUsd: 0 };
    const choice = { model, weight: this.routing.plan!.weight, reason: role };
    const { current, call } = this.start(choice, number, number);
    this.planRequests.add(call);
    try {
      const answer = await call.response;
      const status = answer.statusCode;
      if (status >= 400) {
        this.context.metrics.upstreamErrors += 1;
        answer.resume();
        this.fail(current.span, String(status), `upstream answered ${status}`);
        const retryable = status === 429 || status >= 500;
        const cooldownMs = retryable ? retryAfterMs(answer.headers, this.context.now()) : undefined;
        return { retryable, cooldownMs, costUsd: 0 };
      }
      const held = new HeldAnswer();
      const response = held as unknown as ServerResponse;
      const result = await relay(answer, response, this.relayOptions(current));
      const ok = result.complete && result.summary.streamError === undefined;
      const costUsd = this.account(current, result, ok, status);
      return ok ? { held, costUsd } : { retryable: true, cooldownMs: undefined, costUsd };
    } catch (error) {
      this.context.metrics.upstreamErrors += 1;
      const aborted = this.parts.client.aborted;
      const type = aborted
        ? 'client_aborted'
        : error instanceof UpstreamTimeoutError
          ? 'timeout'
          : 'connection_error';
      const message = aborted ? CLIENT_GONE : (error as Error).message;
      const costUsd = this.unanswered(current, type, message, reached(call));
      return { retryable: !aborted, cooldownMs: undefined, costUsd };
    } finally {
      this.planRequests.delete(call);
    }
  }

  /**
   * A call failed without an answer: accounted by its estimate when the upstream `had` it (the
   * provider may bill the prompt), else (a connection refused, nothing sent) only failed; its cost.
   */
  private unanswered(attempt: Attempt, type: string, message: string, had?: RelayResult): number {
    if (had !== undefined) return this.account(attempt, had, false, 0, { type, message });
    this.fail(attempt.span, type, message);
    return 0;
  }

  /**
   * The answer's span attributes, cost and usage (or their estimate: an answer that never ended);
   * ends its span, failed with `failure` when given (else what the result says).
   */
  private account(
    attempt: Attempt,
    result: RelayResult,
    ok: boolean,
    status: number,
    failure?: { type: string; message: string },
  ): number {
    const { context, request } = this;
    const { target, span } = attempt;
    const finished: Attributes = {};
    if (result.firstChunkAt !== undefined && request.stream) {
      finished[ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] =
        (result.firstChunkAt - attempt.started) / 1000;
    }
    const summary = accountedSummary(request, result.summary, status, !result.complete);
    const cost = responseAttributes(
      finished,
      request.wire,
      target.provider,
      target.model,
      summary,
      context.config.costDisagreementTolerance,
    );
    if (cost.disagreement !== undefined) {
      context.metrics.costDisagreements += 1;
      context.log.warn('provider-reported cost disagrees with the catalog', {
        model: target.model,
        upstream: target.upstream.name,
        providerUsd: summary.providerCostUsd,
        catalogUsd: cost.catalogUsd,
        relativeDifference: Number(cost.disagreement.toFixed(4)),
      });
    }
    this.tally.costUsd += cost.costUsd ?? 0;
    this.tally.input += summary.usage?.inputTokens ?? 0;
    this.tally.output += summary.usage?.outputTokens ?? 0;
    this.ok = ok;
    span?.setAttributes(finished);
    if (ok) span?.end();
    else if (failure !== undefined) this.fail(span, failure.type, failure.message);
    else {
      const type = this.failureType(result, status);
      this.fail(span, type, summary.streamError ?? failureMessage(type, status));
    }
    return cost.costUsd ?? 0;
  }

  /** Ends a failed attempt's span; the route span reports the last failure. */
  private fail(span: Span | undefined, type: string, message: string): void {
    this.failure = { type, message };
    endFailed(span, type, message);
  }

  private failureType(result: RelayResult, status: number): string {
    if (result.idle) return 'stream_idle_timeout';
    if (!result.complete)
      return this.parts.client.aborted ? 'client_aborted' : 'stream_interrupted';
    return status >= 400 ? String(status) : 'stream_error';
  }

  /** The route span, the engine's outcomes and the access layer's settlement, once. */
  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    const failure = this.failure ?? { type: 'error', message: 'no attempt answered' };
    endRouteSpan(this.routeSpan, this.routed, this.ok ? undefined : failure);
    this.routing.observe();
    this.context.access.settle(this.parts.admission, {
      model: this.tally.model,
      costUsd: this.tally.costUsd,
      inputTokens: this.tally.input,
      outputTokens: this.tally.output,
      ok: this.ok,
    });
  }
}

/**
 * What stops an upstream request when the app goes away. Made here, not in the async `attempt`: a
 * closure there captures attempt's own context, and with it every request's objects survived the
 * next scavenges (20% of the young generation each time, pauses of 8-16 ms at 500 req/s, against
 * 0.25% and 0.5-1 ms this way; docs/gateway-measurements.md, Per-request cost and the GC tail).
 */
function abortOf(call: UpstreamCall): () => void {
  return () => call.abort();
}

/** The same for a cascade plan's calls (the set holds those in flight). */
function abortAllOf(calls: ReadonlySet<UpstreamCall>): () => void {
  return () => {
    for (const call of calls) call.abort();
  };
}

/** A failed answer's status message: what happened, not the status the headers carried. */
function failureMessage(type: string, status: number): string {
  if (type === 'client_aborted') return CLIENT_GONE;
  if (type === 'stream_interrupted')
    return 'the upstream closed the connection before its answer ended';
  if (type === 'stream_idle_timeout') return 'the upstream went silent before its answer ended';
  return `upstream answered ${status}`;
}
