/**
 * GenAI spans like the instrumentation's, for the collector durability tests: real SDK spans
 * (`TracerProvider` + `InMemorySpanExporter`, for the real OTLP exporters) and hand-built
 * OTLP/JSON request bodies with known span ids (for requests whose every answer is checked).
 */
import { SpanKind, type Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';

const MODELS = ['gpt-4o-mini', 'gpt-4o', 'claude-haiku-4-5'] as const;

function genAiAttributes(index: number): Attributes {
  const model = MODELS[index % MODELS.length]!;
  const input = 100 + (index % 900);
  const output = 20 + (index % 300);
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': model.startsWith('claude') ? 'anthropic' : 'openai',
    'gen_ai.request.model': model,
    'gen_ai.response.model': model,
    'gen_ai.response.id': `chatcmpl-${index.toString(36)}`,
    'gen_ai.response.finish_reasons': ['stop'],
    'gen_ai.request.stream': index % 2 === 0,
    'gen_ai.request.max_tokens': 512,
    'gen_ai.request.temperature': 0.2,
    'gen_ai.usage.input_tokens': input,
    'gen_ai.usage.output_tokens': output,
    'gen_ai.usage.cache_read.input_tokens': index % 4 === 0 ? 64 : 0,
    'gen_ai.usage.cost.amount': (input * 0.15 + output * 0.6) / 1e6,
    'gen_ai.usage.cost.currency': 'USD',
    'gen_ai.usage.cost.source': 'local',
    'server.address': '127.0.0.1',
    'server.port': 8080,
    'modelmaxx.task': ['summarize', 'classify', 'extract'][index % 3]!,
    'modelmaxx.feature': ['inbox', 'search'][index % 2]!,
    'enduser.id': `user-${index % 50}`,
  };
}

/** `count` finished GenAI CLIENT spans, every third with an evaluation event. */
export function recordGenAiSpans(count: number, firstIndex = 0): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'durability-app' }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('@modelmaxx/instrument', '0.1.0');
  for (let index = firstIndex; index < firstIndex + count; index++) {
    const attributes = genAiAttributes(index);
    const span = tracer.startSpan(`chat ${String(attributes['gen_ai.request.model'])}`, {
      kind: SpanKind.CLIENT,
      attributes,
    });
    if (index % 3 === 0) {
      span.addEvent('gen_ai.evaluation.result', {
        'gen_ai.evaluation.name': 'modelmaxx.finish_length',
        'gen_ai.evaluation.score.value': 1,
        'gen_ai.evaluation.score.label': 'pass',
      });
    }
    span.end();
  }
  return exporter.getFinishedSpans();
}

function anyValue(value: unknown): Record<string, unknown> {
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (typeof value === 'number')
    return Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value };
  if (Array.isArray(value)) return { arrayValue: { values: value.map(anyValue) } };
  return { stringValue: String(value) };
}

const keyValues = (attributes: Attributes) =>
  Object.entries(attributes).map(([key, value]) => ({ key, value: anyValue(value) }));

/** A hex id of `length` characters for a (run, number) pair: unique and easy to recompute. */
export function hexId(run: number, index: number, length: 16 | 32): string {
  return (run.toString(16).padStart(8, '0') + index.toString(16).padStart(length - 8, '0')).slice(
    -length,
  );
}

/** An OTLP/JSON `ExportTraceServiceRequest` of spans `first … first + count - 1` of `run`. */
export function otlpJsonBody(
  run: number,
  first: number,
  count: number,
): { body: string; spanIds: string[] } {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spans = [];
  const spanIds: string[] = [];
  for (let index = first; index < first + count; index++) {
    const spanId = hexId(run, index, 16);
    spanIds.push(spanId);
    const attributes = genAiAttributes(index);
    spans.push({
      traceId: hexId(run, index, 32),
      spanId,
      name: `chat ${String(attributes['gen_ai.request.model'])}`,
      kind: 3,
      startTimeUnixNano: String(now - 250_000_000n),
      endTimeUnixNano: String(now),
      attributes: keyValues(attributes),
      events:
        index % 3 === 0
          ? [
              {
                timeUnixNano: String(now),
                name: 'gen_ai.evaluation.result',
                attributes: keyValues({
                  'gen_ai.evaluation.name': 'modelmaxx.finish_length',
                  'gen_ai.evaluation.score.value': 1,
                }),
              },
            ]
          : [],
      status: {},
    });
  }
  return {
    body: JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: keyValues({ 'service.name': 'durability-app' }) },
          scopeSpans: [{ scope: { name: '@modelmaxx/instrument', version: '0.1.0' }, spans }],
        },
      ],
    }),
    spanIds,
  };
}
