import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { costOf } from '@modelmaxx/pricing';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { runProcess } from './support/run-fixture.js';

// A new user's install, outside this workspace: `pnpm release:pack` writes the tarballs, a fresh
// app in the OS temp directory (no workspace above it) `npm install`s them with openai and
// @opentelemetry/api from the registry, then an ESM app runs under `--import
// @modelmaxx/instrument/register`, a CJS app with `require('@modelmaxx/instrument/auto')`, both
// calling llm-sim and exporting to `npx modelmaxx serve` from the installed tarballs, and `npx
// modelmaxx sql` reads the rows back. The commands are the ones docs/getting-started.md prints.
// Needs the npm registry (openai, chdb ~550 MB unpacked; the npm cache makes reruns fast).

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const NODE_BIN = dirname(process.execPath); // Node 24 for the apps and npx's bins
const SETUP_TIMEOUT_MS = 15 * 60_000;
const RUN_TIMEOUT_MS = 120_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** An environment without the test runner's OTel / modelmaxx / Node settings, Node 24 first on PATH. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (/^(OTEL_|MODELMAXX_|OPENAI_|ANTHROPIC_|NODE_OPTIONS$|NODE_PATH$|VITEST|npm_)/.test(key)) {
      continue;
    }
    env[key] = value;
  }
  env['PATH'] = `${NODE_BIN}${delimiter}${process.env['PATH'] ?? ''}`;
  return { ...env, ...extra };
}

async function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<Run> {
  const result = await runProcess(command, args, {
    cwd: options.cwd,
    env: options.env ?? cleanEnv(),
    timeoutMs: options.timeoutMs ?? RUN_TIMEOUT_MS,
  });
  return { code: result.code, stdout: result.stdout, stderr: result.stderr, ms: result.durationMs };
}

async function ok(promise: Promise<Run>, what: string): Promise<Run> {
  const result = await promise;
  if (result.code !== 0) {
    throw new Error(`${what} exited with ${result.code}\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The nearest directory at or above `start` that has a pnpm-workspace.yaml, if any. */
function workspaceAbove(start: string): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

const ESM_APP = `import OpenAI from 'openai';
const client = new OpenAI({ maxRetries: 0 });
const completion = await client.chat.completions.create({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Hello from an ESM app outside the workspace.' }],
});
console.log(JSON.stringify({ id: completion.id, model: completion.model, usage: completion.usage }));
`;

const CJS_APP = `require('@modelmaxx/instrument/auto');
const OpenAI = require('openai');
const client = new OpenAI({ maxRetries: 0 });
client.chat.completions
  .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello from a CJS app outside the workspace.' }] })
  .then((completion) => {
    console.log(JSON.stringify({ id: completion.id, model: completion.model, usage: completion.usage }));
  });
`;

// Types for both module kinds: TypeScript (nodenext) resolves the packages' "types" for an ES
// module and for a CommonJS file that require()s them.
const TYPES_ESM = `import { observe, withLlmContext } from '@modelmaxx/instrument';
import { costOf } from '@modelmaxx/pricing';
import { ATTR_GEN_AI_REQUEST_MODEL } from '@modelmaxx/semconv';
import { FeedbackSchema } from '@modelmaxx/semconv/schemas';
import OpenAI from 'openai';
const client: OpenAI = observe(new OpenAI({ apiKey: 'k' }));
const cost = costOf({ model: 'gpt-4o', usage: { inputTokens: 1 } });
export const used = [client, cost, withLlmContext, ATTR_GEN_AI_REQUEST_MODEL, FeedbackSchema];
`;
const TYPES_CJS = `import instrument = require('@modelmaxx/instrument');
import pricing = require('@modelmaxx/pricing');
import openai = require('openai');
const client: openai.OpenAI = instrument.observe(new openai.OpenAI({ apiKey: 'k' }));
const cost: pricing.CostResult = pricing.costOf({ model: 'gpt-4o', usage: { inputTokens: 1 } });
export = [client, cost];
`;

interface AppOutput {
  id: string;
  model: string;
  usage: { prompt_tokens: number; completion_tokens: number };
}

let workDir: string;
let appDir: string;
let tarballs: string[];
let sim: LlmSim;
let collectorUrl: string;
let stopCollector: (() => Promise<void>) | undefined;
const timings: Record<string, number> = {};

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'modelmaxx-outside-'));
  appDir = join(workDir, 'app');
  const packDir = join(workDir, 'tarballs');

  const pack = await ok(
    run(process.execPath, [join(ROOT, 'scripts', 'release-pack.mjs'), '--out', packDir], {
      cwd: ROOT,
      env: cleanEnv(),
      timeoutMs: 5 * 60_000,
    }),
    'pnpm release:pack',
  );
  timings['pack'] = pack.ms;
  tarballs = readdirSync(packDir)
    .filter((name) => name.endsWith('.tgz'))
    .sort()
    .map((name) => join(packDir, name));

  mkdirSync(appDir);
  writeFileSync(
    join(appDir, 'package.json'),
    JSON.stringify({ name: 'outside-app', version: '1.0.0', private: true }, null, 2),
  );
  const openaiRange = (
    JSON.parse(readFileSync(join(ROOT, 'packages/instrument/package.json'), 'utf8')) as {
      peerDependencies: Record<string, string>;
    }
  ).peerDependencies['openai'];
  const install = await ok(
    run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        ...tarballs,
        `openai@${openaiRange}`,
        '@opentelemetry/api@^1.10.0',
        // a TypeScript app on Node has Node's types; they are needed here since the gateway
        // (in @modelmaxx/cli) depends on undici, whose types openai's read when it is installed
        '@types/node@^24',
      ],
      { cwd: appDir, timeoutMs: 12 * 60_000 },
    ),
    'npm install',
  );
  timings['npm install'] = install.ms;

  sim = await startLlmSim({ latencyScale: 0 });
  const port = await freePort();
  collectorUrl = `http://127.0.0.1:${port}`;
  const serve = spawn(
    'npx',
    ['modelmaxx', 'serve', '--port', String(port), '--data', join(workDir, 'data')],
    // Its own process group: npx does not pass SIGTERM on, so the group gets it.
    { cwd: appDir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let serveOutput = '';
  serve.stdout.setEncoding('utf8').on('data', (chunk: string) => (serveOutput += chunk));
  serve.stderr.setEncoding('utf8').on('data', (chunk: string) => (serveOutput += chunk));
  const exited = new Promise<void>((resolve) => serve.once('close', () => resolve()));
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-serve.pid!, signal);
    } catch {
      // already gone
    }
  };
  stopCollector = async () => {
    if (serve.exitCode === null && serve.signalCode === null) signalGroup('SIGTERM');
    const timer = setTimeout(() => signalGroup('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    const healthy = await fetch(`${collectorUrl}/healthz`).then(
      (response) => response.ok,
      () => false,
    );
    if (healthy) break;
    if (serve.exitCode !== null || Date.now() > deadline) {
      throw new Error(`npx modelmaxx serve did not come up\n${serveOutput}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  console.log(
    `outside-app timings: ${Object.entries(timings)
      .map(([step, ms]) => `${step} ${(ms / 1000).toFixed(1)} s`)
      .join(', ')}`,
  );
  await stopCollector?.();
  await sim?.close();
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
}, 60_000);

describe('the packages installed by an outside app', () => {
  it('install without a workspace above, with workspace ranges replaced and no build files', () => {
    expect(workspaceAbove(appDir)).toBeUndefined();
    const version = (
      JSON.parse(readFileSync(join(ROOT, 'packages/instrument/package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    const names = tarballs.map((file) => file.split('/').pop()!);
    expect(names).toEqual(
      expect.arrayContaining(
        ['cli', 'collector', 'instrument', 'llm-sim', 'pricing', 'router', 'semconv'].map(
          (name) => `modelmaxx-${name}-${version}.tgz`,
        ),
      ),
    );
    for (const name of names)
      expect(name).toMatch(new RegExp(`^modelmaxx-[a-z-]+-${version}\\.tgz$`));
    const installed = join(appDir, 'node_modules', '@modelmaxx');
    for (const name of readdirSync(installed)) {
      const manifestText = readFileSync(join(installed, name, 'package.json'), 'utf8');
      expect(manifestText, name).not.toContain('workspace:');
      expect(manifestText, name).not.toContain('@modelmaxx/source');
      expect(existsSync(join(installed, name, 'README.md')), name).toBe(true);
      const files = readdirSync(join(installed, name), { recursive: true }).map(String);
      expect(
        files.filter((file) => file.endsWith('.tsbuildinfo')),
        name,
      ).toEqual([]);
      expect(
        files.filter((file) => file.startsWith('test')),
        name,
      ).toEqual([]);
    }
    const instrument = JSON.parse(
      readFileSync(join(installed, 'instrument', 'package.json'), 'utf8'),
    ) as Record<string, Record<string, unknown>>;
    expect(instrument['dependencies']?.['@modelmaxx/pricing']).toBe(version);
    expect(instrument['peerDependencies']).toEqual({
      '@anthropic-ai/sdk': '>=0.117.1 <2',
      '@opentelemetry/api': '^1.10.0',
      openai: '>=6.0.0 <8',
    });
  });

  it(
    'type-checks for an ES module and a CommonJS file (tsc, module nodenext)',
    async () => {
      writeFileSync(join(appDir, 'types-esm.mts'), TYPES_ESM);
      writeFileSync(join(appDir, 'types-cjs.cts'), TYPES_CJS);
      writeFileSync(
        join(appDir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'nodenext',
            moduleResolution: 'nodenext',
            target: 'es2023',
            strict: true,
            noEmit: true,
            types: ['node'],
          },
          files: ['types-esm.mts', 'types-cjs.cts'],
        }),
      );
      const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const result = await run(process.execPath, [tsc, '-p', '.'], { cwd: appDir });
      timings['tsc'] = result.ms;
      expect(result.stdout + result.stderr).toBe('');
      expect(result.code).toBe(0);
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'an ESM app under --import and a CJS app with auto: spans stored by npx modelmaxx serve, costs = costOf',
    async () => {
      const appEnv = (service: string): Record<string, string> =>
        cleanEnv({
          OTEL_SERVICE_NAME: service,
          OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl,
          OPENAI_BASE_URL: sim.openaiBaseURL,
          OPENAI_API_KEY: 'sk-outside',
        });
      writeFileSync(join(appDir, 'app.mjs'), ESM_APP);
      writeFileSync(join(appDir, 'app.cjs'), CJS_APP);
      const esm = await ok(
        run(process.execPath, ['--import', '@modelmaxx/instrument/register', 'app.mjs'], {
          cwd: appDir,
          env: appEnv('outside-esm'),
        }),
        'the ESM app',
      );
      const cjs = await ok(
        run(process.execPath, ['app.cjs'], { cwd: appDir, env: appEnv('outside-cjs') }),
        'the CJS app',
      );
      const calls = {
        'outside-esm': JSON.parse(esm.stdout) as AppOutput,
        'outside-cjs': JSON.parse(cjs.stdout) as AppOutput,
      };

      const query =
        'SELECT ServiceName, Provider, RequestModel, ResponseModel, ResponseId, InputTokens, ' +
        'OutputTokens, CostUSD, StatusCode FROM llm_calls ORDER BY ServiceName';
      let rows: Record<string, unknown>[] = [];
      const deadline = Date.now() + 60_000;
      while (rows.length < 2 && Date.now() < deadline) {
        const sql = await ok(
          run('npx', ['modelmaxx', 'sql', query, '--url', collectorUrl, '--format', 'json'], {
            cwd: appDir,
          }),
          'npx modelmaxx sql',
        );
        timings['npx modelmaxx sql'] = sql.ms;
        rows = sql.stdout
          .split('\n')
          .filter((line) => line.trim() !== '')
          .map((line) => JSON.parse(line) as Record<string, unknown>);
        if (rows.length < 2) await new Promise((resolve) => setTimeout(resolve, 500));
      }

      const expected = Object.entries(calls)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([service, call]) => {
          const cost = costOf({
            provider: 'openai',
            model: call.model,
            usage: {
              inputTokens: call.usage.prompt_tokens,
              outputTokens: call.usage.completion_tokens,
            },
          });
          if (!cost.known) throw new Error(`no price for ${call.model}`);
          return {
            ServiceName: service,
            Provider: 'openai',
            RequestModel: service === 'outside-esm' ? 'gpt-4o-mini' : 'gpt-4o',
            ResponseModel: call.model,
            ResponseId: call.id,
            InputTokens: call.usage.prompt_tokens,
            OutputTokens: call.usage.completion_tokens,
            CostUSD: cost.amount,
            StatusCode: expect.not.stringMatching(/error/i),
          };
        });
      expect(rows).toEqual(expected);
    },
    4 * RUN_TIMEOUT_MS,
  );
});
