/**
 * Why the writer cannot take a request's rows right now: the `error` of a
 * `WriteResult` of status `overloaded`. The receiver answers by class: a full
 * spool 503, a full queue 429, both with `Retry-After: retryAfterSeconds`.
 * Nothing of the request is kept; the sender retries it.
 */
export abstract class WriterOverloadedError extends Error {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.name = new.target.name;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * Storage has been behind for a while: the spool (or its disk) is full, ClickHouse
 * inserts fail without a spool, or the writer is shutting down.
 */
export class SpoolFullError extends WriterOverloadedError {}

/** More bytes wait for the disk (or, without a spool, for ClickHouse) than the memory bound: a burst. */
export class QueueFullError extends WriterOverloadedError {}
