/**
 * Cross-site requests on the tokenless loopback default (issue 10, finding 5): a web
 * page in the user's browser can reach 127.0.0.1, so the collector refuses a foreign
 * `Host` (DNS rebinding) with 421, a foreign `Origin` with 403, and, without a read
 * token, a POST under `/api` in a content type any page can send (text/plain, forms)
 * with 415. Checked with raw HTTP requests carrying those headers, and in a real
 * headless Chromium (Debian's `/usr/bin/chromium` driven by `playwright-core`): a page
 * served by a second loopback server tries `no-cors` `text/plain` POSTs, and a name
 * mapped to 127.0.0.1 (`--host-resolver-rules`, the DNS-rebinding shape) reads the
 * collector same-origin. Whether a refused query ran is read from the collector's own
 * request counter (`/metrics`: a query that ran answers 200).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { HostPolicy } from '../src/auth.js';
import { createApp, loadConfig, startCollector, type RunningCollector } from '../src/index.js';
import { CHROMIUM, CHROMIUM_ARGS } from './support/chromium.js';

/** A name only this browser resolves, to 127.0.0.1: what a rebound attacker domain looks like. */
const REBOUND = 'rebound.attacker.test';
const TRACE_ID = 'c0ffee00c0ffee00c0ffee00c0ffee00';

let collector: RunningCollector;
let port: number;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-cross-site-'));
  // The default: loopback, no tokens.
  collector = await startCollector({ config: { port: 0, dataDir, logLevel: 'silent' } });
  port = Number(new URL(collector.url).port);
}, 60_000);

afterAll(async () => {
  await collector?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

interface Answer {
  status: number;
  body: string;
}

/** A request with exactly these headers (fetch would not let a test set `Host`). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
  to = port,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: '127.0.0.1', port: to, method, path, headers, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

const json = { 'content-type': 'application/json' };
const SQL = JSON.stringify({ sql: 'SELECT 1 AS one' });
const FEEDBACK = JSON.stringify({ traceId: TRACE_ID, name: 'cross-site', score: 1 });

/** `modelmaxx_http_requests_total` for one route and status code. */
async function requestsCounted(route: string, code: number): Promise<number> {
  const text = await (await fetch(`${collector.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((candidate) =>
      candidate.startsWith(`modelmaxx_http_requests_total{route="${route}",code="${code}"} `),
    );
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

async function scoresNamed(name: string): Promise<number> {
  const response = await fetch(`${collector.url}/api/sql`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({
      sql: `SELECT count() AS n FROM modelmaxx.llm_scores WHERE Name = '${name}'`,
    }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { rows: { n: number | string }[] };
  return Number(body.rows[0]!.n);
}

describe('Host allow-list (DNS rebinding)', () => {
  it('answers the loopback names with the bound port', async () => {
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `[::1]:${port}`,
      `LocalHost:${port}`,
    ]) {
      expect((await raw('GET', '/api/services', { host })).status, host).toBe(200);
      expect((await raw('POST', '/api/sql', { host, ...json }, SQL)).status, host).toBe(200);
    }
  });

  it('refuses a foreign Host with 421 on every route, saying what to do', async () => {
    for (const host of [
      `evil.example:${port}`,
      'evil.example',
      `127.0.0.1.nip.io:${port}`,
      `localhost:${port + 1}`,
      'localhost',
      `0.0.0.0:${port}`,
    ]) {
      const services = await raw('GET', '/api/services', { host });
      expect(services.status, host).toBe(421);
      expect(JSON.parse(services.body).error, host).toMatch(/MODELMAXX_ALLOWED_HOSTS/);
      expect((await raw('POST', '/api/sql', { host, ...json }, SQL)).status, host).toBe(421);
      expect((await raw('POST', '/v1/feedback', { host, ...json }, FEEDBACK)).status, host).toBe(
        421,
      );
      expect((await raw('GET', '/', { host })).status, host).toBe(421);
      expect((await raw('GET', '/api/stats', { host })).status, host).toBe(421);
    }
    expect(await requestsCounted('/api/sql', 421)).toBeGreaterThanOrEqual(6);
  });

  it('takes names from allowedHosts (MODELMAXX_ALLOWED_HOSTS), and * for any', () => {
    const loopback = new HostPolicy({ host: '127.0.0.1', allowedHosts: [] });
    expect(loopback.checksHost).toBe(true);
    expect(loopback.allows('localhost:4318', 4318)).toBe(true);
    expect(loopback.allows('localhost.:4318', 4318)).toBe(true);
    expect(loopback.allows('localhost:4319', 4318)).toBe(false);
    expect(loopback.allows('collector.lan:4318', 4318)).toBe(false);
    const named = new HostPolicy({
      host: '127.0.0.1',
      allowedHosts: ['collector.lan', 'proxy.lan:8080', '[fd00::1]'],
    });
    expect(named.allows('collector.lan:4318', 4318)).toBe(true);
    expect(named.allows('collector.lan', 4318)).toBe(true);
    expect(named.allows('proxy.lan:8080', 4318)).toBe(true);
    expect(named.allows('proxy.lan:8081', 4318)).toBe(false);
    expect(named.allows('[fd00::1]:4318', 4318)).toBe(true);
    expect(named.allows('evil.example:4318', 4318)).toBe(false);
    expect(new HostPolicy({ host: '127.0.0.1', allowedHosts: ['*'] }).checksHost).toBe(false);
    // Beyond loopback both tokens are mandatory; the Host check is on only when names are listed.
    expect(new HostPolicy({ host: '0.0.0.0', allowedHosts: [] }).checksHost).toBe(false);
    expect(new HostPolicy({ host: '0.0.0.0', allowedHosts: ['collector.lan'] }).checksHost).toBe(
      true,
    );
    // The bound address counts as a loopback name too.
    expect(new HostPolicy({ host: '127.0.0.2' }).allows('127.0.0.2:4318', 4318)).toBe(true);
    expect(new HostPolicy({ host: '::1' }).allows('[::1]:4318', 4318)).toBe(true);
  });

  it('an app configured with MODELMAXX_ALLOWED_HOSTS answers those names', async () => {
    // chDB opens one data folder a process: a second app over the same store.
    const config = loadConfig({
      env: { MODELMAXX_ALLOWED_HOSTS: 'collector.lan, other.lan:1' },
      overrides: { port: 0, logLevel: 'silent' },
    });
    expect(config.allowedHosts).toEqual(['collector.lan', 'other.lan:1']);
    const app = createApp({ config, store: collector.store, logger: pino({ level: 'silent' }) });
    const server = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    try {
      const namedPort = (server.address() as AddressInfo).port;
      const get = (host: string) => raw('GET', '/api/services', { host }, undefined, namedPort);
      expect((await get(`collector.lan:${namedPort}`)).status).toBe(200);
      expect((await get('collector.lan')).status).toBe(200);
      expect((await get(`other.lan:2`)).status).toBe(421);
      expect((await get(`localhost:${namedPort}`)).status).toBe(200);
      expect((await get(`evil.example:${namedPort}`)).status).toBe(421);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 60_000);
});

describe('Origin check and simple content types', () => {
  it('refuses a foreign Origin with 403, including another port on loopback and "null"', async () => {
    const host = `127.0.0.1:${port}`;
    for (const origin of [
      'http://evil.example',
      `http://evil.example:${port}`,
      `http://127.0.0.1:${port + 1}`,
      `http://localhost:${port + 1}`,
      'null',
      `file://`,
    ]) {
      const sql = await raw('POST', '/api/sql', { host, origin, ...json }, SQL);
      expect(sql.status, origin).toBe(403);
      expect(JSON.parse(sql.body).error, origin).toMatch(/cross-site request refused/);
      expect((await raw('GET', '/api/services', { host, origin })).status, origin).toBe(403);
      expect((await raw('POST', '/v1/feedback', { host, origin, ...json }, FEEDBACK)).status).toBe(
        403,
      );
    }
  });

  it('serves the collector’s own origin (any loopback name, same port) and requests without Origin', async () => {
    const host = `127.0.0.1:${port}`;
    for (const origin of [
      `http://127.0.0.1:${port}`,
      `http://localhost:${port}`,
      `http://[::1]:${port}`,
    ]) {
      expect((await raw('POST', '/api/sql', { host, origin, ...json }, SQL)).status, origin).toBe(
        200,
      );
    }
    // What `modelmaxx sql --url` sends (packages/cli/src/query-source.ts): JSON, no Origin.
    const cli = await fetch(`${collector.url}/api/sql`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ query: 'SELECT 2 AS two' }),
    });
    expect(cli.status).toBe(200);
    expect(((await cli.json()) as { rows: unknown[] }).rows).toEqual([{ two: 2 }]);
    // An OTLP exporter: no Origin.
    const otlp = await raw('POST', '/v1/traces', { host, ...json }, '{"resourceSpans":[]}');
    expect(otlp.status).toBe(200);
  });

  it('without a read token, a POST under /api must be application/json (415 for what forms and no-cors send)', async () => {
    const host = `127.0.0.1:${port}`;
    for (const type of [
      'text/plain',
      'text/plain;charset=UTF-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      const answer = await raw('POST', '/api/sql', { host, 'content-type': type }, 'SELECT 1');
      expect(answer.status, type).toBe(415);
      expect(JSON.parse(answer.body).error, type).toMatch(/application\/json/);
    }
    expect((await raw('POST', '/api/sql', { host }, 'SELECT 1')).status).toBe(415);
  });
});

const chromiumPresent = existsSync(CHROMIUM);

describe.skipIf(!chromiumPresent)('a real browser', () => {
  let context: BrowserContext;
  let profileDir: string;
  let attacker: Server;
  let attackerUrl: string;

  beforeAll(async () => {
    // The attacker's page, on another loopback port: no-cors text/plain POSTs, which need
    // no CORS preflight, so the browser sends them and only hides the answer.
    attacker = createServer((request, response) => {
      const target = new URL(request.url ?? '/', 'http://x').searchParams.get('target') ?? '';
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(`<!doctype html><title>attacker</title><script>
        const target = ${JSON.stringify(target)};
        const post = (path, body, type) => fetch(target + path, {
          method: 'POST', mode: 'no-cors', headers: { 'content-type': type }, body,
        }).then(() => 'sent', (error) => 'error: ' + error);
        Promise.all([
          post('/api/sql', "SELECT 'cross-site' AS marker", 'text/plain'),
          post('/v1/feedback', ${JSON.stringify(FEEDBACK.replace('cross-site', 'cross-site-form'))}, 'text/plain'),
          post('/api/sql', ${JSON.stringify(SQL)}, 'application/x-www-form-urlencoded'),
        ]).then((results) => { document.title = 'done ' + results.join(','); });
      </script>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
    profileDir = await mkdtemp(join(tmpdir(), 'mm-cross-site-chromium-'));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      args: [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`],
      headless: true,
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await new Promise<void>((resolve) => (attacker ? attacker.close(() => resolve()) : resolve()));
    if (profileDir !== undefined) await rm(profileDir, { recursive: true, force: true });
  }, 60_000);

  it('a page from another loopback port cannot run /api/sql or post feedback with no-cors POSTs', async () => {
    const ran = await requestsCounted('/api/sql', 200);
    const refused = await requestsCounted('/api/sql', 403);
    const feedbackRefused = await requestsCounted('/v1/feedback', 403);
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(30_000);
    await page.goto(`${attackerUrl}/?target=${encodeURIComponent(collector.url)}`);
    await page.waitForFunction(() =>
      (globalThis as unknown as { document: { title: string } }).document.title.startsWith('done'),
    );
    // The browser did send them (counted as refused), and no query ran (no new 200).
    expect(await requestsCounted('/api/sql', 403)).toBe(refused + 2);
    expect(await requestsCounted('/v1/feedback', 403)).toBe(feedbackRefused + 1);
    expect(await requestsCounted('/api/sql', 200)).toBe(ran);
    expect(await scoresNamed('cross-site-form')).toBe(0);
  }, 90_000);

  it('a DNS-rebound name gets 421 for the page and for its same-origin reads', async () => {
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    const rebound = `http://${REBOUND}:${port}`;
    const navigation = await page.goto(`${rebound}/api/services`);
    expect(navigation?.status()).toBe(421);
    // Same-origin for the browser, so it would read the answers: the collector must not give any.
    const statuses = await page.evaluate(async () => {
      const sql = await fetch('/api/sql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sql: 'SELECT 1' }),
      });
      const services = await fetch('/api/v3/services');
      return [sql.status, services.status];
    });
    expect(statuses).toEqual([421, 421]);
    await page.close();
  }, 90_000);

  it('the built-in dashboard still loads and reads /api on the tokenless default', async () => {
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    const answers: number[] = [];
    page.on('response', (response) => {
      if (response.url().includes('/api/dashboard/')) answers.push(response.status());
    });
    const navigation = await page.goto(`${collector.url}/`);
    expect(navigation?.status()).toBe(200);
    await page.waitForResponse((response) => response.url().includes('/api/dashboard/overview'));
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.every((status) => status === 200)).toBe(true);
    await page.close();
  }, 90_000);
});
