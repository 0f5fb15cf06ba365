/**
 * Where `modelmaxx sql` and `modelmaxx report` send their SQL: a running
 * collector's read-only `/api/sql` (`--url`), or a data folder opened in this
 * process (`--data`, embedded ClickHouse; only while no collector holds it).
 */
import { join, resolve } from 'node:path';
import { dataFolderHolder, openStore } from '@modelmaxx/collector';
import type { Tabular } from './format.js';

export interface QueryResult extends Tabular {
  truncated: boolean;
  /** The limit that cut the result (the collector's row or byte limit). */
  truncatedBy?: 'maxRows' | 'maxResultBytes';
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

/**
 * `--url`, else `MODELMAXX_URL`, else the default; checked to be an http(s) URL, with the fix
 * named when it is not (`127.0.0.1:4318` without a scheme is the usual slip).
 */
export function collectorUrl(
  flag: string | undefined,
  env: Record<string, string | undefined>,
): string {
  const fromEnv = env['MODELMAXX_URL']?.trim();
  const text = flag ?? (fromEnv === undefined || fromEnv === '' ? DEFAULT_COLLECTOR_URL : fromEnv);
  const source = flag === undefined && text !== DEFAULT_COLLECTOR_URL ? 'MODELMAXX_URL' : '--url';
  let parsed: URL | undefined;
  try {
    parsed = new URL(text);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new UsageError(
      `${source} takes a collector URL such as ${DEFAULT_COLLECTOR_URL}; got ${JSON.stringify(text)}`,
    );
  }
  return text.replace(/\/+$/, '');
}

/** A JSON body as `/api/sql` answers it: `{ columns: [...], rows: [...] }`. */
function isQueryResult(body: unknown): body is QueryResult {
  return (
    typeof body === 'object' &&
    body !== null &&
    Array.isArray((body as { columns?: unknown }).columns) &&
    Array.isArray((body as { rows?: unknown }).rows)
  );
}

/** What answered instead of a collector, in a few words: `HTTP 404, text/html`. */
function describeResponse(response: Response): string {
  const type = response.headers.get('content-type')?.split(';')[0]?.trim();
  return `HTTP ${response.status}${type === undefined || type === '' ? '' : `, ${type}`}`;
}

function notACollector(baseUrl: string, what: string): QueryFailedError {
  return new QueryFailedError(
    `${baseUrl}: not a modelmaxx collector (${what} from POST /api/sql); give the collector's URL with --url or MODELMAXX_URL, e.g. ${DEFAULT_COLLECTOR_URL}`,
  );
}

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
      // The collector's errors are `{ "error": "<message>" }`; anything else is another server.
      const collectorError =
        typeof body === 'object' &&
        body !== null &&
        typeof (body as { error?: unknown }).error === 'string'
          ? (body as { error: string }).error
          : undefined;
      if (!response.ok) {
        if (collectorError === undefined) throw notACollector(baseUrl, describeResponse(response));
        if (response.status === 401 || response.status === 403) {
          throw new QueryFailedError(
            `${collectorError} (${baseUrl} wants its read token: set MODELMAXX_READ_TOKEN)`,
          );
        }
        throw new QueryFailedError(collectorError);
      }
      if (!isQueryResult(body)) throw notACollector(baseUrl, describeResponse(response));
      return body;
    },
    async close() {},
  };
}

/** The one-line error for a data folder another process has open. */
export function dataFolderInUse(dataDir: string, pid: number | undefined): QueryFailedError {
  return new QueryFailedError(
    `the data folder ${resolve(dataDir)} is in use by another process (a running collector?${pid === undefined ? '' : ` pid ${pid}`}); use --url ${DEFAULT_COLLECTOR_URL} (the collector's address) to query it, or another --data`,
  );
}

/** Opens the embedded store of `dataDir` (ClickHouse files in DIR/data), with the lock named. */
export async function openDataFolder(
  dataDir: string,
  options: Omit<Parameters<typeof openStore>[0], 'dataDir'> = {},
): Promise<Awaited<ReturnType<typeof openStore>>> {
  const clickhouseDir = join(dataDir, 'data');
  const holder = dataFolderHolder(clickhouseDir);
  if (holder !== undefined) throw dataFolderInUse(dataDir, holder);
  try {
    return await openStore({ ...options, dataDir: clickhouseDir });
  } catch (error) {
    if ((error as { code?: unknown }).code === 'CHDB_CONNECTION') {
      throw dataFolderInUse(dataDir, dataFolderHolder(clickhouseDir));
    }
    throw error;
  }
}

export async function dataSource(
  dataDir: string,
  limits: { maxRows: number; maxExecutionSeconds: number },
): Promise<QuerySource> {
  // Same layout as `modelmaxx serve --data DIR`: ClickHouse files in DIR/data.
  const store = await openDataFolder(dataDir, { spoolDir: false });
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
