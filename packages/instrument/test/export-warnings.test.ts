import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';

// Real processes: a plain app runs under `node --import @modelmaxx/instrument/register` (the built
// dist: needs `tsc -b`), calls the real openai SDK against llm-sim and exports with the real OTLP
// exporter, to a closed port, to a wrong path, or to a loopback receiver.

const PACKAGE_DIR = join(import.meta.dirname, '..');
const APP = join(import.meta.dirname, 'fixtures', 'export-app.mjs');
const REGISTER = ['--import', '@modelmaxx/instrument/register'];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (/^(OTEL_|MODELMAXX_|OPENAI_|NODE_OPTIONS$|VITEST|NODE_ENV$)/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

function runApp(mode: string, nodeArgs: string[], env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, [...nodeArgs, APP, mode], {
    cwd: PACKAGE_DIR,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`app ${mode} did not exit within 60 s\n${stdout}\n${stderr}`));
    }, 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface JsonSpan {
  name: string;
  status?: { code?: number; message?: string };
  attributes?: { key: string; value: Record<string, unknown> }[];
}

/** An OTLP/JSON receiver on /v1/traces; any other path is a 404, as on a real collector. */
async function startReceiver(): Promise<{
  url: string;
  paths: string[];
  spans: JsonSpan[];
  /** OTLP/protobuf bodies, kept as they came. */
  protobufBodies: Buffer[];
  close: () => Promise<void>;
}> {
  const paths: string[] = [];
  const spans: JsonSpan[] = [];
  const protobufBodies: Buffer[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      paths.push(request.url ?? '');
      if (request.method !== 'POST' || request.url !== '/v1/traces') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      if (request.headers['content-type'] === 'application/x-protobuf') {
        protobufBodies.push(Buffer.concat(chunks));
        response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: { scopeSpans: { spans: JsonSpan[] }[] }[];
      };
      for (const resource of body.resourceSpans) {
        for (const scope of resource.scopeSpans) spans.push(...scope.spans);
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    paths,
    spans,
    protobufBodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const attribute = (span: JsonSpan, key: string): unknown =>
  Object.values(span.attributes?.find((entry) => entry.key === key)?.value ?? {})[0];

let sim: LlmSim;

beforeAll(async () => {
  sim = await startLlmSim({ latencyScale: 0 });
});
afterAll(async () => {
  await sim?.close();
});

describe('export failures are named on stderr, once per kind', () => {
  it('collector down (connection refused): one line naming the endpoint, over several batches', async () => {
    const port = await closedPort();
    const run = await runApp('batches', REGISTER, {
      OPENAI_BASE_URL: sim.openaiBaseURL,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      MODELMAXX_FLUSH_TIMEOUT_MS: '500',
    });
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n')).toHaveLength(2);
    expect(run.stderr).toBe(
      `modelmaxx: spans not exported to http://127.0.0.1:${port}/v1/traces: connection refused (is the collector running? start it with \`npx modelmaxx serve\`)\n`,
    );
  }, 90_000);

  it('OTEL_EXPORTER_OTLP_ENDPOINT ending in /v1/traces (404): one line with the fix over two batches, no diag output', async () => {
    const receiver = await startReceiver();
    try {
      const run = await runApp('batches', REGISTER, {
        OPENAI_BASE_URL: sim.openaiBaseURL,
        OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/v1/traces`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      });
      expect(run.code).toBe(0);
      // Several batches were refused, and the user hears about it once.
      expect(receiver.paths).toEqual(['/v1/traces/v1/traces', '/v1/traces/v1/traces']);
      expect(run.stderr).toBe(
        `modelmaxx: spans not exported to ${receiver.url}/v1/traces/v1/traces: 404 Not Found (OTEL_EXPORTER_OTLP_ENDPOINT must be the collector's base URL, e.g. http://127.0.0.1:4318, without /v1/traces)\n`,
      );
    } finally {
      await receiver.close();
    }
  }, 90_000);

  it('nothing is printed when the spans arrive', async () => {
    const receiver = await startReceiver();
    try {
      const run = await runApp('batches', REGISTER, {
        OPENAI_BASE_URL: sim.openaiBaseURL,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      });
      expect(run.code).toBe(0);
      expect(run.stderr).toBe('');
      expect(receiver.spans).toHaveLength(2);
      expect(receiver.paths).toHaveLength(2);
    } finally {
      await receiver.close();
    }
  }, 90_000);
});

describe('an app that crashes still sends the spans that explain the crash', () => {
  for (const mode of ['throw', 'reject'] as const) {
    it(`${mode === 'throw' ? 'uncaught exception' : 'unhandled rejection'}: spans received, exit code and stderr as without the import`, async () => {
      const receiver = await startReceiver();
      try {
        const env = {
          OPENAI_BASE_URL: sim.openaiBaseURL,
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        };
        const bare = await runApp(mode, [], env);
        const run = await runApp(mode, REGISTER, env);
        expect(bare.code).toBe(1);
        expect(bare.stderr).toContain(
          mode === 'throw'
            ? 'the app crashed after its LLM call'
            : 'the LLM call failed with status 404',
        );
        expect(run.code).toBe(bare.code);
        expect(run.stderr).toBe(bare.stderr);
        const { id } = JSON.parse(run.stdout.trim()) as { id: string };
        const chats = receiver.spans.filter((span) => span.name.startsWith('chat '));
        const ok = chats.find((span) => attribute(span, 'gen_ai.response.id') === id);
        expect(ok?.status?.code ?? 0).toBe(0);
        if (mode === 'reject') {
          expect(chats).toHaveLength(2);
          const failed = chats.find((span) => span !== ok);
          expect(failed?.name).toBe('chat no-such-model');
          expect(failed?.status?.code).toBe(2); // ERROR
          expect(attribute(failed!, 'error.type')).toBe('NotFoundError');
        } else {
          expect(chats).toHaveLength(1);
        }
      } finally {
        await receiver.close();
      }
    }, 90_000);
  }
});

it('the crash flush sends OTLP/protobuf by default', async () => {
  const receiver = await startReceiver();
  try {
    const run = await runApp('throw', REGISTER, {
      OPENAI_BASE_URL: sim.openaiBaseURL,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    });
    expect(run.code).toBe(1);
    const { id } = JSON.parse(run.stdout.trim()) as { id: string };
    expect(receiver.protobufBodies).toHaveLength(1);
    // Strings travel as they are in protobuf: the span name and the response id are in the body.
    const body = receiver.protobufBodies[0]!.toString('latin1');
    expect(body).toContain('chat gpt-4o-mini');
    expect(body).toContain(id);
  } finally {
    await receiver.close();
  }
}, 90_000);
