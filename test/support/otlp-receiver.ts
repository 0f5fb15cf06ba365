import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';

/**
 * A loopback OTLP/HTTP trace receiver for end-to-end tests: decodes OTLP/protobuf and OTLP/JSON
 * into one plain shape, so a test can check what an exporter really sent over the wire.
 */

// The fields of opentelemetry/proto/collector/trace/v1 that spans carry (field numbers from the spec).
const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  fixed32 flags = 16; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
  repeated Event events = 11; uint32 dropped_events_count = 12;
  repeated Link links = 13; uint32 dropped_links_count = 14; Status status = 15;
}
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; }
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
`;

const requestType = protobuf
  .parse(OTLP_TRACE_PROTO)
  .root.lookupType('otlp.ExportTraceServiceRequest');

export type AttributeValue =
  string | number | boolean | AttributeValue[] | { [key: string]: AttributeValue } | null;
export type Attributes = Record<string, AttributeValue>;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Attributes;
  events: { name: string; attributes: Attributes }[];
  status: { code: number; message: string };
  resource: Attributes;
  scope: { name: string; version: string };
}

export interface ReceivedRequest {
  path: string;
  contentType: string;
  headers: IncomingHttpHeaders;
  spans: ReceivedSpan[];
}

// Both decodings land in this loose shape: protobufjs `toObject` with camelCase names, and OTLP/JSON.
interface LooseAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number | string;
  arrayValue?: { values?: LooseAnyValue[] };
  kvlistValue?: { values?: LooseKeyValue[] };
  bytesValue?: string;
}
interface LooseKeyValue {
  key: string;
  value?: LooseAnyValue;
}
interface LooseSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: LooseKeyValue[];
  events?: { name?: string; attributes?: LooseKeyValue[] }[];
  status?: { code?: number; message?: string };
}
interface LooseRequest {
  resourceSpans?: {
    resource?: { attributes?: LooseKeyValue[] };
    scopeSpans?: { scope?: { name?: string; version?: string }; spans?: LooseSpan[] }[];
  }[];
}

function toValue(value: LooseAnyValue | undefined): AttributeValue {
  if (value === undefined) return null;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return Number(value.doubleValue);
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(toValue);
  if (value.kvlistValue !== undefined) return toAttributes(value.kvlistValue.values);
  if (value.bytesValue !== undefined) return value.bytesValue;
  return null;
}

function toAttributes(list: LooseKeyValue[] | undefined): Attributes {
  const attributes: Attributes = {};
  for (const { key, value } of list ?? []) attributes[key] = toValue(value);
  return attributes;
}

function flatten(request: LooseRequest): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = toAttributes(resourceSpans.resource?.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      const scope = {
        name: scopeSpans.scope?.name ?? '',
        version: scopeSpans.scope?.version ?? '',
      };
      for (const span of scopeSpans.spans ?? []) {
        spans.push({
          traceId: span.traceId ?? '',
          spanId: span.spanId ?? '',
          parentSpanId: span.parentSpanId ?? '',
          name: span.name ?? '',
          kind: span.kind ?? 0,
          startTimeUnixNano: BigInt(span.startTimeUnixNano ?? 0),
          endTimeUnixNano: BigInt(span.endTimeUnixNano ?? 0),
          attributes: toAttributes(span.attributes),
          events: (span.events ?? []).map((event) => ({
            name: event.name ?? '',
            attributes: toAttributes(event.attributes),
          })),
          status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
          resource,
          scope,
        });
      }
    }
  }
  return spans;
}

export function decodeProtobufRequest(body: Uint8Array): ReceivedSpan[] {
  const message = requestType.decode(body);
  const plain = requestType.toObject(message, {
    longs: String,
    bytes: String, // base64; ids are converted to hex below
    defaults: false,
    arrays: true,
    oneofs: false,
  }) as LooseRequest;
  for (const resourceSpans of plain.resourceSpans ?? []) {
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        for (const field of ['traceId', 'spanId', 'parentSpanId'] as const) {
          const base64 = span[field];
          if (base64 !== undefined) span[field] = Buffer.from(base64, 'base64').toString('hex');
        }
      }
    }
  }
  return flatten(plain);
}

export function decodeJsonRequest(body: Uint8Array): ReceivedSpan[] {
  // OTLP/JSON: ids are hex strings, int64 may be strings, enums are integers.
  return flatten(JSON.parse(Buffer.from(body).toString('utf8')) as LooseRequest);
}

export interface OtlpReceiver {
  /** Base URL, e.g. `http://127.0.0.1:43123` (exporters append `/v1/traces` to OTEL_EXPORTER_OTLP_ENDPOINT). */
  readonly url: string;
  readonly requests: ReceivedRequest[];
  spans(): ReceivedSpan[];
  /** Resolves once at least `count` spans arrived; rejects after `timeoutMs`. */
  waitForSpans(count: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: ReceivedRequest[] = [];
  const waiters = new Set<() => void>();
  const spans = (): ReceivedSpan[] => requests.flatMap((request) => request.spans);

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const contentType = (request.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
      let body: Buffer = Buffer.concat(chunks);
      try {
        if (request.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const decoded =
          contentType === 'application/x-protobuf'
            ? decodeProtobufRequest(body)
            : contentType === 'application/json'
              ? decodeJsonRequest(body)
              : undefined;
        if (decoded === undefined) {
          response.writeHead(415).end();
          return;
        }
        requests.push({
          path: request.url ?? '',
          contentType,
          headers: request.headers,
          spans: decoded,
        });
        if (contentType === 'application/json') {
          response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } else {
          response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        }
        for (const wake of waiters) wake();
      } catch (error) {
        response.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    spans,
    waitForSpans(count, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (spans().length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(spans());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`expected ${count} spans within ${timeoutMs} ms, got ${spans().length}`),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
