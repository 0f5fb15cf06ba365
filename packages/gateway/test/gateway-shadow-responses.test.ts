/**
 * Shadow comparisons for `/v1/responses` (llm-sim, its judge, the real `openai` SDK): a
 * non-streamed Responses request the engine routes to the cheaper candidate is compared with the
 * reference as its chat counterpart, off the response path; the verdict is recorded on the routed
 * call's trace and the reference and judge calls are evaluation spans, as for chat. Also when the
 * cheaper candidate is an Anthropic model (the request translated), and never for a stream.
 */
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import type { PolicyInput } from '@modelmaxx/router';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/index.js';
import { simUpstreams, startSdkGateway, waitFor } from './helpers.js';
import type { ReceivedSpan, SdkGateway } from './helpers.js';

let sim: LlmSim;
let sdk: SdkGateway;

/** The cheaper candidate answers (equal priors); gpt-4o is the reference. */
const policy = (name: string, cheap: { model: string; client: string }): PolicyInput => ({
  name,
  candidates: [
    { ...cheap, priorQuality: 0.9, priorCostPerCallUsd: 0.0003 },
    { model: 'gpt-4o', client: 'openai', priorQuality: 0.9, priorCostPerCallUsd: 0.005 },
  ],
  exploration: 0,
  priorStrength: 100_000,
  shadow: { enabled: true, sampleRate: 1, concurrency: 4, queueSize: 1000 },
});

beforeAll(async () => {
  sim = await startLlmSim({ seed: 9 });
  const policies = [
    policy('openai-pair', { model: 'gpt-4o-mini', client: 'openai' }),
    policy('cross-pair', { model: 'claude-haiku-4-5', client: 'anthropic' }),
  ];
  const judge = { model: 'claude-haiku-4-5' };
  sdk = await startSdkGateway(resolveConfig({ policies, judge }, simUpstreams(sim)), { seed: 2 });
});

afterAll(async () => {
  await sdk?.close();
  await sim?.close();
});

beforeEach(async () => {
  await sdk.reset();
});

type OtlpEvent = { name: string; attributes?: { key: string; value: Record<string, unknown> }[] };

/** The attributes of a span's `gen_ai.evaluation.result` event (from the OTLP/JSON bodies). */
function verdictOf(spanId: string): Record<string, unknown> | undefined {
  for (const body of sdk.receiver.bodies) {
    const parsed = JSON.parse(body) as {
      resourceSpans?: { scopeSpans?: { spans?: { spanId: string; events?: OtlpEvent[] }[] }[] }[];
    };
    for (const scope of (parsed.resourceSpans ?? []).flatMap((entry) => entry.scopeSpans ?? [])) {
      const span = scope.spans?.find((entry) => entry.spanId === spanId);
      const event = span?.events?.find((entry) => entry.name === 'gen_ai.evaluation.result');
      if (event !== undefined) {
        return Object.fromEntries(
          (event.attributes ?? []).map(({ key, value }) => [key, Object.values(value)[0]]),
        );
      }
    }
  }
  return undefined;
}

/** The spans once the shadow comparison's verdict span came. */
async function spansWithVerdict(): Promise<ReceivedSpan[]> {
  await sdk.gateway.shadowsIdle();
  await waitFor(() => {
    void sdk.gateway.forceFlush();
    return sdk.receiver.spans.some((span) => span.name === 'evaluate modelmaxx.shadow');
  });
  return sdk.receiver.spans;
}

describe('shadow comparisons of /v1/responses requests', () => {
  for (const [name, cheap] of [
    ['openai-pair', 'gpt-4o-mini'],
    ['cross-pair', 'claude-haiku-4-5'],
  ] as const) {
    it(`${name}: the routed call (${cheap}) is compared with the reference, the verdict on its trace`, async () => {
      const before = sdk.gateway.shadows(name)!;
      const { data: response, response: http } = await sdk.openai.responses
        .create({
          model: `route:${name}`,
          instructions: 'Answer with the number only.',
          input: 'What is 17 * 23?',
          max_output_tokens: 200,
        })
        .withResponse();
      expect(http.headers.get('x-modelmaxx-model')).toBe(cheap);
      expect(response.output_text.length).toBeGreaterThan(0);
      const spans = await spansWithVerdict();
      const stats = sdk.gateway.shadows(name)!;
      expect(stats.shadowCalls).toBe(before.shadowCalls + 1);
      expect(stats.judged).toBe(before.judged + 1);

      const route = spans.find((span) => span.name === `route ${name}`)!;
      const evaluate = spans.find((span) => span.name === 'evaluate modelmaxx.shadow')!;
      expect(evaluate.parentSpanId).toBe(route.spanId);
      expect(verdictOf(evaluate.spanId)).toMatchObject({
        'gen_ai.evaluation.name': 'modelmaxx.shadow',
        'modelmaxx.evaluation.source': 'judge',
        'gen_ai.request.model': cheap,
        'gen_ai.response.id': response.id,
        'modelmaxx.route.policy': name,
        'modelmaxx.route.reference_model': 'gpt-4o',
      });
      const role = (value: string) =>
        spans.filter((span) => span.attributes['modelmaxx.evaluation.role'] === value);
      expect(role('shadow').map((span) => span.attributes['gen_ai.request.model'])).toEqual([
        'gpt-4o',
      ]);
      expect(role('judge')).toHaveLength(1);
      for (const span of [...role('shadow'), ...role('judge')]) {
        expect(Number(span.attributes['gen_ai.usage.cost.amount'])).toBeGreaterThan(0);
        expect(span.attributes).toMatchObject({
          'modelmaxx.evaluation.target.trace_id': route.traceId,
          'modelmaxx.evaluation.target.response_id': response.id,
          'modelmaxx.route.model': cheap,
        });
      }
    }, 60_000);
  }

  it('a streamed Responses request is not shadowed (as a streamed chat request is not)', async () => {
    const before = sdk.gateway.shadows('openai-pair')!.shadowCalls;
    const stream = await sdk.openai.responses.create({
      model: 'route:openai-pair',
      input: 'What is 19 * 29?',
      stream: true,
    });
    for await (const event of stream) void event;
    await sdk.gateway.shadowsIdle();
    expect(sdk.gateway.shadows('openai-pair')!.shadowCalls).toBe(before);
  }, 60_000);
});
