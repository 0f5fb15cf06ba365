/**
 * Where `modelmaxx sql` and `modelmaxx report` send their SQL: a running
 * collector's read-only `/api/sql` (`--url`), or a data folder opened in this
 * process (`--data`, embedded ClickHouse; only while no collector holds it).
 */
import { join } from 'node:path';
import { openStore } from '@modelmaxx/collector';
import type { Tabular } from './format.js';

export interface QueryResult extends Tabular {
  truncated: boolean;
}

export interface QuerySource {
  query(sql: string): Promise<QueryResult>;
  close(): Promise<void>;
}

/** A query that ClickHouse (or the collector) refused; the message is ClickHouse's own. */
export class QueryFailedError extends Error {
  override readonly name = 'QueryFailedError';
}

export const DEFAULT_COLLECTOR_URL = 'http://127.0.0.1:4318';

export interface SourceOptions {
  url?: string | undefined;
  data?: string | undefined;
  token?: string | undefined;
  maxRows?: number;
  maxExecutionSeconds?: number;
}

export function httpSource(baseUrl: string, token: string | undefined): QuerySource {
  const endpoint = new URL('/api/sql', baseUrl);
  return {
    async query(sql) {
      let response: Response;
      try {
        response = await fetch(endpoint, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          },
          body: JSON.stringify({ query: sql }),
        });
      } catch (error) {
        throw new QueryFailedError(
          `cannot reach the collector at ${baseUrl} (${(error as Error).message}); start it with \`modelmaxx serve\` or pass --data`,
          { cause: error },
        );
      }
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (!response.ok) {
        const message =
          typeof body === 'object' && body !== null && 'error' in body
            ? String((body as { error: unknown }).error)
            : text || response.statusText;
        throw new QueryFailedError(message);
      }
      return body as QueryResult;
    },
    async close() {},
  };
}

export async function dataSource(
  dataDir: string,
  limits: { maxRows: number; maxExecutionSeconds: number },
): Promise<QuerySource> {
  // Same layout as `modelmaxx serve --data DIR`: ClickHouse files in DIR/data.
  const store = await openStore({ dataDir: join(dataDir, 'data'), spoolDir: false });
  return {
    async query(sql) {
      try {
        return await store.querySql(sql, limits);
      } catch (error) {
        throw new QueryFailedError((error as Error).message, { cause: error });
      }
    },
    close: () => store.close(),
  };
}

export async function openSource(options: SourceOptions): Promise<QuerySource> {
  const limits = {
    maxRows: options.maxRows ?? 100_000,
    maxExecutionSeconds: options.maxExecutionSeconds ?? 30,
  };
  if (options.data !== undefined) {
    if (options.url !== undefined) throw new UsageError('give --url or --data, not both');
    return dataSource(options.data, limits);
  }
  return httpSource(options.url ?? DEFAULT_COLLECTOR_URL, options.token);
}

/** A mistake in the command line; printed with the usage text, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
