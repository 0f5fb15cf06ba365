/**
 * The standalone collector (`node collector/dist/main.js --port 0 --data DIR`) as a child process:
 * its URL is read from the "collector listening" log line; it can be killed with SIGKILL like a
 * crashed process. Needs `tsc -b` (it runs the collector's dist).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TEST_DIR } from './run-fixture.js';

export const COLLECTOR_MAIN = join(TEST_DIR, '..', 'collector', 'dist', 'main.js');

export interface CollectorProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  output(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL, then waits for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful shutdown), then waits for the exit. */
  stop(): Promise<void>;
}

export async function spawnCollector(
  dataDir: string,
  options: { args?: string[]; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CollectorProcess> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(MODELMAXX_|OTEL_|VITEST|NODE_OPTIONS$)/.test(key))
      env[key] = value;
  }
  const child = spawn(
    process.execPath,
    [
      COLLECTOR_MAIN,
      '--port',
      '0',
      '--data',
      dataDir,
      '--log-level',
      'info',
      ...(options.args ?? []),
    ],
    { env: { ...env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `the collector did not start within ${options.timeoutMs ?? 60_000} ms\n${output}`,
        ),
      );
    }, options.timeoutMs ?? 60_000);
    const poll = setInterval(() => {
      for (const line of output.split('\n')) {
        if (!line.includes('collector listening')) continue;
        try {
          const parsed = JSON.parse(line) as { url?: string };
          if (typeof parsed.url === 'string') {
            clearTimeout(timer);
            clearInterval(poll);
            resolve(parsed.url);
            return;
          }
        } catch {
          // a partial line; the next poll sees it whole
        }
      }
    }, 20);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      clearInterval(poll);
      reject(new Error(`the collector exited (${code ?? signal}) before listening\n${output}`));
    });
  });
  return {
    url,
    pid: child.pid ?? -1,
    child,
    output: () => output,
    exited,
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
