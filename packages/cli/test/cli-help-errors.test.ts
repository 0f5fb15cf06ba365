import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { bin, cleanEnv, modelmaxx } from './support/run-cli.js';

// The real `modelmaxx` binary (packages/cli/bin, loading dist: needs `tsc -b`) in child processes.

const FLAGS: Record<string, string[]> = {
  serve: [
    '--host',
    '--port',
    '--data',
    '--clickhouse-url',
    '--database',
    '--max-body-bytes',
    '--log-level',
    '--help',
  ],
  sql: ['--url', '--data', '--format', '--max-rows', '--help'],
  report: [
    '--since',
    '--by',
    '--baseline',
    '--database',
    '--url',
    '--data',
    '--format',
    '--max-rows',
    '--help',
  ],
  savings: ['--window', '--by', '--database', '--url', '--data', '--format', '--help'],
  migrate: ['--data', '--clickhouse-url', '--database', '--cluster', '--print', '--help'],
  demo: ['--url', '--data', '--requests', '--seed', '--exit', '--help'],
};

describe('modelmaxx --help', () => {
  it('lists every command, exit 0', async () => {
    const result = await modelmaxx(['--help']);
    expect(result.code).toBe(0);
    for (const command of Object.keys(FLAGS)) {
      expect(result.stdout).toMatch(new RegExp(`^ {2}${command}\\b`, 'm'));
    }
    expect(result.stdout).toContain('MODELMAXX_URL');
  });

  for (const [command, flags] of Object.entries(FLAGS)) {
    it(`modelmaxx ${command} --help lists every flag, exit 0`, async () => {
      const result = await modelmaxx([command, '--help']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: modelmaxx ${command}`));
      for (const flag of flags) expect(result.stdout).toContain(flag);
      expect(result.stdout).toMatch(/Exit codes: 0/);
    });
  }
});

/** A `modelmaxx serve` child on a free port; resolves with its URL once it prints the start line. */
async function startServe(
  dataDir: string,
): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, [bin, 'serve', '--data', dataDir, '--port', '0'], {
    env: cleanEnv({ MODELMAXX_LOG_LEVEL: 'warn' }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start\n${stderr}`)), 60_000);
    const poll = setInterval(() => {
      const match = /collector listening on (http:\/\/\S+) /.exec(stderr);
      if (match?.[1] !== undefined && stderr.includes('dashboard')) {
        clearTimeout(timer);
        clearInterval(poll);
        resolve(match[1]);
      }
    }, 25);
    child.once('exit', () => {
      clearTimeout(timer);
      clearInterval(poll);
      reject(new Error(`serve exited\n${stderr}`));
    });
  });
  return { child, url, stderr: () => stderr };
}

describe('modelmaxx against a running collector', () => {
  let dataDir: string;
  let serve: Awaited<ReturnType<typeof startServe>>;
  let htmlServer: Server;
  let htmlUrl: string;
  let sim: LlmSim;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'modelmaxx-cli-errors-'));
    serve = await startServe(dataDir);
    htmlServer = createServer((_request, response) => {
      response.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Not Found</h1>');
    });
    await new Promise<void>((resolve) => htmlServer.listen(0, '127.0.0.1', resolve));
    htmlUrl = `http://127.0.0.1:${(htmlServer.address() as AddressInfo).port}`;
    sim = await startLlmSim({ latencyScale: 0 });
  }, 90_000);

  afterAll(async () => {
    if (serve !== undefined) {
      const exited = new Promise((resolve) => serve.child.once('exit', resolve));
      serve.child.kill('SIGTERM');
      await exited;
    }
    await new Promise<void>((resolve) => htmlServer?.close(() => resolve()));
    await sim?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('the start line prints the exact OTEL_EXPORTER_OTLP_ENDPOINT value and the dashboard URL', () => {
    const lines = serve.stderr().split('\n');
    expect(lines).toContain(
      `  apps send spans with  OTEL_EXPORTER_OTLP_ENDPOINT=${serve.url}   (the base URL; the exporter adds /v1/traces)`,
    );
    expect(lines).toContain(`  dashboard             ${serve.url}/`);
    expect(serve.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // No ingest token: no header to send (serve-start-lines.test.ts has the line with one).
    expect(serve.stderr()).not.toContain('OTEL_EXPORTER_OTLP_HEADERS');
  });

  it('sql and report take the collector from MODELMAXX_URL; --url wins over it', async () => {
    const fromEnv = await modelmaxx(['sql', 'SELECT 41 + 1 AS answer', '--format', 'json'], {
      MODELMAXX_URL: serve.url,
    });
    expect(fromEnv.stderr).toBe('');
    expect(fromEnv.code).toBe(0);
    expect(JSON.parse(fromEnv.stdout)).toEqual({ answer: 42 });
    const report = await modelmaxx(['report', '--format', 'json'], { MODELMAXX_URL: serve.url });
    expect(report.stderr).toBe('');
    expect(report.code).toBe(0);
    const flagWins = await modelmaxx(['sql', 'SELECT 1 AS one', '--url', serve.url], {
      MODELMAXX_URL: htmlUrl,
    });
    expect(flagWins.code).toBe(0);
    expect(flagWins.stdout).toBe('one\n---\n  1\n');
  });

  it('a server that is not a collector is named as such (an HTML 404 page, the llm-sim port)', async () => {
    const html = await modelmaxx(['sql', 'SELECT 1', '--url', htmlUrl]);
    expect(html.code).toBe(1);
    expect(html.stderr).toBe(
      `modelmaxx sql: ${htmlUrl}: not a modelmaxx collector (HTTP 404, text/html from POST /api/sql); give the collector's URL with --url or MODELMAXX_URL, e.g. http://127.0.0.1:4318\n`,
    );
    const simUrl = new URL(sim.openaiBaseURL).origin;
    const llm = await modelmaxx(['report', '--url', simUrl]);
    expect(llm.code).toBe(1);
    expect(llm.stderr).toMatch(
      new RegExp(`^modelmaxx report: ${simUrl}: not a modelmaxx collector \\(HTTP \\d+, `),
    );
    expect(llm.stderr).not.toContain('[object Object]');
    expect(llm.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('a URL without a scheme gets an example of one (exit 2), from --url and from MODELMAXX_URL', async () => {
    const flag = await modelmaxx(['sql', 'SELECT 1', '--url', '127.0.0.1:4318']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain(
      'modelmaxx sql: --url takes a collector URL such as http://127.0.0.1:4318; got "127.0.0.1:4318"',
    );
    expect(flag.stderr).not.toContain('Invalid URL');
    const env = await modelmaxx(['report'], { MODELMAXX_URL: 'localhost:4318' });
    expect(env.code).toBe(2);
    expect(env.stderr).toContain(
      'modelmaxx report: MODELMAXX_URL takes a collector URL such as http://127.0.0.1:4318; got "localhost:4318"',
    );
  });

  it('a data folder a collector holds: one line naming it and the fix (sql, migrate, serve)', async () => {
    const expected = (prefix: string) =>
      new RegExp(
        `^${prefix}: the data folder ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by another process \\(a running collector\\? pid \\d+\\); `,
      );
    const sql = await modelmaxx(['sql', 'SELECT 1', '--data', dataDir]);
    expect(sql.code).toBe(1);
    expect(sql.stderr).toMatch(expected('modelmaxx sql'));
    expect(sql.stderr).toContain('use --url http://127.0.0.1:4318');
    expect(sql.stderr.trimEnd().split('\n')).toHaveLength(1);
    const migrate = await modelmaxx(['migrate', '--data', dataDir]);
    expect(migrate.code).toBe(1);
    expect(migrate.stderr).toMatch(expected('modelmaxx migrate'));
    expect(migrate.stderr.trimEnd().split('\n')).toHaveLength(1);
    const second = await modelmaxx(['serve', '--data', dataDir, '--port', '0']);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(expected('modelmaxx collector'));
    expect(second.stderr).toContain('another --data');
    expect(second.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(second.stdout).toBe('');
  }, 120_000);
});
