import { trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import {
  configResolver,
  configureInstrumentation,
  resetInstrumentationConfig,
} from '../src/config.js';
import type { InstrumentConfig } from '../src/types.js';

// The per-patch config cache must behave exactly like resolving the config at every call.

const CAPTURE_ENV = 'OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT';

function providerWithExporter(): { provider: TracerProvider; exporter: InMemorySpanExporter } {
  const exporter = new InMemorySpanExporter();
  return {
    provider: new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }),
    exporter,
  };
}

afterEach(() => {
  delete process.env[CAPTURE_ENV];
  resetInstrumentationConfig();
  trace.disable();
});

describe('configResolver', () => {
  it('resolves once and reuses the result while nothing changed', () => {
    const resolve = configResolver();
    const local: InstrumentConfig = { builtinEvaluators: false };
    const first = resolve(local);
    expect(resolve(local)).toBe(first);
    expect(first.builtinEvaluators).toBe(false);
    expect(first.captureMessageContent).toBe(false);
  });

  it('sees configureInstrumentation() and resetInstrumentationConfig() made after it resolved', () => {
    const resolve = configResolver();
    expect(resolve(undefined).captureMessageContent).toBe(false);
    configureInstrumentation({ captureMessageContent: true, builtinEvaluators: false });
    expect(resolve(undefined)).toMatchObject({
      captureMessageContent: true,
      builtinEvaluators: false,
    });
    resetInstrumentationConfig();
    expect(resolve(undefined)).toMatchObject({
      captureMessageContent: false,
      builtinEvaluators: true,
    });
  });

  it('sees a local config object changed in place, and a new local config', () => {
    const resolve = configResolver();
    const local: InstrumentConfig = {};
    expect(resolve(local).builtinEvaluators).toBe(true);
    local.builtinEvaluators = false;
    expect(resolve(local).builtinEvaluators).toBe(false);
    const evaluator = () => undefined;
    expect(resolve({ evaluators: [evaluator] }).evaluators).toEqual([evaluator]);
  });

  it('reads the capture environment variable when it resolves, again after configureInstrumentation()', () => {
    const resolve = configResolver();
    expect(resolve(undefined).captureMessageContent).toBe(false);
    // Cached: a change of the variable alone is not seen at the next call...
    process.env[CAPTURE_ENV] = 'true';
    expect(resolve(undefined).captureMessageContent).toBe(false);
    // ...but at the next resolution.
    configureInstrumentation({});
    expect(resolve(undefined).captureMessageContent).toBe(true);
    process.env[CAPTURE_ENV] = 'false';
    resetInstrumentationConfig();
    expect(resolve(undefined).captureMessageContent).toBe(false);
    process.env[CAPTURE_ENV] = 'true';
    configureInstrumentation({});
    expect(resolve({ captureMessageContent: false }).captureMessageContent).toBe(false);
    expect(configResolver()(undefined).captureMessageContent).toBe(true);
  });

  it('draws the tracer from the global provider in force at each call', async () => {
    const resolve = configResolver();
    const first = providerWithExporter();
    const second = providerWithExporter();
    trace.setGlobalTracerProvider(first.provider);
    resolve(undefined).tracer.startSpan('one').end();
    trace.disable();
    trace.setGlobalTracerProvider(second.provider);
    resolve(undefined).tracer.startSpan('two').end();
    expect(first.exporter.getFinishedSpans().map((span) => span.name)).toEqual(['one']);
    expect(second.exporter.getFinishedSpans().map((span) => span.name)).toEqual(['two']);
    const own = providerWithExporter();
    resolve({ tracerProvider: own.provider }).tracer.startSpan('three').end();
    expect(own.exporter.getFinishedSpans().map((span) => span.name)).toEqual(['three']);
    await Promise.all([
      first.provider.shutdown(),
      second.provider.shutdown(),
      own.provider.shutdown(),
    ]);
  });
});
