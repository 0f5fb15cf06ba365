/**
 * The writer's insert loop: sealed segments go into ClickHouse one at a time,
 * oldest first, each with `insert_deduplication_token` = spool id + segment id,
 * so re-inserting a segment after a crash between insert and unlink is a no-op.
 *
 * When an insert fails (the retry and quarantine policy):
 * - a segment not walked yet, or one ClickHouse cannot read, is checked for damage
 *   and cut back to its last whole block (the rest to `quarantine/`), then tried
 *   again at once;
 * - a segment ClickHouse has no room for as one part goes in small blocks from now on;
 * - a segment ClickHouse refuses for good (`isPermanentError`) goes to `dead/` and
 *   its waiting requests are answered `failed`;
 * - anything else is retried with backoff (`retryMinMs` … `retryMaxMs`); a spooled
 *   segment goes behind the others, so one that keeps failing never blocks them;
 *   without a spool, nobody else holds the rows: the waiting requests are answered
 *   `overloaded` (503) to send them again.
 */
import { performance } from 'node:perf_hooks';
import {
  SMALL_BLOCK_ROWS,
  type BatchWriterOptions,
  type InsertBatch,
  type WriterCounters,
} from './options.js';
import { SpoolFullError } from './overloaded.js';
import type { Segment, SpoolFolder } from './spool-folder.js';

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

export class InsertLoop {
  /** Sealed segments waiting for their insert, the next first. */
  readonly sealed: Segment[] = [];
  /** An insert is running. */
  inserting = false;
  /** Failed inserts in a row, and when the last one succeeded. */
  consecutiveFailures = 0;
  lastInsertAt: number | undefined;
  private readonly options: BatchWriterOptions;
  private readonly spool: SpoolFolder | undefined;
  private readonly counters: WriterCounters;
  private readonly maxHeldBytes: number;
  /** Called when nothing is being inserted and nothing sealed waits; `retrying`: a retry is scheduled. */
  private readonly onIdle: (retrying: boolean) => void;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private lastError: unknown;
  private stopped = false;

  constructor(
    options: BatchWriterOptions,
    spool: SpoolFolder | undefined,
    counters: WriterCounters,
    hooks: { maxHeldBytes: number; onIdle(retrying: boolean): void },
  ) {
    this.options = options;
    this.spool = spool;
    this.counters = counters;
    this.maxHeldBytes = hooks.maxHeldBytes;
    this.onIdle = hooks.onIdle;
    this.retryDelay = options.retryMinMs ?? 100;
  }

  /** The current retry backoff. */
  get retryDelayMs(): number {
    return this.retryDelay;
  }

  /** A sealed segment joins the queue. */
  add(segment: Segment): void {
    this.sealed.push(segment);
    this.trimMemory();
    this.kick();
  }

  /** Starts the next insert unless one runs, a retry is scheduled or nothing waits. */
  kick(): void {
    if (this.stopped) return;
    if (this.inserting || this.retryTimer !== undefined || this.sealed.length === 0) {
      if (!this.inserting && this.sealed.length === 0) this.onIdle(this.retryTimer !== undefined);
      return;
    }
    this.inserting = true;
    void this.insertNext().finally(() => {
      this.inserting = false;
      this.kick();
    });
  }

  /** Someone waits for the queue to drain: don't sit out a long backoff. */
  retryNow(): void {
    if (this.retryTimer === undefined || this.lastError === undefined) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.kick();
  }

  /** No more inserts start (the queue stays as it is). */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Keeps in memory only as many sealed segments as `maxHeldBytes` allows; the rest stay on disk. */
  private trimMemory(): void {
    if (this.spool === undefined) return;
    let held = 0;
    for (const segment of this.sealed) {
      if (segment.buffers === undefined) continue;
      held += segment.bytes;
      if (held > this.maxHeldBytes) segment.buffers = undefined;
    }
  }

  private batchOf(segment: Segment): InsertBatch {
    const token = `modelmaxx-${this.spool?.spoolId || 'memory'}-${segment.id}`;
    // Spooled segments go in as they are on disk: never read into memory here.
    const batch: InsertBatch =
      segment.path === undefined
        ? { body: Buffer.concat(segment.buffers ?? [], segment.bytes), rows: segment.rows, token }
        : { file: segment.path, rows: segment.rows, token };
    if (segment.smallBlocks === true) batch.smallBlocks = true;
    return batch;
  }

  private async insertNext(): Promise<void> {
    const segment = this.sealed[0];
    if (segment === undefined) return;
    const batch = this.batchOf(segment);
    const bytes = batch.body?.length ?? segment.bytes;
    const started = performance.now();
    try {
      if (bytes > 0) await this.options.insert(batch);
    } catch (error) {
      this.options.onInsert?.({
        rows: segment.rows,
        bytes,
        ms: performance.now() - started,
        error,
      });
      await this.failed(segment, error);
      return;
    }
    const ms = performance.now() - started;
    this.options.onInsert?.({ rows: segment.rows, bytes, ms });
    await this.inserted(segment, ms);
  }

  private async inserted(segment: Segment, ms: number): Promise<void> {
    this.sealed.shift();
    this.counters.batches += 1;
    this.counters.stored += segment.rows;
    this.counters.batchLatencyMsSum += ms;
    this.counters.batchLatencyCount += 1;
    this.retryDelay = this.options.retryMinMs ?? 100;
    this.lastError = undefined;
    this.consecutiveFailures = 0;
    this.lastInsertAt = Date.now();
    if (this.spool !== undefined && segment.path !== undefined) await this.spool.remove(segment);
    for (const waiter of segment.waiters)
      waiter.resolve({ status: 'ok', durability: 'clickhouse' });
    // Spooled segments no longer held in memory can be reloaded now that memory is free.
    this.trimMemory();
  }

  private async failed(segment: Segment, error: unknown): Promise<void> {
    this.counters.insertErrors += 1;
    this.consecutiveFailures += 1;
    this.lastError = error;
    const permanent = this.options.isPermanentError?.(error) === true;
    if (this.spool !== undefined && (segment.checked !== true || permanent)) {
      // Its first failed insert, or ClickHouse cannot read it: is the segment damaged? Then
      // cut it back and try again at once (a damaged Native stream reads as many errors).
      segment.checked = true;
      if (await this.spool.cutDamage(segment)) {
        if (segment.bytes === 0) this.sealed.splice(this.sealed.indexOf(segment), 1);
        return;
      }
    }
    if (
      !permanent &&
      segment.smallBlocks !== true &&
      segment.rows > SMALL_BLOCK_ROWS &&
      this.options.isSpaceError?.(error) === true
    ) {
      await this.useSmallBlocks(segment);
    }
    if (permanent) await this.bury(segment, error);
    else this.retryLater(segment, error);
  }

  /**
   * From now on the segment goes in as small blocks. A spooled segment is renamed first,
   * so that after a restart it is inserted with the same block size: its blocks'
   * deduplication tokens must not change once some of them may be in ClickHouse. A failed
   * insert of one block writes nothing, so the switch itself is safe. When the rename
   * fails, the segment stays as it is (and is retried).
   */
  private async useSmallBlocks(segment: Segment): Promise<void> {
    if (this.spool !== undefined && segment.path !== undefined) {
      if (!(await this.spool.markSmallBlocks(segment))) return;
    }
    segment.smallBlocks = true;
    this.options.logger?.warn(
      { rows: segment.rows, seq: segment.seq, blockRows: SMALL_BLOCK_ROWS },
      'ClickHouse has no room for this batch as one part: inserting it in small blocks',
    );
  }

  /** ClickHouse refuses the segment for good: to `dead/`, its requests answered `failed`. */
  private async bury(segment: Segment, error: unknown): Promise<void> {
    this.sealed.shift();
    this.counters.dead += segment.rows;
    this.options.logger?.error(
      { err: error, rows: segment.rows, seq: segment.seq },
      'batch refused by ClickHouse, moved to spool/dead',
    );
    if (this.spool !== undefined && segment.path !== undefined) {
      await this.spool.moveToDead(segment);
    }
    const failure = error instanceof Error ? error : new Error(messageOf(error));
    for (const waiter of segment.waiters) waiter.resolve({ status: 'failed', error: failure });
  }

  private retryLater(segment: Segment, error: unknown): void {
    if (this.spool === undefined) {
      // Nobody holds these rows but the waiting requests: tell them to retry. ClickHouse is
      // failing, not a burst: 503.
      this.sealed.shift();
      this.counters.rejected += segment.rows;
      const retryAfter = Math.max(1, Math.ceil(this.retryDelay / 1000));
      for (const waiter of segment.waiters) {
        const refusal = new SpoolFullError(
          `ClickHouse insert failed: ${messageOf(error)}`,
          retryAfter,
        );
        waiter.resolve({ status: 'overloaded', error: refusal });
      }
    }
    this.options.logger?.warn(
      { err: error, rows: segment.rows, retryInMs: this.retryDelay },
      'ClickHouse insert failed, will retry',
    );
    if (this.spool !== undefined && this.sealed.length > 1 && this.sealed[0] === segment) {
      // Later segments go first: a segment that keeps failing never holds the others back.
      this.sealed.push(this.sealed.shift() as Segment);
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, this.options.retryMaxMs ?? 5_000);
  }
}
