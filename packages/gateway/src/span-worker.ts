/**
 * The gateway's span export thread (started by ./span-thread.ts): builds the exporter it was
 * given, rebuilds each posted record as a ReadableSpan and hands it to a BatchSpanProcessor over
 * that exporter; answers flushes and the shutdown once the processor is done with them.
 * Runs from the sources in the tests (Node strips the types), so it imports no file of its own
 * but types.
 */
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import type { AttributeValue, Attributes, SpanContext } from '@opentelemetry/api';
import { TraceState, hrTimeDuration } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type {
  FromWorker,
  SpanContextRecord,
  SpanRecord,
  ToWorker,
  WorkerSetup,
} from './span-worker-types.js';

const setup = workerData as WorkerSetup;
const port = parentPort!;

function contextOf(record: SpanContextRecord): SpanContext {
  const context: SpanContext = {
    traceId: record.traceId,
    spanId: record.spanId,
    traceFlags: record.traceFlags,
  };
  if (record.isRemote !== undefined) context.isRemote = record.isRemote;
  if (record.traceState !== undefined) context.traceState = new TraceState(record.traceState);
  return context;
}

async function exporterOf(): Promise<SpanExporter> {
  const { module, exportName = 'OTLPTraceExporter', options } = setup.exporter;
  const specifier = isAbsolute(module) ? pathToFileURL(module).href : module;
  const loaded = (await import(specifier)) as Record<string, unknown>;
  const constructor = loaded[exportName] as (new (options?: unknown) => SpanExporter) | undefined;
  if (typeof constructor !== 'function') throw new Error(`${module} exports no ${exportName}`);
  return new constructor(options);
}

let processor: BatchSpanProcessor;
try {
  processor = new BatchSpanProcessor({
    exporter: await exporterOf(),
    // Off the main thread, batches may be larger: fewer export requests for the same spans.
    scheduledDelayMillis: 100,
    maxExportBatchSize: 256,
    maxQueueSize: 16_384,
  });
} catch (error) {
  port.postMessage({ error: (error as Error).message } satisfies FromWorker);
  port.close();
  throw error;
}

const resource = resourceFromAttributes({
  'service.name': setup.serviceName,
  ...(setup.instanceId === undefined ? {} : { 'service.instance.id': setup.instanceId }),
});
const scope = { name: setup.scopeName };

function attributesOf(pairs: SpanRecord['attributes']): Attributes {
  const attributes: Attributes = {};
  for (let index = 0; index < pairs.length; index += 2) {
    attributes[pairs[index] as string] = pairs[index + 1] as AttributeValue;
  }
  return attributes;
}

function readable(record: SpanRecord): ReadableSpan {
  const context = contextOf(record.context);
  return {
    name: record.name,
    kind: record.kind,
    spanContext: () => context,
    ...(record.parent === undefined ? {} : { parentSpanContext: contextOf(record.parent) }),
    startTime: record.startTime,
    endTime: record.endTime,
    duration: hrTimeDuration(record.startTime, record.endTime),
    status: record.status,
    attributes: attributesOf(record.attributes),
    links: (record.links ?? []).map((link) => ({ ...link, context: contextOf(link.context) })),
    events: record.events ?? [],
    ended: true,
    resource,
    instrumentationScope: scope,
    droppedAttributesCount: record.droppedAttributesCount,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

port.on('message', (message: ToWorker) => {
  if ('json' in message || 'spans' in message) {
    const spans = 'json' in message ? (JSON.parse(message.json) as SpanRecord[]) : message.spans;
    for (const record of spans) processor.onEnd(readable(record));
    port.postMessage({ taken: spans.length } satisfies FromWorker);
    return;
  }
  const [id, done] =
    'flush' in message
      ? [message.flush, processor.forceFlush()]
      : [message.shutdown, processor.shutdown()];
  // The processor reports export failures itself (OTel's diag); the answer comes either way.
  void done.then(
    () => port.postMessage({ done: id } satisfies FromWorker),
    () => port.postMessage({ done: id } satisfies FromWorker),
  );
});
