/**
 * `modelmaxx gateway` (the real binary, loading dist: needs `tsc -b`): help, configuration
 * errors, and the standalone gateway exporting its spans over OTLP into a collector.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertsCommand } from '../src/alerts-command.js';
import { keysCommand } from '../src/gateway-access.js';
import { gatewayCommand, splitServeArgs } from '../src/gateway-command.js';
import { bin, cleanEnv, modelmaxx } from './support/run-cli.js';

describe('modelmaxx gateway keys create --config', () => {
  it('keeps the config file private: a 0600 file (webhook headers, tokens) stays 0600', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelmaxx-keys-'));
    try {
      const file = join(dir, 'gateway.json');
      const secret = { url: 'https://hooks.example.com/x', headers: { authorization: 'Bearer s' } };
      await writeFile(file, JSON.stringify({ alerts: { webhooks: [secret] } }));
      await chmod(file, 0o600);
      const out: string[] = [];
      const io = { stdout: (text: string) => void out.push(text), stderr: () => undefined };
      expect(keysCommand(['create', '--id', 'web', '--config', file], io)).toBe(0);
      expect(out.join('')).toMatch(/^mmx_/);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('modelmaxx alerts test --config', () => {
  it('refuses a config whose alert rules or budgets the gateway would refuse at start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelmaxx-alerts-'));
    try {
      const file = join(dir, 'gateway.json');
      await writeFile(
        file,
        JSON.stringify({
          alerts: {
            webhooks: [{ url: 'http://127.0.0.1:9/hook' }],
            rules: [{ kind: 'budget', name: 'b', treshold: [0.5] }],
          },
        }),
      );
      const io = { stdout: () => undefined, stderr: () => undefined, env: {} };
      await expect(alertsCommand(['test', '--config', file], io)).rejects.toThrow(
        `--config: ${file}: invalid gateway access config: alerts.rules.0: Unrecognized key: "treshold"`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('modelmaxx gateway: help and errors', () => {
  it('--help lists every flag', async () => {
    const result = await modelmaxx(['gateway', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: modelmaxx gateway/);
    for (const flag of ['--upstream', '--config', '--host', '--port', '--service-name', '--help']) {
      expect(result.stdout).toContain(flag);
    }
    expect(result.stdout).toMatch(/Exit codes: 0/);
    const serve = await modelmaxx(['serve', '--help']);
    for (const flag of ['--gateway', '--upstream', '--config'])
      expect(serve.stdout).toContain(flag);
    const usage = await modelmaxx(['--help']);
    expect(usage.stdout).toMatch(/^ {2}gateway\b/m);
  });

  it('refuses bad configurations with exit 2 and a message', async () => {
    const none = await modelmaxx(['gateway']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no upstream');
    const open = await modelmaxx([
      'gateway',
      '--upstream',
      'openai=http://127.0.0.1:9/v1',
      '--host',
      '0.0.0.0',
    ]);
    expect(open.code).toBe(2);
    expect(open.stderr).toContain('refusing to listen on 0.0.0.0 without gateway keys');
    const bad = await modelmaxx(['gateway', '--upstream', 'openai']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('NAME=BASE_URL');
    const missing = await modelmaxx(['gateway', '--config', '/nonexistent/gateway.json']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read /nonexistent/gateway.json');
    const serveOnly = await modelmaxx(['serve', '--upstream', 'openai=http://127.0.0.1:9/v1']);
    expect(serveOnly.code).toBe(2);
    expect(serveOnly.stderr).toContain('--upstream and --config go with --gateway');
  });

  it('gives the state dir back when it refuses to listen after opening the access layer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelmaxx-refused-'));
    try {
      const file = join(dir, 'gateway.json');
      await writeFile(
        file,
        JSON.stringify({
          budgets: [{ name: 'daily', scope: 'global', period: 'day', limitUsd: 5 }],
        }),
      );
      let stderr = '';
      const io = {
        stdout: () => undefined,
        stderr: (text: string) => void (stderr += text),
        env: { MODELMAXX_GATEWAY_STATE_DIR: join(dir, 'state') },
      };
      const args = ['--config', file, '--upstream', 'openai=http://127.0.0.1:9/v1'];
      for (let run = 0; run < 2; run += 1) {
        stderr = '';
        expect(await gatewayCommand([...args, '--host', '0.0.0.0'], io)).toBe(2);
        expect(stderr).toContain('refusing to listen on 0.0.0.0 without gateway keys');
        expect(existsSync(join(dir, 'state', 'gateway-budgets.lock'))).toBe(false);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('splits the gateway flags from the collector flags of serve', () => {
    expect(
      splitServeArgs([
        '--gateway',
        '--port',
        '0',
        '--upstream=a=http://x/v1',
        '--config',
        'c.json',
      ]),
    ).toEqual({
      gateway: true,
      upstreams: ['a=http://x/v1'],
      config: 'c.json',
      rest: ['--port', '0'],
    });
  });
});

describe('modelmaxx gateway: spans over OTLP into a collector', () => {
  let sim: LlmSim;
  let collector: RunningCollector;
  let dir: string;
  let child: ChildProcess;
  let output = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modelmaxx-gateway-cli-'));
    sim = await startLlmSim({ seed: 2 });
    collector = await startCollector({ config: { port: 0, dataDir: dir } });
    child = spawn(
      process.execPath,
      [
        bin,
        'gateway',
        '--port',
        '0',
        '--upstream',
        `openai=${sim.openaiBaseURL}`,
        '--service-name',
        'gw-cli',
      ],
      {
        env: cleanEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start line:\n${output}`)), 60_000);
      const poll = setInterval(() => {
        if (/gateway listening on http/.test(output)) {
          clearInterval(poll);
          clearTimeout(timer);
          resolve();
        }
      }, 50);
    });
  }, 120_000);

  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await collector?.close();
    await sim?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('a call through the gateway becomes an llm_calls row; SIGTERM flushes and exits 0', async () => {
    const url = /gateway listening on (http:\/\/\S+)/.exec(output)![1]!;
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'app', maxRetries: 0 });
    const completion = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'through the standalone gateway' }],
    });
    // The batch processor exports within 0.5 s; SIGTERM flushes what is left.
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    let rows: Record<string, unknown>[] = [];
    for (let tries = 0; tries < 120 && rows.length === 0; tries += 1) {
      const response = await fetch(`${collector.url}/api/sql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          sql: `SELECT ServiceName, RequestModel, CostSource FROM llm_calls WHERE ResponseId = '${completion.id}'`,
        }),
      });
      rows = ((await response.json()) as { rows: Record<string, unknown>[] }).rows;
      if (rows.length === 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(rows).toEqual([
      { ServiceName: 'gw-cli', RequestModel: 'gpt-4o-mini', CostSource: 'span' },
    ]);
  }, 90_000);
});
