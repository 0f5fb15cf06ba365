/** `GET /api/savings`: the savings ledger (behind the read-token guard of `/api/*`). */
import { Router } from 'express';
import type { TableReader } from '../store/span-store.js';
import { SavingsQuerySchema, savingsLedger } from './savings.js';
import { formatIssues } from '@modelmaxx/semconv';

export interface SavingsRouterOptions {
  /** The store's read side (read-only queries over its database). */
  reader: TableReader;
  /** Clock (tests). */
  now?: () => number;
}

export function savingsRouter(options: SavingsRouterOptions): Router {
  const { reader } = options;
  const router = Router();
  router.get('/api/savings', (request, response, next) => {
    const parsed = SavingsQuerySchema.safeParse(request.query);
    if (!parsed.success) {
      response.status(400).json({
        error: formatIssues(parsed.error.issues, { root: 'query' }),
      });
      return;
    }
    savingsLedger(reader, parsed.data, {
      database: reader.database,
      ...(options.now === undefined ? {} : { now: options.now() }),
    }).then((ledger) => {
      response.set('Cache-Control', 'no-store').json(ledger);
    }, next);
  });
  return router;
}
