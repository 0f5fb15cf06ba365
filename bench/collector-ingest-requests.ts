/**
 * The request bodies of the ingest benchmark: OTLP/protobuf `ExportTraceServiceRequest`s of spans
 * like the instrumentation's (~25 attributes, an evaluation event on every third), encoded with
 * the tests' hand-written protobuf writer (decoded by the collector's own decoder: the two sides
 * share no code), and packed into one file for the baseline child.
 */
import { attributes, ProtoWriter, type Value } from '../collector/test/support/proto-writer.ts';

type AttributeValue = string | number | boolean | string[];

/** A JS attribute value as the protobuf writer's `AnyValue` (integers as `int_value`). */
function protoValue(value: AttributeValue): Value {
  if (typeof value !== 'number') return value;
  return Number.isInteger(value) ? { int: value } : { double: value };
}

function writeAttributes(
  writer: ProtoWriter,
  field: number,
  values: Record<string, AttributeValue>,
): void {
  attributes(
    writer,
    field,
    Object.entries(values).map(([key, value]) => [key, protoValue(value)]),
  );
}

const MODELS = [
  ['openai', 'gpt-4o-mini', 'gpt-4o-mini-2024-07-18', 0.15, 0.6],
  ['openai', 'gpt-4o', 'gpt-4o-2024-08-06', 2.5, 10],
  ['anthropic', 'claude-haiku-4-5', 'claude-haiku-4-5-20251001', 1, 5],
  ['anthropic', 'claude-sonnet-4-5', 'claude-sonnet-4-5-20250929', 3, 15],
] as const;

/** The attributes the instrumentation puts on a chat span (~25). */
function spanAttributes(index: number): Record<string, AttributeValue> {
  const [provider, model, responseModel, inputPrice, outputPrice] = MODELS[index % MODELS.length]!;
  const input = 200 + ((index * 7919) % 3000);
  const output = 20 + ((index * 104_729) % 700);
  const cacheRead = index % 5 === 0 ? Math.floor(input / 2) : 0;
  const cost =
    ((input - cacheRead) * inputPrice + cacheRead * inputPrice * 0.5 + output * outputPrice) / 1e6;
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': provider,
    'gen_ai.request.model': model,
    'gen_ai.response.model': responseModel,
    'gen_ai.response.id': `chatcmpl-${index.toString(36).padStart(10, '0')}`,
    'gen_ai.response.finish_reasons': ['stop'],
    'gen_ai.request.stream': index % 3 === 0,
    'gen_ai.request.max_tokens': 1024,
    'gen_ai.request.temperature': 0.7,
    'gen_ai.request.top_p': 0.95,
    'gen_ai.usage.input_tokens': input,
    'gen_ai.usage.output_tokens': output,
    'gen_ai.usage.cache_read.input_tokens': cacheRead,
    'gen_ai.usage.reasoning.output_tokens': 0,
    'gen_ai.usage.cost.amount': cost,
    'gen_ai.usage.cost.currency': 'USD',
    'gen_ai.usage.cost.source': 'local',
    'modelmaxx.cost.input_usd': ((input - cacheRead) * inputPrice) / 1e6,
    'modelmaxx.cost.output_usd': (output * outputPrice) / 1e6,
    'modelmaxx.pricing.version': '2026-11-20',
    'server.address': provider === 'openai' ? 'api.openai.com' : 'api.anthropic.com',
    'server.port': 443,
    'modelmaxx.task': ['summarize', 'classify', 'extract', 'chat'][index % 4]!,
    'modelmaxx.feature': ['inbox', 'search', 'support'][index % 3]!,
    'enduser.id': `user-${index % 997}`,
    'gen_ai.conversation.id': `conv-${index % 5003}`,
  };
}

const RESOURCE: Record<string, AttributeValue> = {
  'service.name': 'bench-app',
  'service.version': '1.0.0',
  'deployment.environment.name': 'bench',
  'telemetry.sdk.language': 'nodejs',
  'telemetry.sdk.name': 'opentelemetry',
  'telemetry.sdk.version': '3.1.1',
  'host.name': 'bench-host',
  'process.pid': 4242,
};

/** One `ExportTraceServiceRequest` with spans `first … first + count - 1`. */
export function encodeRequest(first: number, count: number, startNanos: bigint): Buffer {
  return new ProtoWriter()
    .message(1, (resourceSpans) => {
      resourceSpans.message(1, (resource) => writeAttributes(resource, 1, RESOURCE));
      resourceSpans.message(2, (scopeSpans) => {
        scopeSpans.message(1, (scope) => scope.bytes(1, '@modelmaxx/instrument').bytes(2, '0.1.0'));
        for (let index = first; index < first + count; index++) {
          scopeSpans.message(2, (span) => {
            const traceId = Buffer.alloc(16);
            traceId.writeUInt32BE(0x6d6d6178, 0);
            traceId.writeUInt32BE(index, 12);
            const spanId = Buffer.alloc(8);
            spanId.writeUInt32BE(0x62656e63, 0);
            spanId.writeUInt32BE(index, 4);
            const start = startNanos + BigInt(index) * 1_000_000n;
            const attributes = spanAttributes(index);
            span.bytes(1, traceId).bytes(2, spanId);
            span.bytes(5, `chat ${String(attributes['gen_ai.request.model'])}`);
            span.uint(6, 3); // SPAN_KIND_CLIENT
            span.fixed64(7, start);
            span.fixed64(8, start + BigInt(200 + (index % 2000)) * 1_000_000n);
            writeAttributes(span, 9, attributes);
            if (index % 3 === 0) {
              span.message(11, (event) => {
                event.fixed64(1, start + 150_000_000n);
                event.bytes(2, 'gen_ai.evaluation.result');
                writeAttributes(event, 3, {
                  'gen_ai.evaluation.name': 'modelmaxx.finish_length',
                  'gen_ai.evaluation.score.value': 1,
                  'gen_ai.evaluation.score.label': 'pass',
                  'gen_ai.response.id': String(attributes['gen_ai.response.id']),
                  'modelmaxx.evaluation.source': 'evaluator',
                });
              });
            }
            span.message(15, () => undefined); // status: unset
          });
        }
      });
    })
    .finish();
}

/** Length-prefixed bodies in one file (for the child). */
export function packBodies(bodies: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const body of bodies) {
    const length = Buffer.alloc(4);
    length.writeUInt32LE(body.length);
    parts.push(length, body);
  }
  return Buffer.concat(parts);
}

export function unpackBodies(packed: Buffer): Buffer[] {
  const bodies: Buffer[] = [];
  let offset = 0;
  while (offset < packed.length) {
    const length = packed.readUInt32LE(offset);
    bodies.push(packed.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return bodies;
}
