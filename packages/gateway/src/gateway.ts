/**
 * The gateway's request pipeline over node:http: authenticate → read the body (bounded) →
 * resolve the model (a real model, or `route:<policy>` through the router engine) → admit →
 * call the upstream (fallbacks on 429 / 5xx / timeouts / connection errors for policies, with
 * cooldowns) → pass the answer through (streams event by event, never buffered) → span → settle.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  trace,
} from '@opentelemetry/api';
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { RoutingEngine, classifyRequest } from '@modelmaxx/router';
import type {
  ClassifiableRequest,
  Decision,
  EngineOutcome,
  Policy,
  RandomSource,
} from '@modelmaxx/router';
import {
  ATTR_ENDUSER_ID,
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
  ATTR_MODELMAXX_FEATURE,
  ATTR_MODELMAXX_ROUTE_ATTEMPT,
  ATTR_MODELMAXX_ROUTE_CLASS,
  ATTR_MODELMAXX_ROUTE_MODEL,
  ATTR_MODELMAXX_ROUTE_POLICY,
  ATTR_MODELMAXX_ROUTE_REASON,
  ATTR_MODELMAXX_ROUTE_WEIGHT,
  ATTR_MODELMAXX_TASK,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '@modelmaxx/semconv';
import type { GatewayAccess, Principal } from './access/types.js';
import { GatewayConfigError, resolveModel } from './config.js';
import type { GatewayConfig, Upstream } from './config.js';
import { openAccess } from './open-access.js';
import {
  ATTR_MODELMAXX_GATEWAY_APP,
  ATTR_MODELMAXX_GATEWAY_KEY_ID,
  ATTR_MODELMAXX_GATEWAY_TEAM,
  ATTR_MODELMAXX_GATEWAY_UPSTREAM,
  estimateCost,
  requestAttributes,
  responseAttributes,
} from './telemetry.js';
import {
  UpstreamConnectionError,
  UpstreamTimeoutError,
  callUpstream,
  forwardedHeaders,
  retryAfterMs,
  returnedHeaders,
  upstreamUrl,
} from './upstream.js';
import { scanEvent, summarizeBody } from './usage.js';
import type { Summary, Wire } from './usage.js';

export interface GatewayLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface GatewayOptions {
  readonly config: GatewayConfig;
  /** Keys, budgets and rate limits; default `openAccess()` (loopback only). */
  readonly access?: GatewayAccess;
  /** Where spans go (OTLP, or the co-located collector's store); none: no spans. */
  readonly spanExporter?: SpanExporter;
  /** `service.name` of the gateway's spans (default `modelmaxx-gateway`). */
  readonly serviceName?: string;
  readonly logger?: GatewayLogger;
  /** The router engines' random source (default Math.random). */
  readonly random?: RandomSource;
  readonly now?: () => number;
}

export interface GatewayMetrics {
  requests: number;
  inFlight: number;
  rejectedBusy: number;
  upstreamErrors: number;
  fallbacks: number;
  clientAborts: number;
  costDisagreements: number;
}

export interface Gateway {
  /** Handles a gateway route and returns true; false for any other path (left to the caller). */
  handle(request: IncomingMessage, response: ServerResponse): boolean;
  /** Its own server (`modelmaxx gateway`): gateway routes and `GET /healthz`. */
  listen(port: number, host: string): Promise<{ url: string; port: number; server: Server }>;
  metrics(): GatewayMetrics;
  /** Engines' cooldowns, per policy: model → until (ms). */
  cooldowns(policy: string): ReadonlyMap<string, number>;
  forceFlush(): Promise<void>;
  /** Stops the server (when `listen` ran), flushes spans, closes the access layer. */
  close(): Promise<void>;
}

interface Endpoint {
  readonly wire: Wire;
  readonly operation: 'chat' | 'embeddings';
}

const ENDPOINTS = new Map<string, Endpoint>([
  ['/v1/chat/completions', { wire: 'chat', operation: 'chat' }],
  ['/v1/responses', { wire: 'responses', operation: 'chat' }],
  ['/v1/embeddings', { wire: 'embeddings', operation: 'embeddings' }],
  ['/v1/messages', { wire: 'messages', operation: 'chat' }],
]);

const ROUTE_PREFIX = 'route:';
const propagator = new W3CTraceContextPropagator();

/** A model the request may be sent to: the upstream and the name it gets there. */
interface Target {
  /** The name the app and the policy use (a candidate's `model`, or the request's model). */
  readonly label: string;
  readonly upstream: Upstream;
  readonly model: string;
  readonly url: string;
  readonly provider: string;
  readonly server: Attributes;
}

interface PolicyState {
  readonly policy: Policy;
  readonly engine: RoutingEngine;
  readonly cooldownUntil: Map<string, number>;
  /** Candidate model → target per wire (undefined: that wire is not served). */
  readonly targets: Map<string, Map<Wire, Target | undefined>>;
}

function providerOf(upstream: Upstream): string {
  if (upstream.kind === 'anthropic') return 'anthropic';
  if (upstream.kind === 'openrouter') return 'openrouter';
  return 'openai';
}

function serverAttributes(baseURL: string): Attributes {
  try {
    const url = new URL(baseURL);
    const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    return {
      [ATTR_SERVER_ADDRESS]: url.hostname.replace(/^\[|\]$/g, ''),
      [ATTR_SERVER_PORT]: port,
    };
  } catch {
    return {};
  }
}

function errorBody(wire: Wire | undefined, type: string, message: string, code?: string): string {
  if (wire === 'messages') return JSON.stringify({ type: 'error', error: { type, message } });
  return JSON.stringify({ error: { message, type, param: null, code: code ?? null } });
}

class RequestError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | undefined;
  constructor(status: number, type: string, message: string, code?: string) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
  }
}

/** Reads the body up to `limit` bytes; a larger one is refused without reading it all. */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(
      new RequestError(413, 'invalid_request_error', `request body over ${limit} bytes`),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.removeAllListeners('data');
        request.resume();
        reject(new RequestError(413, 'invalid_request_error', `request body over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    request.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    request.once('error', reject);
  });
}

/** Approximate tokens of a request body (≈ characters ÷ 4), for budget estimates. */
function estimateTokens(bytes: number): number {
  return Math.ceil(bytes / 4);
}

function maxOutputOf(body: Record<string, unknown>): number {
  for (const key of ['max_completion_tokens', 'max_tokens', 'max_output_tokens']) {
    const value = body[key];
    if (typeof value === 'number' && value > 0) return value;
  }
  return 4096;
}

/** A chat body as the classifier reads it, whatever the wire. */
function classifiable(
  wire: Wire,
  body: Record<string, unknown>,
  task: string | undefined,
): ClassifiableRequest {
  type Message = { role?: string; content?: unknown };
  let messages: readonly Message[] = [];
  if (wire === 'responses') {
    const input = body['input'];
    messages =
      typeof input === 'string'
        ? [{ role: 'user', content: input }]
        : Array.isArray(input)
          ? (input as Message[])
          : [];
  } else if (wire === 'embeddings') {
    const input = body['input'];
    messages = [{ role: 'user', content: typeof input === 'string' ? input : '' }];
  } else if (Array.isArray(body['messages'])) {
    messages = body['messages'] as Message[];
  }
  const request: { -readonly [K in keyof ClassifiableRequest]: ClassifiableRequest[K] } = {
    messages,
  };
  if (Array.isArray(body['tools'])) request.tools = body['tools'] as unknown[];
  const format = body['response_format'];
  if (typeof format === 'object' && format !== null) {
    request.response_format = format as { type?: string };
  }
  if (task !== undefined) request.task = task;
  return request;
}

const header = (request: IncomingMessage, name: string): string | undefined => {
  const value = request.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
};

/** Whether a listen address stays on this machine. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

/** No binding beyond loopback without gateway keys: anyone on the network could spend the upstream keys. */
export function assertSafeToBind(host: string, access: GatewayAccess | undefined): void {
  if (isLoopbackHost(host) || access?.keyed === true) return;
  throw new GatewayConfigError(
    `refusing to listen on ${host} without gateway keys: anyone who reaches it could spend the upstream keys. Configure keys (see docs/gateway.md) or listen on 127.0.0.1`,
  );
}

export function createGateway(options: GatewayOptions): Gateway {
  const { config } = options;
  const access = options.access ?? openAccess();
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const log: GatewayLogger = options.logger ?? {
    info: () => undefined,
    warn: (message, fields) =>
      process.stderr.write(`modelmaxx gateway: ${message} ${JSON.stringify(fields ?? {})}\n`),
    error: (message, fields) =>
      process.stderr.write(`modelmaxx gateway: ${message} ${JSON.stringify(fields ?? {})}\n`),
  };
  const provider =
    options.spanExporter === undefined
      ? undefined
      : new TracerProvider({
          resource: resourceFromAttributes({
            'service.name': options.serviceName ?? 'modelmaxx-gateway',
          }),
          spanProcessors: [
            new BatchSpanProcessor({
              exporter: options.spanExporter,
              // Small batches often: serializing a batch holds the event loop, and requests
              // that arrive meanwhile wait; 128 spans at a time keeps each pause short.
              scheduledDelayMillis: 200,
              maxExportBatchSize: 128,
              maxQueueSize: 16_384,
            }),
          ],
        });
  const tracer: Tracer | undefined = provider?.getTracer('@modelmaxx/gateway');
  const metrics: GatewayMetrics = {
    requests: 0,
    inFlight: 0,
    rejectedBusy: 0,
    upstreamErrors: 0,
    fallbacks: 0,
    clientAborts: 0,
    costDisagreements: 0,
  };

  const targetCache = new Map<string, Target | null>();
  /** The target of a real model on a wire (cached: resolution is per model name and wire). */
  const targetOf = (label: string, wire: Wire, preferAnthropic: boolean): Target | undefined => {
    const key = `${wire}\u0000${preferAnthropic ? 1 : 0}\u0000${label}`;
    const cached = targetCache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const resolved = resolveModel(config, label, preferAnthropic || wire === 'messages');
    let target: Target | undefined;
    if (resolved !== undefined) {
      const url = upstreamUrl(resolved.upstream, wire);
      if (url !== undefined) {
        target = {
          label,
          upstream: resolved.upstream,
          model: resolved.model,
          url,
          provider: providerOf(resolved.upstream),
          server: serverAttributes(resolved.upstream.baseURL),
        };
      }
    }
    if (targetCache.size > 10_000) targetCache.clear();
    targetCache.set(key, target ?? null);
    return target;
  };

  const policies = new Map<string, PolicyState>();
  for (const policy of config.policies.values()) {
    policies.set(policy.name, {
      policy,
      engine: new RoutingEngine({ policy, random }),
      cooldownUntil: new Map(),
      targets: new Map(),
    });
  }
  const policyTarget = (state: PolicyState, model: string, wire: Wire): Target | undefined => {
    let perWire = state.targets.get(model);
    if (perWire === undefined) state.targets.set(model, (perWire = new Map()));
    if (perWire.has(wire)) return perWire.get(wire);
    const candidate = state.policy.candidates.find((entry) => entry.model === model)!;
    let target: Target | undefined;
    if (candidate.client !== undefined) {
      const upstream = config.upstreams.get(candidate.client)!;
      const url = upstreamUrl(upstream, wire);
      if (url !== undefined) {
        target = {
          label: model,
          upstream,
          model,
          url,
          provider: providerOf(upstream),
          server: serverAttributes(upstream.baseURL),
        };
      }
    } else {
      target = targetOf(model, wire, candidate.provider === 'anthropic');
    }
    perWire.set(wire, target);
    return target;
  };

  /** OpenAI's list shape, or Anthropic's when the request carries `anthropic-version`. */
  const modelList = (anthropicShape: boolean): string => {
    const created = Math.floor(now() / 1000);
    const createdAt = new Date(created * 1000).toISOString();
    const data: unknown[] = [];
    const seen = new Set<string>();
    const add = (id: string, ownedBy: string) => {
      if (seen.has(id)) return;
      seen.add(id);
      data.push(
        anthropicShape
          ? { type: 'model', id, display_name: id, created_at: createdAt }
          : { id, object: 'model', created, owned_by: ownedBy },
      );
    };
    for (const name of policies.keys()) add(`${ROUTE_PREFIX}${name}`, 'modelmaxx');
    for (const [model, upstream] of config.models) add(model, upstream);
    for (const upstream of config.upstreams.values()) {
      for (const pattern of upstream.models) {
        if (!pattern.includes('*')) add(pattern, upstream.name);
      }
    }
    for (const state of policies.values()) {
      for (const candidate of state.policy.candidates) {
        add(candidate.model, candidate.client ?? candidate.provider);
      }
    }
    if (anthropicShape) {
      const ids = data as { id: string }[];
      return JSON.stringify({
        data,
        has_more: false,
        first_id: ids[0]?.id ?? null,
        last_id: ids.at(-1)?.id ?? null,
      });
    }
    return JSON.stringify({ object: 'list', data });
  };

  const sendError = (
    response: ServerResponse,
    wire: Wire | undefined,
    status: number,
    type: string,
    message: string,
    extra: Record<string, string> = {},
    code?: string,
  ) => {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const body = errorBody(wire, type, message, code);
    response.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...extra,
    });
    response.end(body);
  };

  async function pipeline(
    request: IncomingMessage,
    response: ServerResponse,
    endpoint: Endpoint,
    principal: Principal,
    state: { aborted: boolean; abort?: () => void },
  ): Promise<void> {
    const { wire } = endpoint;
    const raw = await readBody(request, config.maxBodyBytes);
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(raw.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new Error('not an object');
      }
      body = parsed as Record<string, unknown>;
    } catch {
      throw new RequestError(400, 'invalid_request_error', 'the request body is not a JSON object');
    }
    const requested = body['model'];
    if (typeof requested !== 'string' || requested === '') {
      throw new RequestError(400, 'invalid_request_error', '"model" (a string) is required');
    }
    const stream = body['stream'] === true;
    const task = header(request, 'x-modelmaxx-task');
    const feature = header(request, 'x-modelmaxx-feature');
    const userField = body['user'];
    const endUser =
      header(request, 'x-modelmaxx-user') ??
      (typeof userField === 'string' && userField !== '' ? userField : undefined);
    const at = now();

    // Candidates: a policy's, or the one real model.
    let policyState: PolicyState | undefined;
    let candidates: string[];
    if (requested.startsWith(ROUTE_PREFIX)) {
      const name = requested.slice(ROUTE_PREFIX.length);
      policyState = policies.get(name);
      if (policyState === undefined) {
        throw new RequestError(
          404,
          'invalid_request_error',
          `no routing policy "${name}" (configured: ${[...policies.keys()].join(', ') || 'none'})`,
          'model_not_found',
        );
      }
      candidates = policyState.policy.candidates
        .map((candidate) => candidate.model)
        .filter((model) => policyTarget(policyState!, model, wire) !== undefined);
      if (candidates.length === 0) {
        throw new RequestError(
          400,
          'invalid_request_error',
          `no candidate of policy "${name}" is served on ${wire === 'messages' ? '/v1/messages' : `this endpoint`}`,
        );
      }
    } else {
      const target = targetOf(requested, wire, false);
      if (target === undefined) {
        const resolved = resolveModel(config, requested, wire === 'messages');
        throw new RequestError(
          404,
          'invalid_request_error',
          resolved === undefined
            ? `no upstream serves model "${requested}": list it in upstreams.<name>.models or models, or write <upstream>/${requested}`
            : `upstream "${resolved.upstream.name}" (${resolved.upstream.kind}) does not serve this endpoint`,
          'model_not_found',
        );
      }
      candidates = [requested];
    }

    const inputTokens = estimateTokens(raw.length);
    const outputTokens = wire === 'embeddings' ? 0 : maxOutputOf(body);
    const estimatedCostUsd: Record<string, number> = {};
    // Budgets need the estimates with or without keys (feature / global budgets on loopback).
    if (options.access !== undefined) {
      for (const model of candidates) {
        const target = policyState
          ? policyTarget(policyState, model, wire)
          : targetOf(model, wire, false);
        estimatedCostUsd[model] =
          target === undefined
            ? 0
            : estimateCost(target.provider, target.model, inputTokens, outputTokens);
      }
    }
    const admission = await access.admit({
      principal,
      ...(feature === undefined ? {} : { feature }),
      ...(endUser === undefined ? {} : { endUser }),
      candidates,
      estimatedCostUsd,
      estimatedTokens: inputTokens + outputTokens,
      at,
    });
    if (!admission.ok) {
      sendError(response, wire, 429, admission.error.type, admission.error.message, {
        'retry-after': String(Math.max(0, Math.ceil(admission.retryAfterSeconds))),
      });
      return;
    }
    const extraHeaders: Record<string, string> = {};
    if (admission.warnings.length > 0) {
      extraHeaders['x-modelmaxx-budget-warning'] = admission.warnings.join('; ');
      log.warn('budget warning', { keyId: principal.keyId, warnings: admission.warnings });
    }
    const allowed = new Set(admission.candidates);

    // The upstream body: the upstream's model name, usage requested on chat streams.
    const includeUsage =
      wire === 'chat' &&
      stream &&
      (body['stream_options'] as { include_usage?: unknown } | undefined)?.include_usage === true;
    const hideUsage = wire === 'chat' && stream && !includeUsage;
    const bodyFor = (target: Target): Buffer => {
      if (target.model === requested && !hideUsage) return raw;
      const copy: Record<string, unknown> = { ...body, model: target.model };
      if (hideUsage) {
        copy['stream_options'] = {
          ...(body['stream_options'] as object | undefined),
          include_usage: true,
        };
      }
      return Buffer.from(JSON.stringify(copy));
    };

    let parent: Context = propagator.extract(ROOT_CONTEXT, request.headers, defaultTextMapGetter);
    const appHeaders = forwardedHeaders(request.headers);
    const baseAttributes = requestAttributes(wire, body, requested);
    baseAttributes[ATTR_GEN_AI_OPERATION_NAME] = endpoint.operation;
    if (task !== undefined) baseAttributes[ATTR_MODELMAXX_TASK] = task;
    if (feature !== undefined) baseAttributes[ATTR_MODELMAXX_FEATURE] = feature;
    const user = endUser ?? principal.user;
    if (user !== undefined) baseAttributes[ATTR_ENDUSER_ID] = user;
    // Who called (a gateway key's id and metadata, never the key): for spend per key and team.
    baseAttributes[ATTR_MODELMAXX_GATEWAY_KEY_ID] = principal.keyId;
    if (principal.team !== undefined) baseAttributes[ATTR_MODELMAXX_GATEWAY_TEAM] = principal.team;
    if (principal.app !== undefined) baseAttributes[ATTR_MODELMAXX_GATEWAY_APP] = principal.app;

    // Routing.
    const policy = policyState?.policy;
    const classKey =
      policyState === undefined ? undefined : classifyRequest(classifiable(wire, body, task));
    const exclude = new Set<string>();
    if (policyState !== undefined) {
      for (const model of policyState.policy.candidates.map((entry) => entry.model)) {
        if (!allowed.has(model) || policyTarget(policyState, model, wire) === undefined) {
          exclude.add(model);
        }
      }
      for (const [model, until] of policyState.cooldownUntil) {
        if (until > at) exclude.add(model);
        else policyState.cooldownUntil.delete(model);
      }
    }
    const maxAttempts = policy?.fallback.maxAttempts ?? 1;
    /** Another attempt is possible: attempts left and a candidate not excluded. */
    const canFallBack = (attempt: number): boolean =>
      policyState !== undefined &&
      attempt < maxAttempts &&
      candidates.some((model) => !exclude.has(model));
    const outcomes: EngineOutcome[] = [];
    let decision: Decision | undefined;
    const steered = admission.steered !== undefined ? [...admission.candidates] : undefined;
    const choose = (
      attempt: number,
    ): { model: string; weight: number; reason: string } | undefined => {
      if (policyState === undefined)
        return attempt === 1 ? { model: requested, weight: 1, reason: '' } : undefined;
      if (steered !== undefined) {
        const model = steered.find((entry) => !exclude.has(entry));
        return model === undefined
          ? undefined
          : { model, weight: 1, reason: `budget steer: ${admission.steered}` };
      }
      const next = policyState.engine.decide({
        classKey: classKey!,
        at,
        single: true,
        exclude,
      });
      decision ??= next;
      const model = next.first[0];
      if (model === undefined) return undefined;
      return {
        model,
        weight: next.weight,
        reason: attempt === 1 ? next.reason : `fallback: ${next.reason}`,
      };
    };

    let settled = false;
    let lastModel = candidates[0]!;
    let totalCost = 0;
    let usageIn = 0;
    let usageOut = 0;
    let okResult = false;
    // A route request: one `route <policy>` span (as the routed client records it), parent of
    // each attempt's span, so fallbacks stay in one trace.
    const routeSpan: Span | undefined =
      policyState === undefined || tracer === undefined
        ? undefined
        : tracer.startSpan(
            `route ${policyState.policy.name}`,
            {
              kind: SpanKind.INTERNAL,
              attributes: {
                [ATTR_MODELMAXX_ROUTE_POLICY]: policyState.policy.name,
                [ATTR_MODELMAXX_ROUTE_CLASS]: classKey!,
              },
            },
            parent,
          );
    if (routeSpan !== undefined) parent = trace.setSpan(parent, routeSpan);
    let routed: { model: string; weight: number; reason: string; attempt: number } | undefined;
    const settle = () => {
      if (settled) return;
      settled = true;
      if (routeSpan !== undefined) {
        if (routed !== undefined) {
          routeSpan.setAttribute(ATTR_MODELMAXX_ROUTE_MODEL, routed.model);
          routeSpan.setAttribute(ATTR_MODELMAXX_ROUTE_WEIGHT, routed.weight);
          routeSpan.setAttribute(ATTR_MODELMAXX_ROUTE_REASON, routed.reason);
          routeSpan.setAttribute(ATTR_MODELMAXX_ROUTE_ATTEMPT, routed.attempt);
        }
        if (!okResult) routeSpan.setStatus({ code: SpanStatusCode.ERROR });
        routeSpan.end();
      }
      if (policyState !== undefined && decision !== undefined && outcomes.length > 0) {
        policyState.engine.observe(decision, outcomes);
      }
      access.settle(admission, {
        model: lastModel,
        costUsd: totalCost,
        inputTokens: usageIn,
        outputTokens: usageOut,
        ok: okResult,
      });
    };

    try {
      for (let attempt = 1; attempt <= maxAttempts; attempt += 1) {
        if (state.aborted) return;
        const choice = choose(attempt);
        if (choice === undefined) {
          if (attempt === 1) {
            sendError(
              response,
              wire,
              503,
              'overloaded_error',
              `policy "${policy!.name}": every candidate is cooling down, excluded or over budget`,
              { 'retry-after': '1' },
            );
          }
          return;
        }
        const target = policyState
          ? policyTarget(policyState, choice.model, wire)!
          : targetOf(choice.model, wire, false)!;
        lastModel = choice.model;
        routed = { ...choice, attempt };
        // As the instrumentation records an SDK call: the model the upstream is asked for.
        const attributes: Attributes = {
          ...baseAttributes,
          [ATTR_GEN_AI_REQUEST_MODEL]: target.model,
        };
        attributes[ATTR_GEN_AI_PROVIDER_NAME] = target.provider;
        Object.assign(attributes, target.server);
        attributes[ATTR_MODELMAXX_GATEWAY_UPSTREAM] = target.upstream.name;
        if (policyState !== undefined) {
          attributes[ATTR_MODELMAXX_ROUTE_POLICY] = policy!.name;
          attributes[ATTR_MODELMAXX_ROUTE_CLASS] = classKey!;
          attributes[ATTR_MODELMAXX_ROUTE_MODEL] = choice.model;
          attributes[ATTR_MODELMAXX_ROUTE_WEIGHT] = choice.weight;
          attributes[ATTR_MODELMAXX_ROUTE_REASON] = choice.reason;
          attributes[ATTR_MODELMAXX_ROUTE_ATTEMPT] = attempt;
        }
        const span: Span | undefined = tracer?.startSpan(
          `${endpoint.operation} ${target.model}`,
          { kind: SpanKind.CLIENT, attributes },
          parent,
        );
        const started = performance.now();
        let traceparent: string | undefined;
        if (span !== undefined) {
          const context = span.spanContext();
          traceparent = `00-${context.traceId}-${context.spanId}-0${context.traceFlags.toString(16)}`;
        }
        const timeoutMs = policy?.fallback.timeoutMs ?? target.upstream.timeoutMs;
        const call = callUpstream(
          target.upstream,
          target.url,
          wire,
          bodyFor(target),
          appHeaders,
          traceparent,
          timeoutMs,
        );
        state.abort = () => call.request.destroy();
        let upstreamResponse: IncomingMessage;
        try {
          upstreamResponse = await call.response;
        } catch (error) {
          metrics.upstreamErrors += 1;
          const timeout = error instanceof UpstreamTimeoutError;
          const type = state.aborted
            ? 'client_aborted'
            : timeout
              ? 'timeout'
              : error instanceof UpstreamConnectionError
                ? 'connection_error'
                : 'error';
          span?.setAttribute(ATTR_ERROR_TYPE, type);
          span?.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          span?.end();
          if (state.aborted) return;
          outcomes.push({ model: choice.model, costUsd: 0, failed: true });
          if (policyState !== undefined) {
            policyState.cooldownUntil.set(choice.model, now() + policy!.fallback.cooldownMs);
            exclude.add(choice.model);
          }
          if (canFallBack(attempt)) {
            metrics.fallbacks += 1;
            log.warn('upstream failed, falling back', {
              model: choice.model,
              upstream: target.upstream.name,
              error: type,
            });
            continue;
          }
          sendError(
            response,
            wire,
            timeout ? 504 : 502,
            timeout ? 'timeout' : 'api_connection_error',
            (error as Error).message,
          );
          return;
        }
        const status = upstreamResponse.statusCode ?? 502;
        const retryable = status === 429 || status >= 500;
        if (retryable) {
          metrics.upstreamErrors += 1;
          outcomes.push({ model: choice.model, costUsd: 0, failed: true });
          if (policyState !== undefined) {
            policyState.cooldownUntil.set(
              choice.model,
              now() +
                (retryAfterMs(upstreamResponse.headers, now()) ?? policy!.fallback.cooldownMs),
            );
            exclude.add(choice.model);
          }
          if (canFallBack(attempt)) {
            upstreamResponse.resume();
            span?.setAttribute(ATTR_ERROR_TYPE, String(status));
            span?.setStatus({ code: SpanStatusCode.ERROR, message: `upstream answered ${status}` });
            span?.end();
            metrics.fallbacks += 1;
            log.warn('upstream failed, falling back', {
              model: choice.model,
              upstream: target.upstream.name,
              status,
            });
            continue;
          }
        }
        // Pass the answer through: status, headers and body as the upstream sent them.
        const result = await relay(upstreamResponse, response, wire, hideUsage, {
          ...extraHeaders,
          'x-modelmaxx-model': choice.model,
          'x-modelmaxx-upstream': target.upstream.name,
        });
        const finished: Attributes = {};
        if (result.firstChunkAt !== undefined && stream) {
          finished[ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] =
            (result.firstChunkAt - started) / 1000;
        }
        const ok = status < 400 && result.complete && result.summary.streamError === undefined;
        const cost = responseAttributes(
          finished,
          wire,
          target.provider,
          target.model,
          result.summary,
          config.costDisagreementTolerance,
        );
        if (cost.disagreement !== undefined) {
          metrics.costDisagreements += 1;
          log.warn('provider-reported cost disagrees with the catalog', {
            model: target.model,
            upstream: target.upstream.name,
            providerUsd: result.summary.providerCostUsd,
            catalogUsd: cost.catalogUsd,
            relativeDifference: Number(cost.disagreement.toFixed(4)),
          });
        }
        totalCost += cost.costUsd ?? 0;
        usageIn += result.summary.usage?.inputTokens ?? 0;
        usageOut += result.summary.usage?.outputTokens ?? 0;
        okResult = ok;
        if (span !== undefined) {
          span.setAttributes(finished);
          if (!ok) {
            const type = !result.complete
              ? state.aborted
                ? 'client_aborted'
                : 'stream_interrupted'
              : status >= 400
                ? String(status)
                : 'stream_error';
            span.setAttribute(ATTR_ERROR_TYPE, type);
            span.setStatus({
              code: SpanStatusCode.ERROR,
              message: result.summary.streamError ?? `upstream answered ${status}`,
            });
          }
          span.end();
        }
        if (status >= 400) metrics.upstreamErrors += retryable ? 0 : 1;
        outcomes.push({
          model: choice.model,
          costUsd: cost.costUsd ?? 0,
          ...(ok ? {} : { failed: true }),
        });
        return;
      }
    } finally {
      settle();
    }
  }

  interface RelayResult {
    summary: Summary;
    firstChunkAt: number | undefined;
    /** The upstream's body ended normally and the app got all of it. */
    complete: boolean;
  }

  /** Writes the upstream's answer to the app as it arrives; reads it on the side for the span. */
  function relay(
    upstream: IncomingMessage,
    response: ServerResponse,
    wire: Wire,
    hideUsage: boolean,
    extraHeaders: Record<string, string>,
  ): Promise<RelayResult> {
    const contentType = String(upstream.headers['content-type'] ?? '');
    const sse = contentType.includes('text/event-stream');
    response.writeHead(upstream.statusCode ?? 502, {
      ...returnedHeaders(upstream.headers, !sse || !hideUsage),
      ...extraHeaders,
    });
    if (sse) response.flushHeaders();
    // A JSON answer of known, modest size goes out in one write with its headers (it is of no
    // use to the app before its last byte); a large or unsized one is written as it comes.
    const declared = Number(upstream.headers['content-length']);
    const whole = !sse && Number.isFinite(declared) && declared <= 1024 * 1024;
    return new Promise((resolve) => {
      let firstChunkAt: number | undefined;
      let summary: Summary = { finishReasons: [] };
      const chunks: Buffer[] = [];
      let size = 0;
      const decoder = new StringDecoder('utf8');
      let pending = '';
      let first = true;
      let done = false;
      const finish = (complete: boolean) => {
        if (done) return;
        done = true;
        if (!sse && complete && size > 0 && size <= 32 * 1024 * 1024) {
          try {
            summary = summarizeBody(
              wire,
              JSON.parse(Buffer.concat(chunks, size).toString('utf8')) as unknown,
            );
          } catch {
            // Not JSON (an HTML error page): nothing to read.
          }
        }
        resolve({ summary, firstChunkAt, complete });
      };
      upstream.on('data', (chunk: Buffer) => {
        firstChunkAt ??= performance.now();
        if (!sse) {
          if (size <= 32 * 1024 * 1024) chunks.push(chunk);
          size += chunk.length;
          if (!whole) response.write(chunk);
          return;
        }
        const text = pending + decoder.write(chunk);
        const end = text.lastIndexOf('\n\n');
        if (end < 0) {
          pending = text;
          if (!hideUsage) response.write(chunk);
          return;
        }
        pending = text.slice(end + 2);
        const events = text.slice(0, end).split('\n\n');
        if (!hideUsage) {
          response.write(chunk);
          for (const event of events) {
            scanEvent(wire, event, summary, first);
            first = false;
          }
          return;
        }
        let out = '';
        for (const event of events) {
          const hidden = scanEvent(wire, event, summary, first);
          first = false;
          if (!hidden) out += `${event}\n\n`;
        }
        if (out !== '') response.write(out);
      });
      upstream.once('end', () => {
        if (sse && hideUsage && pending !== '') response.write(pending);
        if (whole) {
          const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
          chunks.length = 0;
          chunks.push(body);
          response.end(body);
        } else response.end();
        finish(true);
      });
      upstream.once('error', () => {
        response.destroy();
        finish(false);
      });
      upstream.once('close', () => {
        if (!upstream.complete) {
          response.destroy();
          finish(false);
        }
      });
    });
  }

  function handle(request: IncomingMessage, response: ServerResponse): boolean {
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    const endpoint = ENDPOINTS.get(path);
    const isModels = path === '/v1/models';
    if (endpoint === undefined && !isModels) return false;
    const wire = endpoint?.wire;
    metrics.requests += 1;
    const authentication = access.authenticate(
      header(request, 'authorization') ??
        (header(request, 'x-api-key') === undefined
          ? undefined
          : `Bearer ${header(request, 'x-api-key')}`),
    );
    if (!authentication.ok) {
      request.resume();
      sendError(
        response,
        wire,
        authentication.status,
        authentication.status === 401 ? 'authentication_error' : 'permission_error',
        authentication.message,
      );
      return true;
    }
    if (isModels) {
      request.resume();
      if (request.method !== 'GET') {
        sendError(response, undefined, 405, 'invalid_request_error', 'use GET /v1/models', {
          allow: 'GET',
        });
        return true;
      }
      const body = modelList(header(request, 'anthropic-version') !== undefined);
      response.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      });
      response.end(body);
      return true;
    }
    if (request.method !== 'POST') {
      request.resume();
      sendError(response, wire, 405, 'invalid_request_error', `use POST ${path}`, {
        allow: 'POST',
      });
      return true;
    }
    // JSON only: a web page cannot send it cross-site without a CORS preflight, which the
    // gateway never grants (a text/plain form post from a page could otherwise spend the keys).
    const contentType = header(request, 'content-type');
    if (contentType === undefined || !contentType.toLowerCase().includes('application/json')) {
      request.resume();
      sendError(
        response,
        wire,
        415,
        'invalid_request_error',
        'send the body as JSON with content-type: application/json',
      );
      return true;
    }
    if (metrics.inFlight >= config.maxConcurrentRequests) {
      metrics.rejectedBusy += 1;
      request.resume();
      sendError(
        response,
        wire,
        503,
        wire === 'messages' ? 'overloaded_error' : 'server_busy',
        `the gateway has ${config.maxConcurrentRequests} requests in flight; retry shortly`,
        { 'retry-after': '1' },
      );
      return true;
    }
    metrics.inFlight += 1;
    const state: { aborted: boolean; abort?: () => void } = { aborted: false };
    response.once('close', () => {
      metrics.inFlight -= 1;
      if (!response.writableFinished) {
        state.aborted = true;
        metrics.clientAborts += 1;
        state.abort?.();
      }
    });
    pipeline(request, response, endpoint!, authentication.principal, state).catch(
      (error: unknown) => {
        if (error instanceof RequestError) {
          sendError(response, wire, error.status, error.type, error.message, {}, error.code);
          return;
        }
        log.error('request failed', { error: (error as Error).message });
        sendError(response, wire, 500, 'api_error', 'the gateway failed on this request');
      },
    );
    return true;
  }

  let server: Server | undefined;
  return {
    handle,
    async listen(port, host) {
      assertSafeToBind(host, access);
      const created = createServer((request, response) => {
        if (handle(request, response)) return;
        request.resume();
        const path = (request.url ?? '/').split('?')[0];
        if (path === '/healthz' && request.method === 'GET') {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end('{"status":"ok"}');
          return;
        }
        sendError(
          response,
          undefined,
          404,
          'not_found_error',
          `no route ${request.method} ${path}`,
        );
      });
      created.keepAliveTimeout = 65_000;
      server = created;
      await new Promise<void>((resolve, reject) => {
        created.once('error', reject);
        created.listen(port, host, () => {
          created.off('error', reject);
          resolve();
        });
      });
      const bound = (created.address() as AddressInfo).port;
      const shown = host.includes(':') ? `[${host}]` : host;
      return { url: `http://${shown}:${bound}`, port: bound, server: created };
    },
    metrics: () => ({ ...metrics }),
    cooldowns: (name) => new Map(policies.get(name)?.cooldownUntil ?? []),
    forceFlush: async () => {
      await provider?.forceFlush();
    },
    async close() {
      if (server !== undefined) {
        const closing = server;
        await new Promise<void>((resolve) => {
          closing.close(() => resolve());
          closing.closeIdleConnections();
        });
      }
      await provider?.shutdown();
      await access.close();
    },
  };
}
