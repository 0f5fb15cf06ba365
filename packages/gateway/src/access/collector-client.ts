/**
 * The access layer's client of a modelmaxx collector's HTTP API (`GET /api/stats` for alert
 * rules, `POST /api/sql` for the budget sync): its base URL, the read token as a bearer token,
 * a timeout, and an Error naming the path and status when it answers anything but 2xx or a body
 * of another shape.
 */
import type { z } from 'zod';

export interface CollectorEndpoint {
  /** The collector's base URL, or a function giving it (once it is known). */
  readonly url: string | (() => string | undefined);
  /** The collector's read token (`MODELMAXX_READ_TOKEN`), sent as `Authorization: Bearer`. */
  readonly token?: string | undefined;
  /** Default 10 s. */
  readonly timeoutMs?: number;
}

/** A request to the collector: `path` with `search` parameters, a JSON body makes it a POST. */
export interface CollectorRequest {
  readonly path: string;
  readonly search?: Readonly<Record<string, string>>;
  readonly json?: unknown;
}

/** Sends `request` to the collector and returns its JSON answer, checked against `schema`. */
export async function callCollector<T>(
  endpoint: CollectorEndpoint,
  request: CollectorRequest,
  schema: z.ZodType<T>,
): Promise<T> {
  const base = typeof endpoint.url === 'string' ? endpoint.url : endpoint.url();
  if (base === undefined) throw new Error('the collector is not listening yet');
  const url = new URL(request.path, base);
  for (const [name, value] of Object.entries(request.search ?? {})) {
    url.searchParams.set(name, value);
  }
  const headers: Record<string, string> = { accept: 'application/json' };
  if (endpoint.token !== undefined) headers.authorization = `Bearer ${endpoint.token}`;
  const post = request.json !== undefined;
  if (post) headers['content-type'] = 'application/json';
  const response = await fetch(url, {
    method: post ? 'POST' : 'GET',
    headers,
    ...(post ? { body: JSON.stringify(request.json) } : {}),
    signal: AbortSignal.timeout(endpoint.timeoutMs ?? 10_000),
  });
  const method = post ? 'POST' : 'GET';
  if (!response.ok) {
    throw new Error(
      `${method} ${url.pathname} answered ${response.status}: ${await response.text()}`,
    );
  }
  const parsed = schema.safeParse(await response.json());
  if (!parsed.success) {
    throw new Error(`${method} ${url.pathname}: unexpected body: ${parsed.error.message}`);
  }
  return parsed.data;
}
