/**
 * The spool's folder: segment files of ClickHouse `Native` blocks, named
 * `<seq>-<random>.native` (`<seq>-<random>.small.native` once the segment is
 * inserted in small blocks), the spool's id in `spool.id`, segments ClickHouse
 * refused in `dead/`, damaged tails of segments in `quarantine/`.
 *
 * What it does to them: find the segments an earlier process left (cutting a torn
 * or damaged tail back to the last whole block), append a group of requests and
 * fsync, roll a failed append back, and move, rename or remove a segment.
 */
import { randomBytes } from 'node:crypto';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  stat,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { WriteResult } from '../store/span-store.js';
import { walkNativeBlocks, type NativeWalk } from './native-blocks.js';
import type { WriterCounters, WriterLogger } from './options.js';

export interface Waiter {
  resolve(result: WriteResult): void;
}

export interface Segment {
  seq: number;
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

const SEGMENT_FILE = /^(\d{16})-([0-9a-f]{16})(\.small)?\.native$/;

/** A new, empty segment: in `dir` when there is a spool, in memory otherwise. */
export function newSegment(seq: number, dir: string | undefined): Segment {
  const id = `${String(seq).padStart(16, '0')}-${randomBytes(8).toString('hex')}`;
  return {
    seq,
    id,
    path: dir === undefined ? undefined : join(dir, `${id}.native`),
    buffers: dir === undefined ? [] : undefined,
    bytes: 0,
    rows: 0,
    waiters: [],
    createdAt: Date.now(),
  };
}

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

export class SpoolFolder {
  readonly dir: string;
  private readonly logger: WriterLogger | undefined;
  private readonly counters: WriterCounters;
  /** Stable across restarts: part of every insert's deduplication token. */
  spoolId = '';

  constructor(dir: string, logger: WriterLogger | undefined, counters: WriterCounters) {
    this.dir = dir;
    this.logger = logger;
    this.counters = counters;
  }

  /** Creates the folders and reads (or makes) the spool's id. */
  async open(): Promise<void> {
    await mkdir(join(this.dir, 'dead'), { recursive: true });
    await mkdir(join(this.dir, 'quarantine'), { recursive: true });
    const idFile = join(this.dir, 'spool.id');
    try {
      this.spoolId = (await readFile(idFile, 'utf8')).trim();
    } catch {
      this.spoolId = randomBytes(8).toString('hex');
      await writeFile(idFile, `${this.spoolId}\n`);
    }
  }

  /**
   * The segments an earlier process left, oldest first, each cut back to its last whole
   * block (the rest to `quarantine/`; empty ones are removed), counted as replayed; and
   * the sequence number after the last one found.
   */
  async recover(): Promise<{ segments: Segment[]; nextSeq: number }> {
    const files = (await readdir(this.dir))
      .map((name) => SEGMENT_FILE.exec(name))
      .filter((match): match is RegExpExecArray => match !== null)
      .sort((a, b) => Number(a[1]) - Number(b[1]));
    const segments: Segment[] = [];
    let nextSeq = 1;
    for (const match of files) {
      const seq = Number(match[1]);
      nextSeq = Math.max(nextSeq, seq + 1);
      const path = join(this.dir, match[0]);
      const id = `${match[1]}-${match[2]}`;
      const { bytes, rows } = await this.wholeBlocks(path, id);
      if (bytes === 0) {
        await unlink(path);
        continue;
      }
      const smallBlocks = match[3] === undefined ? {} : { smallBlocks: true };
      const segment = { seq, id, path, buffers: undefined, bytes, rows, waiters: [] };
      segments.push({ ...segment, createdAt: Date.now(), checked: true, ...smallBlocks });
      this.counters.spoolBytes += bytes;
      this.counters.spoolSegments += 1;
      this.counters.replayedSegments += 1;
    }
    return { segments, nextSeq };
  }

  /**
   * A segment file found on start: a tail torn by a crash in the middle of a write, a
   * malformed block or zeros is cut back to the last whole block (the rest goes to
   * `quarantine/`). Its size and rows after that.
   */
  private async wholeBlocks(path: string, id: string): Promise<{ bytes: number; rows: number }> {
    const size = (await stat(path)).size;
    if (size === 0) return { bytes: 0, rows: 0 };
    const body = await readFile(path);
    const walk = walkNativeBlocks(body);
    if (walk.length < body.length) {
      await this.quarantineTail(path, id, body.subarray(walk.length), walk);
    }
    return { bytes: walk.length, rows: walk.rows };
  }

  /** Appends `buffers` to the segment's file and fsyncs (opening it on the first append). */
  async append(
    handle: FileHandle | undefined,
    segment: Segment,
    buffers: Buffer[],
  ): Promise<FileHandle> {
    handle ??= await open(segment.path as string, 'a');
    await writeAll(handle, buffers);
    await handle.datasync();
    return handle;
  }

  /**
   * After a failed append: cuts the file back to what was acknowledged (`segment.bytes`).
   * Truncating never extends the file: a file already shorter is left as it is. Returns
   * whether the file now holds exactly the acknowledged bytes.
   */
  async rollBack(handle: FileHandle, segment: Segment): Promise<boolean> {
    try {
      const before = (await handle.stat()).size;
      if (before > segment.bytes) await handle.truncate(segment.bytes);
      const after = (await handle.stat()).size;
      if (after === segment.bytes) return true;
      this.logger?.error(
        { segment: segment.id, size: after, acknowledgedBytes: segment.bytes },
        'spool segment has an unexpected size after a failed write',
      );
    } catch (rollbackError) {
      this.logger?.error(
        { err: rollbackError, segment: segment.id },
        'could not cut a spool segment back after a failed write',
      );
    }
    return false;
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
    const target = join(this.dir, 'quarantine', `${id}.${walk.length}.native`);
    let kept = true;
    try {
      await writeFile(target, tail);
    } catch (error) {
      kept = false;
      await unlink(target).catch(() => undefined);
      this.logger?.error(
        { err: error, segment: id },
        'could not keep the damaged part of a spool segment (is the disk full?); it is dropped',
      );
    }
    await truncate(path, walk.length);
    this.counters.quarantined += 1;
    this.counters.quarantinedBytes += tail.length;
    this.logger?.warn(
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

  /**
   * Walks a sealed segment's file; when it holds more than whole blocks, cuts it back
   * (the rest to `quarantine/`) and updates its size and rows. Returns whether it
   * changed anything; a segment cut back to nothing has its file removed.
   */
  async cutDamage(segment: Segment): Promise<boolean> {
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
      await unlink(path).catch(() => undefined);
      this.counters.spoolSegments -= 1;
    }
    return true;
  }

  /** A segment ClickHouse refused goes to `dead/`. */
  async moveToDead(segment: Segment): Promise<void> {
    await rename(segment.path as string, join(this.dir, 'dead', `${segment.id}.native`)).catch(
      () => undefined,
    );
    this.counters.spoolBytes -= segment.bytes;
    this.counters.spoolSegments -= 1;
  }

  /** A segment whose rows are in ClickHouse is removed. */
  async remove(segment: Segment): Promise<void> {
    await unlink(segment.path as string).catch(() => undefined);
    this.counters.spoolBytes -= segment.bytes;
    this.counters.spoolSegments -= 1;
  }

  /** A segment sealed without a byte in it: its (empty) file goes. */
  async discardEmpty(segment: Segment): Promise<void> {
    if (segment.path !== undefined) await unlink(segment.path).catch(() => undefined);
  }

  /**
   * Renames the segment to `<id>.small.native` (a rename needs no free space), so that after
   * a restart it is inserted in small blocks again. Returns false when the rename fails.
   */
  async markSmallBlocks(segment: Segment): Promise<boolean> {
    const renamed = join(this.dir, `${segment.id}.small.native`);
    try {
      await rename(segment.path as string, renamed);
    } catch (error) {
      this.logger?.warn({ err: error }, 'could not mark a segment for small blocks');
      return false;
    }
    segment.path = renamed;
    return true;
  }
}
