/**
 * A ClickHouse server behind `ClickHouseEngine`, through `@clickhouse/client`
 * over HTTP. Same SQL text as the embedded engine; settings travel as HTTP
 * parameters (`clickhouse_settings`), values as query parameters.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import {
  AD_HOC_FORMAT,
  toClickHouseError,
  type AdHocQueryOptions,
  type ClickHouseEngine,
  type ClickHouseSettings,
  type InsertOptions,
  type QueryResult,
} from './engine.js';

export interface ServerEngineOptions {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  /** Per-request timeout; default 60 s. */
  requestTimeoutMs?: number | undefined;
  /** Extra settings sent with every request. */
  settings?: ClickHouseSettings;
}

/** The client's errors carry ClickHouse's code as `code`. */
const asClickHouseError = (error: unknown) => toClickHouseError(error, 'code');

function requireFile(file: string | undefined): string {
  if (file === undefined) throw new Error('insert needs a body or a file');
  return file;
}

const QUOTED_COLUMN = (column: string) => `\`${column.replace(/`/g, '``')}\``;

export class ServerEngine implements ClickHouseEngine {
  readonly adHocConcurrency = 4;
  private client: ClickHouseClient;
  private readonly options: ServerEngineOptions;
  private readonly retired: ClickHouseClient[] = [];

  constructor(options: ServerEngineOptions) {
    this.options = options;
    this.client = ServerEngine.createClient(options, undefined);
  }

  private static createClient(
    options: ServerEngineOptions,
    database: string | undefined,
  ): ClickHouseClient {
    return createClient({
      ...(database === undefined ? {} : { database }),
      url: options.url,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      request_timeout: options.requestTimeoutMs ?? 60_000,
      // Failures come back as ClickHouseError to the store, which logs them once.
      log: { level: ClickHouseLogLevel.OFF },
      clickhouse_settings: {
        output_format_json_quote_64bit_integers: 1,
        ...(options.settings ?? {}),
      },
    });
  }

  /**
   * HTTP requests carry no session, so the default database is a client option;
   * set only once the database exists (an unknown one fails every request).
   */
  async setDefaultDatabase(database: string): Promise<void> {
    // The previous client may have requests in flight (an insert): close it with the engine.
    this.retired.push(this.client);
    this.client = ServerEngine.createClient(this.options, database);
    return Promise.resolve();
  }

  async command(sql: string, params?: Record<string, unknown>): Promise<void> {
    try {
      await this.client.command({
        query: sql,
        ...(params === undefined ? {} : { query_params: params }),
      });
    } catch (error) {
      throw asClickHouseError(error);
    }
  }

  async query<Row = Record<string, unknown>>(
    sql: string,
    params?: Record<string, unknown>,
    settings?: ClickHouseSettings,
  ): Promise<QueryResult<Row>> {
    try {
      const result = await this.client.query({
        query: sql,
        format: 'JSON',
        ...(params === undefined ? {} : { query_params: params }),
        ...(settings === undefined ? {} : { clickhouse_settings: settings }),
      });
      const parsed = await result.json<Row>();
      return { meta: parsed.meta ?? [], data: parsed.data };
    } catch (error) {
      throw asClickHouseError(error);
    }
  }

  /**
   * Its own HTTP request with a `query_id` of ours; aborting closes the request
   * and sends `KILL QUERY` for that id (a server keeps running a read whose
   * client went away unless `cancel_http_readonly_queries_on_client_close` is on).
   */
  async queryAdHoc(sql: string, options: AdHocQueryOptions): Promise<void> {
    const { signal } = options;
    signal.throwIfAborted();
    const queryId = `modelmaxx-sql-${randomUUID()}`;
    let stream: { destroy(): void } | undefined;
    const kill = () => {
      // A response already streaming is not closed by the abort signal: close it here.
      stream?.destroy();
      this.client
        .command({
          query: 'KILL QUERY WHERE query_id = {id:String} ASYNC',
          query_params: { id: queryId },
        })
        .catch(() => undefined);
    };
    signal.addEventListener('abort', kill, { once: true });
    try {
      const result = await this.client.query({
        query: sql,
        format: AD_HOC_FORMAT,
        query_id: queryId,
        clickhouse_settings: options.settings,
        abort_signal: signal,
      });
      const rowStream = result.stream();
      stream = rowStream;
      if (signal.aborted) rowStream.destroy();
      try {
        for await (const rows of rowStream as AsyncIterable<{ text: string }[]>) {
          const text = rows.map((row) => `${row.text}\n`).join('');
          if (signal.aborted) break;
          if (!(await options.onData(Buffer.from(text)))) {
            kill();
            break;
          }
        }
      } finally {
        rowStream.destroy();
      }
      signal.throwIfAborted();
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw asClickHouseError(error);
    } finally {
      signal.removeEventListener('abort', kill);
    }
  }

  async insert(options: InsertOptions): Promise<void> {
    const columns =
      options.columns === undefined ? '' : ` (${options.columns.map(QUOTED_COLUMN).join(', ')})`;
    try {
      const values =
        options.body !== undefined
          ? Readable.from([options.body])
          : createReadStream(requireFile(options.file));
      const result = await this.client.exec({
        query: `INSERT INTO ${options.table}${columns} FORMAT ${options.format}`,
        values,
        ...(options.settings === undefined ? {} : { clickhouse_settings: options.settings }),
      });
      result.stream.resume();
      await new Promise<void>((resolve, reject) => {
        result.stream.once('end', resolve);
        result.stream.once('error', reject);
      });
    } catch (error) {
      throw asClickHouseError(error);
    }
  }

  async close(): Promise<void> {
    for (const client of this.retired.splice(0)) await client.close();
    await this.client.close();
  }
}
