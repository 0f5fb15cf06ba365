/** What the gateway's main thread and its span export thread (./span-worker.ts) exchange. */
import type { AttributeValue, Attributes, HrTime, SpanKind, SpanStatus } from '@opentelemetry/api';
import type { TimedEvent } from '@opentelemetry/sdk-trace';

/**
 * A span exporter built in the export thread: `new (await import(module))[exportName](options)`.
 * `module` is a URL or an absolute path (e.g. `import.meta.resolve('@opentelemetry/exporter-trace-otlp-proto')`),
 * `options` a structured-clonable value (no functions or agents). The exporter reads the
 * environment the gateway's process had when it started (e.g. `OTEL_EXPORTER_OTLP_*`).
 */
export interface SpanExporterInWorker {
  readonly module: string;
  /** The module's exported class (default `OTLPTraceExporter`). */
  readonly exportName?: string;
  readonly options?: unknown;
}

export interface SpanContextRecord {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  /** The `tracestate`, serialized. */
  traceState?: string;
}

export interface LinkRecord {
  context: SpanContextRecord;
  attributes?: Attributes;
  droppedAttributesCount?: number;
}

/** An ended span, as plain values. */
export interface SpanRecord {
  name: string;
  kind: SpanKind;
  context: SpanContextRecord;
  parent?: SpanContextRecord;
  startTime: HrTime;
  endTime: HrTime;
  status: SpanStatus;
  /** `[key, value, key, value, …]`: an array serializes faster than a V8 dictionary object. */
  attributes: (string | AttributeValue)[];
  droppedAttributesCount: number;
  events?: TimedEvent[];
  links?: LinkRecord[];
}

/** The export thread's `workerData`. */
export interface WorkerSetup {
  readonly exporter: SpanExporterInWorker;
  readonly serviceName: string;
  readonly instanceId?: string;
  readonly scopeName: string;
}

/** Spans as JSON text (`SpanRecord[]`), or cloned. */
export type ToWorker =
  { json: string } | { spans: SpanRecord[] } | { flush: number } | { shutdown: number };

/**
 * `done`: the flush or shutdown of that id is over; `error`: the thread cannot export; `taken`:
 * that many posted spans reached the thread's processor (the main thread bounds what is queued).
 */
export type FromWorker = { done: number } | { error: string } | { taken: number };
