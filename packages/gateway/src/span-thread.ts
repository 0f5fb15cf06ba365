/**
 * Span export in a worker thread: the gateway's main thread turns each ended span into a plain
 * record and posts them in batches; the worker (./span-worker.ts) rebuilds them as ReadableSpans
 * (the same resource and scope objects for all, as the exporters group by identity) and hands
 * them to a BatchSpanProcessor over the exporter it builds itself from `SpanExporterInWorker`.
 * Serializing a batch held the event loop 0.74 ms at p50 and 1.9 ms at p99 on the main thread
 * (about 1.5% of the time at 500 req/s, which was the gateway's p99); posting small batches
 * holds it a few tens of µs (docs/gateway-measurements.md, Span export off the event loop).
 *
 * Nothing is lost at close: `shutdown` posts what is buffered and waits for the worker's own
 * shutdown (its last export). A worker that fails (its exporter's module missing, a crash) costs
 * spans, never requests: it is logged once and the spans after it are dropped.
 */
import { Worker } from 'node:worker_threads';
import type { Attributes, Context, SpanContext } from '@opentelemetry/api';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { Span } from '@opentelemetry/api';
import type {
  FromWorker,
  SpanContextRecord,
  SpanExporterInWorker,
  SpanRecord,
  ToWorker,
  WorkerSetup,
} from './span-worker-types.js';
import { RecordedSpan } from './tracer.js';

/** The worker's entry next to this file: `.ts` when running from the sources (tests). */
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './span-worker.ts' : './span-worker.js',
  import.meta.url,
);

/**
 * Records posted at once at most, and how long the first of them waits for company: posting
 * costs the main thread about 2 µs a span quiet (JSON and the copy; 8.5 µs at load 8), so 16
 * hold it well under 0.2 ms; the thread batches them further for the exporter.
 */
const POST_BATCH = 16;
const POST_DELAY_MS = 20;
/**
 * Spans posted to the thread and not yet taken by its processor, at most: a thread whose event
 * loop is held (an exporter that blocks) must not let the messages in front of it grow without
 * bound. Past it, spans are dropped (counted, logged) and requests go on.
 */
const MAX_QUEUED_SPANS = 16_384;

function contextRecord({ traceId, spanId, traceFlags, isRemote, traceState }: SpanContext) {
  const state = traceState?.serialize();
  const record: SpanContextRecord = { traceId, spanId, traceFlags };
  return Object.assign(
    record,
    isRemote === undefined ? undefined : { isRemote },
    state === undefined ? undefined : { traceState: state },
  );
}

function pairsOf(attributes: Attributes): SpanRecord['attributes'] {
  const pairs: SpanRecord['attributes'] = [];
  for (const key in attributes) pairs.push(key, attributes[key]!);
  return pairs;
}

/** An ended span as a plain record (structured-clonable), its attributes as key-value pairs. */
export function spanRecord(span: ReadableSpan): SpanRecord {
  const record: SpanRecord = {
    name: span.name,
    kind: span.kind,
    context: contextRecord(span.spanContext()),
    startTime: span.startTime,
    endTime: span.endTime,
    status: span.status,
    attributes: span instanceof RecordedSpan ? span.attributePairs() : pairsOf(span.attributes),
    droppedAttributesCount: span.droppedAttributesCount,
  };
  if (span.parentSpanContext !== undefined) record.parent = contextRecord(span.parentSpanContext);
  if (span.events.length > 0) record.events = span.events;
  if (span.links.length > 0) {
    record.links = span.links.map((link) => ({
      ...link,
      context: contextRecord(link.context),
    }));
  }
  return record;
}

export interface WorkerProcessorOptions {
  readonly exporter: SpanExporterInWorker;
  readonly serviceName: string;
  /** `service.instance.id` of the spans (none when absent). */
  readonly instanceId?: string;
  readonly scopeName: string;
  /** Told once when the worker fails (spans are dropped from then on), and when spans are dropped. */
  readonly onError: (message: string) => void;
  /** Spans posted and not yet taken by the thread, at most (default 16,384). */
  readonly maxQueuedSpans?: number;
}

/** A SpanProcessor whose exports run in a worker thread. */
export class WorkerSpanProcessor implements SpanProcessor {
  private readonly worker: Worker;
  private buffer: SpanRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private failed = false;
  private closed = false;
  private nextId = 1;
  /** Spans posted and not yet taken by the thread's processor. */
  private queued = 0;
  /** Spans dropped since the thread fell behind (0 while it keeps up). */
  private dropped = 0;
  private readonly maxQueued: number;
  /** Flushes and the shutdown waiting for the worker's answer, by id. */
  private readonly waiting = new Map<number, () => void>();
  private readonly onError: (message: string) => void;
  private readonly post = () => this.postBuffered();

  constructor(options: WorkerProcessorOptions) {
    this.onError = options.onError;
    this.maxQueued = options.maxQueuedSpans ?? MAX_QUEUED_SPANS;
    const setup: WorkerSetup = {
      exporter: options.exporter,
      serviceName: options.serviceName,
      ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId }),
      scopeName: options.scopeName,
    };
    this.worker = new Worker(WORKER_URL, { name: 'modelmaxx-gateway-spans', workerData: setup });
    // The gateway's server keeps the process up; `shutdown` waits for the worker's last export.
    this.worker.unref();
    this.worker.on('message', (message: FromWorker) => {
      if ('taken' in message) this.taken(message.taken);
      else if ('error' in message) this.fail(message.error);
      else this.answered(message.done);
    });
    this.worker.on('error', (error) => this.fail(error.message));
    this.worker.on('exit', () => {
      if (!this.closed) this.fail('the span export thread exited');
      for (const id of [...this.waiting.keys()]) this.answered(id);
    });
  }

  onStart(_span: Span, _parent: Context): void {
    // Nothing to do before a span ends.
  }

  onEnd(span: ReadableSpan): void {
    if (this.failed || this.closed) return;
    if (this.queued + this.buffer.length >= this.maxQueued) {
      if (this.dropped++ === 0) {
        this.onError(`span export thread is behind (${this.queued} spans queued): dropping spans`);
      }
      return;
    }
    this.buffer.push(spanRecord(span));
    if (this.buffer.length >= POST_BATCH) this.postBuffered();
    else this.timer ??= setTimeout(this.post, POST_DELAY_MS).unref();
  }

  forceFlush(): Promise<void> {
    return this.request('flush');
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    await this.request('shutdown');
    this.closed = true;
    await this.worker.terminate();
  }

  private request(kind: 'flush' | 'shutdown'): Promise<void> {
    if (this.failed || this.closed) return Promise.resolve();
    this.postBuffered();
    const id = this.nextId++;
    // Held up by the answer awaited (an unref'd worker alone would let the process exit first).
    this.worker.ref();
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.send({ [kind]: id } as ToWorker);
    });
  }

  private postBuffered(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.buffer.length === 0 || this.failed) return;
    const spans = this.buffer;
    this.buffer = [];
    // As JSON text: the attributes objects are in V8's dictionary mode (more than a dozen keyed
    // stores), which structured cloning copies slowly (about 30 µs a span against 1 µs in JSON).
    // JSON has no NaN, Infinity or undefined (in arrays): a batch with any (a `null` in the text)
    // is cloned instead.
    const json = JSON.stringify(spans);
    if (this.send(json.includes('null') ? { spans } : { json })) this.queued += spans.length;
  }

  private send(message: ToWorker): boolean {
    try {
      this.worker.postMessage(message);
      return true;
    } catch (error) {
      // A value that cannot be cloned: those spans are lost, the rest go on.
      this.onError(`spans not exported: ${(error as Error).message}`);
      return false;
    }
  }

  private taken(count: number): void {
    this.queued -= count;
    if (this.dropped > 0 && this.queued < this.maxQueued / 2) {
      this.onError(`span export thread caught up; ${this.dropped} spans were dropped`);
      this.dropped = 0;
    }
  }

  private answered(id: number): void {
    const resolve = this.waiting.get(id);
    this.waiting.delete(id);
    if (this.waiting.size === 0) this.worker.unref();
    resolve?.();
  }

  private fail(message: string): void {
    if (this.failed) return;
    this.failed = true;
    this.buffer = [];
    this.onError(`span export thread failed, spans are dropped from now on: ${message}`);
    for (const id of [...this.waiting.keys()]) this.answered(id);
  }
}
