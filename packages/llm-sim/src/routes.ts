import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonObject } from './context.js';
import type { Dispatcher } from './dispatch.js';
import { POST_PATHS } from './dispatch.js';
import type { ErrorShape } from './http-util.js';
import { readBody, writeJson } from './http-util.js';
import type { ModelRegistry } from './model-registry.js';
import type { SimModelConfig } from './models.js';
import type { Responder } from './responder.js';
import { hashParts } from './random.js';

const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** What the request handler reads and calls. */
export interface RouteTargets {
  seed: number;
  registry: ModelRegistry;
  responder: Responder;
  dispatcher: Dispatcher;
}

/** `/v1/…` path of a request URL, with or without the `/v1` prefix and trailing slash. */
function pathOf(url: string): string {
  const query = url.indexOf('?');
  let path = query < 0 ? url : url.slice(0, query);
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path.startsWith('/v1/') ? path : `/v1${path}`;
}

function requestIdOf(seed: number, index: number): string {
  const part = (name: string): string => hashParts(name, seed, index).toString(16).padStart(8, '0');
  return `req_${part('request')}${part('request2')}${part('request3')}`;
}

/** The HTTP request handler: GET model list, model and health; POST to the dispatcher; 404 else. */
export class SimRoutes {
  /** HTTP requests received (all paths, including errors). */
  requests = 0;

  private readonly targets: RouteTargets;

  constructor(targets: RouteTargets) {
    this.targets = targets;
  }

  readonly handle = (request: IncomingMessage, response: ServerResponse): void => {
    const { targets } = this;
    const requestId = requestIdOf(targets.seed, ++this.requests);
    response.setHeader('x-request-id', requestId);
    response.setHeader('request-id', requestId);
    const url = request.url ?? '/';
    const path = pathOf(url);
    const shape: ErrorShape =
      path.startsWith('/v1/messages') || request.headers['anthropic-version'] !== undefined
        ? 'anthropic'
        : 'openai';
    if (request.method === 'GET' && answerGet(targets, path, shape, response, requestId)) return;
    if (request.method === 'POST' && POST_PATHS.has(path)) {
      readBody(request, MAX_BODY_BYTES).then(
        (raw) => targets.dispatcher.dispatch(path, request, response, raw, requestId),
        () =>
          targets.responder.sendError(response, shape, 413, requestId, 'Request body too large.'),
      );
      return;
    }
    request.resume();
    const message = `Unknown request URL: ${request.method ?? 'GET'} ${url}.`;
    targets.responder.sendError(response, shape, 404, requestId, message, { code: 'unknown_url' });
  };
}

/** Answers the GET endpoints; false when `path` is none of them. */
function answerGet(
  { registry, responder }: RouteTargets,
  path: string,
  shape: ErrorShape,
  response: ServerResponse,
  requestId: string,
): boolean {
  if (path === '/v1/models') {
    writeJson(response, 200, modelList(registry.configs(), shape));
    return true;
  }
  if (path.startsWith('/v1/models/')) {
    const state = registry.lookup(decodeURIComponent(path.slice('/v1/models/'.length)));
    if (state) writeJson(response, 200, modelEntry(state.config, shape));
    else
      responder.sendError(response, shape, 404, requestId, `The model does not exist.`, {
        code: 'model_not_found',
      });
    return true;
  }
  if (path === '/v1/healthz' || path === '/v1/health') {
    writeJson(response, 200, { status: 'ok' });
    return true;
  }
  return false;
}

function modelEntry(config: SimModelConfig, shape: ErrorShape): JsonObject {
  return shape === 'anthropic'
    ? {
        type: 'model',
        id: config.name,
        display_name: config.name,
        created_at: '2025-01-01T00:00:00Z',
      }
    : { id: config.name, object: 'model', created: 1735689600, owned_by: config.provider };
}

function modelList(configs: SimModelConfig[], shape: ErrorShape): JsonObject {
  const data = configs.map((config) => modelEntry(config, shape));
  if (shape === 'anthropic') {
    return {
      data,
      has_more: false,
      first_id: (data[0]?.['id'] as string | undefined) ?? null,
      last_id: (data[data.length - 1]?.['id'] as string | undefined) ?? null,
    };
  }
  return { object: 'list', data };
}
