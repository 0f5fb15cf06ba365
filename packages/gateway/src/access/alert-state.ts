/**
 * Alert rules' firing state across restarts: `gateway-alerts.json` in the gateway's state dir,
 * beside the budget spend and written the same way (./state-file.ts). Without it a restart (which
 * adding a key requires) forgot that a rule was firing and sent `firing` again for a condition
 * already notified, and never sent the `resolved` of one that stopped while it was down.
 *
 * A file of its own rather than a field of `gateway-budgets.json`: the state changes once per
 * evaluation, not per settled call; and a damaged file costs at most one repeated alert, so it is
 * logged and ignored, where damaged budget spend stops the gateway at start.
 */
import { z } from 'zod';
import type { AccessLogger } from './logger.js';
import { JsonStateFile } from './state-file.js';

export const ALERT_STATE_FILE_NAME = 'gateway-alerts.json';

const AlertStateSchema = z.object({
  version: z.literal(1),
  savedAt: z.string(),
  rules: z.array(
    z.object({
      rule: z.string(),
      /** The group's labels (`{}` for a rule over all its rows, `{ model }` per model). */
      group: z.record(z.string(), z.string()),
      firing: z.boolean(),
      /** When `firing` was last sent, ms since the epoch. */
      lastSent: z.number(),
    }),
  ),
});
type AlertState = z.infer<typeof AlertStateSchema>;

export interface RuleState {
  firing: boolean;
  lastSent: number;
}

/** The key of a rule's group in the engine's state map. */
export function ruleStateId(rule: string, group: Record<string, string>): string {
  return `${rule}\u0000${JSON.stringify(group)}`;
}

/** Keeps an `AlertEngine`'s state map in the state dir. */
export class AlertStateStore {
  private readonly file: JsonStateFile<AlertState>;
  private readonly states: Map<string, RuleState>;
  private readonly logger: AccessLogger;
  /** The rules last written (without `savedAt`); undefined: not written by this process yet. */
  private written: string | undefined;

  constructor(
    dir: string,
    states: Map<string, RuleState>,
    clock: () => number,
    logger: AccessLogger,
  ) {
    this.states = states;
    this.logger = logger;
    this.file = new JsonStateFile(dir, ALERT_STATE_FILE_NAME, AlertStateSchema, () => ({
      version: 1,
      savedAt: new Date(clock()).toISOString(),
      rules: this.entries(),
    }));
  }

  /**
   * Puts the saved state of the rules still configured into the map (the others' is dropped, and
   * the file rewritten without them). A damaged file is logged and left to be replaced.
   */
  restore(configured: ReadonlySet<string>): void {
    let saved: AlertState | undefined;
    try {
      saved = this.file.read();
    } catch (error) {
      this.logger.warn(
        { file: this.file.path, error: (error as Error).message },
        'alert state not restored: firing rules will be sent again',
      );
      return;
    }
    if (saved === undefined) return;
    let restored = 0;
    for (const entry of saved.rules) {
      if (!configured.has(entry.rule)) continue;
      this.states.set(ruleStateId(entry.rule, entry.group), {
        firing: entry.firing,
        lastSent: entry.lastSent,
      });
      restored += 1;
    }
    if (restored > 0) {
      this.logger.info({ file: this.file.path, rules: restored }, 'alert state restored');
    }
    // Written again at once when rules were dropped; else when the state next changes.
    if (restored < saved.rules.length) void this.save();
    else this.written = JSON.stringify(this.entries());
  }

  /** Writes the state if it changed since the last write; a failure is logged. */
  async save(): Promise<void> {
    const current = JSON.stringify(this.entries());
    if (current === this.written) return;
    try {
      await this.file.save();
      this.written = current;
    } catch (error) {
      this.logger.error({ file: this.file.path, error: String(error) }, 'cannot write alert state');
    }
  }

  /** Waits for a write in progress. */
  idle(): Promise<void> {
    return this.file.idle();
  }

  private entries(): AlertState['rules'] {
    return [...this.states].map(([id, state]) => {
      const split = id.indexOf('\u0000');
      return {
        rule: id.slice(0, split),
        group: JSON.parse(id.slice(split + 1)) as Record<string, string>,
        firing: state.firing,
        lastSent: state.lastSent,
      };
    });
  }
}
