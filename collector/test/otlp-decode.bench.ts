/**
 * Which protobuf decoder for `POST /v1/traces`: the hand-written one (bytes
 * straight into the Native block of `otel_traces` rows that ingest spools)
 * against protobufjs (reflection, decoding to message objects, then the same
 * conversion into rows, then the same Native encoding). Run:
 *   pnpm exec vitest bench --run collector/test/otlp-decode.bench.ts
 * Not part of `pnpm test`; the numbers go in collector/README.md.
 */
import { SpanKind } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';
import protobuf from 'protobufjs';
import { bench, describe } from 'vitest';
import { decodeTraceRequestProtobufToNative } from '../src/otlp/decode-protobuf.js';
import { spanRowsToNative } from '../src/store/span-row-native.js';
import type { SpanRow } from '../src/store/span-store.js';
import {
  formatDouble,
  hexOf,
  jsonDouble,
  jsonObject,
  jsonQuote,
  spanKindName,
  statusCodeName,
  u64Difference,
  u64ToDecimal,
  base64Of,
} from '../src/otlp/to-span-rows.js';

const SPANS_PER_REQUEST = 512;

async function llmSpans(count: number): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'checkout',
      'service.version': '1.4.2',
      'deployment.environment.name': 'prod',
      'host.name': 'ip-10-0-0-12',
      'process.pid': 4242,
      'process.runtime.name': 'nodejs',
      'telemetry.sdk.name': 'opentelemetry',
      'telemetry.sdk.version': '3.1.1',
    }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('@modelmaxx/instrument', '0.1.0');
  for (let index = 0; index < count; index++) {
    const span = tracer.startSpan('chat gpt-4o-mini', {
      kind: SpanKind.CLIENT,
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
        'gen_ai.response.id': `chatcmpl-${index.toString(36)}abcdef`,
        'gen_ai.response.finish_reasons': ['stop'],
        'gen_ai.request.max_tokens': 512,
        'gen_ai.request.temperature': 0.2,
        'gen_ai.request.stream': index % 2 === 0,
        'gen_ai.usage.input_tokens': 1200 + index,
        'gen_ai.usage.output_tokens': 300,
        'gen_ai.usage.cache_read.input_tokens': 1024,
        'gen_ai.usage.cost.amount': 0.000123 * (index + 1),
        'gen_ai.usage.cost.currency': 'USD',
        'gen_ai.usage.cost.source': 'local',
        'modelmaxx.pricing.version': '2026-11-01',
        'modelmaxx.task': 'summarize',
        'modelmaxx.feature': 'inbox-digest',
        'server.address': 'api.openai.com',
        'server.port': 443,
      },
    });
    if (index % 4 === 0) {
      span.addEvent('gen_ai.evaluation.result', {
        'gen_ai.evaluation.name': 'modelmaxx.empty_output',
        'gen_ai.evaluation.score.value': 1,
      });
    }
    span.end();
  }
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

/* protobufjs reflection over the OTLP messages that matter for traces. */
const root = protobuf.Root.fromJSON({
  nested: {
    AnyValue: {
      oneofs: {
        value: {
          oneof: [
            'stringValue',
            'boolValue',
            'intValue',
            'doubleValue',
            'arrayValue',
            'kvlistValue',
            'bytesValue',
          ],
        },
      },
      fields: {
        stringValue: { type: 'string', id: 1 },
        boolValue: { type: 'bool', id: 2 },
        intValue: { type: 'int64', id: 3 },
        doubleValue: { type: 'double', id: 4 },
        arrayValue: { type: 'ArrayValue', id: 5 },
        kvlistValue: { type: 'KeyValueList', id: 6 },
        bytesValue: { type: 'bytes', id: 7 },
      },
    },
    ArrayValue: { fields: { values: { rule: 'repeated', type: 'AnyValue', id: 1 } } },
    KeyValueList: { fields: { values: { rule: 'repeated', type: 'KeyValue', id: 1 } } },
    KeyValue: { fields: { key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 } } },
    Resource: { fields: { attributes: { rule: 'repeated', type: 'KeyValue', id: 1 } } },
    Scope: { fields: { name: { type: 'string', id: 1 }, version: { type: 'string', id: 2 } } },
    Event: {
      fields: {
        timeUnixNano: { type: 'fixed64', id: 1 },
        name: { type: 'string', id: 2 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 3 },
      },
    },
    Link: {
      fields: {
        traceId: { type: 'bytes', id: 1 },
        spanId: { type: 'bytes', id: 2 },
        traceState: { type: 'string', id: 3 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 4 },
      },
    },
    Status: { fields: { message: { type: 'string', id: 2 }, code: { type: 'int32', id: 3 } } },
    Span: {
      fields: {
        traceId: { type: 'bytes', id: 1 },
        spanId: { type: 'bytes', id: 2 },
        traceState: { type: 'string', id: 3 },
        parentSpanId: { type: 'bytes', id: 4 },
        name: { type: 'string', id: 5 },
        kind: { type: 'int32', id: 6 },
        startTimeUnixNano: { type: 'fixed64', id: 7 },
        endTimeUnixNano: { type: 'fixed64', id: 8 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 9 },
        events: { rule: 'repeated', type: 'Event', id: 11 },
        links: { rule: 'repeated', type: 'Link', id: 13 },
        status: { type: 'Status', id: 15 },
      },
    },
    ScopeSpans: {
      fields: { scope: { type: 'Scope', id: 1 }, spans: { rule: 'repeated', type: 'Span', id: 2 } },
    },
    ResourceSpans: {
      fields: {
        resource: { type: 'Resource', id: 1 },
        scopeSpans: { rule: 'repeated', type: 'ScopeSpans', id: 2 },
      },
    },
    ExportTraceServiceRequest: {
      fields: { resourceSpans: { rule: 'repeated', type: 'ResourceSpans', id: 1 } },
    },
  },
});
const RequestType = root.lookupType('ExportTraceServiceRequest');

interface LongLike {
  low: number;
  high: number;
}
interface PbValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: LongLike | number;
  doubleValue?: number;
  arrayValue?: { values?: PbValue[] };
  kvlistValue?: { values?: PbKeyValue[] };
  bytesValue?: Uint8Array;
}
interface PbKeyValue {
  key: string;
  value?: PbValue;
}

const longText = (value: LongLike | number): string =>
  typeof value === 'number' ? String(value) : u64ToDecimal(value.high >>> 0, value.low >>> 0);

function pbValueJson(value: PbValue | undefined): string {
  if (value === undefined) return 'null';
  if (value.stringValue !== undefined) return jsonQuote(value.stringValue);
  if (value.boolValue !== undefined) return String(value.boolValue);
  if (value.intValue !== undefined) return longText(value.intValue);
  if (value.doubleValue !== undefined) return jsonDouble(value.doubleValue);
  if (value.bytesValue !== undefined) return jsonQuote(base64Of(value.bytesValue));
  if (value.arrayValue !== undefined) {
    return `[${(value.arrayValue.values ?? []).map(pbValueJson).join(',')}]`;
  }
  if (value.kvlistValue !== undefined) {
    return jsonObject(
      (value.kvlistValue.values ?? []).map((entry) => [entry.key, pbValueJson(entry.value)]),
    );
  }
  return 'null';
}

function pbValueString(value: PbValue | undefined): string {
  if (value === undefined) return '';
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return String(value.boolValue);
  if (value.intValue !== undefined) return longText(value.intValue);
  if (value.doubleValue !== undefined) return formatDouble(value.doubleValue);
  if (value.bytesValue !== undefined) return base64Of(value.bytesValue);
  return pbValueJson(value);
}

function pbAttributes(attributes: PbKeyValue[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const attribute of attributes ?? []) out[attribute.key] = pbValueString(attribute.value);
  return out;
}

const hex = (bytes: Uint8Array | undefined) => (bytes ? hexOf(bytes, 0, bytes.length) : '');

/** protobufjs decode + the same conversion into rows. */
function decodeWithProtobufjs(bytes: Uint8Array): SpanRow[] {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const request = RequestType.decode(bytes) as any;
  const rows: SpanRow[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resourceAttributes = pbAttributes(resourceSpans.resource?.attributes);
    const serviceName = resourceAttributes['service.name'] ?? '';
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        const start = span.startTimeUnixNano as LongLike;
        const end = span.endTimeUnixNano as LongLike;
        rows.push({
          Timestamp: u64ToDecimal(start.high >>> 0, start.low >>> 0),
          TraceId: hex(span.traceId),
          SpanId: hex(span.spanId),
          ParentSpanId: hex(span.parentSpanId),
          TraceState: span.traceState ?? '',
          SpanName: span.name ?? '',
          SpanKind: spanKindName(span.kind ?? 0),
          ServiceName: serviceName,
          ResourceAttributes: resourceAttributes,
          ScopeName: scopeSpans.scope?.name ?? '',
          ScopeVersion: scopeSpans.scope?.version ?? '',
          SpanAttributes: pbAttributes(span.attributes),
          Duration:
            u64Difference(start.high >>> 0, start.low >>> 0, end.high >>> 0, end.low >>> 0) ?? '0',
          StatusCode: statusCodeName(span.status?.code ?? 0),
          StatusMessage: span.status?.message ?? '',
          Events: {
            Timestamp: (span.events ?? []).map((event: { timeUnixNano: LongLike }) =>
              u64ToDecimal(event.timeUnixNano.high >>> 0, event.timeUnixNano.low >>> 0),
            ),
            Name: (span.events ?? []).map((event: { name: string }) => event.name),
            Attributes: (span.events ?? []).map((event: { attributes: PbKeyValue[] }) =>
              pbAttributes(event.attributes),
            ),
          },
          Links: { TraceId: [], SpanId: [], TraceState: [], Attributes: [] },
        });
      }
    }
  }
  return rows;
}

const payload = ProtobufTraceSerializer.serializeRequest(await llmSpans(SPANS_PER_REQUEST))!;

describe(`decode one OTLP request of ${SPANS_PER_REQUEST} LLM spans (${payload.length} bytes)`, () => {
  bench('hand-written decoder → Native block of otel_traces rows', () => {
    decodeTraceRequestProtobufToNative(payload);
  });
  bench('protobufjs decode → same rows → same Native block', () => {
    spanRowsToNative(decodeWithProtobufjs(payload));
  });
  bench('protobufjs decode → same rows (no Native block)', () => {
    decodeWithProtobufjs(payload);
  });
  bench('protobufjs decode only (message objects, no rows)', () => {
    RequestType.decode(payload);
  });
});
