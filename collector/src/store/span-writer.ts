/**
 * The writer lifecycle of the store: the durable batching writer (`../writer/`) over
 * `otel_traces` inserts, started lazily, flushed, health-checked and closed. Everything
 * ClickHouse-specific about inserting spans is here: insert settings, the small-block
 * fallback, and which insert errors are permanent or mean "no disk room".
 */
import { OTEL_TRACES_INSERT_COLUMNS } from '../schema/schema.js';
import { BatchWriter } from '../writer/batch-writer.js';
import { SMALL_BLOCK_ROWS, type BatchWriterOptions, type InsertBatch } from '../writer/options.js';
import type { ClickHouseEngine, ClickHouseSettings } from './engine.js';
import { ClickHouseError, isDataError } from './engine.js';
import { spanRowsToNative } from './span-row-native.js';
import { InvalidSpanRowError } from './native-sink.js';
import type { Readiness, SpanRow, WriteResult } from './span-store.js';

/** The writer settings a store passes through (see `BatchWriterOptions` for each). */
const TUNING_KEYS = [
  'spoolDir',
  'batch',
  'maxQueuedBytes',
  'maxSpoolBytes',
  'minFreeBytes',
  'retryMinMs',
  'retryMaxMs',
  'logger',
] as const;

/** How the writer batches, spools and retries. */
export type WriterTuning = Pick<BatchWriterOptions, (typeof TUNING_KEYS)[number]>;

/** Only the writer settings of `options` (a store's options hold more). */
function tuningOf(options: WriterTuning): WriterTuning {
  const tuning: Record<string, unknown> = {};
  for (const key of TUNING_KEYS) if (options[key] !== undefined) tuning[key] = options[key];
  return tuning as WriterTuning;
}

/** Opens the batch writer; `BatchWriter.open` unless a caller hands in its own. */
export type WriterFactory = (options: BatchWriterOptions) => Promise<BatchWriter>;

export interface SpanWriterOptions extends WriterTuning {
  /** Extra ClickHouse settings for the span inserts. */
  insertSettings?: ClickHouseSettings;
  /** How long `close()` keeps trying to insert what is spooled (default 10 s). */
  closeTimeoutMs?: number;
  /**
   * Opens the batch writer (default `BatchWriter.open`). A caller that keeps the writer it
   * opened can stop it as a killed process would (`BatchWriter.abandon`).
   */
  openWriter?: WriterFactory;
}

/** ClickHouse's NOT_ENOUGH_SPACE: no disk room to reserve for the part an insert would write. */
const NOT_ENOUGH_SPACE = 243;

/**
 * A span insert that can never succeed: bad data, or a Native stream ClickHouse cannot
 * read (`CANNOT_READ_ALL_DATA`; `SYNTAX_ERROR` "Empty query" while executing Native —
 * the insert's SQL is fixed text, so only its data can cause it).
 */
const isPermanentInsertError = (error: unknown): boolean =>
  isDataError(error) ||
  (error instanceof ClickHouseError && (error.code === 33 || error.code === 62));

const isSpaceError = (error: unknown): boolean =>
  error instanceof ClickHouseError && error.code === NOT_ENOUGH_SPACE;

/**
 * A batch inserted in small blocks (after NOT_ENOUGH_SPACE): parts of at most
 * `SMALL_BLOCK_ROWS` rows (or 4 MiB), each reserving little room; fixed values, because each
 * block's deduplication token is the batch token plus the block's index.
 */
const SMALL_BLOCK_SETTINGS: ClickHouseSettings = {
  max_insert_block_size: SMALL_BLOCK_ROWS,
  min_insert_block_size_rows: SMALL_BLOCK_ROWS,
  min_insert_block_size_bytes: 4 * 1024 * 1024,
};

/** How long `/readyz` waits for ClickHouse to answer its ping. */
const READY_PING_TIMEOUT_MS = 5_000;

/** An insert that succeeded this recently (ms) stands in for the ping. */
const RECENT_INSERT_MS = 10_000;

export class SpanWriter {
  private readonly engine: ClickHouseEngine;
  private readonly table: string;
  private readonly options: SpanWriterOptions;
  private writer: Promise<BatchWriter> | undefined;
  private opened: BatchWriter | undefined;

  constructor(engine: ClickHouseEngine, table: string, options: SpanWriterOptions) {
    this.engine = engine;
    this.table = table;
    this.options = options;
  }

  /** Opens the writer once (replaying the spool); every later call gets the same one. */
  start(): Promise<BatchWriter> {
    this.writer ??= this.open().then(
      (writer) => (this.opened = writer),
      (error: unknown) => {
        this.writer = undefined;
        throw error;
      },
    );
    return this.writer;
  }

  private open(): Promise<BatchWriter> {
    return (this.options.openWriter ?? BatchWriter.open)({
      ...tuningOf(this.options),
      insert: (batch) => this.insert(batch),
      isPermanentError: isPermanentInsertError,
      isSpaceError,
    });
  }

  private insert(batch: InsertBatch): Promise<void> {
    return this.engine.insert({
      table: this.table,
      columns: OTEL_TRACES_INSERT_COLUMNS,
      format: 'Native',
      ...(batch.file === undefined ? {} : { file: batch.file }),
      ...(batch.body === undefined ? {} : { body: batch.body }),
      settings: {
        ...this.options.insertSettings,
        ...(batch.smallBlocks === true ? SMALL_BLOCK_SETTINGS : {}),
        insert_deduplication_token: batch.token,
        deduplicate_blocks_in_dependent_materialized_views: 1,
      },
    });
  }

  async write(rows: SpanRow[]): Promise<WriteResult> {
    let body: Buffer;
    try {
      body = spanRowsToNative(rows);
    } catch (error) {
      if (error instanceof InvalidSpanRowError) return { status: 'failed', error };
      throw error;
    }
    return this.writeNative(body, rows.length);
  }

  async writeNative(block: Buffer, rows: number): Promise<WriteResult> {
    return (await this.start()).write(block, rows);
  }

  /** Waits until every acknowledged span is in ClickHouse (or `timeoutMs` passed). */
  async flush(timeoutMs?: number): Promise<boolean> {
    return this.opened === undefined ? true : this.opened.flush(timeoutMs);
  }

  /**
   * When acknowledged spans are still on their way from the spool: waits for the batches
   * acknowledged so far (without forcing small batches) and returns true; else false at once.
   */
  async caughtUp(timeoutMs: number): Promise<boolean> {
    if (this.opened === undefined || this.opened.drained) return false;
    await this.opened.settled(timeoutMs);
    return true;
  }

  metrics(): Record<string, number> {
    return this.opened?.metrics() ?? {};
  }

  /**
   * The writer's health first (spool writes, failing inserts, batch age); then, unless an
   * insert just succeeded, ClickHouse must answer a ping through the store's own query path.
   */
  async readiness(): Promise<Readiness> {
    const health = await this.opened?.health();
    if (health !== undefined && !health.ready)
      return { ready: false, reason: health.reason ?? 'the writer is failing' };
    if (health?.lastInsertAt !== undefined && Date.now() - health.lastInsertAt < RECENT_INSERT_MS)
      return { ready: true };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.engine.query('SELECT 1'),
        new Promise((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), READY_PING_TIMEOUT_MS);
        }),
      ]);
      return { ready: true };
    } catch {
      return { ready: false, reason: 'ClickHouse does not answer' };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Inserts what is spooled for up to `closeTimeoutMs`; the rest stays for the next start. */
  async close(): Promise<void> {
    const writer = this.writer;
    this.writer = undefined;
    this.opened = undefined;
    await (await writer?.catch(() => undefined))?.close(this.options.closeTimeoutMs);
  }
}
