/**
 * `modelmaxx gateway` (the real binary, loading dist) says at start what its budgets and spend
 * reports cannot see: a configured model without a price (its calls would count $0 against every
 * budget) and a `MODELMAXX_PRICES` file with problems (its entries silently left out before).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, cleanEnv } from './support/run-cli.js';

let dir: string;
let config: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'modelmaxx-gateway-prices-'));
  config = join(dir, 'gateway.json');
  await writeFile(
    config,
    JSON.stringify({
      upstreams: {
        local: {
          kind: 'openai-compatible',
          baseURL: 'http://127.0.0.1:9/v1',
          models: ['llama-local', 'qwen-*'],
        },
      },
      policies: [
        {
          name: 'mixed',
          candidates: [
            { model: 'gpt-4o-mini', client: 'openai' },
            { model: 'llama-local', client: 'local' },
          ],
        },
      ],
    }),
  );
});

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Starts the gateway, returns what it printed up to its listening line, and stops it. */
async function startOutput(env: Record<string, string>): Promise<string> {
  const child = spawn(
    process.execPath,
    [
      bin,
      'gateway',
      '--port',
      '0',
      '--config',
      config,
      '--upstream',
      'openai=http://127.0.0.1:9/v1',
    ],
    {
      env: cleanEnv({ MODELMAXX_GATEWAY_STATE_DIR: join(dir, 'state'), ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start line:\n${output}`)), 60_000);
      const poll = setInterval(() => {
        if (/gateway listening on http/.test(output) || child.exitCode !== null) {
          clearInterval(poll);
          clearTimeout(timer);
          resolve();
        }
      }, 50);
    });
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  return output;
}

describe('modelmaxx gateway: prices at start', () => {
  it('warns for a configured model without a price and for MODELMAXX_PRICES problems', async () => {
    const prices = join(dir, 'bad-prices.json');
    await writeFile(prices, JSON.stringify({ prices: [{ provider: 'openai', model: 'x' }] }));
    const output = await startOutput({ MODELMAXX_PRICES: prices });
    expect(output).toContain('gateway listening on http');
    const warnings = output.split('\n').filter((line) => line.includes('warning:'));
    expect(warnings).toContainEqual(
      expect.stringContaining(`MODELMAXX_PRICES ${prices}: prices[0].input: required`),
    );
    const unpriced = warnings.filter((line) => line.includes('no price for model'));
    // llama-local only: gpt-4o-mini is in the catalog, qwen-* is a pattern (no name to price).
    expect(unpriced).toHaveLength(1);
    expect(unpriced[0]).toContain(
      'no price for model "llama-local" (upstream "local", provider openai): its calls are recorded without a cost and count $0 against budgets',
    );
  }, 90_000);

  it('is quiet once the model has a price (0 for a model paid for otherwise)', async () => {
    const prices = join(dir, 'prices.json');
    await writeFile(
      prices,
      JSON.stringify({
        prices: [{ provider: 'openai', model: 'llama-local', input: 0, output: 0 }],
      }),
    );
    const output = await startOutput({ MODELMAXX_PRICES: prices });
    expect(output).toContain('gateway listening on http');
    expect(output).not.toContain('warning: no price');
    expect(output).not.toContain('MODELMAXX_PRICES');
  }, 90_000);
});
