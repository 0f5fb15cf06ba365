/**
 * The built-in dashboard: `GET /` serves the page and `GET /dashboard/*` its
 * script, style sheet and Chart.js (straight from `node_modules`, no build
 * step). These hold no data and need no token; the page fetches its data from
 * `GET /api/dashboard/overview` and `/api/dashboard/traces` (plus Jaeger's
 * `/api/traces/{id}`), which sit behind the read-token guard of `/api/*`.
 *
 * The page's files live in `src/dashboard/static/` and are found relative to
 * this module, which works from `src/` (tests) and from `dist/` alike.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { TableReader } from '../store/span-store.js';
import { DASHBOARD_WINDOWS, DashboardQueries, dashboardWindow } from './dashboard-queries.js';
import { formatIssues } from '@modelmaxx/semconv';

const STATIC_DIR = fileURLToPath(new URL('../../src/dashboard/static/', import.meta.url));
const CHART_DIR = dirname(createRequire(import.meta.url).resolve('chart.js'));

const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

/** URL path → file and content type. Nothing else is served. */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: join(STATIC_DIR, 'index.html'), type: HTML },
  // The page's ES modules (app.mjs imports the others).
  ...Object.fromEntries(
    ['app', 'charts', 'dom', 'format', 'tables', 'trace-view'].map((name) => [
      `/dashboard/${name}.mjs`,
      { file: join(STATIC_DIR, `${name}.mjs`), type: JS },
    ]),
  ),
  '/dashboard/style.css': { file: join(STATIC_DIR, 'style.css'), type: CSS },
  '/dashboard/vendor/chart.umd.min.js': { file: join(CHART_DIR, 'chart.umd.min.js'), type: JS },
  '/dashboard/vendor/chart.umd.min.js.map': {
    file: join(CHART_DIR, 'chart.umd.min.js.map'),
    type: JSON_TYPE,
  },
};

/**
 * Only our own origin; no inline script. Chart.js sizes its canvas through
 * element styles, hence `'unsafe-inline'` for styles only.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The page, script, styles and Chart.js; mount before the `/api` guard. */
export function dashboardAssetsRouter(): Router {
  const router = Router();
  const cache = new Map<string, Buffer>();
  const serve = async (request: Request, response: Response) => {
    const asset = ASSETS[request.path];
    if (asset === undefined) return false;
    let body = cache.get(asset.file);
    if (body === undefined) {
      body = await readFile(asset.file);
      cache.set(asset.file, body);
    }
    response
      .status(200)
      .set({
        'Content-Type': asset.type,
        'Cache-Control': 'no-cache',
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        ...(asset.type === HTML ? { 'Content-Security-Policy': CONTENT_SECURITY_POLICY } : {}),
      })
      .send(request.method === 'HEAD' ? undefined : body);
    return true;
  };
  const handler = (request: Request, response: Response, next: NextFunction) => {
    serve(request, response).then((served) => {
      if (!served) next();
    }, next);
  };
  router.get('/', handler);
  router.get('/dashboard/{*rest}', handler);
  return router;
}

const OverviewQuerySchema = z.object({
  minutes: z.coerce
    .number()
    .int()
    .refine((value) => DASHBOARD_WINDOWS[value] !== undefined, {
      message: `minutes must be one of ${Object.keys(DASHBOARD_WINDOWS).join(', ')}`,
    })
    .default(60),
});

const TracesQuerySchema = OverviewQuerySchema.extend({
  limit: z.coerce.number().int().min(1).max(200).default(25),
});

export interface DashboardApiOptions {
  /** The store's read side (read-only queries over its database). */
  reader: TableReader;
  /** Clock (tests). */
  now?: () => number;
}

/** `GET /api/dashboard/overview` and `/api/dashboard/traces`; mount after the `/api` guard. */
export function dashboardApiRouter(options: DashboardApiOptions): Router {
  const queries = new DashboardQueries(options.reader);
  const now = options.now ?? Date.now;
  const router = Router();

  const parse = <T>(schema: z.ZodType<T>, request: Request, response: Response): T | undefined => {
    const result = schema.safeParse(request.query);
    if (result.success) return result.data;
    response.status(400).json({
      error: formatIssues(result.error.issues, { root: 'query' }),
    });
    return undefined;
  };

  router.get('/api/dashboard/overview', (request, response, next) => {
    const query = parse(OverviewQuerySchema, request, response);
    if (query === undefined) return;
    queries.overview(dashboardWindow(query.minutes, now())).then((overview) => {
      response.set('Cache-Control', 'no-store').json(overview);
    }, next);
  });

  router.get('/api/dashboard/traces', (request, response, next) => {
    const query = parse(TracesQuerySchema, request, response);
    if (query === undefined) return;
    queries.recentTraces(dashboardWindow(query.minutes, now()), query.limit).then((traces) => {
      response.set('Cache-Control', 'no-store').json({ traces });
    }, next);
  });
  return router;
}
