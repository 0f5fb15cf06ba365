import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim, LlmSimOptions } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, beforeEach } from 'vitest';

export interface TestTracing {
  exporter: InMemorySpanExporter;
  provider: TracerProvider;
  spans(): ReadableSpan[];
  reset(): void;
  shutdown(): Promise<void>;
}

/** A global tracer provider with an in-memory exporter (SimpleSpanProcessor), registered for one test file. */
export function setupTracing(): TestTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  return {
    exporter,
    provider,
    spans: () => exporter.getFinishedSpans(),
    reset: () => exporter.reset(),
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}

/** Waits until `predicate` holds (spans end asynchronously after the app's await resolves). */
export async function waitFor(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error('waitFor: timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Test tracing and an llm-sim for one test file (set in its `beforeAll`). */
export interface TestBed {
  readonly tracing: TestTracing;
  readonly sim: LlmSim;
}

/**
 * Registers the hooks most test files share: test tracing and an llm-sim (latency 0 unless
 * given) before the file, the spans reset before each test, both closed after the file. Hooks the
 * file registers later run after these, so they can use `bed.sim`.
 */
export function useTestBed(simOptions: LlmSimOptions): TestBed {
  const bed = {} as { tracing: TestTracing; sim: LlmSim };
  beforeAll(async () => {
    bed.tracing = setupTracing();
    bed.sim = await startLlmSim({ latencyScale: 0, ...simOptions });
  });
  afterAll(async () => {
    await bed.sim.close();
    await bed.tracing.shutdown();
  });
  beforeEach(() => bed.tracing.reset());
  return bed;
}
