import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { startOtlpReceiver } from './support/otlp-receiver.js';
import type { OtlpReceiver } from './support/otlp-receiver.js';

// The receiver is the e2e tests' eye on the wire, so it is checked against the real OTel exporters.
describe('OTLP test receiver', () => {
  let receiver: OtlpReceiver;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterAll(async () => {
    await receiver.close();
  });

  async function exportOneSpan(
    exporter: SpanExporter,
    serviceName: string,
  ): Promise<{ traceId: string; spanId: string }> {
    const provider = new TracerProvider({
      resource: resourceFromAttributes({
        'service.name': serviceName,
        'deployment.environment.name': 'test',
      }),
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
    const span = provider.getTracer('receiver-test', '1.2.3').startSpan('chat gpt-4o', {
      kind: SpanKind.CLIENT,
      attributes: {
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.usage.input_tokens': 12,
        'gen_ai.usage.cost.amount': 0.00125,
        'gen_ai.request.stream': false,
        'gen_ai.response.finish_reasons': ['stop', 'length'],
      },
    });
    span.addEvent('gen_ai.evaluation.result', {
      'gen_ai.evaluation.name': 'empty_output',
      'gen_ai.evaluation.score.value': 1,
    });
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    span.end();
    await provider.shutdown();
    return span.spanContext();
  }

  for (const [protocol, makeExporter, contentType] of [
    [
      'http/protobuf',
      (url: string) => new OTLPProtobufTraceExporter({ url, headers: { 'x-test': 'proto' } }),
      'application/x-protobuf',
    ],
    [
      'http/json',
      (url: string) => new OTLPJsonTraceExporter({ url, headers: { 'x-test': 'json' } }),
      'application/json',
    ],
  ] as const) {
    it(`decodes what the OTel ${protocol} exporter sends`, async () => {
      const before = receiver.requests.length;
      const { traceId, spanId } = await exportOneSpan(
        makeExporter(`${receiver.url}/v1/traces`),
        protocol,
      );
      const request = receiver.requests[before];
      expect(request?.contentType).toBe(contentType);
      expect(request?.path).toBe('/v1/traces');
      expect(request?.headers['x-test']).toBe(protocol === 'http/json' ? 'json' : 'proto');
      expect(request?.spans).toHaveLength(1);
      const span = request?.spans[0];
      expect(span?.traceId).toBe(traceId);
      expect(span?.spanId).toBe(spanId);
      expect(span?.parentSpanId).toBe('');
      expect(span?.name).toBe('chat gpt-4o');
      expect(span?.kind).toBe(3); // OTLP SPAN_KIND_CLIENT
      expect(span?.attributes).toEqual({
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.usage.input_tokens': 12,
        'gen_ai.usage.cost.amount': 0.00125,
        'gen_ai.request.stream': false,
        'gen_ai.response.finish_reasons': ['stop', 'length'],
      });
      expect(span?.events).toEqual([
        {
          name: 'gen_ai.evaluation.result',
          attributes: {
            'gen_ai.evaluation.name': 'empty_output',
            'gen_ai.evaluation.score.value': 1,
          },
        },
      ]);
      expect(span?.status).toEqual({ code: 2, message: 'boom' });
      expect(span?.scope).toEqual({ name: 'receiver-test', version: '1.2.3' });
      expect(span?.resource).toEqual({
        'service.name': protocol,
        'deployment.environment.name': 'test',
      });
      expect(span && span.endTimeUnixNano >= span.startTimeUnixNano).toBe(true);
    });
  }

  it('answers 415 to a content type that is not OTLP', async () => {
    const response = await fetch(`${receiver.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(response.status).toBe(415);
  });
});
