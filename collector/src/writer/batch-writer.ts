/**
 * The durable batching writer between the OTLP receiver and ClickHouse.
 *
 * - A request's rows are acknowledged only once they are durable: appended to
 *   the on-disk spool and fsync'ed (group commit: one fsync for every request
 *   that arrived meanwhile), or — without a spool — inserted into ClickHouse.
 * - The spool is a sequence of segment files of ready-to-insert rows: ClickHouse
 *   `Native` blocks, one per request (`spool-folder.ts`). A segment is sealed when
 *   it reaches `maxRows`, `maxBytes` or `maxDelayMs` (when that time passes during
 *   an insert, as soon as the insert is done, so batches grow with insert latency);
 *   sealed segments are inserted one at a time, oldest first (`insert-loop.ts`,
 *   with the retry and quarantine policy).
 * - ClickHouse down: inserts are retried with backoff while new requests keep
 *   spooling, up to `maxSpoolBytes`; past that, `write` answers `overloaded` with a
 *   `SpoolFullError` (→ 503 + Retry-After). More than `maxQueuedBytes` waiting for
 *   the disk answers a `QueueFullError` with a short retry (→ 429). Nothing is dropped.
 * - A request is acknowledged only when all its bytes are written (a short
 *   `writev` is continued) and fsync'ed. A failed write (ENOSPC: the disk is
 *   full) is rolled back to the acknowledged length — the file is cut, never
 *   extended — and its requests answered `overloaded` (disk full, → 503 +
 *   Retry-After) or `failed`; the next request tries the disk again, so the
 *   writer recovers by itself when space returns. Below `minFreeBytes` of free
 *   space (`disk-space.ts`) requests are refused before they are written.
 * - On start, segments left by an earlier process are replayed. A damaged
 *   segment (found on start, or when its insert fails) is cut back to its last
 *   whole Native block; the rest goes to `quarantine/` (counted and logged).
 */
import type { FileHandle } from 'node:fs/promises';
import type { WriteResult } from '../store/span-store.js';
import { DiskSpace } from './disk-space.js';
import { InsertLoop } from './insert-loop.js';
import {
  DEFAULT_BATCH,
  newCounters,
  type BatchOptions,
  type BatchWriterOptions,
  type ReadinessOptions,
  type WriterHealth,
} from './options.js';
import { QueueFullError, SpoolFullError } from './overloaded.js';
import { newSegment, SpoolFolder, type Segment, type Waiter } from './spool-folder.js';
import { SpoolWriteFailures } from './spool-write-failures.js';

interface Pending {
  buffer: Buffer;
  rows: number;
  waiter: Waiter;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class BatchWriter {
  private readonly options: BatchWriterOptions;
  private readonly batch: BatchOptions;
  private readonly maxQueuedBytes: number;
  private readonly maxSpoolBytes: number;
  private readonly spool: SpoolFolder | undefined;
  private readonly disk: DiskSpace;
  private readonly inserts: InsertLoop;
  private nextSeq = 1;
  private current: Segment | undefined;
  private currentHandle: FileHandle | undefined;
  private sealTimer: NodeJS.Timeout | undefined;
  /** The segment `seal()` is closing: no longer `current`, not yet in `sealed`. */
  private sealing: Segment | undefined;
  /** The seal timer fired while an insert was running: seal once the writer is idle. */
  private sealWhenIdle = false;
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private committing = false;
  private closed = false;
  private drainWaiters: (() => void)[] = [];
  private readonly readiness: ReadinessOptions;
  private readonly writeFailures: SpoolWriteFailures;
  private readonly counters = newCounters();

  private constructor(options: BatchWriterOptions) {
    this.options = options;
    this.batch = { ...DEFAULT_BATCH, ...options.batch };
    this.maxQueuedBytes = options.maxQueuedBytes ?? 64 * 1024 * 1024;
    this.maxSpoolBytes = options.maxSpoolBytes ?? 1024 * 1024 * 1024;
    this.readiness = { maxInsertFailures: 3, maxBatchAgeMs: 120_000, ...options.readiness };
    const dir = options.spoolDir;
    this.spool =
      dir === undefined ? undefined : new SpoolFolder(dir, options.logger, this.counters);
    this.disk = new DiskSpace(dir, options.minFreeBytes);
    this.writeFailures = new SpoolWriteFailures(options.logger);
    this.inserts = new InsertLoop(options, this.spool, this.counters, {
      maxHeldBytes: this.maxQueuedBytes,
      onIdle: (retrying) => this.idle(retrying),
    });
  }

  static async open(options: BatchWriterOptions): Promise<BatchWriter> {
    const writer = new BatchWriter(options);
    await writer.recover();
    writer.inserts.kick();
    return writer;
  }

  get spooling(): boolean {
    return this.spool !== undefined;
  }

  /** Replays segments an earlier process left behind. */
  private async recover(): Promise<void> {
    if (this.spool === undefined) return;
    await this.spool.open();
    await this.disk.refresh();
    const { segments, nextSeq } = await this.spool.recover();
    this.nextSeq = nextSeq;
    this.inserts.sealed.push(...segments);
  }

  /** Hands one request's rows (one Native block) to the writer. */
  write(buffer: Buffer, rows: number): Promise<WriteResult> {
    if (this.closed) {
      return Promise.resolve({ status: 'failed', error: new Error('the writer is closed') });
    }
    this.counters.received += rows;
    if (rows === 0)
      return Promise.resolve({ status: 'ok', durability: this.spooling ? 'spool' : 'clickhouse' });
    const refusal = this.refusal(buffer.length);
    if (refusal !== undefined) {
      this.counters.rejected += rows;
      if (refusal.reserve) this.counters.refusedForDiskReserve += rows;
      return Promise.resolve({ status: 'overloaded', error: refusal.error });
    }
    return new Promise<WriteResult>((resolve) => {
      this.pending.push({ buffer, rows, waiter: { resolve } });
      this.pendingBytes += buffer.length;
      if (this.spooling) this.commit();
      else this.appendInMemory();
    });
  }

  /** Why a request of `bytes` cannot be taken now (a full spool, disk reserve or queue), if so. */
  private refusal(
    bytes: number,
  ): { error: SpoolFullError | QueueFullError; reserve?: boolean } | undefined {
    const retryAfter = Math.max(1, Math.ceil(this.inserts.retryDelayMs / 1000) * 2);
    if (this.spooling && this.counters.spoolBytes + bytes > this.maxSpoolBytes) {
      const message = `the spool holds ${this.counters.spoolBytes} bytes not yet in ClickHouse (limit ${this.maxSpoolBytes})`;
      return { error: new SpoolFullError(message, retryAfter) };
    }
    if (this.spooling) {
      this.disk.refreshSoon();
      if (this.disk.belowReserve(bytes, this.pendingBytes)) {
        const free = Math.max(0, this.disk.available(this.pendingBytes));
        const message = `the disk of the spool has ${free} bytes free; ${this.disk.reserve()} are kept for ClickHouse's inserts`;
        return { error: new SpoolFullError(message, retryAfter), reserve: true };
      }
    }
    const queued = this.spooling
      ? this.pendingBytes
      : this.pendingBytes + this.inMemoryUninserted();
    if (queued + bytes > this.maxQueuedBytes) {
      const message = `${queued} bytes are queued (limit ${this.maxQueuedBytes})`;
      return { error: new QueueFullError(message, 1) };
    }
    return undefined;
  }

  private inMemoryUninserted(): number {
    let bytes = this.current?.bytes ?? 0;
    for (const segment of this.inserts.sealed) bytes += segment.bytes;
    return bytes;
  }

  /** Whether the segment has reached `maxRows` or `maxBytes`. */
  private full(segment: Segment): boolean {
    return segment.rows >= this.batch.maxRows || segment.bytes >= this.batch.maxBytes;
  }

  /** Without a spool: pending requests join the open batch at once. */
  private appendInMemory(): void {
    const taken = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const item of taken) {
      const open = this.current;
      if (
        open !== undefined &&
        open.rows > 0 &&
        (open.rows + item.rows > this.batch.maxRows ||
          open.bytes + item.buffer.length > this.batch.maxBytes)
      ) {
        void this.seal();
      }
      const segment = (this.current ??= newSegment(this.nextSeq++, this.options.spoolDir));
      segment.buffers?.push(item.buffer);
      segment.bytes += item.buffer.length;
      segment.rows += item.rows;
      segment.waiters.push(item.waiter);
      this.afterAppend();
    }
  }

  /** Group commit: everything pending goes to the open segment with one write and one fsync. */
  private commit(): void {
    if (this.committing || this.pending.length === 0) return;
    this.committing = true;
    const taken = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    void this.commitGroup(taken).finally(() => {
      this.committing = false;
      this.afterAppend();
      this.commit();
    });
  }

  /**
   * Writes a group of requests to the open segment(s) and fsyncs: a request never
   * spans two segments, and a segment is sealed as soon as it is full.
   */
  private async commitGroup(taken: Pending[]): Promise<void> {
    let index = 0;
    while (index < taken.length) {
      const segment = (this.current ??= newSegment(this.nextSeq++, this.options.spoolDir));
      const chunk: Pending[] = [];
      let rows = segment.rows;
      let bytes = segment.bytes;
      while (index < taken.length) {
        const item = taken[index] as Pending;
        const full = rows >= this.batch.maxRows || bytes >= this.batch.maxBytes;
        const overflows =
          rows + item.rows > this.batch.maxRows || bytes + item.buffer.length > this.batch.maxBytes;
        if (full || (overflows && rows > 0)) break;
        chunk.push(item);
        rows += item.rows;
        bytes += item.buffer.length;
        index++;
      }
      if (chunk.length === 0) {
        await this.seal();
        continue;
      }
      await this.appendToSpool(segment, chunk);
      if (this.current === segment && this.full(segment)) await this.seal();
    }
  }

  private async appendToSpool(segment: Segment, chunk: Pending[]): Promise<void> {
    const buffers = chunk.map((item) => item.buffer);
    let bytes = 0;
    let rows = 0;
    for (const item of chunk) {
      bytes += item.buffer.length;
      rows += item.rows;
    }
    try {
      this.currentHandle = await (this.spool as SpoolFolder).append(
        this.currentHandle,
        segment,
        buffers,
      );
    } catch (error) {
      await this.spoolWriteFailed(segment, chunk, rows, bytes, error);
      return;
    }
    if (segment.bytes === 0) this.counters.spoolSegments += 1;
    segment.bytes += bytes;
    segment.rows += rows;
    this.counters.spoolBytes += bytes;
    this.disk.wrote(bytes);
    this.counters.spooled += rows;
    this.writeFailures.succeeded();
    for (const item of chunk) item.waiter.resolve({ status: 'ok', durability: 'spool' });
  }

  /**
   * A group's write (or fsync) failed: nothing of it is acknowledged, and the segment
   * is cut back to what was acknowledged before (`segment.bytes`).
   */
  private async spoolWriteFailed(
    segment: Segment,
    chunk: Pending[],
    rows: number,
    bytes: number,
    error: unknown,
  ): Promise<void> {
    this.counters.spoolWriteErrors += 1;
    this.counters.rejected += rows;
    const { diskFull, result } = this.writeFailures.failed(error, bytes);
    const handle = this.currentHandle;
    const intact =
      handle === undefined || (await (this.spool as SpoolFolder).rollBack(handle, segment));
    for (const item of chunk) item.waiter.resolve(result);
    // A disk that is full: the segment (cut back, verified) stays open for the next
    // write. Anything else: seal what is complete and start a fresh segment.
    if (!(diskFull && intact)) await this.seal();
  }

  /** Seals the open segment when it is full, or schedules sealing by time. */
  private afterAppend(): void {
    const segment = this.current;
    if (segment === undefined || segment.bytes === 0) return;
    if (this.full(segment)) {
      void this.seal();
      return;
    }
    if (this.sealTimer === undefined) {
      const wait = Math.max(0, segment.createdAt + this.batch.maxDelayMs - Date.now());
      this.sealTimer = setTimeout(() => {
        this.sealTimer = undefined;
        if (this.committing) return; // commit's afterAppend re-arms the timer
        if (this.inserts.inserting) {
          // An insert is running: let the open segment keep growing (up to maxRows / maxBytes)
          // and seal it when the insert is done, so batch size follows insert latency instead
          // of queueing many small inserts, each paying ClickHouse's fixed cost per insert.
          this.sealWhenIdle = true;
          return;
        }
        void this.seal();
      }, wait);
      this.sealTimer.unref();
    }
  }

  private async seal(): Promise<void> {
    this.sealWhenIdle = false;
    if (this.sealTimer !== undefined) {
      clearTimeout(this.sealTimer);
      this.sealTimer = undefined;
    }
    const segment = this.current;
    const handle = this.currentHandle;
    this.current = undefined;
    this.currentHandle = undefined;
    // Between `current` and `sealed` (while its file closes) the segment is still counted by
    // `settled()`, so a caller waiting for acknowledged rows never sees it as gone.
    this.sealing = segment;
    try {
      if (handle !== undefined) await handle.close().catch(() => undefined);
    } finally {
      this.sealing = undefined;
    }
    if (segment === undefined || segment.bytes === 0) {
      if (segment !== undefined) await this.spool?.discardEmpty(segment);
      return;
    }
    this.inserts.add(segment);
  }

  /** Nothing is being inserted and nothing sealed waits (`retrying`: a retry is scheduled). */
  private idle(retrying: boolean): void {
    if (!retrying && this.sealWhenIdle && !this.committing && this.current !== undefined) {
      this.sealWhenIdle = false;
      void this.seal(); // seal() kicks again
      return;
    }
    if (this.current === undefined && this.sealing === undefined && this.pending.length === 0) {
      this.notifyDrained();
    }
  }

  /**
   * Whether the insert path works: spool writes succeed (or the disk has room again),
   * the disk is above its reserve, inserts are not failing over and over, and no batch
   * has waited too long.
   */
  async health(): Promise<WriterHealth> {
    const reason = await this.unreadyReason();
    const lastInsertAt = this.inserts.lastInsertAt;
    return {
      ready: reason === undefined,
      ...(reason === undefined ? {} : { reason }),
      ...(lastInsertAt === undefined ? {} : { lastInsertAt }),
    };
  }

  private async unreadyReason(): Promise<string | undefined> {
    const writeFailure = await this.writeFailures.unreadyReason(this.disk);
    if (writeFailure !== undefined) return writeFailure;
    if (this.spooling) {
      await this.disk.refresh();
      if (this.disk.belowReserve()) {
        return 'the disk of the spool is down to the room kept for ClickHouse';
      }
    }
    const failures = this.inserts.consecutiveFailures;
    if (failures >= this.readiness.maxInsertFailures) {
      return `ClickHouse inserts fail (${failures} in a row)`;
    }
    let oldest = Infinity;
    for (const segment of this.inserts.sealed) oldest = Math.min(oldest, segment.createdAt);
    const waited = Date.now() - oldest;
    if (waited > this.readiness.maxBatchAgeMs) {
      return `the oldest spooled batch has waited ${Math.round(waited / 1000)} s`;
    }
    return undefined;
  }

  private notifyDrained(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** True when every acknowledged row is in ClickHouse. */
  get drained(): boolean {
    return (
      this.inserts.sealed.length === 0 &&
      this.current === undefined &&
      this.sealing === undefined &&
      this.pending.length === 0 &&
      !this.committing &&
      !this.inserts.inserting
    );
  }

  /**
   * Seals the open batch and waits until everything is inserted, or until
   * `timeoutMs` passed (then the rest stays in the spool). Returns whether all was inserted.
   */
  async flush(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.drained && Date.now() < deadline) {
      if (!this.committing && this.pending.length === 0 && this.current !== undefined)
        await this.seal();
      this.inserts.retryNow();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20);
        this.drainWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.drained;
  }

  /**
   * Waits until every row acknowledged before this call is in ClickHouse, without
   * sealing batches early (they go in on their own schedule), or until `timeoutMs`.
   */
  async settled(timeoutMs = 5_000): Promise<boolean> {
    const sealed = this.inserts.sealed;
    const last = Math.max(
      this.current?.seq ?? 0,
      this.sealing?.seq ?? 0,
      ...sealed.map((segment) => segment.seq),
    );
    const holdsOlder = (segment: Segment | undefined) =>
      segment !== undefined && segment.seq <= last && segment.bytes > 0;
    const hasOlder = () =>
      holdsOlder(this.current) ||
      holdsOlder(this.sealing) ||
      sealed.some((segment) => segment.seq <= last);
    const deadline = Date.now() + timeoutMs;
    while (hasOlder() && Date.now() < deadline) await sleep(10);
    return !hasOlder();
  }

  metrics(): Record<string, number> {
    return {
      ...this.counters,
      queuedBytes: this.pendingBytes,
      sealedSegments: this.inserts.sealed.length,
    };
  }

  /**
   * Stops at once, as a killed process would: nothing more is inserted, the
   * spool stays as it is on disk (for tests of restart and replay).
   */
  async abandon(): Promise<void> {
    this.closed = true;
    this.inserts.stop();
    if (this.sealTimer !== undefined) clearTimeout(this.sealTimer);
    this.sealTimer = undefined;
    this.inserts.sealed.length = 0;
    while (this.inserts.inserting || this.committing) await sleep(5);
    if (this.currentHandle !== undefined) await this.currentHandle.close().catch(() => undefined);
    this.currentHandle = undefined;
    this.current = undefined;
  }

  /** Stops taking writes, tries to insert what is left for `timeoutMs`; the rest stays spooled. */
  async close(timeoutMs = 10_000): Promise<void> {
    while (this.pending.length > 0 || this.committing) await sleep(5);
    this.closed = true;
    await this.flush(timeoutMs);
    this.inserts.stop();
    if (this.sealTimer !== undefined) clearTimeout(this.sealTimer);
    while (this.inserts.inserting) await sleep(5);
    if (this.currentHandle !== undefined) await this.currentHandle.close().catch(() => undefined);
    this.currentHandle = undefined;
    for (const segment of this.inserts.sealed) {
      for (const waiter of segment.waiters) {
        const error = new SpoolFullError('the collector is shutting down', 1);
        waiter.resolve({ status: 'overloaded', error });
      }
      segment.waiters = [];
    }
  }
}
