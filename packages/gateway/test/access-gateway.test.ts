/**
 * The access layer behind the real gateway, started with the real CLI binary (`modelmaxx gateway
 * --config F`) in front of llm-sim: keys over HTTP, 100 concurrent requests at a hard budget, the
 * 429 body, and the budget surviving a restart of the process.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { generateGatewayKey, STATE_FILE_NAME, windowOf } from '../src/access/index.js';

const cliBin = join(import.meta.dirname, '..', '..', 'cli', 'bin', 'modelmaxx.js');

interface RunningGateway {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  stop(): Promise<number | null>;
}

async function startGateway(
  configFile: string,
  stateDir: string,
  otlpUrl: string,
  args: string[] = ['gateway', '--config', configFile, '--port', '0'],
): Promise<RunningGateway> {
  const child = spawn(process.execPath, [cliBin, ...args], {
    env: {
      ...process.env,
      MODELMAXX_GATEWAY_STATE_DIR: stateDir,
      OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${stderr}`)), 60_000);
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      const match = /listening on (http:\/\/[^\s]+)/.exec(stderr);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited (${code}): ${stderr}`));
    });
  });
  return {
    url,
    child,
    stderr: () => stderr,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill('SIGTERM');
      }),
  };
}

describe('access layer behind the gateway (modelmaxx gateway --config)', () => {
  let sim: LlmSim;
  let otlp: Server;
  let otlpUrl: string;
  let dir: string;
  let configFile: string;
  const key = generateGatewayKey('support-web');
  const running: RunningGateway[] = [];
  // A hard daily budget a few requests wide (each reserves its catalog estimate for
  // max_tokens 100 of gpt-4o-mini: ~$0.00007).
  const limitUsd = 0.0005;

  beforeAll(async () => {
    sim = await startLlmSim({ seed: 7 });
    // The gateway's spans are not under test here: a receiver that takes them.
    otlp = createServer((request, response) => {
      request.resume();
      request.on('end', () => response.writeHead(200).end());
    });
    await new Promise<void>((resolve) => otlp.listen(0, '127.0.0.1', resolve));
    const address = otlp.address();
    otlpUrl = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    dir = mkdtempSync(join(tmpdir(), 'modelmaxx-access-gw-'));
    configFile = join(dir, 'gateway.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        upstreams: { openai: { kind: 'openai', baseURL: sim.openaiBaseURL } },
        keys: [{ id: key.id, hash: key.hash, team: 'support', user: 'ana', app: 'helpdesk' }],
        budgets: [{ name: 'support-daily', scope: 'team', period: 'day', limitUsd, warnAt: 0.5 }],
      }),
    );
  }, 60_000);

  afterAll(async () => {
    for (const gateway of running) await gateway.stop();
    await sim?.close();
    otlp?.closeAllConnections();
    await new Promise((resolve) => otlp?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const chat = (url: string, authorization?: string) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(authorization === undefined ? {} : { authorization }),
      },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'Say hello.' }],
      }),
    });

  it('keys, 100 concurrent requests at a hard budget, the 429 body, and a restart', async () => {
    const stateDir = join(dir, 'state');
    const first = await startGateway(configFile, stateDir, otlpUrl);
    running.push(first);

    expect((await chat(first.url)).status).toBe(401);
    const wrong = await chat(first.url, 'Bearer mmx_not-a-key');
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('unknown gateway key');

    const responses = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const response = await chat(first.url, `Bearer ${key.key}`);
        return {
          status: response.status,
          retryAfter: response.headers.get('retry-after'),
          warning: response.headers.get('x-modelmaxx-budget-warning'),
          body: (await response.json()) as {
            usage?: { prompt_tokens: number; completion_tokens: number };
            error?: { message: string; type: string };
          },
        };
      }),
    );
    const ok = responses.filter((response) => response.status === 200);
    const refused = responses.filter((response) => response.status === 429);
    expect(ok.length + refused.length).toBe(100);
    expect(ok.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    const resetsAt = new Date(windowOf('day', Date.now()).end).toISOString();
    const [sample] = refused;
    expect(sample?.body.error?.type).toBe('budget_exceeded');
    expect(sample?.body.error?.message).toMatch(
      /^budget "support-daily" \(team support, UTC day\) (is exhausted|has \$[\d.]+ left of)/,
    );
    expect(sample?.body.error?.message).toContain(`resets at ${resetsAt}`);
    expect(Number(sample?.retryAfter)).toBeGreaterThan(0);
    expect(ok.some((response) => response.warning?.includes('budget "support-daily"'))).toBe(true);

    // SIGTERM: the gateway drains and writes its budget state.
    const code = await first.stop();
    expect(code, first.stderr()).toBe(0);
    const state = JSON.parse(readFileSync(join(stateDir, STATE_FILE_NAME), 'utf8')) as {
      windows: { budget: string; subject: string; spentUsd: number }[];
    };
    const [window] = state.windows;
    expect(window).toMatchObject({ budget: 'support-daily', subject: 'support' });
    const spent = window?.spentUsd ?? 0;
    const tokens = ok.reduce(
      (sum, response) =>
        sum +
        (response.body.usage?.prompt_tokens ?? 0) +
        (response.body.usage?.completion_tokens ?? 0),
      0,
    );
    expect(tokens).toBeGreaterThan(0);
    expect(spent).toBeGreaterThan(0);
    // Each admitted request reserved its upper-bound estimate: the spend stays within the limit.
    expect(spent).toBeLessThanOrEqual(limitUsd);
    console.log(
      `gateway, 100 concurrent at a $${limitUsd} hard budget: ${ok.length} admitted, ${refused.length} refused (429), spent $${spent.toFixed(6)} (${((spent / limitUsd) * 100).toFixed(1)}% of the limit)`,
    );

    // A new process reads the state and adds to it. The first run may have left too little of
    // the budget for one more request's estimate, so the file is set to half the limit first:
    // after one request the file holds that plus the request's spend (a process that started
    // from zero would write far less than half the limit).
    const readSpent = () =>
      (
        JSON.parse(readFileSync(join(stateDir, STATE_FILE_NAME), 'utf8')) as {
          windows: { spentUsd: number }[];
        }
      ).windows[0]?.spentUsd ?? 0;
    const half = JSON.parse(readFileSync(join(stateDir, STATE_FILE_NAME), 'utf8')) as {
      windows: { spentUsd: number }[];
    };
    const startedWith = limitUsd / 2;
    half.windows[0]!.spentUsd = startedWith;
    writeFileSync(join(stateDir, STATE_FILE_NAME), JSON.stringify(half));
    const second = await startGateway(configFile, stateDir, otlpUrl);
    running.push(second);
    expect((await chat(second.url, `Bearer ${key.key}`)).status).toBe(200);
    expect(await second.stop(), second.stderr()).toBe(0);
    const spentAfter = readSpent();
    expect(spentAfter).toBeGreaterThan(startedWith);
    expect(spentAfter - startedWith).toBeLessThan(startedWith / 2);

    // What is in the file is what the next process enforces: nearly all of the budget spent.
    const saved = JSON.parse(readFileSync(join(stateDir, STATE_FILE_NAME), 'utf8')) as {
      windows: { spentUsd: number }[];
    };
    saved.windows[0]!.spentUsd = limitUsd - 0.00001;
    writeFileSync(join(stateDir, STATE_FILE_NAME), JSON.stringify(saved));
    const third = await startGateway(configFile, stateDir, otlpUrl);
    running.push(third);
    const refusedNow = await chat(third.url, `Bearer ${key.key}`);
    expect(refusedNow.status).toBe(429);
    expect(((await refusedNow.json()) as { error: { message: string } }).error.message).toContain(
      'budget "support-daily"',
    );
    expect(await third.stop(), third.stderr()).toBe(0);
  }, 180_000);

  it('serve --gateway: budget state in --data, alert rules over the in-process collector, budget alerts', async () => {
    const received: { rule: string; kind: string; text: string }[] = [];
    const hooks = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as (typeof received)[0]);
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
    const address = hooks.address();
    const hookUrl = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/alerts`;
    const dataDir = join(dir, 'serve-data');
    const serveConfig = join(dir, 'serve.json');
    writeFileSync(
      serveConfig,
      JSON.stringify({
        upstreams: { openai: { kind: 'openai', baseURL: sim.openaiBaseURL } },
        budgets: [{ name: 'all-daily', scope: 'global', period: 'day', limitUsd: 1, mode: 'soft' }],
        alerts: {
          intervalSeconds: 1,
          webhooks: [{ url: hookUrl }],
          rules: [
            { kind: 'spend', name: 'any-spend', window: '1h', aboveUsd: 0 },
            { kind: 'budget', name: 'budget-watch', thresholds: [0.00001] },
          ],
        },
      }),
    );
    const serve = await startGateway(serveConfig, join(dir, 'unused'), otlpUrl, [
      'serve',
      '--gateway',
      '--config',
      serveConfig,
      '--port',
      '0',
      '--data',
      dataDir,
    ]);
    running.push(serve);
    try {
      expect((await chat(serve.url)).status).toBe(200);
      // The budget alert comes as the call settles; the spend rule once the span is stored and
      // the next evaluation reads /api/stats of the collector in the same process.
      const deadline = Date.now() + 90_000;
      while (
        !['any-spend', 'budget-watch'].every((rule) => received.some((a) => a.rule === rule))
      ) {
        if (Date.now() > deadline)
          throw new Error(`alerts not received: ${JSON.stringify(received)}\n${serve.stderr()}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(received.find((alert) => alert.rule === 'any-spend')?.text).toMatch(
        /^any-spend: spend \$\S+ in the last 1h is above \$0\.00$/,
      );
      expect(received.find((alert) => alert.rule === 'budget-watch')?.text).toContain(
        'budget "all-daily" (all traffic, UTC day) passed 0.001% of $1.00',
      );
      expect(await serve.stop(), serve.stderr()).toBe(0);
      // The spend is kept beside the collector's data.
      const state = JSON.parse(readFileSync(join(dataDir, STATE_FILE_NAME), 'utf8')) as {
        windows: { budget: string; spentUsd: number }[];
      };
      expect(state.windows[0]?.budget).toBe('all-daily');
      expect(state.windows[0]?.spentUsd).toBeGreaterThan(0);
    } finally {
      hooks.closeAllConnections();
      await new Promise((resolve) => hooks.close(resolve));
    }
  }, 180_000);

  it('without gateway keys (loopback), a global hard budget still reserves estimates: 100 concurrent requests stay within it', async () => {
    const openConfig = join(dir, 'open.json');
    writeFileSync(
      openConfig,
      JSON.stringify({
        upstreams: { openai: { kind: 'openai', baseURL: sim.openaiBaseURL } },
        budgets: [{ name: 'all-daily', scope: 'global', period: 'day', limitUsd }],
      }),
    );
    const stateDir = join(dir, 'open-state');
    const gateway = await startGateway(openConfig, stateDir, otlpUrl);
    running.push(gateway);
    const statuses = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const response = await chat(gateway.url);
        await response.arrayBuffer();
        return response.status;
      }),
    );
    expect(await gateway.stop(), gateway.stderr()).toBe(0);
    const refusedCount = statuses.filter((status) => status === 429).length;
    expect(statuses.filter((status) => status === 200).length + refusedCount).toBe(100);
    expect(refusedCount).toBeGreaterThan(0);
    const state = JSON.parse(readFileSync(join(stateDir, STATE_FILE_NAME), 'utf8')) as {
      windows: { spentUsd: number }[];
    };
    expect(state.windows[0]?.spentUsd).toBeLessThanOrEqual(limitUsd);
  }, 180_000);
});
