/**
 * The durable batching writer between the OTLP receiver and ClickHouse.
 *
 * - A request's rows are acknowledged only once they are durable: appended to
 *   the on-disk spool and fsync'ed (group commit: one fsync for every request
 *   that arrived meanwhile), or — without a spool — inserted into ClickHouse.
 * - The spool is a sequence of segment files of ready-to-insert rows: ClickHouse
 *   `Native` blocks, one per request (`.native`; segments of earlier versions,
 *   TabSeparated lines in `.tsv` files, are still replayed). A segment is sealed when it reaches `maxRows`, `maxBytes` or
 *   `maxDelayMs` (when that time passes during an insert, as soon as the insert
 *   is done, so batches grow with insert latency); sealed segments are inserted
 *   one at a time, oldest first,
 *   each with `insert_deduplication_token` = spool id + segment number, so
 *   re-inserting a segment after a crash between insert and unlink is a no-op.
 * - ClickHouse down: inserts are retried with backoff while new requests keep
 *   spooling, up to `maxSpoolBytes`; past that, `write` answers `overloaded`
 *   (→ 503 + Retry-After). More than `maxQueuedBytes` waiting for the disk
 *   answers `overloaded` with a short retry (→ 429). Nothing is dropped.
 * - A request is acknowledged only when all its bytes are written (a short
 *   `writev` is continued) and fsync'ed. A failed write (ENOSPC: the disk is
 *   full) is rolled back to the acknowledged length — the file is cut, never
 *   extended — and its requests answered `overloaded` (disk full, → 503 +
 *   Retry-After) or `failed`; the next request tries the disk again, so the
 *   writer recovers by itself when space returns.
 * - On start, segments left by an earlier process are replayed. A damaged
 *   segment (found on start, or when its insert fails) is cut back to its last
 *   whole Native block; the rest goes to `quarantine/` (counted and logged).
 *   A segment whose insert keeps failing goes behind the others, so it never
 *   blocks them.
 */
import { randomBytes } from 'node:crypto';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  stat,
  statfs,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { WriteResult } from '../store/span-store.js';
import { walkNativeBlocks, type NativeWalk } from './native-blocks.js';
import { QueueFullError, SpoolFullError } from './overloaded.js';

export interface BatchOptions {
  /** Seal a batch at this many rows (default 50 000). */
  maxRows: number;
  /** Seal a batch at this many bytes of encoded rows (default 64 MiB). */
  maxBytes: number;
  /** Seal a batch this long after its first row arrived (default 250 ms). */
  maxDelayMs: number;
}

/** The part of a pino logger the writer uses. */
export interface WriterLogger {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** How a segment's rows are encoded. */
export type SegmentFormat = 'Native' | 'TabSeparated';

/** One batch to insert: its bytes in memory (`body`) or in a spool segment file (`file`). */
export interface InsertBatch {
  format: SegmentFormat;
  body?: Buffer;
  /** The segment file; it holds exactly the batch's bytes. */
  file?: string;
  rows: number;
  /** Stable for the same rows across restarts (`insert_deduplication_token`). */
  token: string;
  /**
   * Insert in small blocks (at most `SMALL_BLOCK_ROWS` rows a part) instead of one: the
   * segment's insert failed for want of disk space. ClickHouse dedups each block of a
   * multi-block insert by the token plus the block's index, so the same segment must always go
   * in with the same block size: the choice is kept in the segment's file name.
   */
  smallBlocks?: boolean;
}

/** Rows a part when a segment is inserted in small blocks (`InsertBatch.smallBlocks`). */
export const SMALL_BLOCK_ROWS = 2048;

export interface BatchWriterOptions {
  /** Inserts one batch. */
  insert(batch: InsertBatch): Promise<void>;
  /** What `write` gets (default `Native`: one Native block per request). */
  format?: SegmentFormat;
  /** Errors that retrying cannot fix (bad data): the batch goes to `dead/` instead. */
  isPermanentError?(error: unknown): boolean;
  /**
   * Errors that mean ClickHouse has no room for the part it would write: the segment is
   * retried in small blocks, which need far less room at once than one part of 50k rows.
   */
  isSpaceError?(error: unknown): boolean;
  /** Spool folder; without one, requests are acknowledged after the insert. */
  spoolDir?: string;
  batch?: Partial<BatchOptions>;
  /** Bytes waiting for the disk (or, without a spool, for ClickHouse) before `overloaded` (default 64 MiB). */
  maxQueuedBytes?: number;
  /** Bytes in the spool before `overloaded` (default 1 GiB). */
  maxSpoolBytes?: number;
  /**
   * Free space the spool leaves on its filesystem, for ClickHouse's inserts and merges (the
   * embedded engine's data is on the same disk by default): below it, `write` answers
   * `overloaded` (503). A spool that filled the disk to the last byte would leave ClickHouse no
   * room to insert it, and nothing would ever drain. Default: 10 % of the filesystem, at most
   * 1 GiB; 0 turns the check off.
   */
  minFreeBytes?: number;
  /** Retry backoff bounds for failed inserts (default 100 ms … 5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  logger?: WriterLogger;
  /** When `health()` reports the writer not ready. */
  readiness?: Partial<ReadinessOptions>;
  /** Called after each insert attempt. */
  onInsert?(event: { rows: number; bytes: number; ms: number; error?: unknown }): void;
}

export interface ReadinessOptions {
  /** Not ready after this many failed inserts in a row (default 3). */
  maxInsertFailures: number;
  /** Not ready while the oldest sealed batch has waited longer than this (default 120 s). */
  maxBatchAgeMs: number;
}

/** What `health()` reports; `reason` is short fixed text (no paths, no error messages). */
export interface WriterHealth {
  ready: boolean;
  reason?: string;
  /** When the last insert succeeded (ms since the epoch), if any did. */
  lastInsertAt?: number;
}

interface Waiter {
  resolve(result: WriteResult): void;
}

interface Segment {
  seq: number;
  format: SegmentFormat;
  /** Unique name of the segment (its file name without extension): the insert's deduplication token. */
  id: string;
  path: string | undefined;
  /** Without a spool, the rows (in memory); with a spool they are read from `path`. */
  buffers: Buffer[] | undefined;
  bytes: number;
  rows: number;
  /** Without a spool: the requests waiting for this segment's insert. */
  waiters: Waiter[];
  createdAt: number;
  /** Walked for damage already (on start, or after its first failed insert). */
  checked?: boolean;
  /** Inserted in small blocks from now on (its file name says so: `<id>.small.native`). */
  smallBlocks?: boolean;
}

interface Pending {
  buffer: Buffer;
  rows: number;
  waiter: Waiter;
}

const SEGMENT_FILE = /^(\d{16})-([0-9a-f]{16})(\.small)?\.(native|tsv)$/;

const EXTENSIONS: Record<SegmentFormat, string> = { Native: 'native', TabSeparated: 'tsv' };

/** Write errors that mean the disk (or the quota) is full: answered 503, tried again later. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

const isDiskFull = (error: unknown): boolean =>
  typeof error === 'object' &&
  error !== null &&
  DISK_FULL.has(String((error as NodeJS.ErrnoException).code));

const asError = (error: unknown): Error =>
  error instanceof Error ? error : new Error(String(error));

/** Writes every byte of `buffers` at the end of the file: `writev` may write fewer without an error. */
async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  let rest = buffers.filter((buffer) => buffer.length > 0);
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest);
    if (!(bytesWritten > 0)) throw new Error('the spool file took no bytes');
    let skip = bytesWritten;
    while (rest.length > 0 && skip >= (rest[0] as Buffer).length) {
      skip -= (rest[0] as Buffer).length;
      rest = rest.slice(1);
    }
    if (skip > 0) rest = [(rest[0] as Buffer).subarray(skip), ...rest.slice(1)];
  }
}

/** Spool write failures are logged at most this often (one line with the count). */
const WRITE_ERROR_LOG_MS = 10_000;

/**
 * Small inserts cost more a row (bench spans: ~49 µs at 20k rows, ~30 µs from 33k to 100k;
 * an insert has a fixed cost of ~0.3 s), large ones cost memory (an insert holds its whole
 * batch as one block, with every view's copy: peak RSS ~2 GB at 100k bench rows), hence at
 * most 50k rows. The byte cap is a backstop for unusually large rows: bench spans take
 * ~1.45 KB a row as Native, so 32 MiB cut their batches at ~23k rows, never reaching 50k
 * (64 MiB: ~37k rows in the benchmark, 15–20 % less CPU a span, peak RSS +30–100 MB).
 */
const DEFAULT_BATCH: BatchOptions = {
  maxRows: 50_000,
  maxBytes: 64 * 1024 * 1024,
  maxDelayMs: 250,
};

export class BatchWriter {
  private readonly options: BatchWriterOptions;
  private readonly batch: BatchOptions;
  private readonly maxQueuedBytes: number;
  private readonly maxSpoolBytes: number;
  private spoolId = '';
  private nextSeq = 1;
  private current: Segment | undefined;
  private currentHandle: FileHandle | undefined;
  private sealTimer: NodeJS.Timeout | undefined;
  /** The segment `seal()` is closing: no longer `current`, not yet in `sealed`. */
  private sealing: Segment | undefined;
  /** The seal timer fired while an insert was running: seal once the writer is idle. */
  private sealWhenIdle = false;
  private readonly sealed: Segment[] = [];
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private committing = false;
  private inserting = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  private closed = false;
  private drainWaiters: (() => void)[] = [];
  private lastInsertError: unknown;
  private readonly readiness: ReadinessOptions;
  private consecutiveInsertFailures = 0;
  private lastInsertAt: number | undefined;
  /** The last spool write failed (and none succeeded since). */
  /** The spool filesystem's free space at the last `statfs`, and what was written since. */
  private readonly disk = { free: Infinity, size: 0, at: 0, refreshing: false, writtenSince: 0 };
  private spoolWriteFailure: { diskFull: boolean; code: string; bytes: number } | undefined;
  private writeErrorLoggedAt = 0;
  private writeErrorsNotLogged = 0;
  private readonly counters = {
    received: 0,
    stored: 0,
    spooled: 0,
    rejected: 0,
    dead: 0,
    batches: 0,
    insertErrors: 0,
    batchLatencyMsSum: 0,
    batchLatencyCount: 0,
    spoolBytes: 0,
    spoolSegments: 0,
    replayedSegments: 0,
    /** Spool writes (group commits) that failed (e.g. ENOSPC) and were rolled back. */
    spoolWriteErrors: 0,
    /** Damaged parts of segments cut off and moved to `quarantine/`. */
    quarantined: 0,
    /** Rows refused because the spool's disk was down to its `minFreeBytes` reserve. */
    refusedForDiskReserve: 0,
    quarantinedBytes: 0,
  };

  private constructor(options: BatchWriterOptions) {
    this.options = options;
    this.batch = { ...DEFAULT_BATCH, ...options.batch };
    this.maxQueuedBytes = options.maxQueuedBytes ?? 64 * 1024 * 1024;
    this.maxSpoolBytes = options.maxSpoolBytes ?? 1024 * 1024 * 1024;
    this.retryDelayMs = options.retryMinMs ?? 100;
    this.readiness = { maxInsertFailures: 3, maxBatchAgeMs: 120_000, ...options.readiness };
  }

  static async open(options: BatchWriterOptions): Promise<BatchWriter> {
    const writer = new BatchWriter(options);
    await writer.recover();
    writer.kick();
    return writer;
  }

  get spooling(): boolean {
    return this.options.spoolDir !== undefined;
  }

  /** Replays segments an earlier process left behind. */
  private async recover(): Promise<void> {
    const dir = this.options.spoolDir;
    if (dir === undefined) return;
    await mkdir(join(dir, 'dead'), { recursive: true });
    await mkdir(join(dir, 'quarantine'), { recursive: true });
    await this.refreshDisk();
    const idFile = join(dir, 'spool.id');
    try {
      this.spoolId = (await readFile(idFile, 'utf8')).trim();
    } catch {
      this.spoolId = randomBytes(8).toString('hex');
      await writeFile(idFile, `${this.spoolId}\n`);
    }
    const files = (await readdir(dir))
      .map((name) => SEGMENT_FILE.exec(name))
      .filter((match): match is RegExpExecArray => match !== null)
      .sort((a, b) => Number(a[1]) - Number(b[1]));
    for (const match of files) {
      const seq = Number(match[1]);
      const path = join(dir, match[0]);
      const format: SegmentFormat = match[4] === 'tsv' ? 'TabSeparated' : 'Native';
      const id = `${match[1]}-${match[2]}`;
      const smallBlocks = match[3] !== undefined;
      let size = (await stat(path)).size;
      let rows = -1;
      if (format === 'Native' && size > 0) {
        // A tail torn by a crash in the middle of a write, a malformed block or zeros: cut the
        // segment back to its last whole block (the rest goes to quarantine/).
        const body = await readFile(path);
        const walk = walkNativeBlocks(body);
        rows = walk.rows;
        if (walk.length < body.length) {
          await this.quarantineTail(path, id, body.subarray(walk.length), walk);
          size = walk.length;
        }
      }
      this.nextSeq = Math.max(this.nextSeq, seq + 1);
      if (size === 0) {
        await unlink(path);
        continue;
      }
      this.sealed.push({
        seq,
        format,
        id,
        path,
        buffers: undefined,
        bytes: size,
        rows,
        waiters: [],
        createdAt: Date.now(),
        checked: format === 'Native',
        ...(smallBlocks ? { smallBlocks } : {}),
      });
      this.counters.spoolBytes += size;
      this.counters.spoolSegments += 1;
      this.counters.replayedSegments += 1;
    }
  }

  /**
   * Cuts the segment at `path` back to `walk.length` (its whole blocks); the cut-off
   * bytes are kept in `quarantine/` when the disk has room for them.
   */
  private async quarantineTail(
    path: string,
    id: string,
    tail: Buffer,
    walk: NativeWalk,
  ): Promise<void> {
    const dir = this.options.spoolDir as string;
    const target = join(dir, 'quarantine', `${id}.${walk.length}.native`);
    let kept = true;
    try {
      await writeFile(target, tail);
    } catch (error) {
      kept = false;
      await unlink(target).catch(() => undefined);
      this.options.logger?.error(
        { err: error, segment: id },
        'could not keep the damaged part of a spool segment (is the disk full?); it is dropped',
      );
    }
    await truncate(path, walk.length);
    this.counters.quarantined += 1;
    this.counters.quarantinedBytes += tail.length;
    this.options.logger?.warn(
      {
        segment: id,
        reason: walk.stopped ?? 'malformed',
        keptBytes: walk.length,
        keptRows: walk.rows,
        cutBytes: tail.length,
        ...(kept ? { quarantine: target } : {}),
      },
      'damaged spool segment cut back to its last whole block',
    );
  }

  /** Hands one request's rows (one Native block, or TabSeparated lines) to the writer. */
  write(buffer: Buffer, rows: number): Promise<WriteResult> {
    if (this.closed) {
      return Promise.resolve({ status: 'failed', error: new Error('the writer is closed') });
    }
    this.counters.received += rows;
    if (rows === 0)
      return Promise.resolve({ status: 'ok', durability: this.spooling ? 'spool' : 'clickhouse' });
    if (this.spooling && this.counters.spoolBytes + buffer.length > this.maxSpoolBytes) {
      this.counters.rejected += rows;
      return Promise.resolve({
        status: 'overloaded',
        error: new SpoolFullError(
          `the spool holds ${this.counters.spoolBytes} bytes not yet in ClickHouse (limit ${this.maxSpoolBytes})`,
          Math.max(1, Math.ceil(this.retryDelayMs / 1000) * 2),
        ),
      });
    }
    if (this.spooling) {
      this.refreshDiskSoon();
      const free = this.disk.free - this.disk.writtenSince - this.pendingBytes;
      const reserve = this.reserveBytes();
      if (reserve > 0 && free - buffer.length < reserve) {
        this.counters.rejected += rows;
        this.counters.refusedForDiskReserve += rows;
        return Promise.resolve({
          status: 'overloaded',
          error: new SpoolFullError(
            `the disk of the spool has ${Math.max(0, free)} bytes free; ${reserve} are kept for ClickHouse's inserts`,
            Math.max(1, Math.ceil(this.retryDelayMs / 1000) * 2),
          ),
        });
      }
    }
    const queued = this.spooling
      ? this.pendingBytes
      : this.pendingBytes + this.inMemoryUninserted();
    if (queued + buffer.length > this.maxQueuedBytes) {
      this.counters.rejected += rows;
      return Promise.resolve({
        status: 'overloaded',
        error: new QueueFullError(`${queued} bytes are queued (limit ${this.maxQueuedBytes})`, 1),
      });
    }
    return new Promise<WriteResult>((resolve) => {
      this.pending.push({ buffer, rows, waiter: { resolve } });
      this.pendingBytes += buffer.length;
      if (this.spooling) this.commit();
      else this.appendInMemory();
    });
  }

  private inMemoryUninserted(): number {
    let bytes = this.current?.bytes ?? 0;
    for (const segment of this.sealed) bytes += segment.bytes;
    return bytes;
  }

  private newSegment(): Segment {
    const seq = this.nextSeq++;
    const id = `${String(seq).padStart(16, '0')}-${randomBytes(8).toString('hex')}`;
    const format = this.options.format ?? 'Native';
    return {
      seq,
      format,
      id,
      path:
        this.options.spoolDir === undefined
          ? undefined
          : join(this.options.spoolDir, `${id}.${EXTENSIONS[format]}`),
      buffers: this.options.spoolDir === undefined ? [] : undefined,
      bytes: 0,
      rows: 0,
      waiters: [],
      createdAt: Date.now(),
    };
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
      const segment = (this.current ??= this.newSegment());
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
      const segment = (this.current ??= this.newSegment());
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
      if (
        this.current === segment &&
        (segment.rows >= this.batch.maxRows || segment.bytes >= this.batch.maxBytes)
      ) {
        await this.seal();
      }
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
      this.currentHandle ??= await open(segment.path as string, 'a');
      await writeAll(this.currentHandle, buffers);
      await this.currentHandle.datasync();
    } catch (error) {
      await this.spoolWriteFailed(segment, chunk, rows, bytes, error);
      return;
    }
    if (segment.bytes === 0) this.counters.spoolSegments += 1;
    segment.bytes += bytes;
    segment.rows += rows;
    this.counters.spoolBytes += bytes;
    this.disk.writtenSince += bytes;
    this.counters.spooled += rows;
    this.spoolWriteFailure = undefined;
    for (const item of chunk) item.waiter.resolve({ status: 'ok', durability: 'spool' });
  }

  /**
   * A group's write (or fsync) failed: nothing of it is acknowledged, and the segment
   * is cut back to what was acknowledged before (`segment.bytes`). Truncating never
   * extends the file: a file already shorter is left as it is (and sealed).
   */
  private async spoolWriteFailed(
    segment: Segment,
    chunk: Pending[],
    rows: number,
    bytes: number,
    error: unknown,
  ): Promise<void> {
    const diskFull = isDiskFull(error);
    this.counters.spoolWriteErrors += 1;
    this.counters.rejected += rows;
    this.spoolWriteFailure = {
      diskFull,
      code: String((error as NodeJS.ErrnoException | undefined)?.code),
      bytes,
    };
    let intact = true;
    const handle = this.currentHandle;
    if (handle !== undefined) {
      try {
        const before = (await handle.stat()).size;
        if (before > segment.bytes) await handle.truncate(segment.bytes);
        const after = (await handle.stat()).size;
        if (after !== segment.bytes) {
          intact = false;
          this.options.logger?.error(
            { segment: segment.id, size: after, acknowledgedBytes: segment.bytes },
            'spool segment has an unexpected size after a failed write',
          );
        }
      } catch (rollbackError) {
        intact = false;
        this.options.logger?.error(
          { err: rollbackError, segment: segment.id },
          'could not cut a spool segment back after a failed write',
        );
      }
    }
    const now = Date.now();
    if (now - this.writeErrorLoggedAt >= WRITE_ERROR_LOG_MS) {
      this.options.logger?.error(
        { err: error, diskFull, failedWritesNotLogged: this.writeErrorsNotLogged },
        diskFull
          ? 'spool write failed: the disk is full; answering 503 until it has room'
          : 'spool write failed',
      );
      this.writeErrorLoggedAt = now;
      this.writeErrorsNotLogged = 0;
    } else this.writeErrorsNotLogged += 1;
    for (const item of chunk) {
      item.waiter.resolve(
        diskFull
          ? {
              status: 'overloaded',
              error: new SpoolFullError('the disk of the spool is full', 5),
            }
          : { status: 'failed', error: asError(error) },
      );
    }
    // A disk that is full: the segment (cut back, verified) stays open for the next
    // write. Anything else: seal what is complete and start a fresh segment.
    if (!(diskFull && intact)) await this.seal();
  }

  /** Seals the open segment when it is full, or schedules sealing by time. */
  private afterAppend(): void {
    const segment = this.current;
    if (segment === undefined || segment.bytes === 0) return;
    if (segment.rows >= this.batch.maxRows || segment.bytes >= this.batch.maxBytes) {
      void this.seal();
      return;
    }
    if (this.sealTimer === undefined) {
      const wait = Math.max(0, segment.createdAt + this.batch.maxDelayMs - Date.now());
      this.sealTimer = setTimeout(() => {
        this.sealTimer = undefined;
        if (this.committing) return; // commit's afterAppend re-arms the timer
        if (this.inserting) {
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
      if (segment?.path !== undefined) await unlink(segment.path).catch(() => undefined);
      return;
    }
    this.sealed.push(segment);
    this.trimMemory();
    this.kick();
  }

  /** Keeps in memory only as many sealed segments as `maxQueuedBytes` allows; the rest stay on disk. */
  private trimMemory(): void {
    if (!this.spooling) return;
    let held = 0;
    for (const segment of this.sealed) {
      if (segment.buffers === undefined) continue;
      held += segment.bytes;
      if (held > this.maxQueuedBytes) segment.buffers = undefined;
    }
  }

  private kick(): void {
    if (
      this.sealWhenIdle &&
      !this.inserting &&
      !this.committing &&
      this.retryTimer === undefined &&
      this.sealed.length === 0 &&
      this.current !== undefined
    ) {
      this.sealWhenIdle = false;
      void this.seal(); // seal() kicks again
      return;
    }
    if (this.inserting || this.retryTimer !== undefined || this.sealed.length === 0) {
      if (
        !this.inserting &&
        this.sealed.length === 0 &&
        this.current === undefined &&
        this.sealing === undefined &&
        this.pending.length === 0
      ) {
        this.notifyDrained();
      }
      return;
    }
    this.inserting = true;
    void this.insertNext().finally(() => {
      this.inserting = false;
      this.kick();
    });
  }

  private async insertNext(): Promise<void> {
    const segment = this.sealed[0];
    if (segment === undefined) return;
    const token = `modelmaxx-${this.spoolId || 'memory'}-${segment.id}`;
    let batch: InsertBatch;
    if (segment.path === undefined || segment.format === 'Native') {
      // Native segments go in as they are on disk: never read into memory here.
      batch =
        segment.path === undefined
          ? {
              format: segment.format,
              body: Buffer.concat(segment.buffers ?? [], segment.bytes),
              rows: segment.rows,
              token,
            }
          : { format: segment.format, file: segment.path, rows: segment.rows, token };
      if (segment.smallBlocks === true) batch.smallBlocks = true;
    } else {
      // A TabSeparated segment of an earlier version.
      let body = await readFile(segment.path);
      const end = body.lastIndexOf(0x0a);
      if (end + 1 !== body.length) body = body.subarray(0, end + 1); // torn tail of a crashed write
      if (segment.rows < 0) {
        let rows = 0;
        for (let index = body.indexOf(0x0a); index !== -1; index = body.indexOf(0x0a, index + 1))
          rows++;
        segment.rows = rows;
      }
      batch = { format: segment.format, body, rows: segment.rows, token };
    }
    const bytes = batch.body?.length ?? segment.bytes;
    const started = performance.now();
    try {
      if (bytes > 0) await this.options.insert(batch);
      const ms = performance.now() - started;
      this.options.onInsert?.({ rows: segment.rows, bytes, ms });
      this.sealed.shift();
      this.counters.batches += 1;
      this.counters.stored += segment.rows;
      this.counters.batchLatencyMsSum += ms;
      this.counters.batchLatencyCount += 1;
      this.retryDelayMs = this.options.retryMinMs ?? 100;
      this.lastInsertError = undefined;
      this.consecutiveInsertFailures = 0;
      this.lastInsertAt = Date.now();
      if (segment.path !== undefined) {
        await unlink(segment.path).catch(() => undefined);
        this.counters.spoolBytes -= segment.bytes;
        this.counters.spoolSegments -= 1;
      }
      for (const waiter of segment.waiters)
        waiter.resolve({ status: 'ok', durability: 'clickhouse' });
      this.trimMemory();
      // Spooled segments no longer held in memory can be reloaded now that memory is free.
    } catch (error) {
      const ms = performance.now() - started;
      this.options.onInsert?.({ rows: segment.rows, bytes, ms, error });
      this.counters.insertErrors += 1;
      this.consecutiveInsertFailures += 1;
      this.lastInsertError = error;
      const permanent = this.options.isPermanentError?.(error) === true;
      if (
        segment.path !== undefined &&
        segment.format === 'Native' &&
        (segment.checked !== true || permanent)
      ) {
        // Its first failed insert, or ClickHouse cannot read it: is the segment damaged? Then
        // cut it back and try again at once (a damaged Native stream reads as many errors).
        segment.checked = true;
        if (await this.cutDamage(segment)) return;
      }
      if (
        !permanent &&
        segment.smallBlocks !== true &&
        segment.format === 'Native' &&
        segment.rows > SMALL_BLOCK_ROWS &&
        this.options.isSpaceError?.(error) === true
      ) {
        await this.useSmallBlocks(segment);
      }
      if (permanent) {
        this.sealed.shift();
        this.counters.dead += segment.rows;
        this.options.logger?.error(
          { err: error, rows: segment.rows, seq: segment.seq },
          'batch refused by ClickHouse, moved to spool/dead',
        );
        if (segment.path !== undefined && this.options.spoolDir !== undefined) {
          await rename(
            segment.path,
            join(this.options.spoolDir, 'dead', `${segment.id}.${EXTENSIONS[segment.format]}`),
          ).catch(() => undefined);
          this.counters.spoolBytes -= segment.bytes;
          this.counters.spoolSegments -= 1;
        }
        const failure = error instanceof Error ? error : new Error(String(error));
        for (const waiter of segment.waiters) waiter.resolve({ status: 'failed', error: failure });
        return;
      }
      if (!this.spooling) {
        // Nobody holds these rows but the waiting requests: tell them to retry.
        this.sealed.shift();
        this.counters.rejected += segment.rows;
        for (const waiter of segment.waiters) {
          waiter.resolve({
            status: 'overloaded',
            // ClickHouse is failing, not a burst: 503.
            error: new SpoolFullError(
              `ClickHouse insert failed: ${error instanceof Error ? error.message : String(error)}`,
              Math.max(1, Math.ceil(this.retryDelayMs / 1000)),
            ),
          });
        }
      }
      this.options.logger?.warn(
        { err: error, rows: segment.rows, retryInMs: this.retryDelayMs },
        'ClickHouse insert failed, will retry',
      );
      if (this.spooling && this.sealed.length > 1 && this.sealed[0] === segment) {
        // Later segments go first: a segment that keeps failing never holds the others back.
        this.sealed.push(this.sealed.shift() as Segment);
      }
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.kick();
      }, this.retryDelayMs);
      this.retryTimer.unref();
      this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.options.retryMaxMs ?? 5_000);
    }
  }

  /**
   * From now on the segment goes in as small blocks. A spooled segment is renamed to
   * `<id>.small.native` first (a rename needs no free space), so that after a restart it is
   * inserted with the same block size: its blocks' deduplication tokens must not change once
   * some of them may be in ClickHouse. A failed insert of one block writes nothing, so the
   * switch itself is safe. When the rename fails, the segment stays as it is (and is retried).
   */
  private async useSmallBlocks(segment: Segment): Promise<void> {
    if (segment.path !== undefined) {
      const renamed = join(
        this.options.spoolDir as string,
        `${segment.id}.small.${EXTENSIONS[segment.format]}`,
      );
      try {
        await rename(segment.path, renamed);
      } catch (error) {
        this.options.logger?.warn({ err: error }, 'could not mark a segment for small blocks');
        return;
      }
      segment.path = renamed;
    }
    segment.smallBlocks = true;
    this.options.logger?.warn(
      { rows: segment.rows, seq: segment.seq, blockRows: SMALL_BLOCK_ROWS },
      'ClickHouse has no room for this batch as one part: inserting it in small blocks',
    );
  }

  /**
   * Walks a sealed segment's file; when it holds more than whole blocks, cuts it back
   * (the rest to `quarantine/`). Returns whether it changed anything.
   */
  private async cutDamage(segment: Segment): Promise<boolean> {
    const path = segment.path as string;
    let body: Buffer;
    try {
      body = await readFile(path);
    } catch {
      return false;
    }
    const walk = walkNativeBlocks(body);
    if (walk.length >= body.length) return false;
    await this.quarantineTail(path, segment.id, body.subarray(walk.length), walk);
    this.counters.spoolBytes -= segment.bytes - walk.length;
    segment.bytes = walk.length;
    segment.rows = walk.rows;
    if (walk.length === 0) {
      this.sealed.splice(this.sealed.indexOf(segment), 1);
      await unlink(path).catch(() => undefined);
      this.counters.spoolSegments -= 1;
    }
    return true;
  }

  /**
   * Whether the insert path works: spool writes succeed (or the disk has room again),
   * inserts are not failing over and over, and no batch has waited too long.
   */
  async health(): Promise<WriterHealth> {
    const lastInsertAt = this.lastInsertAt === undefined ? {} : { lastInsertAt: this.lastInsertAt };
    const failure = this.spoolWriteFailure;
    // A full disk (not a quota: statfs does not see those) counts as ready again once
    // it has room, even before the next request proves it.
    if (
      failure !== undefined &&
      !(failure.code === 'ENOSPC' && (await this.diskHasRoom(failure.bytes)))
    ) {
      return {
        ready: false,
        reason: failure.diskFull ? 'spool writes fail: the disk is full' : 'spool writes fail',
        ...lastInsertAt,
      };
    }
    if (this.spooling) {
      await this.refreshDisk();
      const reserve = this.reserveBytes();
      if (reserve > 0 && this.disk.free - this.disk.writtenSince < reserve) {
        return {
          ready: false,
          reason: 'the disk of the spool is down to the room kept for ClickHouse',
          ...lastInsertAt,
        };
      }
    }
    if (this.consecutiveInsertFailures >= this.readiness.maxInsertFailures) {
      return {
        ready: false,
        reason: `ClickHouse inserts fail (${this.consecutiveInsertFailures} in a row)`,
        ...lastInsertAt,
      };
    }
    let oldest = Infinity;
    for (const segment of this.sealed) oldest = Math.min(oldest, segment.createdAt);
    const waited = Date.now() - oldest;
    if (waited > this.readiness.maxBatchAgeMs) {
      return {
        ready: false,
        reason: `the oldest spooled batch has waited ${Math.round(waited / 1000)} s`,
        ...lastInsertAt,
      };
    }
    return { ready: true, ...lastInsertAt };
  }

  /** The free space `minFreeBytes` keeps (default 10 % of the filesystem, at most 1 GiB). */
  private reserveBytes(): number {
    return (
      this.options.minFreeBytes ?? Math.min(1024 * 1024 * 1024, Math.floor(this.disk.size / 10))
    );
  }

  /** Reads the spool filesystem's free space (what `write` checks against `minFreeBytes`); false when statfs fails. */
  private async refreshDisk(): Promise<boolean> {
    if (this.options.spoolDir === undefined) return false;
    this.disk.refreshing = true;
    const startedWith = this.disk.writtenSince;
    try {
      const fs = await statfs(this.options.spoolDir);
      this.disk.free = fs.bavail * fs.bsize;
      this.disk.size = fs.blocks * fs.bsize;
      // Writes that finished while statfs ran may or may not be in its figure: count them.
      this.disk.writtenSince -= startedWith;
      this.disk.at = Date.now();
      return true;
    } catch {
      return false; // unknown: the last figure stays
    } finally {
      this.disk.refreshing = false;
    }
  }

  /** Refreshes the free-space figure at most every 100 ms, off the caller's path. */
  private refreshDiskSoon(): void {
    if (this.disk.refreshing || Date.now() - this.disk.at < 100) return;
    void this.refreshDisk();
  }

  /** After ENOSPC: does the spool's filesystem have room for such a write again (plus 1 MiB)? */
  private async diskHasRoom(bytes: number): Promise<boolean> {
    if (this.options.spoolDir === undefined) return false;
    return (
      (await this.refreshDisk()) && this.disk.free - this.disk.writtenSince >= bytes + 1024 * 1024
    );
  }

  private notifyDrained(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** True when every acknowledged row is in ClickHouse. */
  get drained(): boolean {
    return (
      this.sealed.length === 0 &&
      this.current === undefined &&
      this.sealing === undefined &&
      this.pending.length === 0 &&
      !this.committing &&
      !this.inserting
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
      if (this.retryTimer !== undefined && this.lastInsertError !== undefined) {
        // Don't sit out a long backoff while someone is waiting.
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        this.kick();
      }
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
    const last = Math.max(
      this.current?.seq ?? 0,
      this.sealing?.seq ?? 0,
      ...this.sealed.map((segment) => segment.seq),
    );
    const hasOlder = () =>
      (this.current !== undefined && this.current.seq <= last && this.current.bytes > 0) ||
      (this.sealing !== undefined && this.sealing.seq <= last && this.sealing.bytes > 0) ||
      this.sealed.some((segment) => segment.seq <= last);
    const deadline = Date.now() + timeoutMs;
    while (hasOlder() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return !hasOlder();
  }

  metrics(): Record<string, number> {
    return { ...this.counters, queuedBytes: this.pendingBytes, sealedSegments: this.sealed.length };
  }

  /**
   * Stops at once, as a killed process would: nothing more is inserted, the
   * spool stays as it is on disk (for tests of restart and replay).
   */
  async abandon(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.sealTimer !== undefined) clearTimeout(this.sealTimer);
    this.retryTimer = undefined;
    this.sealTimer = undefined;
    this.sealed.length = 0;
    while (this.inserting || this.committing)
      await new Promise((resolve) => setTimeout(resolve, 5));
    if (this.currentHandle !== undefined) await this.currentHandle.close().catch(() => undefined);
    this.currentHandle = undefined;
    this.current = undefined;
  }

  /** Stops taking writes, tries to insert what is left for `timeoutMs`; the rest stays spooled. */
  async close(timeoutMs = 10_000): Promise<void> {
    while (this.pending.length > 0 || this.committing)
      await new Promise((resolve) => setTimeout(resolve, 5));
    this.closed = true;
    await this.flush(timeoutMs);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.sealTimer !== undefined) clearTimeout(this.sealTimer);
    while (this.inserting) await new Promise((resolve) => setTimeout(resolve, 5));
    if (this.currentHandle !== undefined) await this.currentHandle.close().catch(() => undefined);
    this.currentHandle = undefined;
    for (const segment of this.sealed) {
      for (const waiter of segment.waiters) {
        waiter.resolve({
          status: 'overloaded',
          error: new SpoolFullError('the collector is shutting down', 1),
        });
      }
      segment.waiters = [];
    }
  }
}
