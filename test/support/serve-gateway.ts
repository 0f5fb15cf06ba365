/**
 * `modelmaxx serve --gateway` as a child process (collector and gateway on one port, embedded
 * chDB in `dataDir`): its URL read from the "collector and gateway listening on" line. The
 * environment is the test's without MODELMAXX_* / OTEL_* / vitest variables, plus `env`. Needs
 * `tsc -b` (runs the cli's dist).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TEST_DIR } from './run-fixture.js';

export const CLI = join(TEST_DIR, '..', 'packages', 'cli', 'bin', 'modelmaxx.js');

export interface ServeGateway {
  url: string;
  child: ChildProcess;
  output(): string;
  /** SIGTERM (the gateway saves its budget state, the collector drains), then waits. */
  stop(): Promise<void>;
}

export async function spawnServeGateway(
  dataDir: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<ServeGateway> {
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(MODELMAXX_|OTEL_|VITEST|NODE_OPTIONS$)/.test(key))
      childEnv[key] = value;
  }
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--gateway', '--port', '0', '--data', dataDir, ...args],
    { env: { ...childEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      clearInterval(poll);
      child.kill('SIGTERM'); // Not left running when the caller gives up.
      reject(new Error(`no listening line:\n${output}`));
    }, 90_000);
    const poll = setInterval(() => {
      const match = /collector and gateway listening on (http:\/\/[^\s]+)/.exec(output);
      if (match === null) return;
      clearInterval(poll);
      clearTimeout(timer);
      resolve(match[1]!);
    }, 50);
    void exited.then(() => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`serve --gateway exited:\n${output}`));
    });
  });
  return {
    url,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
