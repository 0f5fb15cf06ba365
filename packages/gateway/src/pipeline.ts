/**
 * The request pipeline: the front door (route, authentication, method, content type,
 * concurrency) → the body → the candidates of its `model` → admission (budgets, rate limits)
 * → the exchange with the upstream (./exchange.ts).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { ROOT_CONTEXT, defaultTextMapGetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Admission, Principal } from './access/types.js';
import { planEstimates } from './cascade.js';
import type { ClientState, GatewayContext } from './context.js';
import { Exchange } from './exchange.js';
import { ENDPOINTS, RequestError, header, sendError, sendJson } from './http.js';
import type { Endpoint } from './http.js';
import { modelList, modelRetrieved } from './models.js';
import { estimatedTokens, readGatewayRequest } from './request.js';
import { BUDGETS_PATH, listBudgets } from './budgets-route.js';
import type { GatewayRequest } from './request.js';
import { Routing } from './routing.js';
import { recordRefusal } from './spans.js';
import type { Resolution } from './targets.js';
import { estimateCost } from './telemetry.js';

const propagator = new W3CTraceContextPropagator();

/** Catalog cost estimates per candidate and `admit`; undefined when refused (429 sent). */
async function admit(
  context: GatewayContext,
  request: GatewayRequest,
  resolution: Resolution,
  principal: Principal,
  response: ServerResponse,
  appHeaders: IncomingHttpHeaders,
): Promise<Extract<Admission, { ok: true }> | undefined> {
  const tokens = estimatedTokens(request);
  const estimatedCostUsd: Record<string, number> = {};
  // Budgets need the estimates with or without keys (feature / global budgets on loopback).
  if (context.estimates) {
    for (const model of resolution.candidates) {
      const target = context.targets.of(resolution, model, request.wire);
      estimatedCostUsd[model] =
        target === undefined
          ? 0
          : estimateCost(target.provider, target.model, tokens.input, tokens.output);
    }
    planEstimates(resolution, request, estimatedCostUsd);
  }
  const admission = await context.access.admit({
    principal,
    ...(request.feature === undefined ? {} : { feature: request.feature }),
    ...(request.endUser === undefined ? {} : { endUser: request.endUser }),
    candidates: resolution.candidates,
    estimatedCostUsd,
    estimatedTokens: tokens.input + tokens.output,
    at: request.at,
  });
  if (admission.ok) return admission;
  const { type, message, fields } = admission.error;
  const limit = (fields?.['budget'] ?? fields?.['rate_limit']) as { name?: string } | undefined;
  const parent = propagator.extract(ROOT_CONTEXT, appHeaders, defaultTextMapGetter);
  recordRefusal(context.tracer, parent, request, principal, { type, message, limit: limit?.name });
  const headers: Record<string, string> = {
    'retry-after': String(Math.max(0, Math.ceil(admission.retryAfterSeconds))),
  };
  // A budget resets at the window's end, hours away: the SDKs would retry the 429, and
  // @anthropic-ai/sdk sleeps for any retry-after up to 24 days before it does (a call hung for
  // hours). `x-should-retry: false` (read by the openai and anthropic SDKs) makes it throw now.
  if (type === 'budget_exceeded') headers['x-should-retry'] = 'false';
  sendError(response, request.wire, 429, type, message, headers, type, fields);
  return undefined;
}

async function pipeline(
  context: GatewayContext,
  incoming: IncomingMessage,
  response: ServerResponse,
  endpoint: Endpoint,
  principal: Principal,
  client: ClientState,
): Promise<void> {
  const { config, now } = context;
  const request = await readGatewayRequest(incoming, endpoint, config, now);
  const resolution = context.targets.resolve(request.requested, request.wire);
  const admission = await admit(
    context,
    request,
    resolution,
    principal,
    response,
    incoming.headers,
  );
  if (admission === undefined) return;
  const extraHeaders: Record<string, string> = {};
  if (admission.warnings.length > 0) {
    extraHeaders['x-modelmaxx-budget-warning'] = admission.warnings.join('; ');
    context.log.warn('budget warning', { keyId: principal.keyId, warnings: admission.warnings });
  }
  let exchange: Exchange;
  try {
    const routing = new Routing(request, resolution, admission, context.targets, context.shadows);
    exchange = new Exchange(context, {
      request,
      headers: incoming.headers,
      principal,
      admission,
      routing,
      response,
      client,
      extraHeaders,
    });
  } catch (error) {
    // No call was made: the reservation is released now, not held until its TTL.
    const model = resolution.candidates[0] ?? request.requested;
    context.access.settle(admission, {
      model,
      costUsd: 0,
      inputTokens: 0,
      outputTokens: 0,
      ok: false,
    });
    throw error;
  }
  await exchange.run(); // Settles the admission itself.
}

/** The caller's gateway key: `Authorization`, or Anthropic's `x-api-key`. */
function credentials(request: IncomingMessage): string | undefined {
  const apiKey = header(request, 'x-api-key');
  return (
    header(request, 'authorization') ?? (apiKey === undefined ? undefined : `Bearer ${apiKey}`)
  );
}

/** What the front door refuses before reading the body; undefined when the request may go on. */
function refusal(
  context: GatewayContext,
  request: IncomingMessage,
  endpoint: Endpoint,
): { status: number; type: string; message: string; extra?: Record<string, string> } | undefined {
  if (request.method !== 'POST') {
    const message = `use POST ${endpoint.path}`;
    return { status: 405, type: 'invalid_request_error', message, extra: { allow: 'POST' } };
  }
  // JSON only: a web page cannot send it cross-site without a CORS preflight, which the
  // gateway never grants (a text/plain form post from a page could otherwise spend the keys).
  const contentType = header(request, 'content-type');
  if (contentType === undefined || !contentType.toLowerCase().includes('application/json')) {
    const message = 'send the body as JSON with content-type: application/json';
    return { status: 415, type: 'invalid_request_error', message };
  }
  // A 503 the SDKs retry after a second: overloaded in Anthropic's words, busy in OpenAI's.
  const unavailable = (message: string, extra: Record<string, string> = {}) => ({
    status: 503,
    type: endpoint.wire === 'messages' ? 'overloaded_error' : 'server_busy',
    message,
    extra: { 'retry-after': '1', ...extra },
  });
  if (context.closing) {
    return unavailable('the gateway is stopping; retry shortly', { connection: 'close' });
  }
  const limit = context.config.maxConcurrentRequests;
  if (context.metrics.inFlight >= limit) {
    context.metrics.rejectedBusy += 1;
    return unavailable(`the gateway has ${limit} requests in flight; retry shortly`);
  }
  return undefined;
}

/** `GET /v1/models`, or `GET /v1/models/{id}` (the SDKs' `models.retrieve`). */
function listModels(
  context: GatewayContext,
  request: IncomingMessage,
  response: ServerResponse,
  id: string | undefined,
) {
  request.resume();
  const anthropicShape = header(request, 'anthropic-version') !== undefined;
  const wire = anthropicShape ? 'messages' : undefined;
  const path = id === undefined ? '/v1/models' : '/v1/models/{model}';
  if (request.method !== 'GET') {
    sendError(response, wire, 405, 'invalid_request_error', `use GET ${path}`, { allow: 'GET' });
    return;
  }
  const { config, targets, now } = context;
  if (id === undefined) {
    sendJson(response, 200, modelList(config, targets.policies, now(), anthropicShape));
    return;
  }
  const model = modelRetrieved(config, targets.policies, id, now(), anthropicShape);
  if (model === undefined) {
    const message = `no upstream serves model "${id}" (GET /v1/models lists the gateway's models)`;
    const type = anthropicShape ? 'not_found_error' : 'invalid_request_error';
    sendError(response, wire, 404, type, message, {}, 'model_not_found');
    return;
  }
  sendJson(response, 200, model);
}

/** Provider API paths the gateway does not serve: a 404 in the API's shape, not the host's. */
const UNSERVED_API = new Set([
  'chat',
  'completions',
  'complete',
  'responses',
  'messages',
  'embeddings',
  'audio',
  'images',
  'files',
  'uploads',
  'batches',
  'moderations',
  'fine_tuning',
  'assistants',
  'threads',
  'vector_stores',
  'realtime',
  'evals',
  'containers',
  'conversations',
  'videos',
]);

function unservedApi(request: IncomingMessage, response: ServerResponse, path: string): boolean {
  const section = path.startsWith('/v1/') ? path.slice(4).split('/')[0]! : '';
  if (!UNSERVED_API.has(section)) return false;
  request.resume();
  const anthropic =
    section === 'messages' ||
    section === 'complete' ||
    header(request, 'anthropic-version') !== undefined;
  sendError(
    response,
    anthropic ? 'messages' : undefined,
    404,
    'not_found_error',
    `the gateway does not serve ${request.method} ${path}; it serves POST /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/messages and GET /v1/models`,
  );
  return true;
}

/** Counts the request in flight until its response closes; an early close aborts the upstream. */
function track(context: GatewayContext, response: ServerResponse): ClientState {
  const { metrics } = context;
  metrics.inFlight += 1;
  const client: ClientState = { aborted: false };
  response.once('close', () => {
    metrics.inFlight -= 1;
    if (!response.writableFinished) {
      client.aborted = true;
      metrics.clientAborts += 1;
      client.abort?.();
    }
  });
  return client;
}

/** The `{id}` of `/v1/models/{id}` (ids may hold `/`: `openrouter/…`, `upstream/model`). */
function modelIdOf(path: string): string | undefined {
  if (!path.startsWith('/v1/models/') || path.length === '/v1/models/'.length) return undefined;
  try {
    return decodeURIComponent(path.slice('/v1/models/'.length));
  } catch {
    return path.slice('/v1/models/'.length);
  }
}

/** Handles a gateway route and returns true; false for any other path. */
export function handleRequest(
  context: GatewayContext,
  request: IncomingMessage,
  response: ServerResponse,
): boolean {
  const url = request.url ?? '/';
  const query = url.indexOf('?');
  const path = query < 0 ? url : url.slice(0, query);
  const endpoint = ENDPOINTS.get(path);
  const modelId = modelIdOf(path);
  const isModels = path === '/v1/models' || modelId !== undefined;
  const isBudgets = path === BUDGETS_PATH;
  if (endpoint === undefined && !isModels && !isBudgets) {
    return unservedApi(request, response, path);
  }
  const wire = endpoint?.wire;
  context.metrics.requests += 1;
  const authentication = context.access.authenticate(credentials(request));
  if (!authentication.ok) {
    request.resume();
    const type = authentication.status === 401 ? 'authentication_error' : 'permission_error';
    sendError(response, wire, authentication.status, type, authentication.message);
    return true;
  }
  if (isBudgets) {
    listBudgets(context, request, response, authentication.principal);
    return true;
  }
  if (endpoint === undefined) {
    listModels(context, request, response, modelId);
    return true;
  }
  const refused = refusal(context, request, endpoint);
  if (refused !== undefined) {
    request.resume();
    sendError(response, wire, refused.status, refused.type, refused.message, refused.extra);
    return true;
  }
  const client = track(context, response);
  const running: Promise<void> = pipeline(
    context,
    request,
    response,
    endpoint,
    authentication.principal,
    client,
  )
    .catch((error: unknown) => {
      if (error instanceof RequestError) {
        // OpenAI's error object names the field at fault in `param`; Anthropic's has none.
        const param =
          error.param === undefined || wire === 'messages' ? undefined : { param: error.param };
        const { status, type, message, headers, code } = error;
        sendError(response, wire, status, type, message, headers, code, param);
        return;
      }
      context.log.error('request failed', { error: (error as Error).message });
      sendError(response, wire, 500, 'api_error', 'the gateway failed on this request');
    })
    .finally(() => context.running.delete(running));
  context.running.add(running);
  return true;
}
