/** `GET /healthz` (liveness), `GET /readyz` (the insert path works) and `GET /metrics` (Prometheus text). */
import { Router, type RequestHandler } from 'express';
import type { CollectorMetrics } from '../metrics.js';
import type { Readiness, SpanStore } from '../store/span-store.js';

export function healthRouter(store: SpanStore): Router {
  const router = Router();
  router.get('/healthz', (_request, response) => {
    response.status(200).json({ status: 'ok' });
  });
  // Ready when the insert path works and ClickHouse answers (for a load balancer or a
  // probe: no token, a short body, never an error message or a path).
  router.get('/readyz', async (_request, response) => {
    let readiness: Readiness;
    try {
      readiness = await store.readiness();
    } catch {
      readiness = { ready: false, reason: 'the readiness check failed' };
    }
    if (readiness.ready) {
      response.status(200).json({ status: 'ready' });
      return;
    }
    response
      .status(503)
      .setHeader('Retry-After', '5')
      .json({ status: 'unavailable', reason: readiness.reason ?? 'not ready' });
  });
  return router;
}

export function metricsRouter(
  store: SpanStore,
  metrics: CollectorMetrics,
  guard: RequestHandler,
): Router {
  const router = Router();
  router.get('/metrics', guard, (_request, response) => {
    response
      .status(200)
      .type('text/plain; version=0.0.4; charset=utf-8')
      .send(metrics.render(store.metrics()));
  });
  return router;
}
