import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { startOtlpReceiver } from './support/otlp-receiver.js';
import type { OtlpReceiver, ReceivedSpan } from './support/otlp-receiver.js';
import { FIXTURES_DIR, REGISTER, TEST_DIR, runFixture, waitFor } from './support/run-fixture.js';
import type { FixtureRun, RunOptions } from './support/run-fixture.js';
import {
  expectedAnthropicAttributes,
  expectedChatAttributes,
  expectedStreamAttributes,
  parseAppOutput,
} from './support/expected-spans.js';

// Real processes: fixture apps run under `node --import @modelmaxx/instrument/register` or with
// `require('@modelmaxx/instrument/auto')`, call the real openai / @anthropic-ai/sdk against llm-sim,
// and export over real OTLP exporters to a loopback receiver. Needs `tsc -b` (the apps load dist).

const CLIENT = 3; // OTLP SPAN_KIND_CLIENT

let workDir: string;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'modelmaxx-e2e-'));
});
afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function simEnv(sim: LlmSim): Record<string, string> {
  return { OPENAI_BASE_URL: sim.openaiBaseURL, ANTHROPIC_BASE_URL: sim.anthropicBaseURL };
}

interface SetUp {
  sim: LlmSim;
  receiver: OtlpReceiver;
  /** Runs a fixture under `--import register`, calling the simulator and exporting to the receiver. */
  registered(file: string, env?: Record<string, string>, options?: RunOptions): Promise<FixtureRun>;
}

/** A fresh simulator (llm-sim is deterministic per instance, so runs can be compared) and receiver. */
async function setUp(): Promise<SetUp> {
  const sim = await startLlmSim({ latencyScale: 0 });
  const receiver = await startOtlpReceiver();
  cleanups.push(
    () => sim.close(),
    () => receiver.close(),
  );
  const registered = (file: string, env: Record<string, string> = {}, options: RunOptions = {}) =>
    runFixture(file, {
      ...options,
      nodeArgs: REGISTER,
      env: { ...simEnv(sim), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, ...env },
    });
  return { sim, receiver, registered };
}

/** The same app, uninstrumented, against its own fresh simulator: what the app prints on its own. */
async function bareRun(file: string, options: RunOptions = {}): Promise<FixtureRun> {
  const sim = await startLlmSim({ latencyScale: 0 });
  try {
    return await runFixture(file, { ...options, env: { ...options.env, ...simEnv(sim) } });
  } finally {
    await sim.close();
  }
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function byName(spans: ReceivedSpan[]): Record<string, ReceivedSpan[]> {
  const groups: Record<string, ReceivedSpan[]> = {};
  for (const span of spans) (groups[span.name] ??= []).push(span);
  return groups;
}

function expectOk(run: FixtureRun): void {
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
}

/** Checks the three LLM spans of fixtures/calls.mjs (chat, streamed chat, Anthropic message). */
function expectAppSpans(
  spans: ReceivedSpan[],
  run: FixtureRun,
  sim: LlmSim,
  options: { anthropic: boolean },
): void {
  const output = parseAppOutput(run.stdout);
  const groups = byName(spans);
  expect(Object.keys(groups).sort()).toEqual(
    options.anthropic ? ['chat claude-haiku-4-5', 'chat gpt-4o-mini'] : ['chat gpt-4o-mini'],
  );
  const openaiSpans = groups['chat gpt-4o-mini'] ?? [];
  expect(openaiSpans).toHaveLength(2);
  const chat = openaiSpans.find((span) => span.attributes['gen_ai.request.stream'] === false);
  const stream = openaiSpans.find((span) => span.attributes['gen_ai.request.stream'] === true);
  expect(chat?.kind).toBe(CLIENT);
  expect(chat?.status).toEqual({ code: 0, message: '' });
  expect(chat?.attributes).toEqual(expectedChatAttributes(output, sim.port));
  expect(stream?.attributes).toEqual(expectedStreamAttributes(stream?.attributes ?? {}, sim.port));
  expect(stream?.attributes['gen_ai.response.id']).not.toBe(output.chat.id);
  if (options.anthropic) {
    const anthropic = groups['chat claude-haiku-4-5'] ?? [];
    expect(anthropic).toHaveLength(1);
    expect(anthropic[0]?.kind).toBe(CLIENT);
    expect(anthropic[0]?.attributes).toEqual(expectedAnthropicAttributes(output, sim.port));
  }
  for (const span of spans) expect(span.scope.name).toBe('@modelmaxx/instrument');
}

describe('zero-code set-up (register / auto / observe)', { timeout: 120_000 }, () => {
  it('ESM app under --import register: spans over http/protobuf with headers, service name and resource attributes', async () => {
    const { sim, receiver, registered } = await setUp();
    const run = await registered('esm-app.mjs', {
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer e2e-token,x-team=ml',
      OTEL_SERVICE_NAME: 'esm-app',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e,team=ml-platform',
    });
    expectOk(run);
    // The app prints exactly what it prints without instrumentation.
    expect(run.stdout).toBe((await bareRun('esm-app.mjs')).stdout);
    // Spans were flushed before the process exited.
    expect(receiver.requests.length).toBeGreaterThan(0);
    for (const request of receiver.requests) {
      expect(request.path).toBe('/v1/traces');
      expect(request.contentType).toBe('application/x-protobuf');
      expect(request.headers['authorization']).toBe('Bearer e2e-token');
      expect(request.headers['x-team']).toBe('ml');
    }
    const spans = receiver.spans();
    expect(spans).toHaveLength(3);
    expectAppSpans(spans, run, sim, { anthropic: true });
    // The built-in evaluators ran (MODELMAXX_EVALUATORS defaults to builtin).
    for (const span of spans) {
      expect(span.events.length).toBeGreaterThan(0);
      expect(span.events.every((event) => event.name === 'gen_ai.evaluation.result')).toBe(true);
    }
    for (const span of spans) {
      expect(span.resource).toMatchObject({
        'service.name': 'esm-app',
        'deployment.environment.name': 'e2e',
        team: 'ml-platform',
        'telemetry.sdk.name': 'opentelemetry',
        'telemetry.sdk.language': 'nodejs',
        'telemetry.distro.name': '@modelmaxx/instrument',
      });
    }
  });

  it('exports http/json to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT when OTEL_EXPORTER_OTLP_TRACES_PROTOCOL asks', async () => {
    const { sim, receiver } = await setUp();
    const run = await runFixture('esm-app.mjs', {
      nodeArgs: REGISTER,
      env: {
        ...simEnv(sim),
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/unused',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/custom/traces`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      },
    });
    expectOk(run);
    expect(receiver.requests.length).toBeGreaterThan(0);
    for (const request of receiver.requests) {
      expect(request.path).toBe('/custom/traces');
      expect(request.contentType).toBe('application/json');
    }
    expectAppSpans(receiver.spans(), run, sim, { anthropic: true });
  });

  it('OTEL_EXPORTER_OTLP_PROTOCOL=http/json applies when no traces-specific protocol is set', async () => {
    const { receiver, registered } = await setUp();
    const run = await registered('esm-app.mjs', { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
    expectOk(run);
    expect(receiver.requests.map((request) => request.contentType)).toContain('application/json');
    expect(receiver.requests.every((request) => request.contentType === 'application/json')).toBe(
      true,
    );
    expect(receiver.spans()).toHaveLength(3);
  });

  it("CJS app with require('@modelmaxx/instrument/auto') is instrumented the same way", async () => {
    const { sim, receiver } = await setUp();
    const run = await runFixture('cjs-app.cjs', {
      env: {
        ...simEnv(sim),
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: 'cjs-app',
      },
    });
    expectOk(run);
    expect(run.stdout).toBe((await bareRun('cjs-app.cjs')).stdout);
    const spans = receiver.spans();
    expect(spans).toHaveLength(3);
    expectAppSpans(spans, run, sim, { anthropic: true });
    expect(spans.every((span) => span.resource['service.name'] === 'cjs-app')).toBe(true);
  });

  it('CJS app under --import register: each SDK copy is patched when the app loads it', async () => {
    const { sim, receiver, registered } = await setUp();
    const run = await registered('cjs-plain-app.cjs');
    expectOk(run);
    expect(run.stdout).toBe((await bareRun('cjs-plain-app.cjs')).stdout);
    const spans = receiver.spans();
    expect(spans).toHaveLength(3);
    expectAppSpans(spans, run, sim, { anthropic: true });
  });

  it('register loads no LLM SDK the app does not load itself', async () => {
    const run = await runFixture('idle-app.mjs', { nodeArgs: REGISTER });
    expectOk(run);
    expect(JSON.parse(run.stdout)).toEqual({ loadedSdkFiles: 0 });
    // With auto (patching at start-up) both CJS copies are loaded: the check above can fail.
    const eager = await runFixture('idle-app.mjs', {
      nodeArgs: ['--import', '@modelmaxx/instrument/auto'],
    });
    expectOk(eager);
    expect((JSON.parse(eager.stdout) as { loadedSdkFiles: number }).loadedSdkFiles).toBeGreaterThan(
      0,
    );
  });

  it('observe() under --import register records each call once', async () => {
    const { sim, receiver, registered } = await setUp();
    const run = await registered('observe-app.mjs');
    expectOk(run);
    const spans = receiver.spans();
    expect(spans).toHaveLength(2);
    expectAppSpans(spans, run, sim, { anthropic: false });
    expect(sim.requestCount()).toBe(2);
  });

  it("observe() alone, with the app's own SDK and no modelmaxx set-up, records each call once", async () => {
    const { sim, receiver } = await setUp();
    const run = await runFixture('observe-app.mjs', {
      nodeArgs: ['--import', './fixtures/own-sdk-preload.mjs'],
      env: { ...simEnv(sim), OWN_EXPORTER_URL: `${receiver.url}/v1/traces` },
    });
    expectOk(run);
    expect(run.stdout).toBe((await bareRun('observe-app.mjs')).stdout);
    const spans = receiver.spans();
    expect(spans).toHaveLength(2);
    expectAppSpans(spans, run, sim, { anthropic: false });
    expect(spans.every((span) => span.resource['service.name'] === 'observe-only-app')).toBe(true);
  });

  it("an app's own OTel SDK keeps its provider: our spans go through it, parented to its spans", async () => {
    const { sim, receiver } = await setUp();
    const ownReceiver = await startOtlpReceiver();
    cleanups.push(() => ownReceiver.close());
    const run = await runFixture('own-sdk-app.mjs', {
      env: {
        ...simEnv(sim),
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: 'not-the-app-sdk',
        OWN_EXPORTER_URL: `${ownReceiver.url}/v1/traces`,
      },
    });
    expectOk(run);
    const output = parseAppOutput(run.stdout);
    // Nothing went through our exporter: our SDK never started.
    expect(receiver.requests).toHaveLength(0);
    const spans = ownReceiver.spans();
    const root = spans.find((span) => span.name === 'handle request');
    expect(root?.spanId).toBe(output.parent?.spanId);
    const llmSpans = spans.filter((span) => span.scope.name === '@modelmaxx/instrument');
    expect(llmSpans).toHaveLength(3);
    expectAppSpans(llmSpans, run, sim, { anthropic: true });
    for (const span of llmSpans) {
      expect(span.traceId).toBe(output.parent?.traceId);
      expect(span.parentSpanId).toBe(output.parent?.spanId);
      expect(span.resource).toEqual({ 'service.name': 'own-sdk-app' });
    }
    expect(spans).toHaveLength(4);
  });

  it('an unreachable exporter changes neither the output nor the exit code, and exit waits at most the flush timeout', async () => {
    const { registered } = await setUp();
    const flushTimeoutMs = 1000;
    const reachable = await registered('esm-app.mjs', {
      MODELMAXX_FLUSH_TIMEOUT_MS: String(flushTimeoutMs),
    });
    expectOk(reachable);
    const port = await closedPort();
    const down = await bareRun('esm-app.mjs', {
      nodeArgs: REGISTER,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        MODELMAXX_FLUSH_TIMEOUT_MS: String(flushTimeoutMs),
      },
    });
    // The app's output is unchanged; the lost spans are named in one stderr line.
    expect(down.code).toBe(0);
    expect(down.stderr).toBe(
      `modelmaxx: spans not exported to http://127.0.0.1:${port}/v1/traces: connection refused (is the collector running? start it with \`npx modelmaxx serve\`)\n`,
    );
    expect(down.stdout).toBe(reachable.stdout);
    // Exporter retries are bounded by the same timeout (without the bound they run for 10 s);
    // generous slack for a loaded machine.
    expect(down.durationMs).toBeLessThan(reachable.durationMs + flushTimeoutMs + 5000);
  });

  it('SIGTERM flushes the spans, then the process still ends by the signal', async () => {
    const { receiver, registered } = await setUp();
    const run = await registered(
      'sigterm-app.mjs',
      {},
      {
        onSpawn: (child, output) => {
          void waitFor(() => output.stdout().includes('"id"')).then(() => child.kill('SIGTERM'));
        },
      },
    );
    expect(run.signal).toBe('SIGTERM');
    expect(run.code).toBe(null);
    const { id } = JSON.parse(run.stdout.trim()) as { id: string };
    // The batch processor's 5 s schedule had not come round: these were flushed by the handler.
    const spans = receiver.spans();
    expect(spans).toHaveLength(1);
    expect(spans[0]?.attributes['gen_ai.response.id']).toBe(id);
    expect(run.durationMs).toBeLessThan(20_000);
  });

  it("SIGTERM with the app's own handler: spans are flushed and the app decides how to exit", async () => {
    const { receiver, registered } = await setUp();
    const run = await registered(
      'sigterm-handler-app.mjs',
      {},
      {
        onSpawn: (child, output) => {
          void waitFor(() => output.stdout().includes('"id"')).then(() => child.kill('SIGTERM'));
        },
      },
    );
    expect(run.stderr).toBe('');
    expect(run.signal).toBe(null);
    expect(run.code).toBe(3);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, string>);
    expect(lines[1]).toEqual({ shutdown: 'graceful' });
    const spans = receiver.spans();
    expect(spans).toHaveLength(1);
    expect(spans[0]?.attributes['gen_ai.response.id']).toBe(lines[0]?.['id']);
  });

  it('OTEL_SDK_DISABLED=true: the app works and nothing is exported', async () => {
    const { sim, receiver, registered } = await setUp();
    const run = await registered('esm-app.mjs', { OTEL_SDK_DISABLED: 'true' });
    expectOk(run);
    expect(run.stdout).toBe((await bareRun('esm-app.mjs')).stdout);
    expect(receiver.requests).toHaveLength(0);
    // Uninstrumented: the stream request went out exactly as the app made it.
    expect(sim.requestCount()).toBe(3);
  });

  it('bad OTEL_* / MODELMAXX_* values fall back to defaults; MODELMAXX_EVALUATORS=none turns evaluators off', async () => {
    const { sim, receiver, registered } = await setUp();
    const run = await registered('esm-app.mjs', {
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_TRACES_SAMPLER: 'sometimes',
      MODELMAXX_FLUSH_TIMEOUT_MS: 'soon',
      MODELMAXX_SAMPLE_RATIO: '7',
      OTEL_SDK_DISABLED: 'maybe',
      MODELMAXX_EVALUATORS: 'none',
    });
    expectOk(run);
    expect(
      receiver.requests.every((request) => request.contentType === 'application/x-protobuf'),
    ).toBe(true);
    const spans = receiver.spans();
    expectAppSpans(spans, run, sim, { anthropic: true });
    expect(spans.map((span) => span.events)).toEqual([[], [], []]);
  });

  it('OTEL_TRACES_EXPORTER=console prints the spans; =none starts no SDK', async () => {
    const { receiver, registered } = await setUp();
    const bare = await bareRun('esm-app.mjs');
    const consoleRun = await registered('esm-app.mjs', { OTEL_TRACES_EXPORTER: 'console' });
    expectOk(consoleRun);
    expect(consoleRun.stdout.startsWith(bare.stdout)).toBe(true);
    const printed = consoleRun.stdout.slice(bare.stdout.length);
    expect(printed.match(/name: 'chat gpt-4o-mini'/g)).toHaveLength(2);
    expect(printed.match(/name: 'chat claude-haiku-4-5'/g)).toHaveLength(1);

    const { sim: otherSim } = await setUp();
    const noneRun = await runFixture('esm-app.mjs', {
      nodeArgs: REGISTER,
      env: {
        ...simEnv(otherSim),
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_TRACES_EXPORTER: 'none',
      },
    });
    expectOk(noneRun);
    expect(noneRun.stdout).toBe(bare.stdout);
    expect(receiver.requests).toHaveLength(0);
  });

  it('sampling: MODELMAXX_SAMPLE_RATIO=0 records nothing and leaves the calls untouched', async () => {
    const { receiver, registered } = await setUp();
    const run = await registered('esm-app.mjs', { MODELMAXX_SAMPLE_RATIO: '0' });
    expectOk(run);
    expect(run.stdout).toBe((await bareRun('esm-app.mjs')).stdout);
    expect(receiver.spans()).toHaveLength(0);
  });

  it('an app without the LLM SDKs runs unchanged under register', async () => {
    const appDir = mkdtempSync(join(workDir, 'no-sdk-'));
    copyFileSync(join(FIXTURES_DIR, 'no-sdk-app.mjs'), join(appDir, 'app.mjs'));
    const register = pathToFileURL(
      join(TEST_DIR, 'node_modules/@modelmaxx/instrument/dist/register.js'),
    ).href;
    const run = await runFixture(join(appDir, 'app.mjs'), {
      nodeArgs: ['--import', register],
      cwd: appDir,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}` },
    });
    expectOk(run);
    expect(JSON.parse(run.stdout)).toEqual({ hello: 'world' });
  });

  it('MODELMAXX_PRICES overrides prices; a bad file falls back to the built-in catalog and the app works', async () => {
    const pricesFile = join(workDir, 'prices.json');
    writeFileSync(
      pricesFile,
      JSON.stringify({
        prices: [{ provider: 'openai', model: 'gpt-4o-mini', input: 100, output: 200 }],
      }),
    );
    const badFile = join(workDir, 'bad-prices.json');
    writeFileSync(badFile, '{ this is not json');

    for (const [file, expectedFile] of [
      [pricesFile, pricesFile],
      [badFile, undefined],
      [join(workDir, 'missing.json'), undefined],
    ] as const) {
      const { sim, receiver, registered } = await setUp();
      const run = await registered('esm-app.mjs', { MODELMAXX_PRICES: file });
      expectOk(run);
      const output = parseAppOutput(run.stdout);
      const chat = receiver
        .spans()
        .find((span) => span.attributes['gen_ai.response.id'] === output.chat.id);
      expect(chat?.attributes).toEqual(expectedChatAttributes(output, sim.port, expectedFile));
    }
    // The override really changed the price (a test that cannot pass on the built-in catalog alone).
    const output = {
      chat: {
        id: 'x',
        model: 'gpt-4o-mini',
        content: '',
        usage: { prompt_tokens: 10, completion_tokens: 10 },
      },
      stream: { content: '', chunks: 0, usage: null },
    };
    expect(expectedChatAttributes(output, 1, pricesFile)['gen_ai.usage.cost.amount']).toBe(0.003);
    expect(expectedChatAttributes(output, 1)['gen_ai.usage.cost.amount']).not.toBe(0.003);
  });
});
