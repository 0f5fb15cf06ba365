/**
 * One gateway per state dir. Budgets are enforced by each gateway process on its own ledger, and
 * the state file is replaced whole by each write: two gateways on one dir would each let the whole
 * limit through and overwrite each other's spend, silently. So the dir is held with a lock file
 * (`gateway-budgets.lock`, the holder's pid) created exclusively; a lock whose process is gone (a
 * crash) is taken over. A lock held by this very process (a second access layer on the same dir)
 * counts as held; one naming this pid but not held here is a previous run's (a container's pid 1
 * restarted) and is taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const STATE_LOCK_NAME = 'gateway-budgets.lock';

/** Lock files held by this process. */
const held = new Set<string>();

export class StateLock {
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
  }

  /** Takes the dir's lock, or throws naming the process that holds it. */
  static acquire(dir: string): StateLock {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, STATE_LOCK_NAME);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
        held.add(path);
        return new StateLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = holderOf(path);
      if (holder !== undefined) {
        const who = holder === process.pid ? 'this process' : `process ${holder}`;
        throw new Error(
          `${dir} holds another gateway's budget spend (${who}, ${path}): budgets are enforced per gateway process, so two gateways on one state dir would each let the whole limit through and overwrite each other's spend. Give this one a state dir of its own (MODELMAXX_GATEWAY_STATE_DIR) with its share of the limits, or stop the other; delete the lock file only if no gateway runs`,
        );
      }
      rmSync(path, { force: true }); // its process is gone: a stale lock
    }
    throw new Error(`${path}: cannot take the gateway's state lock`);
  }

  /** Gives the dir back (the gateway closes). */
  release(): void {
    if (!held.delete(this.path)) return;
    rmSync(this.path, { force: true });
  }
}

/** The live process a lock file names; undefined when it names none (stale or unreadable). */
function holderOf(path: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(path, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (pid === process.pid) return held.has(path) ? pid : undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    // EPERM: alive, another user's.
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}
