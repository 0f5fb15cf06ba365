import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DiagLogLevel, diag } from '@opentelemetry/api';
import type { DiagLogger } from '@opentelemetry/api';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { instrumentOpenAI } from '../src/instrument-openai.js';
import {
  SUPPORTED_SDK_RANGES,
  rangeText,
  supportedRangeOf,
  versionInRange,
} from '../src/sdk-versions.js';
import { patchInstalledModules } from '../src/setup-patch.js';

// Outside the supported range the zero-code set-up leaves the SDK alone with one diag warning.
// The old SDK is a real one from npm: openai 4.104.0, a devDependency under the alias `openai-v4`,
// linked as `openai` into a temporary app directory.

const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const REGISTER = pathToFileURL(join(PACKAGE_DIR, 'dist', 'register.js')).href;
const OPENAI_V4_DIR = realpathSync(join(PACKAGE_DIR, 'node_modules', 'openai-v4'));
const OPENAI_CURRENT_DIR = realpathSync(join(PACKAGE_DIR, 'node_modules', 'openai'));
const OPENAI_V4_VERSION = (
  JSON.parse(readFileSync(join(OPENAI_V4_DIR, 'package.json'), 'utf8')) as { version: string }
).version;

let sim: LlmSim;
let workDir: string;

/** A directory with `node_modules/openai` linked to the given package directory. */
function appWith(openaiDir: string, name: string): string {
  const dir = join(workDir, name);
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  symlinkSync(openaiDir, join(dir, 'node_modules', 'openai'), 'dir');
  return dir;
}

beforeAll(async () => {
  sim = await startLlmSim({ latencyScale: 0 });
  workDir = mkdtempSync(join(tmpdir(), 'modelmaxx-sdk-versions-'));
});
afterAll(async () => {
  await sim.close();
  rmSync(workDir, { recursive: true, force: true });
});
afterEach(() => {
  diag.disable();
});

describe('supported SDK ranges', () => {
  it('accepts the range and nothing around it', () => {
    const openai = supportedRangeOf('openai')!;
    expect(rangeText(openai)).toBe('>=6.0.0 <8');
    for (const version of ['6.0.0', '6.49.0', '7.0.0', '7.60.0', '7.61.0-beta.1']) {
      expect(versionInRange(version, openai), version).toBe(true);
    }
    for (const version of ['5.23.2', '4.104.0', '8.0.0', '8.0.0-alpha.1', 'latest', '']) {
      expect(versionInRange(version, openai), version).toBe(false);
    }
    const anthropic = supportedRangeOf('@anthropic-ai/sdk')!;
    expect(versionInRange('1.17.0', anthropic)).toBe(true);
    expect(versionInRange(anthropic.oldest, anthropic)).toBe(true);
    expect(versionInRange('0.30.1', anthropic)).toBe(false);
    expect(versionInRange('2.0.0', anthropic)).toBe(false);
  });

  it('are the optional peerDependencies of instrument and router', () => {
    for (const dir of [PACKAGE_DIR, join(PACKAGE_DIR, '..', 'router')]) {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        peerDependencies: Record<string, string>;
        peerDependenciesMeta: Record<string, { optional?: boolean }>;
      };
      for (const range of SUPPORTED_SDK_RANGES) {
        expect(manifest.peerDependencies[range.packageName], dir).toBe(rangeText(range));
        expect(manifest.peerDependenciesMeta[range.packageName]?.optional, dir).toBe(true);
      }
    }
  });
});

describe('an SDK outside the range', () => {
  it('is left unpatched with one warning naming the version and the range; its calls work', async () => {
    const warnings: string[] = [];
    const logger: DiagLogger = {
      error: () => undefined,
      warn: (message: string) => warnings.push(message),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    };
    diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
    const appDir = appWith(OPENAI_V4_DIR, 'in-process');
    const targets = [{ packageName: 'openai', patch: (m: unknown) => instrumentOpenAI(m) }];

    const first = patchInstalledModules(targets, [appDir, appDir]);
    const second = patchInstalledModules(targets, [appDir]); // a second set-up: no second warning
    expect(await first.pending).toEqual([]);
    expect(first.outcomes).toEqual([
      {
        packageName: 'openai',
        file: join(OPENAI_V4_DIR, 'index.js'),
        format: 'commonjs',
        patched: false,
        unsupportedVersion: OPENAI_V4_VERSION,
      },
    ]);
    expect(second.outcomes).toHaveLength(1);
    expect(warnings).toEqual([
      `modelmaxx: openai ${OPENAI_V4_VERSION} is outside the supported range >=6.0.0 <8; its ` +
        'calls are not instrumented (upgrade openai, or see the supported versions in the ' +
        '@modelmaxx/instrument README)',
    ]);

    // The copy is untouched and works.
    const OpenAI = createRequire(join(appDir, 'app.cjs'))('openai') as {
      OpenAI: new (options: object) => {
        chat: { completions: { create(body: object): Promise<{ choices: unknown[] }> } };
      };
      Chat: { Completions: { prototype: object } };
    };
    // The mark every copy of the instrumentation puts on a patched prototype (`Symbol.for`).
    const patched = Symbol.for('modelmaxx.instrument.patched');
    expect(Object.getOwnPropertySymbols(OpenAI.Chat.Completions.prototype)).not.toContain(patched);
    const client = new OpenAI.OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'old sdk' }],
    });
    expect(completion.choices).toHaveLength(1);
  });

  /** Runs `app.mjs` in `appDir` under `--import @modelmaxx/instrument/register`, spans to stdout. */
  function runRegistered(
    appDir: string,
  ): Promise<{ code: number | null; out: string; err: string }> {
    writeFileSync(
      join(appDir, 'app.mjs'),
      [
        "import OpenAI from 'openai';",
        `const client = new OpenAI({ baseURL: ${JSON.stringify(sim.openaiBaseURL)}, apiKey: 'k', maxRetries: 0 });`,
        "const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });",
        "console.log('APP-OK', completion.choices.length);",
      ].join('\n'),
    );
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !/^(OTEL_|MODELMAXX_|NODE_OPTIONS$|VITEST)/.test(key)) {
        env[key] = value;
      }
    }
    Object.assign(env, {
      OTEL_LOG_LEVEL: 'warn',
      OTEL_TRACES_EXPORTER: 'console',
      OTEL_BSP_SCHEDULE_DELAY: '10',
    });
    const child = spawn(process.execPath, ['--import', REGISTER, 'app.mjs'], {
      cwd: appDir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`app did not exit\n${out}\n${err}`));
      }, 60_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, out, err });
      });
    });
  }

  it('under register: the app runs, one warning on stderr, no span', async () => {
    const run = await runRegistered(appWith(OPENAI_V4_DIR, 'registered-old'));
    expect(run.code, run.err).toBe(0);
    expect(run.out).toContain('APP-OK 1');
    const warnings = run.err.split('\n').filter((line) => line.includes('outside the supported'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(
      `openai ${OPENAI_V4_VERSION} is outside the supported range >=6.0.0 <8`,
    );
    expect(run.out).not.toContain('gen_ai.request.model');
  });

  it('control: the same app with the workspace openai gets its span', async () => {
    const run = await runRegistered(appWith(OPENAI_CURRENT_DIR, 'registered-current'));
    expect(run.code, run.err).toBe(0);
    expect(run.out).toContain('APP-OK 1');
    expect(run.err).not.toContain('outside the supported');
    expect(run.out).toContain('gen_ai.request.model');
  });
});
