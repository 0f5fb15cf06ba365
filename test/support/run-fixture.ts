import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `test/`: fixtures run with this as cwd, so `openai` etc. resolve from `test/node_modules`. */
export const TEST_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES_DIR = join(TEST_DIR, 'fixtures');

export interface FixtureRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface RunOptions {
  /** Extra Node flags, e.g. `['--import', '@modelmaxx/instrument/register']`. */
  nodeArgs?: string[];
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Working directory (default `test/`). */
  cwd?: string;
  /** Called once the child is running (to signal it, read its output as it comes). */
  onSpawn?: (child: ChildProcess, output: { stdout: () => string }) => void;
}

/** Environment for a fixture: no inherited OTel / modelmaxx settings, the simulator's URLs, fake keys. */
export function fixtureEnv(extra: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (/^(OTEL_|MODELMAXX_|OPENAI_|ANTHROPIC_|NODE_OPTIONS$|VITEST|NODE_ENV$)/.test(key)) continue;
    env[key] = value;
  }
  env['OPENAI_API_KEY'] = 'sk-test';
  env['ANTHROPIC_API_KEY'] = 'sk-ant-test';
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export function runFixture(file: string, options: RunOptions = {}): Promise<FixtureRun> {
  const script = isAbsolute(file) ? file : join(FIXTURES_DIR, file);
  return runProcess(process.execPath, [...(options.nodeArgs ?? []), script], {
    cwd: options.cwd ?? TEST_DIR,
    env: fixtureEnv(options.env ?? {}),
    label: file,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.onSpawn === undefined ? {} : { onSpawn: options.onSpawn }),
  });
}

export interface ProcessOptions {
  cwd: string;
  env: Record<string, string>;
  /** Default 60 s; past it the process is killed and the run rejects with its output. */
  timeoutMs?: number;
  /** What the timeout error calls the process (default: the command line). */
  label?: string;
  onSpawn?: RunOptions['onSpawn'];
}

/** Runs `command args` to its end, collecting its output and exit. */
export function runProcess(
  command: string,
  args: string[],
  options: ProcessOptions,
): Promise<FixtureRun> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? 60_000;
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  options.onSpawn?.(child, { stdout: () => stdout });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      const label = options.label ?? [command, ...args].join(' ');
      reject(new Error(`${label} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, durationMs: performance.now() - started });
    });
  });
}

/** Resolves when `predicate` holds for the output so far (polling, so it is robust to chunking). */
export async function waitFor(predicate: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const REGISTER = ['--import', '@modelmaxx/instrument/register'];
