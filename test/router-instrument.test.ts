/**
 * The routed client with the instrumentation active: every attempt is its own
 * LLM span, a child of the router's `route <policy>` span, and carries the
 * route decision and the app's task so the collector can fill
 * `llm_calls.RoutePolicy` / `RouteReason` / `Task`.
 */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { observe } from '@modelmaxx/instrument';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { createRouter } from '@modelmaxx/router';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const contextManager = new AsyncLocalStorageContextManager();
let sim: LlmSim;
let openai: OpenAI;

beforeAll(async () => {
  context.setGlobalContextManager(contextManager.enable());
  sim = await startLlmSim({ seed: 11 });
  openai = observe(new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'test', maxRetries: 0 }), {
    tracerProvider: provider,
  });
});

afterAll(async () => {
  await sim.close();
  context.disable();
  await provider.shutdown();
});

beforeEach(() => {
  exporter.reset();
  sim.setModel('gpt-4o-mini', { failure: { rate429: 0, rate500: 0, rateTimeout: 0 } });
});

const policy = {
  name: 'support',
  candidates: [
    { model: 'gpt-4o-mini', priorQuality: 0.9, priorCostPerCallUsd: 0.0003 },
    { model: 'gpt-4o', priorQuality: 0.9, priorCostPerCallUsd: 0.005 },
  ],
  exploration: 0,
  priorStrength: 100_000,
  fallback: { chain: ['gpt-4o'], maxAttempts: 2, cooldownMs: 10_000, timeoutMs: 2_000 },
};

describe('router with instrumentation', () => {
  it('puts the route decision and the task on each attempt span, children of the route span', async () => {
    sim.setModel('gpt-4o-mini', { failure: { rate500: 1 } });
    const router = createRouter({
      policy,
      clients: { openai },
      tracer: provider.getTracer('router'),
    });
    const completion = await router.chat.completions.create(
      { model: 'auto', messages: [{ role: 'user', content: 'What is 2 + 3?' }] },
      { task: 'math-qa' },
    );
    expect(completion.model).toMatch(/^gpt-4o/);

    const spans = exporter.getFinishedSpans();
    const route = spans.find((span) => span.name === 'route support');
    const calls = spans.filter((span) => span.name.startsWith('chat '));
    expect(route).toBeDefined();
    expect(calls.map((span) => span.name)).toEqual(['chat gpt-4o-mini', 'chat gpt-4o']);
    for (const call of calls) {
      expect(call.parentSpanContext?.spanId).toBe(route!.spanContext().spanId);
      expect(call.spanContext().traceId).toBe(route!.spanContext().traceId);
    }
    const [failed, answered] = calls;
    expect(failed!.attributes).toMatchObject({
      'modelmaxx.route.policy': 'support',
      'modelmaxx.route.class': 'math-qa',
      'modelmaxx.route.model': 'gpt-4o-mini',
      'modelmaxx.route.attempt': 1,
      'modelmaxx.task': 'math-qa',
      'error.type': 'InternalServerError',
    });
    expect(answered!.attributes).toMatchObject({
      'modelmaxx.route.policy': 'support',
      'modelmaxx.route.class': 'math-qa',
      'modelmaxx.route.model': 'gpt-4o',
      'modelmaxx.route.attempt': 2,
      'modelmaxx.task': 'math-qa',
      'gen_ai.request.model': 'gpt-4o',
    });
    expect(String(answered!.attributes['modelmaxx.route.reason'])).toMatch(/^fallback chain: /);
    expect(answered!.attributes['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
  });
});
