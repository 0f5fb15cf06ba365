/**
 * Test helpers: a loopback OTLP/JSON span receiver, a slow SSE upstream that records aborts, a
 * recording proxy, an in-process gateway with both SDKs pointed at it, and llm-sim behind a
 * recording proxy as both providers' upstream (translation tests).
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { createRandom } from '@modelmaxx/router';
import type { PolicyInput } from '@modelmaxx/router';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { createGateway, resolveConfig } from '../src/index.js';
import type { Gateway, GatewayAccess, GatewayConfig, GatewayLogger } from '../src/index.js';
import { afterAll, beforeAll, beforeEach } from 'vitest';

type AnyValue = {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
};

export type Value = string | number | boolean | Value[] | null;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  attributes: Record<string, Value>;
  status: { code?: number; message?: string };
  service: string | undefined;
}

function valueOf(value: AnyValue | undefined): Value {
  if (value === undefined) return null;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(valueOf);
  return null;
}

function attributesOf(list: { key: string; value?: AnyValue }[] | undefined) {
  const attributes: Record<string, Value> = {};
  for (const { key, value } of list ?? []) attributes[key] = valueOf(value);
  return attributes;
}

/** Receives OTLP/JSON exports (what `@opentelemetry/exporter-trace-otlp-http` sends). */
export async function startSpanReceiver(): Promise<{
  url: string;
  spans: ReceivedSpan[];
  bodies: string[];
  close(): Promise<void>;
}> {
  const spans: ReceivedSpan[] = [];
  const bodies: string[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      bodies.push(text);
      const body = JSON.parse(text) as {
        resourceSpans?: {
          resource?: { attributes?: { key: string; value?: AnyValue }[] };
          scopeSpans?: {
            spans?: {
              traceId: string;
              spanId: string;
              parentSpanId?: string;
              name: string;
              attributes?: { key: string; value?: AnyValue }[];
              status?: { code?: number; message?: string };
            }[];
          }[];
        }[];
      };
      for (const resource of body.resourceSpans ?? []) {
        const service = attributesOf(resource.resource?.attributes)['service.name'];
        for (const scope of resource.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            spans.push({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? '',
              name: span.name,
              attributes: attributesOf(span.attributes),
              status: span.status ?? {},
              service: typeof service === 'string' ? service : undefined,
            });
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    });
  });
  await listen(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    spans,
    bodies,
    close: () => close(server),
  };
}

export interface SlowUpstream {
  baseURL: string;
  /** Requests seen: headers, and whether the connection closed before the answer ended. */
  requests: { headers: IncomingHttpHeaders; aborted: boolean; finished: boolean }[];
  close(): Promise<void>;
}

/**
 * An OpenAI-compatible upstream that streams a chat answer slowly (one chunk every `intervalMs`,
 * `chunks` chunks), or answers a non-streamed request after `intervalMs` (or the request's
 * `x-slow-ms` header, which the gateway forwards); records whether the
 * caller went away before the end.
 */
export async function startSlowUpstream(intervalMs = 100, chunks = 50): Promise<SlowUpstream> {
  const requests: SlowUpstream['requests'] = [];
  const server = createServer((request, response) => {
    const entry = { headers: request.headers, aborted: false, finished: false };
    requests.push(entry);
    const parts: Buffer[] = [];
    request.on('data', (chunk: Buffer) => parts.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as {
        stream?: boolean;
        model: string;
      };
      const timers: NodeJS.Timeout[] = [];
      response.on('close', () => {
        for (const timer of timers) clearTimeout(timer);
        if (!response.writableFinished) entry.aborted = true;
      });
      const chunk = (content: string, finish: string | null) =>
        `data: ${JSON.stringify({
          id: 'chatcmpl-slow',
          object: 'chat.completion.chunk',
          created: 1,
          model: body.model,
          choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: finish }],
        })}\n\n`;
      if (body.stream !== true) {
        const hold = Number(request.headers['x-slow-ms'] ?? intervalMs);
        timers.push(
          setTimeout(() => {
            response.writeHead(200, { 'content-type': 'application/json' });
            response.end(
              JSON.stringify({
                id: 'chatcmpl-slow',
                object: 'chat.completion',
                created: 1,
                model: body.model,
                choices: [
                  {
                    index: 0,
                    message: { role: 'assistant', content: 'slow' },
                    finish_reason: 'stop',
                  },
                ],
                usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
              }),
            );
            entry.finished = true;
          }, hold),
        );
        return;
      }
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let index = 0; index < chunks; index += 1) {
        timers.push(
          setTimeout(() => {
            response.write(chunk(`w${index} `, null));
            if (index === chunks - 1) {
              response.write(chunk('', 'stop'));
              response.end('data: [DONE]\n\n');
              entry.finished = true;
            }
          }, index * intervalMs),
        );
      }
    });
  });
  await listen(server);
  return {
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    requests,
    close: () => close(server),
  };
}

/** The text of the one chunk a `startHalfAnswer` stream sends. */
export const HALF_TEXT = 'half an answer, then';

export interface HalfAnswer {
  baseURL: string;
  /** Requests seen: the head sent, and whether the caller went away before the body's end. */
  requests: { sentHead: boolean; aborted: boolean }[];
  /** The bytes of each request's body, in order. */
  bodyBytes: number[];
  close(): Promise<void>;
}

/**
 * An OpenAI-compatible upstream that answers a chat completion's head and the first half of its
 * JSON body (no `content-length`, no usage yet), or of a stream its first chunk (content
 * `HALF_TEXT`), then holds the rest until the caller goes away; with the request header
 * `x-half: drop` (the gateway forwards `x-*`) it drops the connection 50 ms after that half
 * instead, with `x-half: drop-head` as soon as the request came (no head); with `x-half: head` it
 * sends the head only (no body byte) and holds; with `x-half: mute` it sends nothing. A call
 * whose headers the gateway does not forward (a shadow or judge call) names the mode in its body
 * instead: `[half:drop]` in a message.
 */
export async function startHalfAnswer(): Promise<HalfAnswer> {
  const requests: HalfAnswer['requests'] = [];
  const bodyBytes: number[] = [];
  const server = createServer((request, response) => {
    const entry = { sentHead: false, aborted: false };
    requests.push(entry);
    const parts: Buffer[] = [];
    request.on('data', (chunk: Buffer) => parts.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(parts);
      bodyBytes.push(raw.length);
      const body = JSON.parse(raw.toString('utf8')) as { model: string; stream?: boolean };
      const mode = request.headers['x-half'] ?? /\[half:([a-z-]+)\]/.exec(raw.toString())?.[1];
      if (mode === 'mute') return;
      if (mode === 'drop-head') {
        response.socket?.destroy();
        return;
      }
      if (mode === 'head') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.flushHeaders();
        entry.sentHead = true;
        return;
      }
      if (body.stream === true) {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        const delta = { role: 'assistant', content: HALF_TEXT };
        response.write(
          `data: ${JSON.stringify({
            id: 'chatcmpl-half',
            object: 'chat.completion.chunk',
            created: 1,
            model: body.model,
            choices: [{ index: 0, delta, logprobs: null, finish_reason: null }],
          })}\n\n`,
        );
      } else {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.write('{"id":"chatcmpl-half","object":"chat.completion","choices":[{"index":0,');
      }
      entry.sentHead = true;
      if (mode === 'drop') setTimeout(() => response.socket?.destroy(), 50);
    });
    response.on('close', () => {
      if (!response.writableFinished) entry.aborted = true;
    });
  });
  await listen(server);
  return {
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    requests,
    bodyBytes,
    close: () => close(server),
  };
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Polls until `check` returns true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface RecordingProxy {
  /** The proxy's origin (append the upstream's base path). */
  origin: string;
  /** Requests forwarded: path and parsed JSON body. */
  requests: { path: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

/** A pass-through HTTP proxy in front of `target` (an origin) that records each request body. */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const requests: RecordingProxy['requests'] = [];
  const server = createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on('data', (chunk: Buffer) => parts.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(parts);
      requests.push({
        path: request.url ?? '',
        body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>,
      });
      const headers = { ...request.headers };
      delete headers.host;
      fetch(`${target}${request.url ?? ''}`, {
        method: 'POST',
        headers: headers as Record<string, string>,
        body: raw,
      })
        .then(async (answer) => {
          const out: Record<string, string> = {};
          answer.headers.forEach((value, name) => {
            if (
              name !== 'content-length' &&
              name !== 'content-encoding' &&
              name !== 'transfer-encoding'
            )
              out[name] = value;
          });
          response.writeHead(answer.status, out);
          for await (const chunk of answer.body ?? []) response.write(chunk);
          response.end();
        })
        .catch(() => response.destroy());
    });
  });
  await listen(server);
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => close(server),
  };
}

export interface SdkGateway {
  readonly gateway: Gateway;
  /** The gateway's origin. */
  readonly url: string;
  readonly openai: OpenAI;
  readonly anthropic: Anthropic;
  readonly receiver: Awaited<ReturnType<typeof startSpanReceiver>>;
  /** The attempts' (`chat …`) spans, once at least `count` came. */
  chatSpans(count: number): Promise<ReceivedSpan[]>;
  /** Between tests: the previous test's late spans flushed and forgotten. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** An in-process gateway on loopback exporting spans over OTLP, with both SDKs (no retries). */
export async function startSdkGateway(
  config: GatewayConfig,
  options: {
    access?: GatewayAccess;
    seed?: number;
    now?: () => number;
    logger?: GatewayLogger;
  } = {},
): Promise<SdkGateway> {
  const receiver = await startSpanReceiver();
  const gateway = createGateway({
    config,
    ...(options.access === undefined ? {} : { access: options.access }),
    spanExporter: new OTLPTraceExporter({ url: receiver.url }),
    random: createRandom(options.seed ?? 1),
    ...(options.now === undefined ? {} : { now: options.now }),
    logger: options.logger ?? {
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
    },
  });
  const { url } = await gateway.listen(0, '127.0.0.1');
  const attempts = () => receiver.spans.filter((span) => span.name.startsWith('chat'));
  return {
    gateway,
    url,
    receiver,
    openai: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 }),
    anthropic: new Anthropic({ baseURL: url, apiKey: 'unused', maxRetries: 0 }),
    async chatSpans(count) {
      await waitFor(() => {
        void gateway.forceFlush();
        return attempts().length >= count;
      }, 15_000);
      return attempts();
    },
    async reset() {
      // A stream's span ends after the client read its last chunk: let it in first.
      await new Promise((resolve) => setTimeout(resolve, 100));
      await gateway.forceFlush();
      receiver.spans.length = 0;
    },
    async close() {
      await gateway.close();
      await receiver.close();
    },
  };
}

/** `resolveConfig` options with llm-sim as the `openai` and `anthropic` upstreams. */
export const simUpstreams = (sim: LlmSim) => ({
  upstreamFlags: [`openai=${sim.openaiBaseURL}`, `anthropic=${sim.anthropicBaseURL}`],
  env: {},
});

/** A policy over one OpenAI and one Anthropic model (in this order), for translation tests. */
export function crossPolicy(name: string, models: readonly [string, string]): PolicyInput {
  return {
    name,
    exploration: 0,
    candidates: models.map((model) => ({
      model,
      client: model.startsWith('claude') ? 'anthropic' : 'openai',
    })),
    fallback: { maxAttempts: 2, cooldownMs: 50, timeoutMs: 10_000 },
  };
}

export interface ProxiedSim {
  readonly sim: LlmSim;
  readonly proxy: RecordingProxy;
  readonly sdk: SdkGateway;
  close(): Promise<void>;
}

/**
 * llm-sim (seeded `simSeed`) behind a recording proxy as the `openai` and `anthropic` upstreams
 * of an in-process gateway (random source seeded `gatewaySeed`) with these policies; or, given
 * `upstreams` (the config's, from the proxy's origin), as those.
 */
export async function startProxiedSim(
  simSeed: number,
  gatewaySeed: number,
  policies: PolicyInput[],
  upstreams?: (origin: string) => Record<string, unknown>,
): Promise<ProxiedSim> {
  const sim = await startLlmSim({ seed: simSeed });
  const proxy = await startRecordingProxy(new URL(sim.anthropicBaseURL).origin);
  const config =
    upstreams === undefined
      ? resolveConfig(
          { policies },
          { upstreamFlags: [`openai=${proxy.origin}/v1`, `anthropic=${proxy.origin}`], env: {} },
        )
      : resolveConfig({ policies, upstreams: upstreams(proxy.origin) }, { env: {} });
  const sdk = await startSdkGateway(config, { seed: gatewaySeed });
  return {
    sim,
    proxy,
    sdk,
    async close() {
      await sdk.close();
      await proxy.close();
      await sim.close();
    },
  };
}

/**
 * The upstreams of the translation tests, all on one proxy `origin`: `local` (chat-only, the
 * `llama-*` models), `native` (the same, declared as serving the Responses API: forwarded as
 * is) and `anthropic`.
 */
export function chatNativeAnthropicUpstreams(origin: string): Record<string, unknown> {
  return {
    local: { kind: 'openai-compatible', baseURL: `${origin}/v1`, models: ['llama-*'] },
    native: {
      kind: 'openai-compatible',
      baseURL: `${origin}/v1`,
      models: [],
      responsesApi: 'native',
    },
    anthropic: { kind: 'anthropic', baseURL: origin },
  };
}

/**
 * A `startProxiedSim` rig for a test file: started before its tests, closed after them, the
 * recorded requests and late spans cleared before each; the returned function gives it.
 */
export function useProxiedSim(start: () => Promise<ProxiedSim>): () => ProxiedSim {
  let rig: ProxiedSim | undefined;
  beforeAll(async () => {
    rig = await start();
  });
  afterAll(async () => {
    await rig?.close();
  });
  beforeEach(async () => {
    await rig!.sdk.reset();
    rig!.proxy.requests.length = 0;
  });
  return () => rig!;
}

/** A loopback port nothing listens on (taken, then closed). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
