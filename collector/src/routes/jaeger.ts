/**
 * Jaeger's HTTP query APIs over `otel_traces`, so Grafana's Jaeger data source
 * and the Jaeger UI can browse what is stored.
 *
 * v1 (what Grafana's Jaeger data source calls; answers wrapped in
 * `{ data, total, limit, offset, errors }`):
 * `GET /api/services`, `/api/services/{service}/operations`,
 * `/api/operations?service=&spanKind=`, `/api/dependencies?endTs=&lookback=` (ms;
 * service-to-service calls for the service graph), `/api/traces` (search: `service`,
 * `operation`, `tags` (JSON or logfmt) / `tag=key:value`, `start`/`end` in µs
 * or `lookback`, `minDuration`/`maxDuration` as Go durations, `limit`; or
 * `traceID=…` repeated), `/api/traces/{traceID}` (404 in Jaeger's error shape).
 *
 * v3 (what the current Jaeger UI lists and searches with): `GET
 * /api/v3/services`, `/api/v3/operations?service=&spanKind=`,
 * `/api/v3/trace-summaries?query.serviceName=…` with `query.operationName`,
 * `query.startTimeMin|Max` (RFC 3339), `query.durationMin|Max`,
 * `query.searchDepth`, `query.attributes`.
 *
 * Like Jaeger's query service: `prettyPrint=true` (any value but empty or `false`)
 * indents a reply by four spaces; `/api/metrics/*` (the Monitor tab's span metrics)
 * answers 501 in the v1 error shape, as Jaeger does when no metrics backend is
 * configured; a path parameter with bad percent-encoding (`/api/traces/%zz`) is a 400.
 *
 * Mount it after the read-token guard of `/api/*`.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import { summarizeTrace, toJaegerTraces } from '../jaeger/jaeger-model.js';
import type { SummarySpan } from '../jaeger/jaeger-model.js';
import {
  dependencyWindow,
  required,
  single,
  v1TraceSearch,
  v3TraceSearch,
} from '../jaeger/jaeger-params.js';
import { JaegerQueries, JaegerQueryError, normalizeTraceId } from '../jaeger/jaeger-query.js';
import type { TableReader } from '../store/span-store.js';

export interface JaegerRouterOptions {
  /** The store's read side (read-only queries over its database). */
  reader: TableReader;
  /** Clock for default windows (tests). */
  now?: () => number;
}

class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

const v1 = <T>(data: T[]) => ({ data, total: data.length, limit: 0, offset: 0, errors: null });

function statusOf(error: unknown): number {
  if (error instanceof JaegerQueryError) return 400;
  if (error instanceof NotFoundError) return 404;
  return 500;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Jaeger's `prettyPrint` query parameter: anything but absent, empty or `false` indents. */
function prettyPrintOf(request: Request): boolean {
  const value: unknown = request.query.prettyPrint;
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  return typeof last === 'string' && last !== '' && last !== 'false';
}

/** Sends `body` as JSON, indented by four spaces (as Jaeger does) when `prettyPrint` asks. */
function reply(request: Request, response: Response, status: number, body: unknown): void {
  if (!prettyPrintOf(request)) {
    response.status(status).json(body);
    return;
  }
  response
    .status(status)
    .type('application/json')
    .send(JSON.stringify(body, null, 4));
}

/** Jaeger v1's error reply: `{ data: null, total: 0, …, errors: [{ code, msg }] }`. */
function v1Error(request: Request, response: Response, code: number, msg: string): void {
  reply(request, response, code, {
    data: null,
    total: 0,
    limit: 0,
    offset: 0,
    errors: [{ code, msg }],
  });
}

/** v1 handlers answer errors as `{ data: null, errors: [{ code, msg }] }`. */
function v1Handler(handler: (request: Request) => Promise<unknown>) {
  return async (request: Request, response: Response) => {
    try {
      reply(request, response, 200, await handler(request));
    } catch (error) {
      v1Error(request, response, statusOf(error), messageOf(error));
    }
  };
}

/** v3 handlers answer errors like Jaeger's HTTP gateway: `{ error: { httpCode, message } }`. */
function v3Handler(handler: (request: Request) => Promise<unknown>) {
  return async (request: Request, response: Response) => {
    try {
      reply(request, response, 200, await handler(request));
    } catch (error) {
      const httpCode = statusOf(error);
      reply(request, response, httpCode, { error: { httpCode, message: messageOf(error) } });
    }
  };
}

/**
 * The router decodes path parameters when it matches a route and passes a
 * `URIError` (with `status` 400) on for bad percent-encoding such as `%zz`.
 */
export function isBadPathEncoding(error: unknown): error is URIError {
  return error instanceof URIError && (error as URIError & { status?: unknown }).status === 400;
}

/** What each endpoint answers (before the v1 or v3 wrapping of errors). */
class JaegerApi {
  private readonly queries: JaegerQueries;
  private readonly now: () => number;

  constructor(options: JaegerRouterOptions) {
    this.queries = new JaegerQueries(options.reader);
    this.now = options.now ?? Date.now;
  }

  private nowNs(): bigint {
    return BigInt(Math.round(this.now() * 1000)) * 1000n;
  }

  /** The traces with these ids, in the order asked. */
  private async tracesOf(ids: string[]) {
    const traces = toJaegerTraces(await this.queries.spansOf(ids));
    const order = new Map(ids.map((id, index) => [id, index]));
    return traces.sort((a, b) => (order.get(a.traceID) ?? 0) - (order.get(b.traceID) ?? 0));
  }

  services(): Promise<string[]> {
    return this.queries.services();
  }

  /** An operation list for a service, as v1 and v3 `operations` answer it. */
  operations(request: Request) {
    return this.queries.operations(
      required(request.query.service, 'service'),
      single(request.query.spanKind, 'spanKind'),
    );
  }

  /** v1 `/api/services/{service}/operations`: names only, once each. */
  async operationNames(request: Request): Promise<string[]> {
    const operations = await this.queries.operations(String(request.params.service));
    return [...new Set(operations.map((operation) => operation.name))];
  }

  /** v1 `/api/traces`: the traces named by `traceID` (repeated), else a search. */
  async traces(request: Request) {
    const ids = [request.query.traceID]
      .flat()
      .filter((id): id is string => typeof id === 'string' && id !== '')
      .map(normalizeTraceId);
    if (ids.length > 0) return this.tracesOf([...new Set(ids)]);
    const search = v1TraceSearch(request.query, this.nowNs());
    return this.tracesOf(await this.queries.findTraceIds(search));
  }

  async trace(request: Request) {
    const traces = await this.tracesOf([normalizeTraceId(String(request.params.traceId))]);
    if (traces.length === 0) throw new NotFoundError('trace not found');
    return traces;
  }

  async dependencies(request: Request) {
    const { startNs, endNs } = dependencyWindow(request.query, this.nowNs());
    return this.queries.dependencies(startNs, endNs);
  }

  /** v3 `/api/v3/trace-summaries`: one summary per trace found, newest first. */
  async traceSummaries(request: Request) {
    const ids = await this.queries.findTraceIds(v3TraceSearch(request.query, this.nowNs()));
    const byTrace = new Map<string, SummarySpan[]>(ids.map((id) => [id, []]));
    for (const row of await this.queries.summarySpansOf(ids)) byTrace.get(row.TraceId)?.push(row);
    return [...byTrace.values()]
      .filter((rows) => rows.length > 0)
      .map((rows) => summarizeTrace(rows));
  }
}

/**
 * Span metrics (Jaeger's Monitor tab) need a metrics backend this collector does not
 * have: Jaeger answers these with 501 and its v1 error shape, and the UI shows the tab
 * as not configured instead of as failing.
 */
function metricsNotConfigured(request: Request, response: Response): void {
  v1Error(
    request,
    response,
    501,
    'trace metrics are currently disabled - no metrics backend configured',
  );
}

/**
 * A bad percent-encoding in `/api/traces/:traceId` or `/api/services/:service/operations`
 * fails while the route is matched, before any handler runs: answer it here, in Jaeger's
 * v1 error shape, instead of letting it fall through as an internal error.
 */
function badPathEncoding(error: unknown, request: Request, response: Response, next: NextFunction) {
  if (!isBadPathEncoding(error) || response.headersSent) {
    next(error);
    return;
  }
  v1Error(request, response, 400, `bad percent-encoding in the path: ${error.message}`);
}

export function jaegerRouter(options: JaegerRouterOptions): Router {
  const api = new JaegerApi(options);
  const router = Router();
  router.get(
    '/api/services',
    v1Handler(async () => v1(await api.services())),
  );
  router.get(
    '/api/services/:service/operations',
    v1Handler(async (request) => v1(await api.operationNames(request))),
  );
  router.get(
    '/api/operations',
    v1Handler(async (request) => v1(await api.operations(request))),
  );
  router.get(
    '/api/traces',
    v1Handler(async (request) => v1(await api.traces(request))),
  );
  router.get(
    '/api/traces/:traceId',
    v1Handler(async (request) => v1(await api.trace(request))),
  );
  router.get(
    '/api/dependencies',
    v1Handler(async (request) => v1(await api.dependencies(request))),
  );
  router.get(
    '/api/v3/services',
    v3Handler(async () => ({ services: await api.services() })),
  );
  router.get(
    '/api/v3/operations',
    v3Handler(async (request) => ({ operations: await api.operations(request) })),
  );
  router.get(
    '/api/v3/trace-summaries',
    v3Handler(async (request) => ({ summaries: await api.traceSummaries(request) })),
  );
  router.get('/api/metrics/{*rest}', metricsNotConfigured);
  router.use(badPathEncoding);
  return router;
}
