/**
 * Failed spool writes (a group commit's write or fsync): what the requests of the
 * group are answered (a full disk or quota: `overloaded` with a `SpoolFullError`,
 * 503 + Retry-After; anything else `failed`), the log (at most one line every
 * 10 s, with the count of the others) and what readiness reports until a write
 * succeeds again.
 */
import type { WriteResult } from '../store/span-store.js';
import type { DiskSpace } from './disk-space.js';
import type { WriterLogger } from './options.js';
import { SpoolFullError } from './overloaded.js';

/** Write errors that mean the disk (or the quota) is full: answered 503, tried again later. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

/** Spool write failures are logged at most this often (one line with the count). */
const WRITE_ERROR_LOG_MS = 10_000;

const codeOf = (error: unknown): string =>
  String((error as NodeJS.ErrnoException | undefined)?.code);

export class SpoolWriteFailures {
  private readonly logger: WriterLogger | undefined;
  /** The last spool write failed (and none succeeded since). */
  private last: { diskFull: boolean; code: string; bytes: number } | undefined;
  private loggedAt = 0;
  private notLogged = 0;

  constructor(logger: WriterLogger | undefined) {
    this.logger = logger;
  }

  /**
   * A spool write of `bytes` failed with `error`: remembered and logged. Returns what its
   * requests are answered, and whether the disk is full.
   */
  failed(error: unknown, bytes: number): { diskFull: boolean; result: WriteResult } {
    const code = codeOf(error);
    const diskFull = typeof error === 'object' && error !== null && DISK_FULL.has(code);
    this.last = { diskFull, code, bytes };
    this.log(error, diskFull);
    const result: WriteResult = diskFull
      ? { status: 'overloaded', error: new SpoolFullError('the disk of the spool is full', 5) }
      : { status: 'failed', error: error instanceof Error ? error : new Error(String(error)) };
    return { diskFull, result };
  }

  /** A spool write succeeded. */
  succeeded(): void {
    this.last = undefined;
  }

  /**
   * Why the writer is not ready while the last write failed. A full disk (not a quota:
   * statfs does not see those) counts as ready again once it has room, even before the
   * next request proves it.
   */
  async unreadyReason(disk: DiskSpace): Promise<string | undefined> {
    const last = this.last;
    if (last === undefined) return undefined;
    if (last.code === 'ENOSPC' && (await disk.hasRoomFor(last.bytes))) return undefined;
    return last.diskFull ? 'spool writes fail: the disk is full' : 'spool writes fail';
  }

  private log(error: unknown, diskFull: boolean): void {
    const now = Date.now();
    if (now - this.loggedAt < WRITE_ERROR_LOG_MS) {
      this.notLogged += 1;
      return;
    }
    this.logger?.error(
      { err: error, diskFull, failedWritesNotLogged: this.notLogged },
      diskFull
        ? 'spool write failed: the disk is full; answering 503 until it has room'
        : 'spool write failed',
    );
    this.loggedAt = now;
    this.notLogged = 0;
  }
}
