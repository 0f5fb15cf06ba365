/**
 * Shadow comparisons behind the gateway (llm-sim, its judge, the real `openai` SDK): a policy's
 * `shadow` settings make the gateway call the reference model and the judge off the response
 * path for the requests routed to the cheaper model, and record the verdict on the routed call's
 * trace as the routed client does; the caps hold.
 */
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import type { PolicyInput } from '@modelmaxx/router';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/index.js';
import { startSdkGateway, waitFor } from './helpers.js';
import type { SdkGateway } from './helpers.js';

let sim: LlmSim;
let sdk: SdkGateway;

/** Two candidates with these prior qualities (equal: the cheaper one answers). */
const policy = (
  name: string,
  shadow: PolicyInput['shadow'],
  [mini, full] = [0.9, 0.9],
): PolicyInput => ({
  name,
  candidates: [
    { model: 'gpt-4o-mini', client: 'openai', priorQuality: mini, priorCostPerCallUsd: 0.0003 },
    { model: 'gpt-4o', client: 'openai', priorQuality: full, priorCostPerCallUsd: 0.005 },
  ],
  exploration: 0,
  priorStrength: 100_000,
  shadow,
});

/** The priors put every call on the reference (gpt-4o); `explore` may send it to gpt-4o-mini. */
const referencePreferred = (name: string, explore: number): PolicyInput =>
  policy(
    name,
    { enabled: true, sampleRate: 1, explore, concurrency: 4, queueSize: 1000 },
    [0.3, 0.95],
  );

beforeAll(async () => {
  sim = await startLlmSim({ seed: 4 });
  // The reference answers after 300 ms; the routed model at once.
  sim.setModel('gpt-4o', { latency: { ttftMs: 300, perTokenMs: 0, sigma: 0 } });
  const config = resolveConfig(
    {
      policies: [
        policy('shadowed', { enabled: true, sampleRate: 1, concurrency: 4, queueSize: 1000 }),
        policy('plain', { enabled: false }),
        policy('capped', { enabled: true, sampleRate: 1, maxUsdPerDay: 0.000001 }),
        referencePreferred('explored', 1),
        referencePreferred('unexplored', 0),
      ],
      judge: { model: 'claude-haiku-4-5' },
    },
    {
      upstreamFlags: [`openai=${sim.openaiBaseURL}`, `anthropic=${sim.anthropicBaseURL}`],
      env: {},
    },
  );
  sdk = await startSdkGateway(config, { seed: 2 });
});

afterAll(async () => {
  await sdk?.close();
  await sim?.close();
});

const ask = (index: number) => ({
  messages: [{ role: 'user' as const, content: `What is ${12 + index} * ${31 + index}?` }],
});

const quantile = (values: number[], q: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))]!;

type OtlpEvent = { name: string; attributes?: { key: string; value: Record<string, unknown> }[] };

/** The events of a span, read from the OTLP/JSON bodies the receiver got. */
function eventsOf(spanId: string): OtlpEvent[] {
  for (const body of sdk.receiver.bodies) {
    const parsed = JSON.parse(body) as {
      resourceSpans?: { scopeSpans?: { spans?: { spanId: string; events?: OtlpEvent[] }[] }[] }[];
    };
    for (const resource of parsed.resourceSpans ?? []) {
      for (const scope of resource.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) if (span.spanId === spanId) return span.events ?? [];
      }
    }
  }
  return [];
}

describe('gateway shadow comparisons', () => {
  it('shadow exploration: a call the engine gives the reference goes to the cheaper model while its estimate is open, and is shadowed', async () => {
    await sdk.reset();
    const models: Record<'explored' | 'unexplored', string[]> = { explored: [], unexplored: [] };
    for (let index = 0; index < 6; index += 1) {
      for (const name of ['explored', 'unexplored'] as const) {
        const completion = await sdk.openai.chat.completions.create({
          model: `route:${name}`,
          ...ask(index),
        });
        models[name].push(completion.model);
      }
    }
    await sdk.gateway.shadowsIdle();
    // Fewer than minSamples (30) verdicts: the cheap model's estimate is open, explore 1 sends
    // every call there; without exploration the engine's choice stands.
    expect(models.explored.every((model) => model.startsWith('gpt-4o-mini'))).toBe(true);
    expect(models.unexplored.every((model) => !model.startsWith('gpt-4o-mini'))).toBe(true);
    expect(sdk.gateway.shadows('explored')!.shadowCalls).toBe(6);
    expect(sdk.gateway.shadows('unexplored')!.shadowCalls).toBe(0);
  }, 90_000);

  it('never on the response path: app latency unchanged while a slow reference runs', async () => {
    await sdk.reset();
    const times = { shadowed: [] as number[], plain: [] as number[] };
    let returnedWhileShadowing = 0;
    for (let index = 0; index < 30; index += 1) {
      for (const name of ['plain', 'shadowed'] as const) {
        const started = performance.now();
        const completion = await sdk.openai.chat.completions.create({
          model: `route:${name}`,
          ...ask(index),
        });
        times[name].push(performance.now() - started);
        expect(completion.model).toMatch(/^gpt-4o-mini/);
        const stats = sdk.gateway.shadows('shadowed')!;
        if (name === 'shadowed' && stats.running + stats.queued > 0) returnedWhileShadowing += 1;
      }
    }
    await sdk.gateway.shadowsIdle();
    const stats = sdk.gateway.shadows('shadowed')!;
    expect(stats.shadowCalls).toBe(30);
    expect(stats.judged + stats.judgeErrors).toBe(30);
    expect(stats.judged).toBeGreaterThan(20);
    expect(stats.shadowUsd).toBeGreaterThan(0);
    expect(sdk.gateway.shadows('plain')).toBeUndefined();
    // With the shadow on the response path no answer could come back while one is pending.
    expect(returnedWhileShadowing).toBeGreaterThanOrEqual(20);
    const added = {
      p50: quantile(times.shadowed, 0.5) - quantile(times.plain, 0.5),
      p99: quantile(times.shadowed, 0.99) - quantile(times.plain, 0.99),
    };
    console.log(
      `gateway shadows, reference 300 ms: app call p50 ${quantile(times.plain, 0.5).toFixed(1)} ms plain, ` +
        `${quantile(times.shadowed, 0.5).toFixed(1)} ms shadowed (added p50 ${added.p50.toFixed(1)} ms, ` +
        `p99 ${added.p99.toFixed(1)} ms); ${returnedWhileShadowing}/30 answers returned with a shadow pending`,
    );
    // A shadow on the path would add >= 300 ms to every call; loose bounds for a loaded box.
    expect(added.p50, JSON.stringify(added)).toBeLessThan(100);
  }, 90_000);

  it('records the verdict on the routed call, as the routed client does; the reference and judge calls are evaluation spans', async () => {
    await sdk.reset();
    const completion = await sdk.openai.chat.completions.create({
      model: 'route:shadowed',
      ...ask(100),
    });
    await sdk.gateway.shadowsIdle();
    const evaluateName = 'evaluate modelmaxx.shadow';
    await waitFor(() => {
      void sdk.gateway.forceFlush();
      return sdk.receiver.spans.some((span) => span.name === evaluateName);
    });
    const spans = sdk.receiver.spans;
    const route = spans.find((span) => span.name === 'route shadowed')!;
    const evaluate = spans.find((span) => span.name === evaluateName)!;
    expect(evaluate.parentSpanId).toBe(route.spanId);
    expect(evaluate.traceId).toBe(route.traceId);
    const event = eventsOf(evaluate.spanId).find(
      (entry) => entry.name === 'gen_ai.evaluation.result',
    )!;
    const attributes = Object.fromEntries(
      (event.attributes ?? []).map(({ key, value }) => [key, Object.values(value)[0]]),
    );
    expect(attributes).toMatchObject({
      'gen_ai.evaluation.name': 'modelmaxx.shadow',
      'modelmaxx.evaluation.source': 'judge',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.id': completion.id,
      'modelmaxx.route.policy': 'shadowed',
      'modelmaxx.route.reference_model': 'gpt-4o',
    });
    expect([0, 0.5, 1]).toContain(Number(attributes['gen_ai.evaluation.score.value']));
    const role = (name: string) =>
      spans.filter((span) => span.attributes['modelmaxx.evaluation.role'] === name);
    expect(role('shadow').map((span) => span.attributes['gen_ai.request.model'])).toEqual([
      'gpt-4o',
    ]);
    expect(role('judge').map((span) => span.attributes['gen_ai.request.model'])).toEqual([
      'claude-haiku-4-5',
    ]);
    for (const span of [...role('shadow'), ...role('judge')]) {
      expect(Number(span.attributes['gen_ai.usage.cost.amount'])).toBeGreaterThan(0);
      expect(span.traceId).not.toBe(route.traceId);
      // What it evaluates, as the routed client's instrumentation records it.
      expect(span.attributes).toMatchObject({
        'modelmaxx.evaluation.name': 'modelmaxx.shadow',
        'modelmaxx.evaluation.target.trace_id': route.traceId,
        'modelmaxx.evaluation.target.span_id': route.spanId,
        'modelmaxx.evaluation.target.response_id': completion.id,
        'modelmaxx.route.policy': 'shadowed',
        'modelmaxx.route.class': route.attributes['modelmaxx.route.class'],
        'modelmaxx.route.model': 'gpt-4o-mini',
      });
    }
  }, 60_000);

  it('an Anthropic Messages request is shadowed as its chat counterpart', async () => {
    await sdk.reset();
    const before = sdk.gateway.shadows('shadowed')!.judged;
    const message = await sdk.anthropic.messages.create({
      model: 'route:shadowed',
      max_tokens: 200,
      messages: [{ role: 'user', content: 'What is 17 * 23?' }],
    });
    await sdk.gateway.shadowsIdle();
    expect(sdk.gateway.shadows('shadowed')!.judged).toBe(before + 1);
    await waitFor(() => {
      void sdk.gateway.forceFlush();
      return sdk.receiver.spans.some((span) => span.name === 'evaluate modelmaxx.shadow');
    });
    const evaluate = sdk.receiver.spans.find((span) => span.name === 'evaluate modelmaxx.shadow')!;
    const event = eventsOf(evaluate.spanId).find(
      (entry) => entry.name === 'gen_ai.evaluation.result',
    )!;
    const responseId = event.attributes?.find((entry) => entry.key === 'gen_ai.response.id');
    expect(responseId?.value).toEqual({ stringValue: message.id });
  }, 60_000);

  it('stops at the spend cap: past it, sampled calls are not shadowed', async () => {
    for (let index = 0; index < 5; index += 1) {
      await sdk.openai.chat.completions.create({ model: 'route:capped', ...ask(200 + index) });
      await sdk.gateway.shadowsIdle();
    }
    const stats = sdk.gateway.shadows('capped')!;
    expect(stats.shadowCalls).toBe(1);
    expect(stats.overBudget).toBe(4);
  }, 60_000);
});
