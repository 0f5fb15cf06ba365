/**
 * Real spans from the OTel SDK (TracerProvider + InMemorySpanExporter), serialized
 * by the real `@opentelemetry/otlp-transformer` serializers, plus an independent
 * oracle that says which `otel_traces` row each span must become.
 */
import { SpanKind, SpanStatusCode, context, trace, type Attributes } from '@opentelemetry/api';
import { ProtobufTraceSerializer, JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';
import type { SpanRow } from '../../src/store/span-store.js';

export const RESOURCE_ATTRIBUTES = {
  'service.name': 'checkout',
  'service.version': '1.4.2',
  'deployment.environment.name': 'test',
  'process.pid': 4242,
};

/** Spans that cover every attribute type, kinds, statuses, events, links and parents. */
export async function recordSpans(): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes(RESOURCE_ATTRIBUTES),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('@modelmaxx/instrument', '0.1.0');
  const other = provider.getTracer('router');

  const root = tracer.startSpan('chat gpt-4o-mini', {
    kind: SpanKind.CLIENT,
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.request.temperature': 0.25,
      'gen_ai.request.max_tokens': 512,
      'gen_ai.request.stream': true,
      'gen_ai.usage.input_tokens': 1_234_567,
      'gen_ai.usage.cost.amount': 0.000123,
      'gen_ai.response.finish_reasons': ['stop', 'length'],
      'gen_ai.request.stop_sequences': ['<end>', 'a "quoted" & <b>'],
      'modelmaxx.scores': [0.5, 1, -2.25],
      'modelmaxx.flags': [true, false],
      'modelmaxx.big': 1e21,
      'modelmaxx.tiny': 1e-7,
      'modelmaxx.negative': -42,
      'modelmaxx.unicode': 'héllo wörld — ✓ 日本',
    },
  });
  root.addEvent('gen_ai.evaluation.result', {
    'gen_ai.evaluation.name': 'modelmaxx.empty_output',
    'gen_ai.evaluation.score.value': 0,
    'gen_ai.response.id': 'chatcmpl-123',
  });
  root.addEvent('plain');
  root.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream 500' });

  const child = trace.setSpan(context.active(), root);
  const inner = other.startSpan(
    'route',
    {
      kind: SpanKind.INTERNAL,
      links: [
        {
          context: root.spanContext(),
          attributes: { 'link.reason': 'retry', 'link.attempt': 2 } satisfies Attributes,
        },
      ],
    },
    child,
  );
  inner.setStatus({ code: SpanStatusCode.OK });
  inner.end();
  root.end();

  for (const kind of [SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CONSUMER]) {
    tracer.startSpan(`kind ${kind}`, { kind }).end();
  }
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

export const toProtobuf = (spans: ReadableSpan[]): Uint8Array =>
  ProtobufTraceSerializer.serializeRequest(spans)!;
export const toJson = (spans: ReadableSpan[]): Uint8Array =>
  JsonTraceSerializer.serializeRequest(spans)!;

const KIND_NAMES = ['Internal', 'Server', 'Client', 'Producer', 'Consumer'];
const STATUS_NAMES = ['Unset', 'Ok', 'Error'];

const nanos = (time: [number, number]): bigint =>
  BigInt(time[0]) * 1_000_000_000n + BigInt(time[1]);

function expectedValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  return JSON.stringify(value)
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026');
}

function expectedAttributes(attributes: Attributes): Record<string, string> {
  return Object.fromEntries(
    Object.entries(attributes).map(([key, value]) => [key, expectedValue(value)]),
  );
}

/** The row the OpenTelemetry Collector ClickHouse exporter would write for `span`. */
export function expectedRow(span: ReadableSpan): SpanRow {
  const start = nanos(span.startTime);
  const end = nanos(span.endTime);
  return {
    Timestamp: start.toString(),
    TraceId: span.spanContext().traceId,
    SpanId: span.spanContext().spanId,
    ParentSpanId: span.parentSpanContext?.spanId ?? '',
    TraceState: span.spanContext().traceState?.serialize() ?? '',
    SpanName: span.name,
    SpanKind: KIND_NAMES[span.kind]!,
    ServiceName: String(span.resource.attributes['service.name']),
    ResourceAttributes: expectedAttributes(span.resource.attributes as Attributes),
    ScopeName: span.instrumentationScope.name,
    ScopeVersion: span.instrumentationScope.version ?? '',
    SpanAttributes: expectedAttributes(span.attributes),
    Duration: (end - start).toString(),
    StatusCode: STATUS_NAMES[span.status.code]!,
    StatusMessage: span.status.message ?? '',
    Events: {
      Timestamp: span.events.map((event) => nanos(event.time).toString()),
      Name: span.events.map((event) => event.name),
      Attributes: span.events.map((event) => expectedAttributes(event.attributes ?? {})),
    },
    Links: {
      TraceId: span.links.map((link) => link.context.traceId),
      SpanId: span.links.map((link) => link.context.spanId),
      TraceState: span.links.map((link) => link.context.traceState?.serialize() ?? ''),
      Attributes: span.links.map((link) => expectedAttributes(link.attributes ?? {})),
    },
  };
}
