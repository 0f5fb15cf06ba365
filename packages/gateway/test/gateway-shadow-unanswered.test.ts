/**
 * Shadow (reference) and judge calls the upstream had but whose answer never came whole: silent
 * or cut mid-body, the connection dropped after the request, no head within the shadow timeout.
 * Each is recorded as an app's call is (gateway-unanswered.test.ts): the input estimate of the
 * bytes the upstream got (÷ 4), output 0, `cost.source = estimate`, with its evaluation marks;
 * and the router's ShadowDispatcher counts that cost as shadow (or judge) spend against the
 * policy's caps. A connection refused and an error status are not estimated. llm-sim answers the
 * routed calls; the half-answering upstream (helpers.ts, its mode named in the request body) is
 * the reference or the judge.
 */
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import type { PolicyInput } from '@modelmaxx/router';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/index.js';
import { closedPort, startHalfAnswer, startSdkGateway, waitFor } from './helpers.js';
import type { HalfAnswer, ReceivedSpan, SdkGateway } from './helpers.js';
import { expectEstimated, usageOf } from './estimate-checks.js';

/** The shadow calls' timeout to the head, and the half upstream's idle timeout of a body. */
const SHADOW_TIMEOUT_MS = 500;
const IDLE_MS = 400;

let sim: LlmSim;
let half: HalfAnswer;
let sdk: SdkGateway;

/** gpt-4o-mini on llm-sim answers the app; the reference gpt-4o is on `reference`'s upstream. */
const policy = (
  name: string,
  reference: string,
  shadow: PolicyInput['shadow'] = {},
): PolicyInput => ({
  name,
  candidates: [
    { model: 'gpt-4o-mini', client: 'sim', priorQuality: 0.9, priorCostPerCallUsd: 0.0003 },
    { model: 'gpt-4o', client: reference, priorQuality: 0.9, priorCostPerCallUsd: 0.005 },
  ],
  exploration: 0,
  priorStrength: 100_000,
  shadow: { enabled: true, sampleRate: 1, timeoutMs: SHADOW_TIMEOUT_MS, ...shadow },
});

beforeAll(async () => {
  sim = await startLlmSim({ seed: 6 });
  half = await startHalfAnswer();
  const config = resolveConfig(
    {
      upstreams: {
        sim: { kind: 'openai', baseURL: sim.openaiBaseURL },
        half: { kind: 'openai-compatible', baseURL: half.baseURL, streamIdleTimeoutMs: IDLE_MS },
        closed: { kind: 'openai-compatible', baseURL: `http://127.0.0.1:${await closedPort()}/v1` },
      },
      policies: [
        policy('cut', 'half'),
        policy('refused', 'closed'),
        policy('judged', 'sim'),
        // Below one estimate: the first cut shadow reaches it.
        policy('capped', 'half', { maxUsdPerDay: 0.000001 }),
      ],
      judge: { model: 'half/gpt-4o-mini', timeoutMs: SHADOW_TIMEOUT_MS },
    },
    { env: {} },
  );
  sdk = await startSdkGateway(config, { seed: 3 });
});

afterAll(async () => {
  await sdk?.close();
  await sim?.close();
  await half?.close();
});

beforeEach(async () => {
  await sdk.reset();
});

/** Asks `route:<name>` (answered by gpt-4o-mini), then waits for its shadows to finish. */
async function ask(name: string, content: string): Promise<void> {
  const completion = await sdk.openai.chat.completions.create({
    model: `route:${name}`,
    messages: [{ role: 'user', content }],
  });
  expect(completion.model).toMatch(/^gpt-4o-mini/);
  await sdk.gateway.shadowsIdle();
}

/** The spans of the shadow or judge calls, once `count` came. */
async function evaluationSpans(role: 'shadow' | 'judge', count = 1): Promise<ReceivedSpan[]> {
  const spans = () =>
    sdk.receiver.spans.filter((span) => span.attributes['modelmaxx.evaluation.role'] === role);
  await waitFor(() => {
    void sdk.gateway.forceFlush();
    return spans().length >= count;
  }, 15_000);
  return spans();
}

/** The evaluation marks a shadow call of `policy` carries (what it evaluates, for which route). */
const shadowMarks = (policyName: string) => ({
  'modelmaxx.evaluation.role': 'shadow',
  'modelmaxx.evaluation.name': 'modelmaxx.shadow',
  'modelmaxx.route.policy': policyName,
  'modelmaxx.route.model': 'gpt-4o-mini',
  'modelmaxx.route.reference_model': 'gpt-4o',
  'gen_ai.request.model': 'gpt-4o',
  'modelmaxx.gateway.upstream': 'half',
});

describe('a reference (shadow) call the upstream had, without a whole answer', () => {
  it.each([
    ['silent mid-body for the idle timeout', '', 'stream_idle_timeout'],
    ['cut mid-body', ' [half:drop]', 'stream_interrupted'],
    ['dropped after the request, before the head', ' [half:drop-head]', 'connection_error'],
    ['no head within the shadow timeout', ' [half:mute]', 'timeout'],
  ])('%s: its estimate on the span, counted as shadow spend', async (_, marker, type) => {
    const before = sdk.gateway.shadows('cut')!;
    await ask('cut', `What is 12 * 31?${marker}`);
    const [span] = await evaluationSpans('shadow');
    expect(span!.attributes).toMatchObject(shadowMarks('cut'));
    const cost = expectEstimated(span!, half.bodyBytes.at(-1)!, type);
    const stats = sdk.gateway.shadows('cut')!;
    expect(stats.shadowCalls - before.shadowCalls).toBe(1);
    expect(stats.shadowErrors - before.shadowErrors).toBe(1);
    expect(stats.judged + stats.judgeErrors).toBe(0);
    expect(stats.shadowUsd - before.shadowUsd).toBeCloseTo(cost, 15);
  });

  it('counts against the shadow caps: past the daily cap, sampled calls are not shadowed', async () => {
    for (let index = 0; index < 3; index += 1) {
      await ask('capped', `What is ${13 + index} * 29? [half:drop]`);
    }
    const [span] = await evaluationSpans('shadow');
    const cost = expectEstimated(span!, half.bodyBytes.at(-1)!, 'stream_interrupted');
    const stats = sdk.gateway.shadows('capped')!;
    expect({ calls: stats.shadowCalls, overBudget: stats.overBudget }).toEqual({
      calls: 1,
      overBudget: 2,
    });
    expect(stats.shadowUsd).toBeCloseTo(cost, 15);
  });
});

describe('a shadow or judge call that is not estimated', () => {
  it('a connection refused (nothing sent): no usage, no spend', async () => {
    await ask('refused', 'What is 14 * 32?');
    const [span] = await evaluationSpans('shadow');
    expect(usageOf(span!)).toEqual({
      type: 'connection_error',
      source: undefined,
      input: undefined,
      output: undefined,
    });
    const stats = sdk.gateway.shadows('refused')!;
    expect({ errors: stats.shadowErrors, usd: stats.shadowUsd }).toEqual({ errors: 1, usd: 0 });
  });

  it('an error status (500): no usage, no spend', async () => {
    sim.setModel('gpt-4o', { failure: { rate429: 0, rate500: 1, rateTimeout: 0 } });
    try {
      await ask('judged', 'What is 15 * 33?');
    } finally {
      sim.setModel('gpt-4o', { failure: { rate429: 0, rate500: 0, rateTimeout: 0 } });
    }
    const [span] = await evaluationSpans('shadow');
    expect(usageOf(span!)).toEqual({
      type: 'error',
      source: undefined,
      input: undefined,
      output: undefined,
    });
    const stats = sdk.gateway.shadows('judged')!;
    expect({ errors: stats.shadowErrors, usd: stats.shadowUsd }).toEqual({ errors: 1, usd: 0 });
  });
});

describe('a judge call cut mid-body', () => {
  it('its estimate on the span, counted as judge spend beside the reference call', async () => {
    const before = sdk.gateway.shadows('judged')!;
    await ask('judged', 'What is 16 * 34? [half:drop]');
    const [reference] = await evaluationSpans('shadow');
    const [judge] = await evaluationSpans('judge');
    expect(judge!.attributes).toMatchObject({
      'modelmaxx.evaluation.role': 'judge',
      'modelmaxx.evaluation.name': 'modelmaxx.shadow',
      'modelmaxx.route.policy': 'judged',
      'modelmaxx.route.model': 'gpt-4o-mini',
      'modelmaxx.evaluation.target.trace_id': expect.any(String) as string,
      'gen_ai.request.model': 'gpt-4o-mini',
      'modelmaxx.gateway.upstream': 'half',
    });
    const cost = expectEstimated(judge!, half.bodyBytes.at(-1)!, 'stream_interrupted');
    const stats = sdk.gateway.shadows('judged')!;
    expect(stats.judgeErrors - before.judgeErrors).toBe(1);
    expect(stats.judgeUsd - before.judgeUsd).toBeCloseTo(cost, 15);
    // The reference answered whole: its provider usage, its catalog price, as before.
    expect(usageOf(reference!).source).toBe('local');
    expect(stats.shadowUsd - before.shadowUsd).toBeGreaterThan(0);
  });
});
