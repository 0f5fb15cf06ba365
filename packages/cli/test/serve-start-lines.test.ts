import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, cleanEnv } from './support/run-cli.js';

// What `modelmaxx serve` (the real binary, loading dist: needs `tsc -b`) says at start about the
// environment: the header apps need with an ingest token, a gateway config it does not use.

const TOKEN = 'ingest-secret-9f2c';
const HEADER_LINE =
  "                   and  OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer <token>   (the token: this collector's MODELMAXX_INGEST_TOKEN; without it spans get 401)";

/** `modelmaxx serve …args` until its start line is complete; then SIGTERM. Its stderr. */
async function startLines(args: string[], env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', ...args], {
    env: cleanEnv({ MODELMAXX_LOG_LEVEL: 'warn', ...env }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start\n${stderr}`)), 60_000);
      const poll = setInterval(() => {
        if (!/ {2}dashboard {13}http/.test(stderr)) return;
        clearTimeout(timer);
        clearInterval(poll);
        resolve();
      }, 25);
      void exited.then(() => {
        clearTimeout(timer);
        clearInterval(poll);
        reject(new Error(`serve exited\n${stderr}`));
      });
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  }
  return stderr;
}

describe('modelmaxx serve: the start lines', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'modelmaxx-serve-lines-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('with MODELMAXX_INGEST_TOKEN: the header apps send under the endpoint, never the token', async () => {
    const stderr = await startLines(['--data', join(dir, 'collector')], {
      MODELMAXX_INGEST_TOKEN: TOKEN,
    });
    const lines = stderr.split('\n');
    const endpoint = lines.findIndex((line) => line.includes('OTEL_EXPORTER_OTLP_ENDPOINT='));
    expect(lines[endpoint + 1]).toBe(HEADER_LINE);
    expect(stderr).not.toContain(TOKEN);
  }, 90_000);

  it('serve --gateway with MODELMAXX_INGEST_TOKEN: the same header line', async () => {
    const stderr = await startLines(
      ['--gateway', '--upstream', 'openai=http://127.0.0.1:9/v1', '--data', join(dir, 'both')],
      { MODELMAXX_INGEST_TOKEN: TOKEN },
    );
    const lines = stderr.split('\n');
    const endpoint = lines.findIndex((line) => line.includes('OTEL_EXPORTER_OTLP_ENDPOINT='));
    expect(lines[endpoint + 1]).toBe(HEADER_LINE);
    expect(stderr).not.toContain(TOKEN);
  }, 90_000);

  it('MODELMAXX_GATEWAY_CONFIG without --gateway: a warning naming --gateway, then the collector', async () => {
    const stderr = await startLines(['--data', join(dir, 'alone')], {
      MODELMAXX_GATEWAY_CONFIG: join(dir, 'gateway.json'),
    });
    expect(stderr.split('\n')[0]).toBe(
      'modelmaxx serve: warning: MODELMAXX_GATEWAY_CONFIG is set but ignored: it configures the gateway, which serve runs only with --gateway (this is the collector alone)',
    );
    expect(stderr).toMatch(/\nmodelmaxx collector listening on http:/);
  }, 90_000);
});
