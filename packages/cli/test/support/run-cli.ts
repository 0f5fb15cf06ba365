/** Runs the real `modelmaxx` binary for the CLI tests. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

/** The package's `bin/modelmaxx.js` (runs the built `dist`). */
export const bin = join(import.meta.dirname, '..', '..', 'bin', 'modelmaxx.js');

export interface CliResult {
  /** Exit code (-1 when the process did not exit with one, e.g. killed at the timeout). */
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without the MODELMAXX_* / OTEL_* settings of the shell running the tests, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(MODELMAXX_|OTEL_)/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** `modelmaxx ...args` in a clean environment plus `env`; never rejects. */
export function modelmaxx(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: cleanEnv(env), timeout: 90_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The rows of `--format json` output (one JSON object a line). */
export function jsonLines<Row = Record<string, unknown>>(stdout: string): Row[] {
  return stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Row);
}
