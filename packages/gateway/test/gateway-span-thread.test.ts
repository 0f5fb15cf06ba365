/**
 * Spans exported from the gateway's span export thread (`spanExporter: { module, options }`):
 * the same OTLP as with the exporter on the main thread (ids and times blanked), nothing lost
 * at close without a flush, and an exporter that cannot be built costs spans, never requests.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Attributes } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { createRandom } from '@modelmaxx/router';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, resolveConfig } from '../src/index.js';
import type { Gateway, GatewayConfig, GatewayLogger, GatewayOptions } from '../src/index.js';
import { WorkerSpanProcessor } from '../src/span-thread.js';
import { createSpanRecorder } from '../src/spans.js';
import { startSpanReceiver, waitFor } from './helpers.js';

type Receiver = Awaited<ReturnType<typeof startSpanReceiver>>;

const OTLP_HTTP = createRequire(import.meta.url).resolve('@opentelemetry/exporter-trace-otlp-http');
const APP_PARENT = '00f067aa0ba902b7';
const silent: GatewayLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

let sim: LlmSim;
let config: GatewayConfig;
const closing: (() => Promise<void>)[] = [];

beforeAll(async () => {
  sim = await startLlmSim({ seed: 3 });
  // A policy over both providers.
  const candidates = ['gpt-4o-mini', 'claude-haiku-4-5'].map((model) =>
    model.startsWith('claude') ? { model, provider: 'anthropic', client: 'anthropic' } : { model },
  );
  const upstreamFlags = [`openai=${sim.openaiBaseURL}`, `anthropic=${sim.anthropicBaseURL}`];
  config = resolveConfig(
    { policies: [{ name: 'orders', candidates, exploration: 0 }] },
    { upstreamFlags },
  );
});

afterAll(async () => {
  for (const close of closing.reverse()) await close();
  await sim?.close();
});

async function start(
  spanExporter: GatewayOptions['spanExporter'],
  logger = silent,
): Promise<{ gateway: Gateway; url: string }> {
  const gateway = createGateway({
    config,
    ...(spanExporter === undefined ? {} : { spanExporter }),
    serviceName: 'span-thread-test',
    random: createRandom(5),
    logger,
  });
  const { url } = await gateway.listen(0, '127.0.0.1');
  closing.push(() => gateway.close());
  return { gateway, url };
}

async function receiver(): Promise<Receiver> {
  const started = await startSpanReceiver();
  closing.push(() => started.close());
  return started;
}

const calls: { path: string; body: unknown; headers?: Record<string, string> }[] = [
  {
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] },
  },
  {
    path: '/v1/chat/completions',
    body: {
      model: 'gpt-4o',
      stream: true,
      max_tokens: 9,
      messages: [{ role: 'user', content: 'Hi' }],
    },
    headers: {
      traceparent: `00-4bf92f3577b34da6a3ce929d0e0e4736-${APP_PARENT}-01`,
      tracestate: 'vendor=abc,other=1',
    },
  },
  {
    path: '/v1/chat/completions',
    body: { model: 'route:orders', messages: [{ role: 'user', content: 'Where is my order?' }] },
    headers: { 'x-modelmaxx-feature': 'orders', 'x-modelmaxx-user': 'u-1' },
  },
  {
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] },
    // Not sampled by the app: nothing recorded.
    headers: { traceparent: `00-4bf92f3577b34da6a3ce929d0e0e4737-${APP_PARENT}-00` },
  },
  {
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi [sim:status=500]' }] },
  },
  {
    path: '/v1/messages',
    body: { model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'Hi' }] },
  },
];

async function send(url: string): Promise<number[]> {
  const statuses: number[] = [];
  for (const call of calls) {
    const response = await fetch(`${url}${call.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...call.headers },
      body: JSON.stringify(call.body),
    });
    await response.text();
    statuses.push(response.status);
  }
  return statuses;
}

/** The exported OTLP/JSON with what differs from run to run blanked, in a stable order. */
function normalized(bodies: readonly string[]): string[] {
  const out: string[] = [];
  type Json = Record<string, unknown>;
  for (const body of bodies) {
    for (const resourceSpans of (JSON.parse(body) as Json)['resourceSpans'] as Json[]) {
      for (const scopeSpans of resourceSpans['scopeSpans'] as Json[]) {
        for (const span of scopeSpans['spans'] as Json[]) {
          const parent = span['parentSpanId'];
          const blanked = {
            ...span,
            traceId: '',
            spanId: '',
            parentSpanId: parent === APP_PARENT ? 'app' : parent ? 'local' : '',
            startTimeUnixNano: '',
            endTimeUnixNano: '',
            events: (span['events'] as Json[]).map((event) => ({ ...event, timeUnixNano: '' })),
            attributes: (span['attributes'] as { key: string }[]).filter(
              ({ key }) =>
                key !== 'gen_ai.response.time_to_first_chunk' && key !== 'gen_ai.response.id',
            ),
          };
          const { schemaUrl } = resourceSpans;
          // Each recorder has its own `service.instance.id`: both carry one, its value blanked.
          const given = resourceSpans['resource'] as { attributes: { key: string }[] };
          const resource = {
            ...given,
            attributes: given.attributes.map((attribute) =>
              attribute.key === 'service.instance.id' ? { key: attribute.key } : attribute,
            ),
          };
          const { scope } = scopeSpans;
          out.push(JSON.stringify({ resource, schemaUrl, scope, span: blanked }));
        }
      }
    }
  }
  return out.sort();
}

describe('span export thread', () => {
  it('exports the same spans as the exporter on the main thread', async () => {
    const [onMain, inThread] = [await receiver(), await receiver()];
    const main = await start(new OTLPTraceExporter({ url: onMain.url }));
    const thread = await start({ module: OTLP_HTTP, options: { url: inThread.url } });
    const statuses = await send(main.url);
    expect(await send(thread.url)).toEqual(statuses);
    expect(statuses).toEqual([200, 200, 200, 200, 500, 200]);
    // plain, streamed, route + attempt, failed, messages; the unsampled one not at all.
    await waitFor(() => {
      void main.gateway.forceFlush();
      void thread.gateway.forceFlush();
      return onMain.spans.length >= 6 && inThread.spans.length >= 6;
    }, 30_000);
    const expected = normalized(onMain.bodies);
    expect(expected).toHaveLength(6);
    expect(expected.join('\n')).toContain('"parentSpanId":"app"');
    expect(expected.join('\n')).toContain('vendor=abc,other=1');
    expect(normalized(inThread.bodies)).toEqual(expected);
  }, 60_000);

  it('carries what JSON cannot (NaN, Infinity, undefined in arrays), events and links', async () => {
    const [onMain, inThread] = [await receiver(), await receiver()];
    const recorders = [
      createSpanRecorder(new OTLPTraceExporter({ url: onMain.url }), 'odd', () => undefined),
      createSpanRecorder(
        { module: OTLP_HTTP, options: { url: inThread.url } },
        'odd',
        () => undefined,
      ),
    ];
    const link = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: APP_PARENT, traceFlags: 1 };
    for (const recorder of recorders) {
      const attributes = { nan: NaN, inf: -Infinity, holes: ['a', undefined, null], n: 1 };
      const span = recorder.startSpan(
        'odd',
        SpanKind.INTERNAL,
        attributes as Attributes,
        ROOT_CONTEXT,
      );
      span.addEvent('event', { at: 2, text: 'null' });
      span.addLink({ context: { ...link, isRemote: true }, attributes: { weight: 0.5 } });
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'odd' });
      span.end();
      const plain = recorder.startSpan('plain', SpanKind.SERVER, { text: 'ok' }, ROOT_CONTEXT);
      plain.end();
      await recorder.processor.shutdown();
    }
    const expected = normalized(onMain.bodies);
    expect(expected).toHaveLength(2);
    expect(expected.join('\n')).toContain('"key":"nan"');
    expect(normalized(inThread.bodies)).toEqual(expected);
  }, 60_000);

  it('loses nothing at close without a flush', async () => {
    const spans = await receiver();
    const { gateway, url } = await start({ module: OTLP_HTTP, options: { url: spans.url } });
    await send(url);
    await gateway.close();
    expect(spans.spans).toHaveLength(6);
  }, 60_000);

  it('an exporter that cannot be built costs spans, never requests', async () => {
    const errors: string[] = [];
    const logger = { ...silent, error: (message: string) => void errors.push(message) };
    const missing = { module: '/nonexistent/exporter.js' };
    const { gateway, url } = await start(missing, logger);
    expect(await send(url)).toEqual([200, 200, 200, 200, 500, 200]);
    await waitFor(() => errors.length > 0, 30_000);
    expect(await send(url)).toEqual([200, 200, 200, 200, 500, 200]);
    await gateway.forceFlush();
    await gateway.close();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('span export thread failed');
  }, 60_000);
});

describe('span export thread that falls behind', () => {
  const BLOCKING = new URL('./fixtures/blocking-exporter.mjs', import.meta.url).pathname;

  function plainSpan(index: number): ReadableSpan {
    const context = {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: APP_PARENT,
      traceFlags: 1,
    };
    return {
      name: `span ${index}`,
      kind: SpanKind.CLIENT,
      spanContext: () => context,
      startTime: [1, 0],
      endTime: [1, 5],
      duration: [0, 5],
      status: { code: SpanStatusCode.UNSET },
      attributes: { index },
      links: [],
      events: [],
      ended: true,
      resource: resourceFromAttributes({}),
      instrumentationScope: { name: 'test' },
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
  }

  it('drops spans past the bound while the thread is held, says so, and goes on', async () => {
    const countFile = join(mkdtempSync(join(tmpdir(), 'span-thread-')), 'counts');
    const messages: string[] = [];
    const processor = new WorkerSpanProcessor({
      exporter: {
        module: BLOCKING,
        exportName: 'BlockingExporter',
        options: { blockMs: 1500, countFile },
      },
      serviceName: 'behind',
      scopeName: 'test',
      onError: (message) => void messages.push(message),
      maxQueuedSpans: 64,
    });
    // 32 spans reach the thread; its first export (after 100 ms) then holds it for 1.5 s.
    for (let index = 0; index < 32; index++) processor.onEnd(plainSpan(index));
    await new Promise((resolve) => setTimeout(resolve, 400));
    // Meanwhile 500 more end: at most 64 wait for the held thread, the rest are dropped.
    for (let index = 32; index < 532; index++) processor.onEnd(plainSpan(index));
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('span export thread is behind');
    await waitFor(() => messages.length === 2, 30_000);
    expect(messages[1]).toMatch(/caught up; 4\d\d spans were dropped/);
    // Once caught up it takes spans again.
    for (let index = 532; index < 542; index++) processor.onEnd(plainSpan(index));
    await processor.shutdown();
    const exported = readFileSync(countFile, 'utf8')
      .trim()
      .split('\n')
      .reduce((sum, line) => sum + Number(line), 0);
    const dropped = Number(/caught up; (\d+) spans/.exec(messages[1]!)![1]);
    expect(exported).toBe(542 - dropped);
    expect(exported).toBeLessThanOrEqual(32 + 64 + 10);
  }, 60_000);
});
