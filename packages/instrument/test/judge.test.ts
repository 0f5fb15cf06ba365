import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { costOf } from '@modelmaxx/pricing';
import { answerIsCorrect, generateTask, startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { judge, observe, withLlmContext } from '../src/index.js';
import type { JudgeEvaluator, JudgeOptions } from '../src/index.js';
import { setupTracing } from './support/tracing.js';
import type { TestTracing } from './support/tracing.js';

let tracing: TestTracing;
let sim: LlmSim;

beforeAll(async () => {
  tracing = setupTracing();
  sim = await startLlmSim({ seed: 21, judge: { accuracy: 1 } });
});

afterAll(async () => {
  await sim.close();
  await tracing.shutdown();
});

beforeEach(() => {
  tracing.reset();
  sim.setJudge({ accuracy: 1, malformedRate: 0, positionBias: 0, lengthBias: 0 });
});

function openaiClient(headers?: Record<string, string>): OpenAI {
  return new OpenAI({
    baseURL: sim.openaiBaseURL,
    apiKey: 'k',
    maxRetries: 0,
    ...(headers === undefined ? {} : { defaultHeaders: headers }),
  });
}

/** An app client whose calls the judge evaluates; the judge uses `judgeClient` (default: the app's own client). */
function judged(
  options: Omit<JudgeOptions, 'client' | 'model'> & { model?: string },
  judgeClient?: unknown,
): { app: OpenAI; judge: JudgeEvaluator } {
  const evaluators: JudgeEvaluator[] = [];
  const app = observe(openaiClient(), { evaluators });
  const evaluator = judge({ model: 'gpt-4o-mini', ...options, client: judgeClient ?? app });
  evaluators.push(evaluator);
  return { app, judge: evaluator };
}

const task = (index: number) => generateTask({ seed: 4, index });

async function ask(app: OpenAI, index: number, model = 'llama-3.1-8b-instant') {
  const { prompt } = task(index);
  const completion = await app.chat.completions.create({
    model,
    messages: [{ role: 'user', content: prompt }],
  });
  const answer = completion.choices[0]?.message.content ?? '';
  return { id: completion.id, prompt, answer, correct: answerIsCorrect(prompt, answer) };
}

const spansNamed = (name: string): ReadableSpan[] =>
  tracing.spans().filter((span) => span.name === name);
const judgeCallSpans = (): ReadableSpan[] =>
  tracing.spans().filter((span) => span.attributes['modelmaxx.evaluation.role'] === 'judge');
const resultOf = (span: ReadableSpan) => span.events[0]?.attributes ?? {};

describe('judge(): pointwise', () => {
  it('scores each call by the judge verdict, traced and priced as evaluation work', async () => {
    const { app, judge: evaluator } = judged({});
    const asked = [];
    for (let index = 0; index < 16; index++) asked.push(await ask(app, index));
    await evaluator.idle();
    const stats = evaluator.stats();
    expect(stats).toMatchObject({ scored: 16, judgeCalls: 16, parseErrors: 0, callErrors: 0 });
    // The judge's own calls went through the same instrumented client: as evaluation work they
    // are not evaluated (no built-in checks, not offered to the judge).
    expect(stats.offered).toBe(16);
    for (const span of judgeCallSpans()) expect(span.events).toEqual([]);
    const results = spansNamed('evaluate modelmaxx.judge');
    expect(results).toHaveLength(16);
    const appSpans = tracing
      .spans()
      .filter(
        (span) =>
          span.name.startsWith('chat ') &&
          span.attributes['modelmaxx.evaluation.role'] === undefined,
      );
    expect(appSpans).toHaveLength(16);
    const both = asked.filter((item) => item.correct).length;
    expect(both).toBeGreaterThan(0);
    expect(both).toBeLessThan(16);
    for (const item of asked) {
      const appSpan = appSpans.find((span) => span.attributes['gen_ai.response.id'] === item.id)!;
      const result = results.find(
        (span) => span.parentSpanContext?.spanId === appSpan.spanContext().spanId,
      )!;
      const event = resultOf(result);
      // accuracy 1: the verdict is the truth.
      expect(event).toMatchObject({
        'gen_ai.evaluation.name': 'modelmaxx.judge',
        'gen_ai.evaluation.score.label': item.correct ? 'pass' : 'fail',
        'modelmaxx.evaluation.source': 'judge',
        'gen_ai.response.id': item.id,
        'gen_ai.request.model': 'llama-3.1-8b-instant',
        'gen_ai.provider.name': 'openai',
      });
      expect((event['gen_ai.evaluation.score.value'] as number) >= 0.75).toBe(item.correct);
      const judgeCall = judgeCallSpans().find(
        (span) =>
          span.attributes['modelmaxx.evaluation.target.span_id'] === appSpan.spanContext().spanId,
      )!;
      expect(judgeCall.attributes).toMatchObject({
        'gen_ai.request.model': 'gpt-4o-mini',
        'modelmaxx.evaluation.name': 'modelmaxx.judge',
        'modelmaxx.evaluation.target.trace_id': appSpan.spanContext().traceId,
        'modelmaxx.evaluation.target.response_id': item.id,
        'gen_ai.usage.cost.currency': 'USD',
      });
      expect(judgeCall.attributes['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
      // Its own trace: the app's trace carries only the (costless) result span.
      expect(judgeCall.spanContext().traceId).not.toBe(appSpan.spanContext().traceId);
      expect(judgeCall.parentSpanContext).toBeUndefined();
    }
    expect(stats.spentUsd).toBeCloseTo(
      judgeCallSpans().reduce(
        (sum, span) => sum + (span.attributes['gen_ai.usage.cost.amount'] as number),
        0,
      ),
      12,
    );
  });

  it('samples by task, then feature, then rate', async () => {
    const { app, judge: evaluator } = judged({
      sample: { rate: 0, byTask: { triage: 1, chat: 0 }, byFeature: { inbox: 1 } },
    });
    await withLlmContext({ task: 'triage' }, () => ask(app, 0));
    await withLlmContext({ task: 'chat', feature: 'inbox' }, () => ask(app, 1));
    await withLlmContext({ feature: 'inbox' }, () => ask(app, 2));
    await ask(app, 3);
    await evaluator.idle();
    expect(evaluator.stats()).toMatchObject({ offered: 4, notSampled: 2, scored: 2 });
    const judgedIds = spansNamed('evaluate modelmaxx.judge').map(
      (span) => resultOf(span)['modelmaxx.task'] ?? resultOf(span)['modelmaxx.feature'],
    );
    expect(judgedIds.sort()).toEqual(['inbox', 'triage']);
  });

  it('a reply that is no verdict is a judge error, not a score', async () => {
    sim.setJudge({ malformedRate: 1 });
    const { app, judge: evaluator } = judged({});
    await ask(app, 0);
    await ask(app, 1);
    await evaluator.idle();
    expect(evaluator.stats()).toMatchObject({ scored: 0, parseErrors: 2, judgeCalls: 2 });
    const results = spansNamed('evaluate modelmaxx.judge');
    expect(results).toHaveLength(2);
    for (const span of results) {
      const event = resultOf(span);
      expect(event['gen_ai.evaluation.score.value']).toBeUndefined();
      expect(event['gen_ai.evaluation.score.label']).toBe('judge_error');
      expect(event['gen_ai.evaluation.explanation']).toMatch(/^judge reply is no verdict: /);
      expect(event['modelmaxx.evaluation.source']).toBe('judge');
    }
  });

  it('a failing judge call never fails the app call: a judge error', async () => {
    const failing = observe(openaiClient({ 'x-sim-directives': 'status=500' }));
    const { app, judge: evaluator } = judged({}, failing);
    const item = await ask(app, 0);
    expect(item.answer).not.toBe('');
    await evaluator.idle();
    expect(evaluator.stats()).toMatchObject({ callErrors: 1, scored: 0 });
    const [result] = spansNamed('evaluate modelmaxx.judge');
    expect(resultOf(result!)['gen_ai.evaluation.explanation']).toMatch(/^judge call failed: 500/);
    expect(resultOf(result!)['gen_ai.evaluation.score.value']).toBeUndefined();
  });

  it('without structured output, and with an Anthropic judge (forced tool)', async () => {
    const plain = judged({ structuredOutput: false });
    await ask(plain.app, 0);
    await plain.judge.idle();
    expect(plain.judge.stats()).toMatchObject({ scored: 1, parseErrors: 0 });
    const anthropic = observe(
      new Anthropic({ baseURL: sim.anthropicBaseURL, apiKey: 'k', maxRetries: 0 }),
    );
    const viaAnthropic = judged({ model: 'claude-haiku-4-5', name: 'quality' }, anthropic);
    const item = await ask(viaAnthropic.app, 1);
    await viaAnthropic.judge.idle();
    expect(viaAnthropic.judge.stats()).toMatchObject({ scored: 1, parseErrors: 0 });
    const [result] = spansNamed('evaluate quality');
    expect(resultOf(result!)['gen_ai.evaluation.score.label']).toBe(item.correct ? 'pass' : 'fail');
    const judgeCall = judgeCallSpans().find(
      (span) => span.attributes['gen_ai.provider.name'] === 'anthropic',
    );
    expect(judgeCall?.attributes['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
  });

  it('rejects bad options with a clear error', () => {
    const client = openaiClient();
    expect(() => judge({ client: {}, model: 'm' })).toThrow(/openai client/);
    expect(() => judge({ client, model: '' })).toThrow(/model/);
    expect(() => judge({ client, model: 'm', sample: { rate: 2 } })).toThrow(/sample.rate/);
    expect(() => judge({ client, model: 'm', queueSize: 0 })).toThrow(/queueSize/);
  });
});

describe('judge(): pairwise', () => {
  it('compares the answer with the reference: win, tie or loss, in a random order', async () => {
    const byPrompt = new Map<string, ReturnType<typeof task>>();
    for (let index = 0; index < 24; index++) byPrompt.set(task(index).prompt, task(index));
    const { app, judge: evaluator } = judged({
      // The right answer as reference: a right answer ties, a wrong one loses.
      reference: (call) => {
        const prompt = (call.request as { messages: { content: string }[] }).messages[0]!.content;
        const known = byPrompt.get(prompt);
        if (known === undefined) return undefined;
        // JSON tasks: the object itself; the others: {"answer": ...}.
        return known.kind === 'json' ? known.answer : JSON.stringify({ answer: known.answer });
      },
    });
    expect(evaluator.mode).toBe('pairwise');
    const asked = [];
    for (let index = 0; index < 24; index++) asked.push(await ask(app, index));
    await evaluator.idle();
    expect(evaluator.stats().scored).toBe(24);
    const results = spansNamed('evaluate modelmaxx.judge.pairwise').map(resultOf);
    const positions = new Set(results.map((event) => event['modelmaxx.evaluation.position']));
    expect(positions).toEqual(new Set(['first', 'second']));
    for (const item of asked) {
      const event = results.find((result) => result['gen_ai.response.id'] === item.id)!;
      expect(event['gen_ai.evaluation.score.label']).toBe(item.correct ? 'tie' : 'loss');
      expect(event['gen_ai.evaluation.score.value']).toBe(item.correct ? 0.5 : 0);
    }
  });
});

describe('judge(): queue and spend cap', () => {
  it('drops and counts what does not fit in the queue', async () => {
    const slow = observe(openaiClient({ 'x-sim-directives': 'slow-first=300' }));
    const { app, judge: evaluator } = judged({ queueSize: 2, concurrency: 1 }, slow);
    const asked = await Promise.all(Array.from({ length: 10 }, (_, index) => ask(app, index)));
    expect(asked.every((item) => item.answer !== '')).toBe(true);
    await evaluator.idle();
    const stats = evaluator.stats();
    expect(stats.dropped).toBeGreaterThan(0);
    expect(stats.dropped + stats.scored).toBe(10);
    expect(stats.scored).toBeLessThanOrEqual(8);
    expect(spansNamed('evaluate modelmaxx.judge')).toHaveLength(stats.scored);
  });

  it('stops judging at the hourly cap and starts again when the hour has passed', async () => {
    let clock = Date.UTC(2026, 0, 1, 12);
    // One judge call of gpt-4o-mini on these prompts costs about $0.00005: a cap of 4 calls or so.
    const { app, judge: evaluator } = judged({
      concurrency: 1,
      maxUsdPerHour: 0.0002,
      now: () => clock,
    });
    for (let index = 0; index < 12; index++) await ask(app, index);
    await evaluator.idle();
    const first = evaluator.stats();
    expect(first.judgeCalls).toBeGreaterThan(1);
    expect(first.judgeCalls).toBeLessThan(12);
    expect(first.overBudget).toBe(12 - first.judgeCalls);
    // Calls stop once the spend reaches the cap, not before (one at a time: no overshoot beyond one call).
    const costs = judgeCallSpans().map(
      (span) => span.attributes['gen_ai.usage.cost.amount'] as number,
    );
    expect(costs).toHaveLength(first.judgeCalls);
    expect(first.spentUsd).toBeGreaterThanOrEqual(0.0002);
    expect(first.spentUsd - costs[costs.length - 1]!).toBeLessThan(0.0002);
    // The spend cap counts costOf of the judge calls' usage: the same as the spans' cost.
    const usage = judgeCallSpans()[0]!.attributes;
    expect(
      costOf({
        provider: 'openai',
        model: 'gpt-4o-mini',
        usage: {
          inputTokens: usage['gen_ai.usage.input_tokens'] as number,
          outputTokens: usage['gen_ai.usage.output_tokens'] as number,
        },
      }),
    ).toMatchObject({ known: true, amount: costs[0] });
    clock += 61 * 60_000;
    await ask(app, 20);
    await evaluator.idle();
    expect(evaluator.stats().judgeCalls).toBe(first.judgeCalls + 1);
  });
});

describe('judge(): off the response path', () => {
  it('app latency p50/p99 is unchanged with a 200 ms judge on every call', async () => {
    const slowJudge = observe(openaiClient({ 'x-sim-directives': 'slow-first=200' }));
    const plain = observe(openaiClient());
    const { app, judge: evaluator } = judged({ concurrency: 4, queueSize: 1000 }, slowJudge);
    const timings: { plain: number[]; judged: number[] } = { plain: [], judged: [] };
    /** When each judged app call returned to the app (epoch ms). */
    const returnedAt: number[] = [];
    const N = 60;
    // Warm up both clients (connections, first-call code paths) before timing.
    for (const client of [plain, app]) {
      await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'warm up' }],
      });
    }
    for (let index = 0; index < N; index++) {
      // Alternate, so that load on the machine hits both series alike.
      for (const [key, client] of [
        ['plain', plain],
        ['judged', app],
      ] as const) {
        const started = performance.now();
        await client.chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: task(index).prompt }],
        });
        timings[key].push(performance.now() - started);
        if (key === 'judged') returnedAt.push(Date.now());
      }
    }
    const quantile = (values: number[], q: number) => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    };
    const added = {
      p50: quantile(timings.judged, 0.5) - quantile(timings.plain, 0.5),
      p99: quantile(timings.judged, 0.99) - quantile(timings.plain, 0.99),
    };
    // The judge calls ran (and took 200 ms each) while the app went on.
    await evaluator.idle();
    expect(evaluator.stats().scored).toBe(N + 1);
    const judgeDurations = judgeCallSpans().map(
      (span) => span.duration[0] * 1000 + span.duration[1] / 1e6,
    );
    expect(quantile(judgeDurations, 0.5)).toBeGreaterThanOrEqual(190);
    console.info(
      `judge-added-latency: p50 ${added.p50.toFixed(2)} ms, p99 ${added.p99.toFixed(2)} ms (plain p50 ${quantile(timings.plain, 0.5).toFixed(2)} ms, p99 ${quantile(timings.plain, 0.99).toFixed(2)} ms; judge call p50 ${quantile(judgeDurations, 0.5).toFixed(0)} ms)`,
    );
    // Off the path, whatever the load: app calls came back while judge calls were still in
    // flight (a judge on the path would have ended before its call returned, and the calls are
    // sequential, so none would be running then).
    const epochMs = (time: [number, number]) => time[0] * 1000 + time[1] / 1e6;
    const judgeWindows = judgeCallSpans().map((span) => [
      epochMs(span.startTime),
      epochMs(span.endTime),
    ]);
    const returnedDuringJudging = returnedAt.filter((at) =>
      judgeWindows.some(([start, end]) => at > start! && at < end!),
    ).length;
    expect(returnedDuringJudging).toBeGreaterThan(N / 2);
    // And far below the judge's 200 ms (a judge on the path adds 200 ms to every call); the p99
    // of 60 calls on a loaded machine is noise of tens of ms, so its bound is loose.
    expect(added.p50).toBeLessThan(50);
    expect(added.p99).toBeLessThan(200);
  }, 120_000);
});
