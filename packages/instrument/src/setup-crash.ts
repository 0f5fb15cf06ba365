/**
 * Spans of an app that dies of an uncaught exception or an unhandled rejection: Node exits right
 * after the `uncaughtExceptionMonitor` listeners, with no turn of the event loop left for an
 * asynchronous export, so the span that explains the crash (the failed LLM call) would be lost.
 * Here the spans that ended but were not exported yet are encoded and posted from a worker thread
 * while this thread waits on an `Atomics.wait`, bounded by the flush timeout. A monitor listener,
 * unlike an `uncaughtException` one, leaves Node's own behaviour alone: the error is printed the
 * same way and the exit code is the same.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { parseKeyPairsIntoRecord } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import type * as OtlpTransformer from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { OtlpProtocol } from './env.js';
import type { ExportFailureWarner } from './setup-exporter.js';

/** At most this many spans wait for a crash flush (the batch processor's queue holds 2048). */
const MAX_PENDING = 4096;

/**
 * Sampled spans that ended and whose export has not finished yet. Spans leave the set when the
 * exporter reports on them (sent or failed); the oldest are dropped when the batch processor
 * drops them too (a full queue), so the set stays bounded.
 */
export class PendingSpans implements SpanProcessor {
  readonly #spans = new Set<ReadableSpan>();

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & 1) === 0) return; // not sampled: never exported
    this.#spans.add(span);
    if (this.#spans.size > MAX_PENDING) {
      const oldest = this.#spans.values().next().value;
      if (oldest !== undefined) this.#spans.delete(oldest);
    }
  }

  settle(spans: readonly ReadableSpan[]): void {
    for (const span of spans) this.#spans.delete(span);
  }

  /** The pending spans, removed from the set. */
  take(): ReadableSpan[] {
    const spans = [...this.#spans];
    this.#spans.clear();
    return spans;
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    this.#spans.clear();
    return Promise.resolve();
  }
}

/** Passes spans on to `exporter` and takes them off the pending set once it reported on them. */
export class SettlingExporter implements SpanExporter {
  readonly #exporter: SpanExporter;
  readonly #pending: PendingSpans;

  constructor(exporter: SpanExporter, pending: PendingSpans) {
    this.#exporter = exporter;
    this.#pending = pending;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.#exporter.export(spans, (result) => {
      this.#pending.settle(spans);
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.#exporter.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#exporter.forceFlush?.() ?? Promise.resolve();
  }
}

export interface CrashFlushOptions {
  readonly url: string;
  readonly protocol: OtlpProtocol;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly timeoutMs: number;
  readonly warner?: ExportFailureWarner;
}

/** The request headers the OTLP exporter would send, from `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`. */
function headersFrom(
  env: CrashFlushOptions['env'],
  protocol: OtlpProtocol,
): Record<string, string> {
  return {
    ...parseKeyPairsIntoRecord(env['OTEL_EXPORTER_OTLP_HEADERS']),
    ...parseKeyPairsIntoRecord(env['OTEL_EXPORTER_OTLP_TRACES_HEADERS']),
    'content-type': protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
  };
}

// Runs in the worker: post the body, then write {status} or {error, code} as JSON into the
// shared buffer (bytes 8…) and wake the waiting thread through the first int32.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { url, headers, body, shared } = workerData;
const flag = new Int32Array(shared, 0, 2);
const bytes = new Uint8Array(shared, 8);
function finish(result) {
  const encoded = new TextEncoder().encode(JSON.stringify(result)).subarray(0, bytes.length);
  bytes.set(encoded);
  Atomics.store(flag, 1, encoded.length);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}
fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(workerData.timeoutMs) }).then(
  async (response) => {
    await response.arrayBuffer().catch(() => undefined);
    finish({ status: response.status, statusText: response.statusText });
  },
  (error) => {
    const cause = error && error.cause;
    finish({ error: String((cause && cause.message) || (error && error.message) || error), code: (cause && cause.code) || (error && error.name) });
  },
);
`;

interface WorkerResult {
  status?: number;
  statusText?: string;
  error?: string;
  code?: string;
}

/** Encodes `spans` as OTLP and posts them, blocking this thread until sent or `timeoutMs` passed. */
export function sendSpansSync(spans: ReadableSpan[], options: CrashFlushOptions): void {
  if (spans.length === 0) return;
  // Loaded only here, synchronously: start-up does not pay for the encoders (~0.3 s cold).
  const transformer = createRequire(import.meta.url)(
    '@opentelemetry/otlp-transformer',
  ) as typeof OtlpTransformer;
  const serializer =
    options.protocol === 'http/json'
      ? transformer.JsonTraceSerializer
      : transformer.ProtobufTraceSerializer;
  const body = serializer.serializeRequest(spans);
  if (body === undefined) return;
  const shared = new SharedArrayBuffer(8 + 512);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      url: options.url,
      headers: headersFrom(options.env, options.protocol),
      body,
      shared,
      timeoutMs: options.timeoutMs,
    },
    stdout: true,
    stderr: true,
  });
  worker.unref();
  const flag = new Int32Array(shared, 0, 2);
  Atomics.wait(flag, 0, 0, options.timeoutMs);
  void worker.terminate().catch(() => undefined);
  if (Atomics.load(flag, 0) !== 1) {
    options.warner?.failed(new Error('Request timed out'));
    return;
  }
  const length = Atomics.load(flag, 1);
  const result = JSON.parse(
    new TextDecoder().decode(new Uint8Array(shared, 8, length).slice()),
  ) as WorkerResult;
  if (result.status !== undefined && result.status >= 200 && result.status < 300) return;
  if (result.status !== undefined) {
    options.warner?.failed(
      Object.assign(new Error(result.statusText ?? ''), { code: result.status }),
    );
  } else {
    options.warner?.failed(Object.assign(new Error(result.error ?? ''), { code: result.code }));
  }
}

/**
 * When the app dies of an uncaught exception or an unhandled rejection, send the spans still
 * waiting for export before Node prints the error and exits. Nothing happens when the app
 * handles `uncaughtException` itself (it keeps running, and the batch processor exports).
 */
export function installCrashFlush(pending: PendingSpans, options: CrashFlushOptions): void {
  process.on('uncaughtExceptionMonitor', () => {
    if (process.listenerCount('uncaughtException') > 0) return;
    try {
      sendSpansSync(pending.take(), options);
    } catch {
      // Never stand between the app and its crash.
    }
  });
}
