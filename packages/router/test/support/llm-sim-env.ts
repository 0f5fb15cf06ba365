/**
 * The environment of the routed-client tests: an llm-sim server and an openai client on it,
 * spans kept in memory, and an async-hooks context manager; started before a file's tests and
 * closed after them.
 */
import { context } from '@opentelemetry/api';
import type { Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import OpenAI from 'openai';
import { afterAll, beforeAll } from 'vitest';

export class LlmSimEnv {
  readonly exporter = new InMemorySpanExporter();
  readonly provider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter: this.exporter })],
  });
  private running: { sim: LlmSim; openai: OpenAI } | undefined;

  get sim(): LlmSim {
    return this.started().sim;
  }

  /** An openai client on the simulator (no retries). */
  get openai(): OpenAI {
    return this.started().openai;
  }

  tracer(name: string): Tracer {
    return this.provider.getTracer(name);
  }

  async start(options: Parameters<typeof startLlmSim>[0]): Promise<LlmSim> {
    const sim = await startLlmSim(options);
    const openai = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'test', maxRetries: 0 });
    this.running = { sim, openai };
    return sim;
  }

  async close(): Promise<void> {
    await this.running?.sim.close();
    await this.provider.shutdown();
  }

  private started(): { sim: LlmSim; openai: OpenAI } {
    if (this.running === undefined)
      throw new Error('llm-sim is not started (use it inside a test)');
    return this.running;
  }
}

/** Starts llm-sim (with `options`) before the file's tests, `onStart` after it, closes after. */
export function useLlmSim(
  options: Parameters<typeof startLlmSim>[0],
  onStart?: (sim: LlmSim) => void,
): LlmSimEnv {
  const env = new LlmSimEnv();
  const contextManager = new AsyncLocalStorageContextManager();
  beforeAll(async () => {
    context.setGlobalContextManager(contextManager.enable());
    const sim = await env.start(options);
    onStart?.(sim);
  });
  afterAll(async () => {
    await env.close();
    context.disable();
  });
  return env;
}
