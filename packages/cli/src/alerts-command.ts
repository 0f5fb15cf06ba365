/** `modelmaxx alerts test`: sends a sample alert to the webhooks of a gateway config file. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createAccess, parseAccessConfig } from '@modelmaxx/gateway';
import { UsageError } from './query-source.js';

export const ALERTS_HELP = `Usage: modelmaxx alerts test [--config FILE] [--webhook URL …] [--attempts N]

Sends a sample alert (status "test") to every webhook in the gateway config file's
"alerts.webhooks" (and to each --webhook URL), with the config's retries and back-off, and
prints what each webhook answered. Exit code 1 when a webhook could not be reached.

Options:
  --config FILE         the gateway config (JSON); default $MODELMAXX_GATEWAY_CONFIG
  --webhook URL         another webhook to send to (repeatable); alone, no config is needed
  --attempts N          delivery attempts per webhook (default: the config's, else 6)
  -h, --help            this text
`;

interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
}

/** A `--webhook` URL, refused as a usage error naming the flag when it is not http(s). */
function webhookFlag(url: string): { url: string } {
  if (!/^https?:\/\/[^/]/i.test(url) || !URL.canParse(url)) {
    throw new UsageError(`--webhook ${url}: not an http(s) URL`);
  }
  return { url };
}

/**
 * The gateway config file, its budgets, keys and alert rules checked as the gateway checks them at
 * start: a rule the gateway would refuse is said now, not when the gateway is (re)started.
 */
function readGatewayConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--config: cannot read ${path}: ${(error as Error).message}`);
  }
  let file: Record<string, unknown>;
  try {
    file = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(`--config: ${path} is not valid JSON: ${(error as Error).message}`);
  }
  try {
    parseAccessConfig(file);
  } catch (error) {
    throw new UsageError(`--config: ${path}: ${(error as Error).message}`);
  }
  return file;
}

export async function alertsCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'test') {
    throw new UsageError(
      sub === undefined
        ? 'modelmaxx alerts takes a subcommand: test'
        : `unknown subcommand "${sub}"`,
    );
  }
  let values: { config?: string; webhook?: string[]; attempts?: string };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string' },
        webhook: { type: 'string', multiple: true },
        attempts: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const path = values.config ?? io.env['MODELMAXX_GATEWAY_CONFIG'];
  const file = path === undefined ? {} : readGatewayConfig(path);
  const alerts = { ...((file['alerts'] as Record<string, unknown> | undefined) ?? {}) };
  const extra = (values.webhook ?? []).map(webhookFlag);
  alerts['webhooks'] = [...((alerts['webhooks'] as unknown[] | undefined) ?? []), ...extra];
  // Only the webhooks matter here: no rule is evaluated and no collector asked.
  alerts['rules'] = [];
  delete alerts['collector'];
  if (values.attempts !== undefined) {
    const attempts = Number(values.attempts);
    if (!Number.isInteger(attempts) || attempts < 1) {
      throw new UsageError('--attempts takes a whole number from 1');
    }
    alerts['retry'] = { ...((alerts['retry'] as object | undefined) ?? {}), attempts };
  }
  if ((alerts['webhooks'] as unknown[]).length === 0) {
    throw new UsageError(
      path === undefined
        ? 'no webhook: give --config FILE (with alerts.webhooks) or --webhook URL'
        : `no webhook in ${path} (alerts.webhooks) and no --webhook URL`,
    );
  }
  let access;
  try {
    access = createAccess({ alerts });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  try {
    const results = await access.alerts.test();
    for (const result of results) {
      io.stdout(
        result.ok
          ? `ok      ${result.url}  HTTP ${result.status} after ${result.attempts} attempt(s)\n`
          : `failed  ${result.url}  ${result.status === undefined ? result.error : `HTTP ${result.status}`} after ${result.attempts} attempt(s)\n`,
      );
    }
    return results.every((result) => result.ok) ? 0 : 1;
  } finally {
    await access.close();
  }
}
