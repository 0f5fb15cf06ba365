/**
 * Embedded ClickHouse (chDB) behind `ClickHouseEngine`. One `Session` per data
 * folder and process; every call goes through the async API (never the sync
 * `query`, which blocks the event loop) and one at a time: chDB shares one
 * output buffer per connection, and a query that fails after producing rows
 * leaves them in that buffer for the next query, so after a failure the engine
 * runs a throw-away query to drain it.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Session } from 'chdb';
import type { ClickHouseEngine, ClickHouseSettings, InsertOptions, QueryResult } from './engine.js';
import { ClickHouseError } from './engine.js';

const SETTING_NAME = /^[a-z_][a-z0-9_]*$/;

/** Paths `file()` takes literally: no glob characters (`*`, `?`, `{…}`, `[…]`), absolute. */
const SAFE_FILE_PATH = /^\/[^*?{}[\]]*$/;

function toClickHouseError(error: unknown): ClickHouseError {
  if (error instanceof ClickHouseError) return error;
  const code =
    typeof error === 'object' && error !== null && 'clickhouseCode' in error
      ? Number((error as { clickhouseCode: unknown }).clickhouseCode)
      : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return new ClickHouseError(message, Number.isFinite(code) ? code : undefined, { cause: error });
}

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
  readonly kind = 'embedded' as const;
  readonly path: string;
  private readonly session: Session;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private temporaryDir: string | undefined;

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
        throw toClickHouseError(error);
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
  setDefaultDatabase(database: string): Promise<void> {
    return this.command(`USE ${quoteIdentifier(database)}`);
  }

  async close(): Promise<void> {
    await this.tail;
    this.closed = true;
    this.session.close();
    if (this.temporaryDir !== undefined)
      await rm(this.temporaryDir, { recursive: true, force: true }).catch(() => undefined);
  }
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
