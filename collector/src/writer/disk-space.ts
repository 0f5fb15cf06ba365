/**
 * The free space of the spool's filesystem, and the part of it the spool leaves
 * to ClickHouse (`minFreeBytes`): a spool that filled the disk to the last byte
 * would leave ClickHouse no room to insert it, and nothing would ever drain.
 *
 * `statfs` is read at most every 100 ms off the write path (`refreshSoon`), and
 * the bytes the spool wrote since count against the last figure.
 */
import { statfs } from 'node:fs/promises';

/** Past ENOSPC, the disk has room again when a write as large fits with this much to spare. */
const ROOM_MARGIN_BYTES = 1024 * 1024;

export class DiskSpace {
  private readonly dir: string | undefined;
  private readonly minFreeBytes: number | undefined;
  /** Free and total bytes at the last `statfs`. */
  private free = Infinity;
  private size = 0;
  private at = 0;
  private refreshing = false;
  /** Bytes the spool wrote since the last `statfs` (not in `free` yet). */
  private writtenSince = 0;

  /** `dir` undefined: no spool, nothing to watch. */
  constructor(dir: string | undefined, minFreeBytes: number | undefined) {
    this.dir = dir;
    this.minFreeBytes = minFreeBytes;
  }

  /** The free space `minFreeBytes` keeps (default 10 % of the filesystem, at most 1 GiB; 0: none). */
  reserve(): number {
    return this.minFreeBytes ?? Math.min(1024 * 1024 * 1024, Math.floor(this.size / 10));
  }

  /** Free bytes as far as known: the last figure less what was written since and `pending`. */
  available(pending = 0): number {
    return this.free - this.writtenSince - pending;
  }

  /** Whether the free space (less `pending` and `bytes` more) is down to the reserve. */
  belowReserve(bytes = 0, pending = 0): boolean {
    const reserve = this.reserve();
    return reserve > 0 && this.available(pending) - bytes < reserve;
  }

  /** The spool wrote `bytes`. */
  wrote(bytes: number): void {
    this.writtenSince += bytes;
  }

  /** Reads the filesystem's free space; false when statfs fails (the last figure stays). */
  async refresh(): Promise<boolean> {
    if (this.dir === undefined) return false;
    this.refreshing = true;
    const startedWith = this.writtenSince;
    try {
      const fs = await statfs(this.dir);
      this.free = fs.bavail * fs.bsize;
      this.size = fs.blocks * fs.bsize;
      // Writes that finished while statfs ran may or may not be in its figure: count them.
      this.writtenSince -= startedWith;
      this.at = Date.now();
      return true;
    } catch {
      return false;
    } finally {
      this.refreshing = false;
    }
  }

  /** Refreshes the figure at most every 100 ms, off the caller's path. */
  refreshSoon(): void {
    if (this.refreshing || Date.now() - this.at < 100) return;
    void this.refresh();
  }

  /** After ENOSPC: does the filesystem have room for such a write again (plus 1 MiB)? A failed statfs: no. */
  async hasRoomFor(bytes: number): Promise<boolean> {
    return (await this.refresh()) && this.available() >= bytes + ROOM_MARGIN_BYTES;
  }
}
