/**
 * The parts of ad-hoc SQL (`/api/sql`, `modelmaxx sql`) that do not depend on
 * the engine: its errors, the bounded lane that queries wait in, and the builder
 * that turns the streamed output into a result while counting its bytes.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { SqlResult } from './span-store.js';

/** A refusal of `/api/sql` before the query reaches ClickHouse, or a limit it ran into. */
export class SqlRejectedError extends Error {
  override readonly name = 'SqlRejectedError';
}

/** Too many ad-hoc queries running and waiting: answered 429 with `Retry-After`. */
export class SqlBusyError extends Error {
  override readonly name = 'SqlBusyError';
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The caller gave up (its `signal` aborted) before the query finished. */
export class SqlCancelledError extends Error {
  override readonly name = 'SqlCancelledError';
}

interface Waiter {
  start: () => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * At most `maxRunning` tasks at once and `maxWaiting` in line behind them; a
 * task beyond that is refused at once, and one that waited `maxWaitMs` without
 * its turn leaves the line (both `SqlBusyError`). A waiting task whose signal
 * aborts leaves the line without running. A slot is held until the task
 * settles, so a query ClickHouse has not stopped yet still counts.
 */
export class SqlLane {
  maxRunning: number;
  maxWaiting: number;
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(maxRunning: number, maxWaiting: number) {
    this.maxRunning = maxRunning;
    this.maxWaiting = maxWaiting;
  }

  get size(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  async run<T>(
    task: () => Promise<T>,
    signal: AbortSignal | undefined,
    retryAfterSeconds: number,
    maxWaitMs = Number.POSITIVE_INFINITY,
  ): Promise<T> {
    signal?.throwIfAborted();
    if (this.running >= this.maxRunning) {
      if (this.waiting.length >= this.maxWaiting) {
        throw new SqlBusyError(
          `too many SQL queries at once (${this.running} running, ${this.waiting.length} waiting; limits ${this.maxRunning} and ${this.maxWaiting}); try again later`,
          retryAfterSeconds,
        );
      }
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve, reject) => {
        const leave = (error: unknown) => {
          const index = this.waiting.indexOf(waiter);
          if (index >= 0) this.waiting.splice(index, 1);
          signal?.removeEventListener('abort', waiter.onAbort);
          clearTimeout(timer);
          reject(error);
        };
        const waiter: Waiter = {
          start: () => {
            clearTimeout(timer);
            resolve();
          },
          signal,
          onAbort: () => leave(signal?.reason),
        };
        signal?.addEventListener('abort', waiter.onAbort, { once: true });
        if (Number.isFinite(maxWaitMs)) {
          timer = setTimeout(
            () =>
              leave(
                new SqlBusyError(
                  `the SQL queue did not move for ${Math.round(maxWaitMs / 1000)} s (${this.running} running, limit ${this.maxRunning}); try again later`,
                  retryAfterSeconds,
                ),
              ),
            maxWaitMs,
          );
        }
        this.waiting.push(waiter);
      });
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private release(): void {
    const next = this.running <= this.maxRunning ? this.waiting.shift() : undefined;
    if (next === undefined) {
      this.running--;
      return;
    }
    // The slot passes straight to the next waiter.
    next.signal?.removeEventListener('abort', next.onAbort);
    next.start();
  }
}

/** Parsing work between two turns of the event loop. */
const SLICE_MS = 8;

export interface ResultLimits {
  maxRows: number;
  maxResultBytes: number;
}

/**
 * Builds a `SqlResult` from `JSONCompactEachRowWithNamesAndTypes` output given
 * in pieces: names, types, then a JSON array per row, one a line. Rows count
 * against `maxRows` and their JSON text against `maxResultBytes`; past either it
 * marks the result truncated and asks for no more. It yields to the event loop
 * every few milliseconds, and never decodes more of a piece than the limits let
 * it keep, so a huge block costs a scan for newlines, not a parse.
 */
export class AdHocResultBuilder {
  private names: string[] | undefined;
  private types: string[] | undefined;
  private readonly rows: Record<string, unknown>[] = [];
  private bytes = 0;
  private truncatedBy: 'maxRows' | 'maxResultBytes' | undefined;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private sliceStart = performance.now();
  private readonly limits: ResultLimits;

  constructor(limits: ResultLimits) {
    this.limits = limits;
  }

  /** Takes the next piece of output; false once the result is full. */
  async push(data: Uint8Array): Promise<boolean> {
    const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let start = 0;
    while (start < buffer.length) {
      const end = buffer.indexOf(10, start);
      if (end < 0) {
        if (!this.keepPartial(buffer.subarray(start))) return false;
        break;
      }
      let line = buffer.subarray(start, end);
      start = end + 1;
      if (this.partial.length > 0) {
        line = Buffer.concat([...this.partial, line]);
        this.partial = [];
        this.partialBytes = 0;
      }
      if (!this.line(line)) return false;
      if (performance.now() - this.sliceStart > SLICE_MS) {
        await yieldToEventLoop();
        this.sliceStart = performance.now();
      }
    }
    return true;
  }

  /** A row split across pieces: kept only while it could still fit. */
  private keepPartial(piece: Buffer): boolean {
    this.partialBytes += piece.length;
    if (this.names !== undefined && this.types !== undefined && !this.fits(this.partialBytes)) {
      this.truncatedBy = 'maxResultBytes';
      this.partial = [];
      return false;
    }
    this.partial.push(Buffer.from(piece));
    return true;
  }

  private fits(lineBytes: number): boolean {
    return this.bytes + lineBytes <= this.limits.maxResultBytes;
  }

  private line(line: Buffer): boolean {
    if (line.length === 0) return true;
    if (this.names === undefined) {
      this.names = JSON.parse(line.toString('utf8')) as string[];
      return true;
    }
    if (this.types === undefined) {
      this.types = JSON.parse(line.toString('utf8')) as string[];
      return true;
    }
    if (this.rows.length >= this.limits.maxRows) {
      this.truncatedBy = 'maxRows';
      return false;
    }
    if (!this.fits(line.length)) {
      this.truncatedBy = 'maxResultBytes';
      return false;
    }
    this.bytes += line.length;
    const values = JSON.parse(line.toString('utf8')) as unknown[];
    const row: Record<string, unknown> = {};
    const names = this.names;
    for (let index = 0; index < names.length; index++) row[names[index] ?? ''] = values[index];
    this.rows.push(row);
    return true;
  }

  /** True once a limit cut the result. */
  get full(): boolean {
    return this.truncatedBy !== undefined;
  }

  result(): SqlResult {
    const names = this.names ?? [];
    const types = this.types ?? [];
    return {
      columns: names.map((name, index) => ({ name, type: types[index] ?? '' })),
      rows: this.rows,
      truncated: this.truncatedBy !== undefined,
      ...(this.truncatedBy === undefined ? {} : { truncatedBy: this.truncatedBy }),
    };
  }
}
