/** `GET /healthz` (liveness), `GET /readyz` (ClickHouse answers) and `GET /metrics` (Prometheus text). */
import { Router, type RequestHandler } from 'express';
import type { CollectorMetrics } from '../metrics.js';
import type { SpanStore } from '../store/span-store.js';

export function healthRouter(store: SpanStore): Router {
  const router = Router();
  router.get('/healthz', (_request, response) => {
    response.status(200).json({ status: 'ok' });
  });
  // Ready when ClickHouse answers a query (e.g. for a load balancer's health check).
  router.get('/readyz', async (_request, response) => {
    try {
      await store.querySql('SELECT 1', { maxRows: 1, maxExecutionSeconds: 2 });
      response.status(200).json({ status: 'ready' });
    } catch (error) {
      response
        .status(503)
        .setHeader('Retry-After', '5')
        .json({ status: 'unavailable', error: (error as Error).message });
    }
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
