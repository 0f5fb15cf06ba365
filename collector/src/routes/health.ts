/** `GET /healthz` (liveness) and `GET /metrics` (Prometheus text). */
import { Router, type RequestHandler } from 'express';
import type { CollectorMetrics } from '../metrics.js';
import type { SpanStore } from '../store/span-store.js';

export function healthRouter(): Router {
  const router = Router();
  router.get('/healthz', (_request, response) => {
    response.status(200).json({ status: 'ok' });
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
