import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The process holding an embedded ClickHouse folder, from the `status` file ClickHouse keeps
 * there while it runs (`PID: N`); undefined when there is none or its process is gone (a stale
 * file after a crash). Checked before opening, because chDB prints its own lock error straight
 * to stderr. Used by `serve` and by the CLI's `--data`.
 */
export function dataFolderHolder(clickhouseDir: string): number | undefined {
  const status = join(clickhouseDir, 'status');
  if (!existsSync(status)) return undefined;
  let pid: number;
  try {
    pid = Number(/^PID:\s*(\d+)/m.exec(readFileSync(status, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    // EPERM: alive, someone else's.
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}
