/**
 * One gateway per state dir: budgets are enforced per process and the state file is replaced whole
 * by each write, so a second gateway on the same dir is refused at start instead of silently
 * letting the whole limit through twice and overwriting the first one's spend. The other holder
 * here is a real second process (the built package); its crash leaves a lock that is taken over.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { StatsResponse, StatsRow } from '@modelmaxx/semconv/schemas';
import { createAccess } from '../src/index.js';
import type { AccessLayer } from '../src/index.js';
import type { Admission } from '../src/access/types.js';
import { silentLogger } from '../src/access/logger.js';
import { STATE_LOCK_NAME } from '../src/access/state-lock.js';

const BUILT = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'index.js');
const CONFIG = { budgets: [{ name: 'daily', scope: 'global', period: 'day', limitUsd: 10 }] };

const dirs: string[] = [];
const layers: AccessLayer[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const layer of layers.splice(0)) await layer.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mmx-lock-'));
  dirs.push(dir);
  return dir;
}

function open(dir: string): AccessLayer {
  const layer = createAccess(CONFIG, { stateDir: dir });
  layers.push(layer);
  return layer;
}

/** Another process with a gateway access layer on `dir` (the built package); resolves once it holds it. */
async function otherGateway(dir: string): Promise<ChildProcess> {
  const script = `
    const { createAccess } = await import(${JSON.stringify(BUILT)});
    createAccess(${JSON.stringify(CONFIG)}, { stateDir: ${JSON.stringify(dir)} });
    console.log('holding');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', () => resolve());
    child.once('exit', (code) => reject(new Error(`the other gateway exited with ${code}`)));
  });
  return child;
}

describe('the state dir lock', () => {
  it('refuses a second access layer of this process on the same dir until the first closes', async () => {
    const dir = stateDir();
    const first = open(dir);
    expect(readFileSync(join(dir, STATE_LOCK_NAME), 'utf8').trim()).toBe(String(process.pid));
    expect(() => open(dir)).toThrow(
      /holds another gateway's budget spend \(this process, .*gateway-budgets\.lock\).*MODELMAXX_GATEWAY_STATE_DIR/,
    );
    await first.close();
    expect(existsSync(join(dir, STATE_LOCK_NAME))).toBe(false);
    expect(() => open(dir)).not.toThrow();
  });

  it('refuses a dir another gateway process holds, and takes it over once that process died', async () => {
    const dir = stateDir();
    const other = await otherGateway(dir);
    expect(() => open(dir)).toThrow(new RegExp(`\\(process ${other.pid}, `));
    // A crash: no close, the lock file stays with a pid that is gone.
    const exited = new Promise((resolve) => other.once('exit', resolve));
    other.kill('SIGKILL');
    await exited;
    expect(readFileSync(join(dir, STATE_LOCK_NAME), 'utf8').trim()).toBe(String(other.pid));
    const layer = open(dir);
    expect(readFileSync(join(dir, STATE_LOCK_NAME), 'utf8').trim()).toBe(String(process.pid));
    await layer.close();
    expect(existsSync(join(dir, STATE_LOCK_NAME))).toBe(false);
  });

  it("takes over a lock naming this pid that this process does not hold (a restarted container's pid 1), or an unreadable one", () => {
    const dir = stateDir();
    writeFileSync(join(dir, STATE_LOCK_NAME), `${process.pid}\n`);
    expect(() => open(dir)).not.toThrow();
    const other = stateDir();
    writeFileSync(join(other, STATE_LOCK_NAME), '');
    expect(() => open(other)).not.toThrow();
  });

  it('gives the dir back when the state file cannot be read', () => {
    const dir = stateDir();
    writeFileSync(join(dir, 'gateway-budgets.json'), '{ not json');
    expect(() => open(dir)).toThrow(/not JSON/);
    expect(existsSync(join(dir, STATE_LOCK_NAME))).toBe(false);
  });
});

const spendRow: StatsRow = {
  model: 'gpt-4o',
  calls: 30,
  errors: 0,
  errorRate: 0,
  costUsd: 3,
  costPerCallUsd: 0.1,
  meanInputTokens: 10,
  meanOutputTokens: 10,
  latencyP50Ms: 100,
  latencyP95Ms: 200,
  latencyP99Ms: 200,
  meanScore: null,
  scoreCount: 0,
};

describe('the state dir lock at close', () => {
  it('is held until the last alert evaluation wrote gateway-alerts.json', async () => {
    const dir = stateDir();
    let called!: () => void;
    const evaluating = new Promise<void>((resolve) => (called = resolve));
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const stats = async (): Promise<StatsResponse> => {
      called();
      await answered;
      return { from: '', to: '', groupBy: ['model'], rows: [spendRow] };
    };
    const rule = { kind: 'spend', name: 'close-spend', window: '1h', aboveUsd: 2 };
    const first = createAccess(
      { ...CONFIG, alerts: { intervalSeconds: 1, rules: [rule] } },
      { stateDir: dir, stats, logger: silentLogger },
    );
    await evaluating; // the timer's evaluation waits for its stats
    const closing = first.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The first gateway has an evaluation still to write: the dir is not free yet.
    expect(() => open(dir)).toThrow(/holds another gateway's budget spend \(this process/);
    answer();
    await closing;
    const saved = JSON.parse(readFileSync(join(dir, 'gateway-alerts.json'), 'utf8')) as {
      rules: { rule: string; firing: boolean }[];
    };
    expect(saved.rules).toEqual([expect.objectContaining({ rule: 'close-spend', firing: true })]);
    expect(existsSync(join(dir, STATE_LOCK_NAME))).toBe(false);
    expect(() => open(dir)).not.toThrow();
  });

  it("a second close of a closed layer leaves the next holder's lock and spend alone", async () => {
    const dir = stateDir();
    const first = createAccess(CONFIG, { stateDir: dir });
    await first.close();
    const next = open(dir);
    const admission = (await next.admit({
      principal: { keyId: 'anonymous' },
      candidates: ['gpt-4o'],
      estimatedCostUsd: { 'gpt-4o': 1 },
      estimatedTokens: 10,
      at: Date.now(),
    })) as Extract<Admission, { ok: true }>;
    next.settle(admission, {
      model: 'gpt-4o',
      costUsd: 0.7,
      inputTokens: 5,
      outputTokens: 5,
      ok: true,
    });
    await next.flush();
    await first.close(); // a stray second close (an embedding app's error path, a reload)
    const saved = JSON.parse(readFileSync(join(dir, 'gateway-budgets.json'), 'utf8')) as {
      windows: { spentUsd: number }[];
    };
    expect(saved.windows.map((window) => window.spentUsd)).toEqual([0.7]);
    expect(readFileSync(join(dir, STATE_LOCK_NAME), 'utf8').trim()).toBe(String(process.pid));
    expect(() => open(dir)).toThrow(/holds another gateway's budget spend/);
  });
});
