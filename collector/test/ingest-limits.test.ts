/**
 * Ingest limits (issue 10, findings 2, 4 and 7): a few KB of gzip cannot stall
 * the collector, the largest allowed request decodes without holding up other
 * requests, slow senders hold no export slot, and over-long names and values are
 * cut (with a marker, counted) the same way from protobuf and from JSON.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter as OTLPProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MalformedPayloadError, PayloadTooLargeError } from '../src/errors.js';
import {
  decodeTraceRequestJson,
  decodeTraceRequestProtobuf,
  loadConfig,
  startCollector,
  type RunningCollector,
} from '../src/index.js';
import { DecodePool } from '../src/otlp/decode-pool.js';
import { decodeRequest, loadJsonDecoder } from '../src/otlp/decode-request.js';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from '../src/otlp/to-span-rows.js';
import { recordSpans, toJson, toProtobuf } from './support/otlp-fixtures.js';
import { SOURCE_HOOKS_ARGS } from './support/source-child.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Varint bytes of a protobuf length. */
function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

const field = (tag: number, content: Buffer) =>
  Buffer.concat([Buffer.from([tag]), varint(content.length), content]);

/** An `ExportTraceServiceRequest` of one resource and one scope holding `count` empty spans, then `tail`. */
function emptySpansProtobuf(count: number, tail = Buffer.alloc(0)): Buffer {
  const spans = Buffer.alloc(count * 2);
  for (let index = 0; index < count; index++) spans[index * 2] = 0x12; // ScopeSpans.spans, length 0
  return field(0x0a, field(0x12, Buffer.concat([spans, tail])));
}

function emptySpansJson(count: number): string {
  return `{"resourceSpans":[{"scopeSpans":[{"spans":[${Array(count).fill('{}').join(',')}]}]}]}`;
}

async function sdkSpans(
  resource: Record<string, string>,
  build: (tracer: ReturnType<TracerProvider['getTracer']>) => void,
  scope = '@modelmaxx/instrument',
): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes(resource),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  build(provider.getTracer(scope, '0.1.0'));
  await provider.forceFlush();
  return exporter.getFinishedSpans();
}

describe('decoder limits', () => {
  it('refuses a protobuf request past the span limit as soon as it counts the span, before reading on', () => {
    const limits = { ...DEFAULT_DECODE_LIMITS, maxSpans: 1000 };
    // 1000 spans decode (each rejected: no ids); 1001 are refused. The bytes after the
    // 1001st span are broken: a decoder that read on would call the request malformed.
    expect(decodeTraceRequestProtobuf(emptySpansProtobuf(1000), limits).rejectedSpans).toBe(1000);
    const broken = Buffer.from([0x12, 0x05, 0x0a]); // a span whose length runs past the end
    const decode = () => decodeTraceRequestProtobuf(emptySpansProtobuf(1001, broken), limits);
    expect(decode).toThrow(PayloadTooLargeError);
    expect(decode).toThrow(/more than 1000 spans/);
  });

  it('refuses a JSON request past the span limit before checking any span', () => {
    const limits = { ...DEFAULT_DECODE_LIMITS, maxSpans: 1000 };
    expect(decodeTraceRequestJson(Buffer.from(emptySpansJson(1000)), limits).rejectedSpans).toBe(
      1000,
    );
    expect(() => decodeTraceRequestJson(Buffer.from(emptySpansJson(1001)), limits)).toThrow(
      /more than 1000 spans/,
    );
  });

  it('cuts names, keys and values on a UTF-8 character boundary with a marker, the same from protobuf and JSON', async () => {
    const limits: DecodeLimits = {
      maxSpans: 10,
      maxNameBytes: 24,
      maxValueBytes: 32,
      maxContentBytes: 64,
    };
    // 'a' then two-byte characters: byte 24 is the second byte of a character, so the
    // cut steps back to 23 bytes ('a' + 11 × 'é').
    const twoByte = 'a' + 'é'.repeat(20); // 41 bytes
    const spans = await sdkSpans(
      { 'service.name': twoByte, 'host.name': 'h'.repeat(40) },
      (tracer) => {
        const span = tracer.startSpan(twoByte, {
          kind: SpanKind.CLIENT,
          attributes: {
            short: 'fits',
            ['k'.repeat(30)]: 'long key',
            long: '日本語'.repeat(5), // 45 bytes, three-byte characters
            'gen_ai.input.messages': 'm'.repeat(50), // content: 64 bytes allowed
            'gen_ai.output.messages': 'o'.repeat(70),
            count: 12345,
          },
        });
        span.addEvent(twoByte, { note: 'n'.repeat(33) });
        span.setStatus({ code: 2, message: 's'.repeat(40) });
        span.end();
      },
      'scope-' + 'x'.repeat(20),
    );
    const fromProtobuf = decodeTraceRequestProtobuf(
      ProtobufTraceSerializer.serializeRequest(spans)!,
      limits,
    );
    const fromJson = decodeTraceRequestJson(JsonTraceSerializer.serializeRequest(spans)!, limits);
    expect(fromProtobuf.rows).toHaveLength(1);
    expect(fromJson.rows).toEqual(fromProtobuf.rows);
    const row = fromProtobuf.rows[0]!;
    const cutName = 'a' + 'é'.repeat(11) + '…[truncated 18 bytes]';
    expect(row.ServiceName).toBe(cutName);
    expect(row.ResourceAttributes['service.name']).toBe(cutName);
    // Other resource attributes are values (32 bytes).
    expect(row.ResourceAttributes['host.name']).toBe('h'.repeat(32) + '…[truncated 8 bytes]');
    expect(row.SpanName).toBe(cutName);
    expect(row.ScopeName).toBe('scope-' + 'x'.repeat(18) + '…[truncated 2 bytes]');
    expect(row.Events.Name).toEqual([cutName]);
    expect(row.Events.Attributes[0]).toEqual({ note: 'n'.repeat(32) + '…[truncated 1 bytes]' });
    expect(row.StatusMessage).toBe('s'.repeat(32) + '…[truncated 8 bytes]');
    expect(row.SpanAttributes).toEqual({
      short: 'fits',
      ['k'.repeat(24) + '…[truncated 6 bytes]']: 'long key',
      long: '日本語'.repeat(3) + '日…[truncated 15 bytes]',
      'gen_ai.input.messages': 'm'.repeat(50),
      'gen_ai.output.messages': 'o'.repeat(64) + '…[truncated 6 bytes]',
      count: '12345',
    });
    // service.name (the column is the resource attribute's value), host.name, span name,
    // scope name, event name, event attribute, status message, a key, two values.
    expect(fromProtobuf.truncatedValues).toBe(10);
    expect(fromJson.truncatedValues).toBe(10);
  });
});

describe('configuration', () => {
  it('reads the ingest limits from the environment and checks them together', () => {
    const config = loadConfig({
      env: {
        MODELMAXX_MAX_SPANS_PER_REQUEST: '1000',
        MODELMAXX_MAX_NAME_BYTES: '256',
        MODELMAXX_MAX_ATTRIBUTE_VALUE_BYTES: '4096',
        MODELMAXX_MAX_CONTENT_VALUE_BYTES: '65536',
        MODELMAXX_INGEST_BODY_TIMEOUT_SECONDS: '30',
        MODELMAXX_MAX_BUFFERED_BODY_BYTES: '33554432',
        MODELMAXX_DECODE_THREADS: '0',
      },
    });
    expect(config).toMatchObject({
      maxSpansPerRequest: 1000,
      maxNameBytes: 256,
      maxAttributeValueBytes: 4096,
      maxContentValueBytes: 65536,
      ingestBodyTimeoutSeconds: 30,
      maxBufferedBodyBytes: 33554432,
      decodeThreads: 0,
    });
    expect(() =>
      loadConfig({ env: { MODELMAXX_MAX_BUFFERED_BODY_BYTES: String(1024 * 1024) } }),
    ).toThrow(/maxBufferedBodyBytes: must be at least maxBodyBytes/);
  });
});

describe('decode threads', () => {
  it('decode exactly as the calling thread does, and pass decoder errors on as their classes', async () => {
    const pool = new DecodePool({ threads: 1 });
    try {
      await loadJsonDecoder();
      const spans = await recordSpans();
      for (const [encoding, bytes] of [
        ['protobuf', toProtobuf(spans)],
        ['json', toJson(spans)],
      ] as const) {
        const here = decodeRequest(encoding, bytes, DEFAULT_DECODE_LIMITS);
        // The body is transferred to the thread: hand it a copy.
        const there = await pool.decode(encoding, Buffer.from(bytes), DEFAULT_DECODE_LIMITS);
        expect(there.spans).toBe(spans.length);
        expect(there.block.equals(here.block)).toBe(true);
      }
      await expect(
        pool.decode('protobuf', Buffer.from([0x0a, 0x05]), DEFAULT_DECODE_LIMITS),
      ).rejects.toThrow(MalformedPayloadError);
      await expect(
        pool.decode('json', Buffer.from(emptySpansJson(11)), {
          ...DEFAULT_DECODE_LIMITS,
          maxSpans: 10,
        }),
      ).rejects.toThrow(PayloadTooLargeError);
      // The thread is still there for the next request.
      const after = await pool.decode('json', Buffer.from(toJson(spans)), DEFAULT_DECODE_LIMITS);
      expect(after.spans).toBe(spans.length);
    } finally {
      await pool.close();
    }
  });

  it('keep a process that waits for a decode alive until it is done', async () => {
    // Idle threads do not hold a process open; one starting for a waiting request must.
    // A plain node process (nothing else keeps it up) decodes and prints the result.
    const script = `
      import { DecodePool } from ${JSON.stringify(new URL('../src/otlp/decode-pool.ts', import.meta.url).href)};
      import { DEFAULT_DECODE_LIMITS } from ${JSON.stringify(new URL('../src/otlp/to-span-rows.ts', import.meta.url).href)};
      const pool = new DecodePool({ threads: 1 });
      const decoded = await pool.decode('json', Buffer.from('{"resourceSpans":[]}'), DEFAULT_DECODE_LIMITS);
      console.log('decoded', decoded.spans, decoded.rejectedSpans);`;
    const scriptDir = await mkdtemp(join(tmpdir(), 'mm-decode-pool-'));
    const scriptFile = join(scriptDir, 'decode.mjs');
    await writeFile(scriptFile, script);
    const child = spawn(process.execPath, [...SOURCE_HOOKS_ARGS, scriptFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    await rm(scriptDir, { recursive: true, force: true });
    expect(output).toContain('decoded 0 0');
    expect(code).toBe(0);
  });
});

/**
 * Runs `work` while watching this process's event loop (the collector runs in it):
 * the longest it was held up (`monitorEventLoopDelay`, ms), the slowest answer to
 * `GET /healthz` asked every 20 ms meanwhile, and how long `work` took (ms).
 */
async function whileWatching<T>(
  url: string,
  work: () => Promise<T>,
): Promise<{ result: T; stallMs: number; slowestHealthzMs: number; ms: number }> {
  let done = false;
  let slowestHealthzMs = 0;
  const delay = monitorEventLoopDelay({ resolution: 10 });
  const probe = (async () => {
    while (!done) {
      const started = performance.now();
      await (await fetch(`${url}/healthz`)).text();
      slowestHealthzMs = Math.max(slowestHealthzMs, performance.now() - started);
      await sleep(20);
    }
  })();
  delay.enable();
  const started = performance.now();
  try {
    const result = await work();
    const ms = performance.now() - started;
    delay.disable();
    return { result, stallMs: delay.max / 1e6, slowestHealthzMs, ms };
  } finally {
    done = true;
    await probe;
  }
}

describe('a running collector', () => {
  let collector: RunningCollector;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mm-ingest-limits-'));
    collector = await startCollector({
      config: { port: 0, dataDir, ingestBodyTimeoutSeconds: 4 },
    });
  });

  afterAll(async () => {
    await collector?.close();
    await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  const metrics = async () => (await fetch(`${collector.url}/metrics`)).text();

  it(
    'refuses gzip bombs of empty spans with 413 and keeps answering /healthz',
    { timeout: 180_000 },
    async () => {
      // Before: 1,000,000 empty JSON spans (2,982 bytes of gzip) blocked the event loop
      // 17-47 s; 8.3 M empty protobuf spans (16 KB) 6.6-7.8 s.
      const bombs = [
        { type: 'application/json', body: gzipSync(emptySpansJson(1_000_000)) },
        { type: 'application/x-protobuf', body: gzipSync(emptySpansProtobuf(8_300_000)) },
      ];
      expect(bombs[0]!.body.length).toBeLessThan(4_000);
      expect(bombs[1]!.body.length).toBeLessThan(20_000);
      for (const { type, body } of bombs) {
        const { result, stallMs, slowestHealthzMs, ms } = await whileWatching(
          collector.url,
          async () => {
            const response = await fetch(`${collector.url}/v1/traces`, {
              method: 'POST',
              headers: { 'content-type': type, 'content-encoding': 'gzip' },
              body,
            });
            return { status: response.status, text: await response.text() };
          },
        );
        console.log(
          `${type} bomb of ${body.length} bytes: ${result.status} in ${ms.toFixed(0)} ms; event loop held up at most ${stallMs.toFixed(0)} ms, slowest /healthz ${slowestHealthzMs.toFixed(0)} ms`,
        );
        expect(result.status).toBe(413);
        expect(result.text).toContain(`more than ${DEFAULT_DECODE_LIMITS.maxSpans} spans`);
        // Tens of ms on an idle machine; generous for a loaded one (before: 7 to 47 s).
        expect(stallMs).toBeLessThan(1_000);
        expect(slowestHealthzMs).toBeLessThan(1_000);
      }
      expect(await metrics()).toContain(
        'modelmaxx_ingest_requests_refused_total{reason="too_large"} 2\n',
      );
    },
  );

  it(
    'answers /healthz while the largest allowed JSON request decodes',
    { timeout: 180_000 },
    async () => {
      // As many valid spans as fit in the body limit, each with a few attributes: JSON.parse
      // and the checks of each span take seconds, on a decode thread.
      const maxBytes = collector.config.maxBodyBytes;
      const start = BigInt(Date.now()) * 1_000_000n;
      const span = (index: number) => {
        const hex = index.toString(16).padStart(16, '0');
        return JSON.stringify({
          traceId: `7${hex.slice(1)}${hex}`,
          spanId: `5${hex.slice(1)}`,
          name: 'chat gpt-4o-mini',
          kind: 3,
          startTimeUnixNano: String(start + BigInt(index)),
          endTimeUnixNano: String(start + BigInt(index) + 1_000_000n),
          attributes: [
            { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
            { key: 'gen_ai.request.model', value: { stringValue: 'gpt-4o-mini' } },
            { key: 'gen_ai.usage.input_tokens', value: { intValue: String(index % 1000) } },
            { key: 'gen_ai.usage.output_tokens', value: { intValue: '42' } },
          ],
        });
      };
      const head =
        '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"max-size"}}]},"scopeSpans":[{"spans":[';
      const tail = ']}]}]}';
      const parts: string[] = [];
      let size = head.length + tail.length;
      for (let index = 1; index <= DEFAULT_DECODE_LIMITS.maxSpans; index++) {
        const text = span(index);
        if (size + text.length + 1 > maxBytes) break;
        parts.push(text);
        size += text.length + 1;
      }
      // Encoded before the watch starts: a string body would be encoded on this loop.
      const body = Buffer.from(head + parts.join(',') + tail);
      expect(body.length).toBeGreaterThan(maxBytes * 0.95);
      const { result, stallMs, slowestHealthzMs, ms } = await whileWatching(
        collector.url,
        async () => {
          const response = await fetch(`${collector.url}/v1/traces`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          });
          return { status: response.status, text: await response.text() };
        },
      );
      console.log(
        `${parts.length} spans, ${(body.length / 1048576).toFixed(1)} MiB of JSON: answered in ${ms.toFixed(0)} ms; event loop held up at most ${stallMs.toFixed(0)} ms, slowest /healthz ${slowestHealthzMs.toFixed(0)} ms`,
      );
      expect(result.status).toBe(200);
      expect(result.text).toBe('{}');
      // Decoded on the event loop, this request held it up for most of its time (0.6 to
      // 1.8 s by machine); now only for a small part of it (the request's own time is the
      // yardstick, so that a faster or a busier machine does not change the verdict).
      expect(stallMs).toBeLessThan(Math.max(250, 0.4 * ms));
    },
  );

  it(
    'stores a 15 MiB service.name cut to 1 KiB, so /api/services stays small',
    { timeout: 120_000 },
    async () => {
      const huge = 'S'.repeat(15 * 1024 * 1024);
      const spans = await sdkSpans({ 'service.name': huge }, (tracer) => {
        tracer.startSpan('chat', { attributes: { 'gen_ai.request.model': 'm' } }).end();
      });
      const response = await fetch(`${collector.url}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf' },
        body: ProtobufTraceSerializer.serializeRequest(spans)!,
      });
      expect(response.status).toBe(200);
      const cut = 'S'.repeat(1024) + `…[truncated ${huge.length - 1024} bytes]`;
      let answer = '';
      const deadline = Date.now() + 60_000;
      while (!answer.includes(cut) && Date.now() < deadline) {
        answer = await (await fetch(`${collector.url}/api/services`)).text();
        if (!answer.includes(cut)) await sleep(200);
      }
      expect(answer).toContain(cut);
      // Before: 15.7 MB.
      expect(answer.length).toBeLessThan(4_096);
      expect(await metrics()).toMatch(/\nmodelmaxx_values_truncated_total [1-9]\d*\n/);
    },
  );

  it(
    '70 slow senders hold no export slot: real exports get through, the slow ones get 408',
    { timeout: 120_000 },
    async () => {
      // Each announces a 1 MB body and sends a byte a second. Before, they held all 64
      // slots and every real export was answered 429 until they gave up.
      const { port } = collector;
      const sockets: { socket: Socket; answer: string; closed: Promise<void> }[] = [];
      const trickle = setInterval(() => {
        for (const { socket } of sockets) if (!socket.destroyed) socket.write('x');
      }, 1000);
      try {
        for (let index = 0; index < 70; index++) {
          const socket = connect(port, '127.0.0.1');
          const entry = { socket, answer: '', closed: Promise.resolve() };
          entry.closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
          socket.on('error', () => undefined);
          socket.on('data', (chunk: Buffer) => (entry.answer += chunk.toString('latin1')));
          socket.write(
            `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/x-protobuf\r\n` +
              'Content-Length: 1000000\r\n\r\nx',
          );
          sockets.push(entry);
        }
        let text = '';
        const deadline = Date.now() + 30_000;
        while (!text.includes('\nmodelmaxx_ingest_bodies_reading 70\n') && Date.now() < deadline) {
          await sleep(50);
          text = await metrics();
        }
        expect(text).toContain('\nmodelmaxx_ingest_bodies_reading 70\n');
        expect(text).toContain('\nmodelmaxx_ingest_requests_in_progress 0\n');

        // A real OTLP exporter, and a plain POST, while the 70 trickle.
        const exporter = new OTLPProtoExporter({ url: `${collector.url}/v1/traces` });
        const spans = await recordSpans();
        const code = await new Promise<number>((resolve) =>
          exporter.export(spans, (result) => resolve(result.code)),
        );
        await exporter.shutdown();
        expect(code).toBe(0);
        const response = await fetch(`${collector.url}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-protobuf' },
          body: toProtobuf(spans),
        });
        expect(response.status).toBe(200);

        // The body timeout (4 s here) answers each slow sender 408 and closes its connection.
        await Promise.all(sockets.map(({ closed }) => closed));
        for (const { answer } of sockets) expect(answer).toMatch(/^HTTP\/1\.1 408 /);
        const after = await metrics();
        expect(after).toContain(
          'modelmaxx_ingest_requests_refused_total{reason="body_timeout"} 70\n',
        );
        expect(after).toContain('\nmodelmaxx_ingest_bodies_reading 0\n');
      } finally {
        clearInterval(trickle);
        for (const { socket } of sockets) socket.destroy();
      }
    },
  );

  it('refuses a body that would take the bytes held by bodies still arriving past their limit', async () => {
    // A second receiver on the same store, whose arriving bodies may hold 1 MiB together.
    const small = await startCollector({
      store: collector.store,
      config: { port: 0, maxBodyBytes: 1024 * 1024, maxBufferedBodyBytes: 1024 * 1024 },
    });
    const held = connect(small.port, '127.0.0.1');
    held.on('error', () => undefined);
    try {
      // 700 KB of a 1 MB body arrive, the rest never does.
      held.write(
        `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:${small.port}\r\n` +
          'Content-Type: application/x-protobuf\r\nContent-Length: 1000000\r\n\r\n',
      );
      held.write(Buffer.alloc(700_000));
      const text = async () => (await fetch(`${small.url}/metrics`)).text();
      const deadline = Date.now() + 30_000;
      while (!(await text()).includes('\nmodelmaxx_ingest_bodies_reading 1\n')) {
        if (Date.now() > deadline) throw new Error('the held body never arrived');
        await sleep(50);
      }
      await sleep(200); // let the 700 KB be read
      const refused = await fetch(`${small.url}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Buffer.alloc(400_000, 0x20),
      });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect((await refused.json()) as { message: string }).toMatchObject({
        message: expect.stringMatching(/^request bodies still arriving hold \d+ bytes/),
      });
      held.destroy();
      const deadline2 = Date.now() + 30_000;
      while (!(await text()).includes('\nmodelmaxx_ingest_bodies_reading 0\n')) {
        if (Date.now() > deadline2) throw new Error('the held body was never let go');
        await sleep(50);
      }
      const accepted = await fetch(`${small.url}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf' },
        body: toProtobuf(await recordSpans()),
      });
      expect(accepted.status).toBe(200);
      expect(await text()).toContain(
        'modelmaxx_ingest_requests_refused_total{reason="buffered_bytes"} 1\n',
      );
    } finally {
      held.destroy();
      await small.close();
    }
  });
});
