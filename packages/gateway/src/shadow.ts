/**
 * Shadow comparisons behind the gateway: a policy's `shadow` settings (the routed client's) run
 * by the router's own `ShadowDispatcher` (sampling, the stop rule, the hourly and daily caps, the
 * queue, the verdict recorded on the routed call's trace, the engine learning from it), with the
 * reference and judge calls made through the gateway's upstreams, off the response path.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { ROOT_CONTEXT, SpanKind, context, createContextKey, trace } from '@opentelemetry/api';
import type {
  Attributes,
  Context,
  ContextManager,
  Span,
  SpanContext,
  Tracer,
} from '@opentelemetry/api';
import {
  CandidateClients,
  ShadowDispatcher,
  SHADOW_EVALUATION_NAME,
  fromAnthropicMessage,
  pairwiseJudge,
  toAnthropicParams,
} from '@modelmaxx/router';
import type { Decision } from '@modelmaxx/router';
import {
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_MODELMAXX_EVALUATION_NAME,
  ATTR_MODELMAXX_EVALUATION_ROLE,
  ATTR_MODELMAXX_ROUTE_POLICY,
  ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL,
  CONTEXT_KEY_ROUTE_ATTRIBUTES,
  EVALUATION_ROLE_VALUE_JUDGE,
  EVALUATION_ROLE_VALUE_SHADOW,
} from '@modelmaxx/semconv';
import type { GatewayConfig, Upstream } from './config.js';
import type { GatewayLogger } from './context.js';
import { endFailed } from './spans.js';
import type { PolicyState, Target, Targets } from './targets.js';
import { ATTR_MODELMAXX_GATEWAY_UPSTREAM, responseAttributes } from './telemetry.js';
import type { SpanRecorder } from './tracer.js';
import { messagesToChat } from './translate/requests.js';
import { chatCompletionOf } from './translate/responses.js';
import { chatCompletionOfResponse } from './translate/responses-answers.js';
import { responsesToChat } from './translate/responses-requests.js';
import { UpstreamConnectionError, UpstreamTimeoutError, callUpstream } from './upstream.js';
import type { UpstreamAnswer, UpstreamCall } from './upstream.js';
import { estimatedSummary, summarizeBody, tokensOfLength } from './usage.js';
import type { Summary, Wire } from './usage.js';

/** Where the dispatcher puts a shadow or judge call's marks (the instrumentation's slot). */
const ROUTE_ATTRIBUTES_KEY = createContextKey(CONTEXT_KEY_ROUTE_ATTRIBUTES);

/**
 * The OpenTelemetry context through async calls (node's AsyncLocalStorage), so a shadow or judge
 * call reads the marks the dispatcher sets around it: what it evaluates (the routed call's trace,
 * span and response id, class and model), as the instrumentation reads them in the routed client.
 */
class AsyncContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    active: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.storage.run(active, () => fn.call(thisArg, ...args));
  }
  bind<T>(_context: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.storage.disable();
    return this;
  }
}

/** Installs the context manager once, unless the process has one (the instrumentation's). */
function ensureContextManager(): void {
  context.setGlobalContextManager(new AsyncContextManager());
}

/**
 * Reads a whole upstream answer; silent for the upstream's idle timeout, it is stopped and fails
 * with an UpstreamTimeoutError.
 */
function readAll(answer: UpstreamAnswer, upstream: Upstream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const idleMs = upstream.streamIdleTimeoutMs;
    const timer = setTimeout(() => {
      const seconds = idleMs / 1000;
      reject(new UpstreamTimeoutError(`upstream ${upstream.name} sent nothing for ${seconds} s`));
      answer.destroy();
    }, idleMs);
    answer.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      timer.refresh();
    });
    answer.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    answer.once('error', (error: Error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

interface ClientOptions {
  readonly resolve: (model: string, wire: Wire) => Target | undefined;
  readonly recorder: SpanRecorder | undefined;
  readonly tolerance: number;
  /** The shadow or judge call's evaluation attributes (its spend is evaluation spend). */
  readonly marks: Attributes;
}

/**
 * An openai- and anthropic-shaped client over the gateway's upstreams (non-streamed calls): what
 * the dispatcher's reference calls and the pairwise judge call. Each call is a CLIENT span with
 * its usage and cost, marked as evaluation work, in a trace of its own. A call whose request the
 * upstream had but whose answer never came whole (a timeout, cut, dropped or silent) is recorded
 * at its estimate (input: body bytes ÷ 4, as admission estimates an app's; output 0; source
 * `estimate`) and fails with that cost as `costUsd`, which the dispatcher counts against the
 * policy's shadow caps.
 */
class UpstreamClient {
  readonly chat = {
    completions: {
      create: (params: { model: string }, options?: { timeout?: number }) =>
        this.post('chat', params, options?.timeout),
    },
  };

  readonly messages = {
    create: (params: { model: string }, options?: { timeout?: number }) =>
      this.post('messages', params, options?.timeout),
  };

  private readonly options: ClientOptions;

  constructor(options: ClientOptions) {
    this.options = options;
  }

  private async post(wire: Wire, params: { model: string }, timeoutMs?: number): Promise<unknown> {
    const target = this.options.resolve(params.model, wire);
    if (target === undefined) throw new Error(`no upstream serves "${params.model}"`);
    // A chat call (the judge's) to a model on an Anthropic upstream: through the router's adapter.
    const translated = wire === 'chat' && target.wire === 'messages';
    const sent = translated ? toAnthropicParams(params as never, target.model) : params;
    if (!translated && target.wire !== wire) {
      throw new Error(`no upstream serves "${params.model}" in the ${wire} format`);
    }
    const marks = context.active().getValue(ROUTE_ATTRIBUTES_KEY) as Attributes | undefined;
    const attributes: Attributes = {
      ...this.options.marks,
      ...marks,
      [ATTR_GEN_AI_OPERATION_NAME]: 'chat',
      [ATTR_GEN_AI_REQUEST_MODEL]: target.model,
      [ATTR_GEN_AI_PROVIDER_NAME]: target.provider,
      ...target.server,
      [ATTR_MODELMAXX_GATEWAY_UPSTREAM]: target.upstream.name,
    };
    const span = this.options.recorder?.startSpan(
      `chat ${target.model}`,
      SpanKind.CLIENT,
      attributes,
      ROOT_CONTEXT,
    );
    const body = Buffer.from(JSON.stringify({ ...sent, model: target.model }));
    const { upstream } = target;
    let call: UpstreamCall | undefined;
    let answer: UpstreamAnswer | undefined;
    let text: string;
    try {
      const timeout = timeoutMs ?? upstream.timeoutMs;
      call = callUpstream(upstream, target.url, target.wire, body, {}, undefined, timeout);
      answer = await call.response;
      text = (await readAll(answer, upstream)).toString('utf8');
    } catch (error) {
      // No whole answer: a call the upstream had (sent, no error status) costs its estimate, as
      // an app's call does (./telemetry.ts accountedSummary), told to the dispatcher's caps.
      const { type, message } = failureOf(error as Error, answer);
      if (call?.sent !== true || (answer?.statusCode ?? 0) >= 400) endFailed(span, type, message);
      else {
        const estimate = estimatedSummary({ finishReasons: [] }, tokensOfLength(body.length));
        const costUsd = this.record(span, target, estimate!, { type, message });
        if (costUsd !== undefined) Object.assign(error as Error, { costUsd });
      }
      throw error;
    }
    try {
      const status = answer.statusCode;
      if (status >= 400) throw new Error(`upstream answered ${status}: ${text.slice(0, 200)}`);
      const parsed = JSON.parse(text) as unknown;
      this.record(span, target, summarizeBody(target.wire, parsed));
      return translated ? fromAnthropicMessage(parsed as never) : parsed;
    } catch (error) {
      endFailed(span, 'error', (error as Error).message);
      throw error;
    }
  }

  /** The call's usage and cost (USD, returned) on its span, ended; failed with `failure` if given. */
  private record(
    span: Span | undefined,
    target: Target,
    summary: Summary,
    failure?: { type: string; message: string },
  ): number | undefined {
    const finished: Attributes = {};
    const { costUsd } = responseAttributes(
      finished,
      target.wire,
      target.provider,
      target.model,
      summary,
      this.options.tolerance,
    );
    span?.setAttributes(finished);
    if (failure === undefined) span?.end();
    else endFailed(span, failure.type, failure.message);
    return costUsd;
  }
}

/** A call without a whole answer: its error type and message, as the gateway's attempts name them. */
function failureOf(error: Error, answer: UpstreamAnswer | undefined) {
  if (error instanceof UpstreamTimeoutError) {
    const type = answer === undefined ? 'timeout' : 'stream_idle_timeout';
    return { type, message: error.message };
  }
  if (answer !== undefined) {
    return {
      type: 'stream_interrupted',
      message: 'the upstream closed the connection before its answer ended',
    };
  }
  return {
    type: error instanceof UpstreamConnectionError ? 'connection_error' : 'error',
    message: error.message,
  };
}

/** The dispatcher's tracer: the verdict's short span, child of the route span, on the gateway's recorder. */
function verdictTracer(recorder: SpanRecorder | undefined): Tracer {
  if (recorder === undefined) return trace.getTracer('@modelmaxx/gateway');
  return {
    startSpan: (name: string, _options: unknown, parent?: Context) =>
      recorder.startSpan(name, SpanKind.INTERNAL, {}, parent ?? ROOT_CONTEXT),
  } as unknown as Tracer;
}

export interface ShadowSetup {
  readonly config: GatewayConfig;
  readonly targets: Targets;
  readonly recorder: SpanRecorder | undefined;
  readonly log: GatewayLogger;
  readonly now: () => number;
}

/** A dispatcher per policy whose `shadow` is enabled (a judge model must be configured). */
export function createShadows(setup: ShadowSetup): Map<string, ShadowDispatcher> {
  const shadows = new Map<string, ShadowDispatcher>();
  const judge = setup.config.judge;
  if (
    judge !== undefined &&
    [...setup.targets.policies.values()].some((s) => s.policy.shadow.enabled)
  ) {
    ensureContextManager();
  }
  for (const state of setup.targets.policies.values()) {
    const { policy } = state;
    if (!policy.shadow.enabled) continue;
    if (judge === undefined) {
      setup.log.warn(
        'a policy enables shadow comparisons but the config has no judge: no shadows',
        {
          policy: policy.name,
        },
      );
      continue;
    }
    shadows.set(policy.name, dispatcherOf(setup, state, judge));
  }
  return shadows;
}

function dispatcherOf(
  setup: ShadowSetup,
  state: PolicyState,
  judge: NonNullable<GatewayConfig['judge']>,
): ShadowDispatcher {
  const { policy } = state;
  const { referenceModel } = state;
  const common = {
    recorder: setup.recorder,
    tolerance: setup.config.costDisagreementTolerance,
  };
  const marks = (role: string): Attributes => ({
    [ATTR_MODELMAXX_EVALUATION_ROLE]: role,
    [ATTR_MODELMAXX_EVALUATION_NAME]: SHADOW_EVALUATION_NAME,
    [ATTR_MODELMAXX_ROUTE_POLICY]: policy.name,
    ...(role === EVALUATION_ROLE_VALUE_SHADOW
      ? { [ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL]: referenceModel }
      : {}),
  });
  const reference = new UpstreamClient({
    ...common,
    resolve: (model, wire) => setup.targets.ofCandidate(state, model, wire),
    marks: marks(EVALUATION_ROLE_VALUE_SHADOW),
  });
  const judgeClient = new UpstreamClient({
    ...common,
    resolve: (model, wire) => setup.targets.ofModel(model, wire),
    marks: marks(EVALUATION_ROLE_VALUE_JUDGE),
  });
  const clients = Object.fromEntries(
    policy.candidates.map((candidate) => [candidate.client ?? candidate.provider, reference]),
  );
  return new ShadowDispatcher({
    policy,
    engine: state.engine,
    clients: new CandidateClients(policy, clients),
    candidates: new Map(policy.candidates.map((candidate) => [candidate.model, candidate])),
    referenceModel,
    tracer: verdictTracer(setup.recorder),
    random: state.random,
    now: setup.now,
    // zod leaves unset options out of the object (never `undefined` values).
    judge: pairwiseJudge({ client: judgeClient, ...judge } as Parameters<typeof pairwiseJudge>[0]),
    onShadow: (result) => {
      if (result.error === undefined) setup.log.info('shadow comparison', { ...result });
      else setup.log.warn('shadow comparison failed', { ...result });
    },
  });
}

/** What a routed call offers for a shadow comparison. */
export interface GatewayShadowOffer {
  /** The app's format: chat completions, or Anthropic messages / Responses (compared as chat). */
  readonly wire: Wire;
  readonly model: string;
  readonly classKey: string;
  readonly decision: Decision;
  readonly body: Record<string, unknown>;
  readonly answer: Buffer;
  readonly routeSpan: SpanContext;
  readonly task: string | undefined;
  /** Sent to this model for its verdict (`shadow.explore`): always shadowed. */
  readonly explored: boolean;
}

/**
 * Offers an answered call (never throws, never waits). The dispatcher compares chat: an Anthropic
 * Messages or OpenAI Responses request and answer are offered as their chat counterparts (not
 * offered when the request has no chat counterpart).
 */
export function offerShadow(shadows: ShadowDispatcher, offer: GatewayShadowOffer): void {
  let params: Record<string, unknown>;
  let completion: Record<string, unknown>;
  try {
    const answer = JSON.parse(offer.answer.toString('utf8')) as Record<string, unknown>;
    if (offer.wire === 'messages') {
      params = messagesToChat(offer.body, offer.model, 'openai');
      completion = chatCompletionOf(answer, Math.floor(Date.now() / 1000));
    } else if (offer.wire === 'responses') {
      params = { ...responsesToChat(offer.body), model: offer.model };
      completion = chatCompletionOfResponse(answer);
    } else {
      params = offer.body;
      completion = answer;
    }
  } catch {
    return;
  }
  shadows.offer({
    model: offer.model,
    classKey: offer.classKey,
    decision: offer.decision,
    params: params as never,
    completion: completion as never,
    routeSpan: offer.routeSpan,
    llmContext: undefined,
    task: offer.task,
    ...(offer.explored ? { explored: true } : {}),
  });
}
