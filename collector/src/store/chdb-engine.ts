/**
 * Embedded ClickHouse (chDB) behind `ClickHouseEngine`. The collector's own
 * queries and inserts share one `Session`; every call goes through the async
 * API (never the sync `query`, which blocks the event loop) and one at a time:
 * chDB shares one output buffer per connection, and a query that fails after
 * producing rows leaves them in that buffer for the next query, so after a
 * failure the engine runs a throw-away query to drain it.
 *
 * Ad-hoc SQL (`queryAdHoc`) runs on sessions of its own on the same folder
 * (chDB runs queries of different sessions in parallel), so a slow one never
 * holds the collector's reads and inserts. Its output is streamed
 * (`queryStream`, one chunk per block) and it is cancelled with `KILL QUERY`
 * from a third session: a chDB stream can only be stopped between chunks, and
 * a single-shot query not at all.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Session } from 'chdb';
import type { ChdbQueryStream } from 'chdb';
import type {
  AdHocQueryOptions,
  ClickHouseEngine,
  ClickHouseSettings,
  InsertOptions,
  QueryResult,
} from './engine.js';
import { AD_HOC_FORMAT, ClickHouseError, toClickHouseError } from './engine.js';

const SETTING_NAME = /^[a-z_][a-z0-9_]*$/;

/** Paths `file()` takes literally: no glob characters (`*`, `?`, `{…}`, `[…]`), absolute. */
const SAFE_FILE_PATH = /^\/[^*?{}[\]]*$/;

/** chDB's errors carry ClickHouse's code as `clickhouseCode`. */
const asClickHouseError = (error: unknown) => toClickHouseError(error, 'clickhouseCode');

/** How often a cancelled ad-hoc query is killed again while it has not stopped. */
const KILL_REPEAT_MS = 1_000;

/** `SETTINGS a = 1, b = 'x'` for settings of ours (names checked, values typed). */
export function settingsClause(settings: ClickHouseSettings | undefined): string {
  if (settings === undefined) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(settings)) {
    if (!SETTING_NAME.test(key)) throw new Error(`invalid setting name ${JSON.stringify(key)}`);
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new Error(`invalid value for ${key}`);
      parts.push(`${key} = ${value}`);
    } else if (typeof value === 'boolean') parts.push(`${key} = ${value ? 1 : 0}`);
    else parts.push(`${key} = '${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`);
  }
  return parts.length === 0 ? '' : ` SETTINGS ${parts.join(', ')}`;
}

export class ChdbEngine implements ClickHouseEngine {
  readonly adHocConcurrency = 1;
  readonly path: string;
  private readonly session: Session;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private temporaryDir: string | undefined;
  private defaultDatabase: string | undefined;
  /** Ad-hoc sessions not running a query. */
  private readonly adHocIdle: Session[] = [];
  /** Ad-hoc queries running, until chDB really stopped them. */
  private readonly adHocRunning = new Set<Promise<void>>();
  /** Sends `KILL QUERY` (never waits behind the collector's own queries). */
  private control: Session | undefined;

  constructor(path: string) {
    this.path = path;
    this.session = new Session(path);
  }

  /** Runs `task` after every earlier call has settled. */
  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(async () => {
      if (this.closed)
        throw new ClickHouseError('the embedded ClickHouse session is closed', undefined);
      try {
        return await task();
      } catch (error) {
        await this.session.queryAsync('SELECT 1', { format: 'TSV' }).catch(() => undefined);
        throw asClickHouseError(error);
      }
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  command(sql: string, params?: Record<string, unknown>): Promise<void> {
    return this.serial(async () => {
      if (params === undefined) await this.session.queryAsync(sql, { format: 'TSV' });
      else await this.session.queryBindAsync(sql, params, { format: 'TSV' });
    });
  }

  query<Row = Record<string, unknown>>(
    sql: string,
    params?: Record<string, unknown>,
    settings?: ClickHouseSettings,
  ): Promise<QueryResult<Row>> {
    const text = `${sql}${settingsClause(settings)}`;
    return this.serial(async () => {
      const result =
        params === undefined
          ? await this.session.queryAsync(text, { format: 'JSON' })
          : await this.session.queryBindAsync(text, params, { format: 'JSON' });
      const body = result.text();
      if (body.trim() === '') return { meta: [], data: [] };
      const parsed = JSON.parse(body) as QueryResult<Row>;
      return { meta: parsed.meta, data: parsed.data };
    });
  }

  insert(options: InsertOptions): Promise<void> {
    return this.serial(async () => {
      if (options.format === 'Native') {
        await this.insertNative(options);
        return;
      }
      const body =
        options.body ?? (await readFile(options.file ?? missing('insert needs a body or a file')));
      await this.session.insert({
        table: options.table,
        values: body,
        format: options.format,
        ...(options.columns === undefined ? {} : { columns: options.columns }),
        ...(options.settings === undefined ? {} : { settings: options.settings }),
      });
    });
  }

  /**
   * chDB's insert API takes text formats only, so Native goes through a file:
   * `INSERT … SELECT * FROM file(path, 'Native')` reads it (a spool segment as
   * it is on disk; a body is written to a temporary file first).
   */
  private async insertNative(options: InsertOptions): Promise<void> {
    let file = options.file === undefined ? undefined : resolve(options.file);
    let temporary: string | undefined;
    if (file === undefined || !SAFE_FILE_PATH.test(file)) {
      this.temporaryDir ??= await mkdtemp(join(tmpdir(), 'modelmaxx-insert-'));
      temporary = join(this.temporaryDir, `${randomBytes(8).toString('hex')}.native`);
      if (options.body !== undefined) await writeFile(temporary, options.body);
      else await copyFile(file ?? missing('insert needs a body or a file'), temporary);
      file = temporary;
    }
    const columns =
      options.columns === undefined ? '' : ` (${options.columns.map(quoteIdentifier).join(', ')})`;
    try {
      await this.session.queryAsync(
        `INSERT INTO ${options.table}${columns} SELECT * FROM file(${quoteString(file)}, 'Native')${settingsClause(options.settings)}`,
        { format: 'TSV' },
      );
    } finally {
      if (temporary !== undefined) await unlink(temporary).catch(() => undefined);
    }
  }

  /** The session keeps `USE` for every later query; the store's own SQL is fully qualified. */
  async setDefaultDatabase(database: string): Promise<void> {
    await this.command(`USE ${quoteIdentifier(database)}`);
    this.defaultDatabase = database;
    // Idle ad-hoc sessions still use the previous database: open new ones.
    for (const session of this.adHocIdle.splice(0)) session.close();
  }

  queryAdHoc(sql: string, options: AdHocQueryOptions): Promise<void> {
    if (this.closed)
      return Promise.reject(
        new ClickHouseError('the embedded ClickHouse session is closed', undefined),
      );
    const run = this.runAdHoc(sql, options);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.adHocRunning.add(settled);
    void settled.then(() => this.adHocRunning.delete(settled));
    return run;
  }

  private async runAdHoc(sql: string, options: AdHocQueryOptions): Promise<void> {
    const { signal } = options;
    signal.throwIfAborted();
    let session = this.adHocIdle.pop();
    if (session === undefined) {
      session = new Session(this.path);
      if (this.defaultDatabase !== undefined) {
        try {
          await session.queryAsync(`USE ${quoteIdentifier(this.defaultDatabase)}`, {
            format: 'TSV',
          });
        } catch (error) {
          session.close();
          throw asClickHouseError(error);
        }
      }
    }
    // The tag finds the query in `system.processes` for `KILL QUERY`: chDB takes no query id.
    const tag = `/* modelmaxx-sql ${randomBytes(8).toString('hex')} */`;
    let stream: ChdbQueryStream | undefined;
    let killer: NodeJS.Timeout | undefined;
    const kill = () => {
      void this.killTagged(tag);
      killer ??= setInterval(() => void this.killTagged(tag), KILL_REPEAT_MS);
    };
    let complete = false;
    try {
      signal.addEventListener('abort', kill, { once: true });
      const text = `${tag} ${sql}${settingsClause(options.settings)}`;
      if (options.metadata === true) {
        // chDB streams SELECTs only ("Streaming query is not supported").
        const result = await session.queryAsync(text, { format: AD_HOC_FORMAT });
        if (!signal.aborted) await options.onData(result.bytes());
      } else {
        stream = session.queryStream(text, { format: AD_HOC_FORMAT });
        let first = true;
        for await (const chunk of stream) {
          // chDB formats every chunk on its own: each one starts with the names and types.
          const data = first ? chunk.raw() : withoutHeader(chunk.raw());
          first = false;
          if (signal.aborted || !(await options.onData(data))) break;
        }
      }
      signal.throwIfAborted();
      complete = true;
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw asClickHouseError(error);
    } finally {
      signal.removeEventListener('abort', kill);
      stream?.cancel();
      if (!complete) {
        // A query that stopped early leaves output in the connection's buffer: drain it.
        await session.queryAsync('SELECT 1', { format: 'TSV' }).catch(() => undefined);
      }
      clearInterval(killer);
      if (this.closed) session.close();
      else this.adHocIdle.push(session);
    }
  }

  private async killTagged(tag: string): Promise<void> {
    try {
      this.control ??= new Session(this.path);
      // Anchored at the start, so the KILL (which holds the tag further in) never matches itself.
      await this.control.queryAsync(`KILL QUERY WHERE query LIKE ${quoteString(`${tag}%`)} ASYNC`, {
        format: 'TSV',
      });
    } catch {
      // Nothing to kill any more, or the engine is closing.
    }
  }

  async close(): Promise<void> {
    await this.tail;
    this.closed = true;
    if (this.adHocRunning.size > 0) {
      await this.killTagged('/* modelmaxx-sql ');
      await Promise.all(this.adHocRunning);
    }
    for (const session of this.adHocIdle.splice(0)) session.close();
    this.control?.close();
    this.session.close();
    if (this.temporaryDir !== undefined)
      await rm(this.temporaryDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** `data` after its first two lines (the names and types of `AD_HOC_FORMAT`). */
function withoutHeader(data: Uint8Array): Uint8Array {
  const names = data.indexOf(10);
  const types = names < 0 ? -1 : data.indexOf(10, names + 1);
  return types < 0 ? data.subarray(data.length) : data.subarray(types + 1);
}

function quoteString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

function missing(message: string): never {
  throw new Error(message);
}

function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll('\\', '\\\\').replaceAll('`', '\\`')}\``;
}
