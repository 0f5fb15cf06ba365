/**
 * `createApp` wires the routes onto an express app; it never listens (see
 * `index.ts`). One error handler maps errors onto HTTP and OTLP: malformed
 * bodies → 400 with what is wrong, too large → 413, wrong type → 415, missing
 * or wrong token → 401, overload → 429/503 with `Retry-After`, bad
 * percent-encoding in a path → 400, a foreign `Host` → 421 and a foreign
 * `Origin` → 403 (see `requireSameSite`), anything else → 500 (logged with its
 * stack). Replies to `/v1/traces` use the request's encoding (`google.rpc.Status`
 * as protobuf or JSON).
 */
import express, {
  type ErrorRequestHandler,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import type { Logger } from 'pino';
import { HostPolicy, requireNonSimpleBody, requireSameSite, requireToken } from './auth.js';
import type { Config } from './config.js';
import { isHttpError, OverloadedError, PayloadTooLargeError, UnauthorizedError } from './errors.js';
import { dashboardApiRouter, dashboardAssetsRouter } from './dashboard/dashboard-router.js';
import { CollectorMetrics } from './metrics.js';
import { CONTENT_TYPES, encodeStatus, grpcCodeForStatus } from './otlp/encode-response.js';
import { feedbackRouter, queryRouter } from './routes/api.js';
import { healthRouter, metricsRouter } from './routes/health.js';
import { isBadPathEncoding, jaegerRouter } from './routes/jaeger.js';
import { replyEncodingOf, tracesRouter } from './routes/traces.js';
import { savingsRouter } from './savings/savings-router.js';
import type { SpanStore } from './store/span-store.js';

export interface CreateAppOptions {
  config: Config;
  /** Writes, feedback and health; its read side (`StoreReader`) serves the read routes. */
  store: SpanStore;
  logger: Logger;
  metrics?: CollectorMetrics;
}

/** The route label for metrics: known paths as they are, everything else `other`. */
const KNOWN_ROUTES = new Set([
  '/v1/traces',
  '/v1/feedback',
  '/api/stats',
  '/api/sql',
  '/api/savings',
  '/healthz',
  '/readyz',
  '/metrics',
]);

/** Counts every answered request by route and status (`/metrics`). */
function requestCounter(metrics: CollectorMetrics): RequestHandler {
  return (request, response, next) => {
    response.on('finish', () => {
      metrics.countRequest(
        KNOWN_ROUTES.has(request.path) ? request.path : 'other',
        response.statusCode,
      );
    });
    next();
  };
}

/** The routes in the order the guards need: ingest under `/v1`, reads under `/api`. */
function mountRoutes(
  app: express.Express,
  { config, store, logger, metrics }: Required<CreateAppOptions>,
): void {
  const ingestGuard = requireToken(config.ingestToken, 'ingest');
  const readGuard = requireToken(config.readToken, 'read');
  // Before any route: what a web page on another site (or a DNS-rebound name) sends.
  app.use(requireSameSite(new HostPolicy(config)));
  app.use(healthRouter(store));
  // The dashboard's page and scripts hold no data; what they fetch is under /api.
  app.use(dashboardAssetsRouter());
  app.use('/v1', ingestGuard);
  app.use(tracesRouter({ config, store, logger, metrics }));
  app.use(feedbackRouter(store));
  app.use('/api', readGuard);
  app.use('/api', requireNonSimpleBody(config.readToken));
  app.use(queryRouter(config, store));
  app.use(jaegerRouter({ reader: store }));
  app.use(dashboardApiRouter({ reader: store }));
  app.use(savingsRouter({ reader: store }));
  app.use(metricsRouter(store, metrics, readGuard));
}

/** The status and message an error is answered with (and logged as). */
function errorStatus(
  error: unknown,
  request: Request,
  response: Response,
  logger: Logger,
): { status: number; message: string } {
  if (isBadPathEncoding(error)) {
    const message = `bad percent-encoding in the path: ${error.message}`;
    logger.debug({ status: 400, path: request.path, reason: message }, 'request refused');
    return { status: 400, message };
  }
  if (!isHttpError(error)) {
    logger.error({ err: error, path: request.path }, 'request failed');
    return { status: 500, message: 'internal error' };
  }
  const { status, message } = error;
  if (error instanceof OverloadedError) {
    response.setHeader('Retry-After', String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
  }
  if (error instanceof UnauthorizedError) {
    response.setHeader('WWW-Authenticate', 'Bearer realm="modelmaxx"');
  }
  if (error instanceof PayloadTooLargeError) response.setHeader('Connection', 'close');
  if (status >= 500) logger.error({ err: error, path: request.path }, message);
  else logger.debug({ status, path: request.path, reason: message }, 'request refused');
  return { status, message };
}

/** The one error handler: `/v1/traces` in the request's OTLP encoding, the rest as JSON. */
function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, request: Request, response: Response, _next: NextFunction) => {
    const { status, message } = errorStatus(error, request, response, logger);
    if (response.headersSent) {
      response.end();
      return;
    }
    if (request.path === '/v1/traces') {
      const encoding = replyEncodingOf(request);
      response
        .status(status)
        .type(CONTENT_TYPES[encoding])
        .send(encodeStatus(encoding, grpcCodeForStatus(status), message));
      return;
    }
    response.status(status).json({ error: message });
  };
}

export function createApp({
  config,
  store,
  logger,
  metrics = new CollectorMetrics(),
}: CreateAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestCounter(metrics));
  mountRoutes(app, { config, store, logger, metrics });
  app.use((request: Request, response: Response) => {
    response.status(404).json({ error: `no route for ${request.method} ${request.path}` });
  });
  app.use(errorHandler(logger));
  return app;
}
