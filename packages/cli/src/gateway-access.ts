/**
 * The gateway's access layer from its config file (`keys`, `budgets`, `rateLimits`, `alerts`),
 * and `modelmaxx gateway keys create`.
 */
import { chmodSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  GatewayConfigError,
  collectorAlertStats,
  createAccess,
  generateGatewayKey,
  openAccess,
} from '@modelmaxx/gateway';
import type { AccessLogger, GatewayAccess, GatewayConfig, GatewayLogger } from '@modelmaxx/gateway';
import { UsageError } from './query-source.js';

type Env = Record<string, string | undefined>;

const ACCESS_FIELDS = [
  'keys',
  'budgets',
  'rateLimits',
  'alerts',
  'reservationTtlSeconds',
  'budgetSync',
] as const;

export interface AccessWiring {
  /** Where budget spend is kept (`gateway-budgets.json`). */
  readonly stateDir?: string | undefined;
  /** The in-process collector's URL once it listens (`serve --gateway`), for alert rules. */
  readonly collectorUrl?: () => string | undefined;
  readonly logger?: GatewayLogger;
  /** The config file, named in errors as the gateway's own config errors name it. */
  readonly source?: string | undefined;
}

/**
 * Keys, budgets, rate limits and alerts from the config file; the open (keyless, loopback-only)
 * access layer when the file has none of them.
 */
export function accessFromConfig(
  config: GatewayConfig,
  env: Env,
  wiring: AccessWiring = {},
): GatewayAccess {
  const raw = config.raw;
  if (ACCESS_FIELDS.every((field) => raw[field] === undefined)) return openAccess();
  const stateDir =
    wiring.stateDir ??
    env['MODELMAXX_GATEWAY_STATE_DIR'] ??
    env['MODELMAXX_DATA_DIR'] ??
    './.modelmaxx';
  const logger: AccessLogger | undefined =
    wiring.logger === undefined
      ? undefined
      : {
          info: (fields, message) =>
            wiring.logger?.info(message, fields as Record<string, unknown>),
          warn: (fields, message) =>
            wiring.logger?.warn(message, fields as Record<string, unknown>),
          error: (fields, message) =>
            wiring.logger?.error(message, fields as Record<string, unknown>),
        };
  const alerts = raw['alerts'] as { collector?: unknown } | undefined;
  const inProcess = wiring.collectorUrl;
  const stats =
    alerts?.collector === undefined && inProcess !== undefined
      ? collectorAlertStats({ url: inProcess, token: env['MODELMAXX_READ_TOKEN'] })
      : undefined;
  try {
    return createAccess(Object.fromEntries(ACCESS_FIELDS.map((field) => [field, raw[field]])), {
      stateDir,
      ...(logger === undefined ? {} : { logger }),
      ...(stats === undefined ? {} : { stats }),
    });
  } catch (error) {
    const message = (error as Error).message;
    throw new GatewayConfigError(
      wiring.source === undefined ? message : `${wiring.source}: ${message}`,
    );
  }
}

export const KEYS_HELP = `Usage: modelmaxx gateway keys create [--id ID] [--team T] [--user U] [--app A] [--config FILE]

Makes a new gateway key: prints the key once (stdout) and the entry for the config file's
"keys" (stderr) — only the key's SHA-256 is stored. With --config FILE, the entry is added to
that file's "keys" (the file is rewritten, formatted with two spaces). Restart the gateway to
use the key.
`;

/** `modelmaxx gateway keys create …`. */
export function keysCommand(
  args: string[],
  io: { stdout: (text: string) => void; stderr: (text: string) => void },
): number {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    io.stdout(KEYS_HELP);
    return 0;
  }
  if (sub !== 'create') {
    throw new UsageError(
      sub === undefined
        ? 'modelmaxx gateway keys takes a subcommand: create'
        : `unknown subcommand "keys ${sub}"`,
    );
  }
  let values: { id?: string; team?: string; user?: string; app?: string; config?: string };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        id: { type: 'string' },
        team: { type: 'string' },
        user: { type: 'string' },
        app: { type: 'string' },
        config: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  let created;
  try {
    created = generateGatewayKey(values.id);
  } catch (error) {
    throw new UsageError(`--id: ${(error as Error).message}`);
  }
  const entry = {
    id: created.id,
    hash: created.hash,
    ...(values.team === undefined ? {} : { team: values.team }),
    ...(values.user === undefined ? {} : { user: values.user }),
    ...(values.app === undefined ? {} : { app: values.app }),
  };
  if (values.config !== undefined) {
    let file: Record<string, unknown>;
    try {
      file = JSON.parse(readFileSync(values.config, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new UsageError(`--config: cannot read ${values.config}: ${(error as Error).message}`);
    }
    const keys = Array.isArray(file['keys']) ? (file['keys'] as { id?: unknown }[]) : [];
    if (keys.some((key) => key.id === entry.id)) {
      throw new UsageError(`--config: ${values.config} already has a key "${entry.id}"`);
    }
    file['keys'] = [...keys, entry];
    // The file keeps its mode (it may hold webhook headers and the collector's token: a 0600
    // file must not come back world-readable), the temporary one too, from its creation.
    const mode = statSync(values.config).mode & 0o777;
    const temporary = `${values.config}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: mode & 0o700 });
    chmodSync(temporary, mode);
    renameSync(temporary, values.config);
    io.stderr(`modelmaxx: key "${entry.id}" added to ${values.config} (restart the gateway)\n`);
  } else {
    io.stderr(`add to the config's "keys": ${JSON.stringify(entry)}\n`);
  }
  io.stderr('the key (shown once, only its hash is stored):\n');
  io.stdout(`${created.key}\n`);
  return 0;
}
