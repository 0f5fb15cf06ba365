/**
 * State on disk: small JSON files in the gateway's state dir, each replaced atomically (write to
 * a temporary file, fsync, rename) by `JsonStateFile`. Budget spend (`gateway-budgets.json`) is
 * written at most once per flush interval after a settle, and on close; a crash loses at most the
 * spend settled since the last write. Alert rules' firing state is ./alert-state.ts.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open, rename, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { formatIssues } from '@modelmaxx/semconv';

export const STATE_FILE_NAME = 'gateway-budgets.json';

const StateSchema = z.object({
  version: z.literal(1),
  savedAt: z.string(),
  windows: z.array(
    z.object({
      budget: z.string(),
      subject: z.string(),
      /** Window start and end, ms since the epoch. */
      start: z.number(),
      end: z.number(),
      spentUsd: z.number().nonnegative(),
    }),
  ),
});
export type BudgetState = z.infer<typeof StateSchema>;
export type WindowState = BudgetState['windows'][number];

/** One JSON document in the state dir, checked against `schema` when read. */
export class JsonStateFile<T> {
  readonly path: string;
  private writing: Promise<void> | undefined;
  private pending = false;

  readonly dir: string;
  private readonly schema: z.ZodType<T>;
  private readonly snapshot: () => T;

  constructor(dir: string, name: string, schema: z.ZodType<T>, snapshot: () => T) {
    this.dir = dir;
    this.schema = schema;
    this.snapshot = snapshot;
    this.path = join(dir, name);
  }

  /** The saved document, or undefined when there is no file yet; a corrupt file is an error. */
  read(): T | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new Error(`${this.path}: not JSON (${(error as Error).message})`, { cause: error });
    }
    const parsed = this.schema.safeParse(json);
    if (!parsed.success) {
      throw new Error(`${this.path}: unexpected content: ${formatIssues(parsed.error.issues)}`);
    }
    return parsed.data;
  }

  /** Writes the current state; concurrent calls coalesce into one more write. */
  async save(): Promise<void> {
    if (this.writing !== undefined) {
      this.pending = true;
      return this.writing;
    }
    this.writing = (async () => {
      try {
        do {
          this.pending = false;
          await this.writeOnce();
        } while (this.pending);
      } finally {
        this.writing = undefined;
      }
    })();
    return this.writing;
  }

  /** Synchronous write (process exit). */
  saveSync(): void {
    mkdirSync(this.dir, { recursive: true });
    const temporary = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(this.snapshot()));
    renameSync(temporary, this.path);
  }

  private async writeOnce(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const temporary = `${this.path}.${process.pid}.tmp`;
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(JSON.stringify(this.snapshot()));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.path);
  }

  /** Waits for a write in progress. */
  async idle(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
  }
}

/** Budget spend: `gateway-budgets.json`. */
export class StateFile extends JsonStateFile<BudgetState> {
  constructor(dir: string, snapshot: () => BudgetState) {
    super(dir, STATE_FILE_NAME, StateSchema, snapshot);
  }

  /** The saved windows, or none when there is no file yet; a corrupt file is an error. */
  load(): WindowState[] {
    return this.read()?.windows ?? [];
  }
}
