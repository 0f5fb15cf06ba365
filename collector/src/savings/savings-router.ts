/** `GET /api/savings`: the savings ledger (behind the read-token guard of `/api/*`). */
import { Router } from 'express';
import type { ClickHouseEngine } from '../store/engine.js';
import { SavingsQuerySchema, savingsLedger } from './savings.js';
import { formatIssues } from '@modelmaxx/semconv';

export interface SavingsRouterOptions {
  /** A store with a ClickHouse engine (`store.engine.query`). */
  store: object;
  database?: string;
  /** Clock (tests). */
  now?: () => number;
}

export function savingsRouter(options: SavingsRouterOptions): Router {
  const engine = (options.store as { engine?: Pick<ClickHouseEngine, 'query'> }).engine;
  if (typeof engine?.query !== 'function') {
    throw new TypeError('savingsRouter needs a store with a ClickHouse engine');
  }
  const router = Router();
  router.get('/api/savings', (request, response, next) => {
    const parsed = SavingsQuerySchema.safeParse(request.query);
    if (!parsed.success) {
      response.status(400).json({
        error: formatIssues(parsed.error.issues, { root: 'query' }),
      });
      return;
    }
    savingsLedger(engine, parsed.data, {
      ...(options.database === undefined ? {} : { database: options.database }),
      ...(options.now === undefined ? {} : { now: options.now() }),
    }).then((ledger) => {
      response.set('Cache-Control', 'no-store').json(ledger);
    }, next);
  });
  return router;
}
