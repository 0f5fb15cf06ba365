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
import type { ClickHouseEngine } from '../store/engine.js';
import { Router, type NextFunction, type Request, type Response } from 'express';
import {
  JaegerQueries,
  JaegerQueryError,
  normalizeTraceId,
  parseGoDuration,
  parseTags,
  type TraceSearch,
} from '../jaeger/jaeger-query.js';
import { summarizeTrace, toJaegerTraces } from '../jaeger/jaeger-model.js';
import type { SummarySpan } from '../jaeger/jaeger-model.js';

export interface JaegerRouterOptions {
  /** The store (its ClickHouse engine is used for read-only queries). */
  store: object;
  /** Database of the tables (default `modelmaxx`). */
  database?: string;
  /** Clock for default windows (tests). */
  now?: () => number;
}

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 1500;
const DEFAULT_LOOKBACK_NS = 3600n * 1_000_000_000n;
const DEFAULT_DEPENDENCIES_LOOKBACK_NS = 24n * DEFAULT_LOOKBACK_NS;

class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

function engineOf(store: object): Pick<ClickHouseEngine, 'query'> {
  const engine = (store as { engine?: unknown }).engine;
  if (
    typeof engine !== 'object' ||
    engine === null ||
    typeof (engine as { query?: unknown }).query !== 'function'
  ) {
    throw new TypeError('jaegerRouter needs a store with a ClickHouse engine (store.engine.query)');
  }
  return engine as Pick<ClickHouseEngine, 'query'>;
}

const v1 = <T>(data: T[]) => ({ data, total: data.length, limit: 0, offset: 0, errors: null });

function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    if (value.length === 0) return undefined;
    value = value[value.length - 1];
  }
  if (typeof value !== 'string') throw new JaegerQueryError(`invalid ${name}`);
  return value;
}

function integer(value: string | undefined, name: string): bigint | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^[0-9]+$/.test(value))
    throw new JaegerQueryError(`invalid ${name} ${JSON.stringify(value)}`);
  return BigInt(value);
}

function limitOf(value: string | undefined): number {
  const parsed = integer(value, 'limit');
  if (parsed === undefined || parsed === 0n) return DEFAULT_LIMIT;
  return Number(parsed > BigInt(MAX_LIMIT) ? BigInt(MAX_LIMIT) : parsed);
}

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

function rfc3339Nanos(value: string | undefined, name: string): bigint | undefined {
  if (value === undefined || value === '') return undefined;
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(
    value,
  );
  const ms = match === null ? Number.NaN : Date.parse(`${match[1]}${match[3]}`);
  if (match === null || !Number.isFinite(ms)) {
    throw new JaegerQueryError(`invalid ${name} ${JSON.stringify(value)}, want RFC 3339`);
  }
  const fraction = (match[2] ?? '').padEnd(9, '0');
  return BigInt(ms) * 1_000_000n + BigInt(fraction);
}

export function jaegerRouter(options: JaegerRouterOptions): Router {
  const queries = new JaegerQueries(
    engineOf(options.store),
    options.database === undefined ? {} : { database: options.database },
  );
  const nowNs = () => BigInt(Math.round((options.now?.() ?? Date.now()) * 1000)) * 1000n;
  const router = Router();

  const tracesOf = async (ids: string[]) => {
    const traces = toJaegerTraces(await queries.spansOf(ids));
    const order = new Map(ids.map((id, index) => [id, index]));
    return traces.sort((a, b) => (order.get(a.traceID) ?? 0) - (order.get(b.traceID) ?? 0));
  };

  router.get(
    '/api/services',
    v1Handler(async () => v1(await queries.services())),
  );

  router.get(
    '/api/services/:service/operations',
    v1Handler(async (request) => {
      const operations = await queries.operations(String(request.params.service));
      return v1([...new Set(operations.map((operation) => operation.name))]);
    }),
  );

  router.get(
    '/api/operations',
    v1Handler(async (request) => {
      const service = single(request.query.service, 'service');
      if (service === undefined || service === '') {
        throw new JaegerQueryError('parameter "service" is required');
      }
      return v1(await queries.operations(service, single(request.query.spanKind, 'spanKind')));
    }),
  );

  router.get(
    '/api/traces',
    v1Handler(async (request) => {
      const query = request.query;
      const ids = [query.traceID]
        .flat()
        .filter((id): id is string => typeof id === 'string' && id !== '')
        .map(normalizeTraceId);
      if (ids.length > 0) return v1(await tracesOf([...new Set(ids)]));
      const service = single(query.service, 'service');
      if (service === undefined || service === '') {
        throw new JaegerQueryError('parameter "service" is required');
      }
      const endUs = integer(single(query.end, 'end'), 'end');
      const startUs = integer(single(query.start, 'start'), 'start');
      const endNs = endUs === undefined ? nowNs() : endUs * 1000n;
      const lookback = single(query.lookback, 'lookback');
      const startNs =
        startUs !== undefined
          ? startUs * 1000n
          : endNs -
            (lookback === undefined || lookback === '' || lookback === 'custom'
              ? DEFAULT_LOOKBACK_NS
              : parseGoDuration(lookback));
      const minDuration = single(query.minDuration, 'minDuration');
      const maxDuration = single(query.maxDuration, 'maxDuration');
      const operation = single(query.operation, 'operation');
      const search: TraceSearch = {
        service,
        tags: parseTags(query.tags, query.tag),
        startNs,
        endNs,
        limit: limitOf(single(query.limit, 'limit')),
        ...(operation === undefined || operation === '' ? {} : { operation }),
        ...(minDuration === undefined || minDuration === ''
          ? {}
          : { minDurationNs: parseGoDuration(minDuration) }),
        ...(maxDuration === undefined || maxDuration === ''
          ? {}
          : { maxDurationNs: parseGoDuration(maxDuration) }),
      };
      if (search.startNs > search.endNs) throw new JaegerQueryError('start is after end');
      return v1(await tracesOf(await queries.findTraceIds(search)));
    }),
  );

  router.get(
    '/api/traces/:traceId',
    v1Handler(async (request) => {
      const id = normalizeTraceId(String(request.params.traceId));
      const traces = await tracesOf([id]);
      if (traces.length === 0) throw new NotFoundError('trace not found');
      return v1(traces);
    }),
  );

  router.get(
    '/api/dependencies',
    v1Handler(async (request) => {
      const endMs = integer(single(request.query.endTs, 'endTs'), 'endTs');
      const lookbackMs = integer(single(request.query.lookback, 'lookback'), 'lookback');
      const endNs = endMs === undefined ? nowNs() : endMs * 1_000_000n;
      const startNs =
        endNs -
        (lookbackMs === undefined ? DEFAULT_DEPENDENCIES_LOOKBACK_NS : lookbackMs * 1_000_000n);
      return v1(await queries.dependencies(startNs, endNs));
    }),
  );

  router.get(
    '/api/v3/services',
    v3Handler(async () => ({ services: await queries.services() })),
  );

  router.get(
    '/api/v3/operations',
    v3Handler(async (request) => {
      const service = single(request.query.service, 'service');
      if (service === undefined || service === '') {
        throw new JaegerQueryError('parameter "service" is required');
      }
      return {
        operations: await queries.operations(service, single(request.query.spanKind, 'spanKind')),
      };
    }),
  );

  router.get(
    '/api/v3/trace-summaries',
    v3Handler(async (request) => {
      const query = request.query;
      const get = (name: string) => single(query[`query.${name}`], `query.${name}`);
      const service = get('serviceName');
      if (service === undefined || service === '') {
        throw new JaegerQueryError('parameter "query.serviceName" is required');
      }
      const endNs = rfc3339Nanos(get('startTimeMax'), 'query.startTimeMax') ?? nowNs();
      const startNs =
        rfc3339Nanos(get('startTimeMin'), 'query.startTimeMin') ?? endNs - DEFAULT_LOOKBACK_NS;
      const attributes = parseTags(query['query.attributes'], undefined);
      for (const [key, value] of Object.entries(query)) {
        const match = /^query\.attributes\[(.+)\]$/.exec(key);
        if (match?.[1] !== undefined) attributes[match[1]] = String(single(value, key) ?? '');
      }
      const operation = get('operationName');
      const durationMin = get('durationMin');
      const durationMax = get('durationMax');
      const search: TraceSearch = {
        service,
        tags: attributes,
        startNs,
        endNs,
        limit: limitOf(get('searchDepth')),
        ...(operation === undefined || operation === '' ? {} : { operation }),
        ...(durationMin === undefined || durationMin === ''
          ? {}
          : { minDurationNs: parseGoDuration(durationMin) }),
        ...(durationMax === undefined || durationMax === ''
          ? {}
          : { maxDurationNs: parseGoDuration(durationMax) }),
      };
      if (search.startNs > search.endNs) {
        throw new JaegerQueryError('query.startTimeMin is after query.startTimeMax');
      }
      const ids = await queries.findTraceIds(search);
      const byTrace = new Map<string, SummarySpan[]>(ids.map((id) => [id, []]));
      for (const row of await queries.summarySpansOf(ids)) byTrace.get(row.TraceId)?.push(row);
      return {
        summaries: [...byTrace.values()]
          .filter((rows) => rows.length > 0)
          .map((rows) => summarizeTrace(rows)),
      };
    }),
  );

  // Span metrics (Jaeger's Monitor tab) need a metrics backend this collector does not
  // have: Jaeger answers these with 501 and its v1 error shape, and the UI shows the tab
  // as not configured instead of as failing.
  router.get('/api/metrics/{*rest}', (request, response) => {
    v1Error(
      request,
      response,
      501,
      'trace metrics are currently disabled - no metrics backend configured',
    );
  });

  // A bad percent-encoding in `/api/traces/:traceId` or `/api/services/:service/operations`
  // fails while the route is matched, before any handler runs: answer it here, in Jaeger's
  // v1 error shape, instead of letting it fall through as an internal error.
  router.use((error: unknown, request: Request, response: Response, next: NextFunction) => {
    if (!isBadPathEncoding(error) || response.headersSent) {
      next(error);
      return;
    }
    v1Error(request, response, 400, `bad percent-encoding in the path: ${error.message}`);
  });

  return router;
}
