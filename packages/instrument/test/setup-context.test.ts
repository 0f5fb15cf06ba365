import * as openaiModule from 'openai';
import OpenAI from 'openai';
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrumentOpenAI, uninstrumentOpenAI, withLlmContext } from '../src/index.js';
import { resetInstrumentationConfig } from '../src/config.js';
import { setupInstrumentation } from '../src/sdk-setup.js';
import type { SetupHandle } from '../src/sdk-setup.js';
import { openaiUsageAttributes, serverAttributesOf } from './support/expected.js';
import { waitFor } from './support/tracing.js';

// The zero-code set-up in this process (no test tracing registered first): our SDK starts lazily
// with the first LLM span, but app context set around that very first call must already propagate.

const HANDLE_KEY = Symbol.for('modelmaxx.instrument.setup');
const FIRST_CALL_TIMEOUT_MS = 60_000;

let sim: LlmSim;
let exporter: InMemorySpanExporter;
let handle: SetupHandle;

beforeAll(async () => {
  sim = await startLlmSim({ latencyScale: 0 });
  exporter = new InMemorySpanExporter();
  handle = setupInstrumentation({
    env: { OTEL_SERVICE_NAME: 'setup-context-test', OTEL_BSP_SCHEDULE_DELAY: '10' },
    exporter,
    targets: [],
  });
  instrumentOpenAI(openaiModule);
});

afterAll(async () => {
  await handle.sdkProvider()?.shutdown();
  uninstrumentOpenAI(openaiModule);
  resetInstrumentationConfig();
  trace.disable();
  context.disable();
  delete (globalThis as Record<symbol, unknown>)[HANDLE_KEY];
  await sim.close();
});

describe('zero-code set-up', () => {
  it(
    'records withLlmContext() on the first LLM call, which starts the SDK',
    async () => {
      expect(handle.sdkProvider()).toBeUndefined();
      const client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
      const completion = await withLlmContext(
        { task: 'first-task', feature: 'first-feature', userId: 'user-1' },
        () =>
          client.chat.completions.create({
            model: 'gpt-4o-mini',
            messages: [{ role: 'user', content: 'the first call' }],
          }),
      );
      expect(handle.sdkProvider()).toBeDefined();
      await handle.flush();
      await waitFor(() => exporter.getFinishedSpans().length >= 1);
      const spans = exporter.getFinishedSpans();
      expect(spans).toHaveLength(1);
      expect(spans[0]?.attributes).toEqual({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.request.stream': false,
        ...serverAttributesOf(sim.openaiBaseURL),
        'modelmaxx.task': 'first-task',
        'modelmaxx.feature': 'first-feature',
        'enduser.id': 'user-1',
        'gen_ai.response.model': completion.model,
        'gen_ai.response.id': completion.id,
        'gen_ai.response.finish_reasons': completion.choices.map((choice) => choice.finish_reason),
        ...openaiUsageAttributes(completion.model, completion.usage!),
      });
    },
    FIRST_CALL_TIMEOUT_MS,
  );
});
