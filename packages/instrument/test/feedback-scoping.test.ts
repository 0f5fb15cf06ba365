import { diag, DiagLogLevel } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedback, observe } from '../src/index.js';
import { setupTracing, waitFor } from './support/tracing.js';
import type { TestTracing } from './support/tracing.js';

let tracing: TestTracing;
const sims: LlmSim[] = [];

beforeAll(async () => {
  tracing = setupTracing();
  // Two providers that hand out the same response ids (the same simulator seed).
  sims.push(await startLlmSim({ seed: 1 }), await startLlmSim({ seed: 1 }));
});

afterAll(async () => {
  await Promise.all(sims.map((sim) => sim.close()));
  await tracing.shutdown();
});

function service(name: string) {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': name }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  return { exporter, provider };
}

describe('feedback() by response id when two services reuse ids', () => {
  it('records nothing for an ambiguous id, and attaches to the span it is given', async () => {
    const warnings: string[] = [];
    diag.setLogger(
      {
        warn: (message: string) => warnings.push(message),
        error: () => {},
        info: () => {},
        debug: () => {},
        verbose: () => {},
      },
      DiagLogLevel.WARN,
    );
    const shop = service('shop');
    const search = service('search');
    const shopClient = observe(
      new OpenAI({ baseURL: sims[0]!.openaiBaseURL, apiKey: 'k', maxRetries: 0 }),
      { tracerProvider: shop.provider },
    );
    const searchClient = observe(
      new OpenAI({ baseURL: sims[1]!.openaiBaseURL, apiKey: 'k', maxRetries: 0 }),
      { tracerProvider: search.provider },
    );
    const body = {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user' as const, content: 'Hello' }],
    };
    const fromShop = await shopClient.chat.completions.create(body);
    const fromSearch = await searchClient.chat.completions.create(body);
    expect(fromSearch.id).toBe(fromShop.id);
    await waitFor(() => shop.exporter.getFinishedSpans().length === 1);
    await waitFor(() => search.exporter.getFinishedSpans().length === 1);
    const shopSpan = shop.exporter.getFinishedSpans()[0]!;
    const searchSpan = search.exporter.getFinishedSpans()[0]!;

    // The id names two calls: the score must not land on either (before: on the newest, search's).
    feedback({ responseId: fromShop.id, name: 'thumbs', score: 1 });
    expect(warnings.join('\n')).toMatch(/more than one call of this process got this id/);
    // With the span, it lands on that call.
    feedback({ responseId: fromShop.id, span: shopSpan.spanContext(), name: 'thumbs', score: 0 });
    feedback({
      responseId: fromShop.id,
      span: searchSpan.spanContext(),
      name: 'thumbs',
      score: 1,
    });
    await waitFor(
      () =>
        [
          ...tracing.spans(),
          ...shop.exporter.getFinishedSpans(),
          ...search.exporter.getFinishedSpans(),
        ].filter((span) => span.name === 'feedback thumbs').length === 2,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const feedbackSpans = [
      ...tracing.spans(),
      ...shop.exporter.getFinishedSpans(),
      ...search.exporter.getFinishedSpans(),
    ].filter((span) => span.name === 'feedback thumbs');
    expect(feedbackSpans).toHaveLength(2);
    const onShop = feedbackSpans.find(
      (span) => span.parentSpanContext?.spanId === shopSpan.spanContext().spanId,
    );
    const onSearch = feedbackSpans.find(
      (span) => span.parentSpanContext?.spanId === searchSpan.spanContext().spanId,
    );
    expect(onShop?.events[0]?.attributes?.['gen_ai.evaluation.score.value']).toBe(0);
    expect(onSearch?.events[0]?.attributes?.['gen_ai.evaluation.score.value']).toBe(1);
    // The search call is the one the registry holds: its score names it (model, provider).
    expect(onSearch?.events[0]?.attributes?.['gen_ai.request.model']).toBe('gpt-4o-mini');
    diag.disable();
    await shop.provider.shutdown();
    await search.provider.shutdown();
  });
});
