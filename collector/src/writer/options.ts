/**
 * The batching writer's options, their defaults, what it hands to `insert`, what
 * `health()` reports and the counters `metrics()` reports.
 */
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

/** One batch to insert (Native blocks): its bytes in memory (`body`) or in a spool segment file (`file`). */
export interface InsertBatch {
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

/**
 * Small inserts cost more a row (bench spans: ~49 µs at 20k rows, ~30 µs from 33k to 100k;
 * an insert has a fixed cost of ~0.3 s), large ones cost memory (an insert holds its whole
 * batch as one block, with every view's copy: peak RSS ~2 GB at 100k bench rows), hence at
 * most 50k rows. The byte cap is a backstop for unusually large rows: bench spans take
 * ~1.45 KB a row as Native, so 32 MiB cut their batches at ~23k rows, never reaching 50k
 * (64 MiB: ~37k rows in the benchmark, 15–20 % less CPU a span, peak RSS +30–100 MB).
 */
export const DEFAULT_BATCH: BatchOptions = {
  maxRows: 50_000,
  maxBytes: 64 * 1024 * 1024,
  maxDelayMs: 250,
};

/** The writer's counters (`metrics()`). */
export function newCounters() {
  return {
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
}

export type WriterCounters = ReturnType<typeof newCounters>;
