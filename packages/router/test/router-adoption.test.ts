/**
 * The routed client as the docs tell an app to use it (llm-sim): an offline fit from a labelled
 * traffic file on the app's real clock, and `explain` of the decision behind a completion.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../src/policy.js';
import { loadRecorded } from '../src/recorded.js';
import { labelledExamples } from '../src/replay.js';
import { AllCandidatesFailedError } from '../src/route-errors.js';
import { createRouter } from '../src/router-client.js';
import { useLlmSim } from './support/llm-sim-env.js';

const env = useLlmSim({ seed: 3 });

const policy = parsePolicy({
  name: 'support-per-request',
  candidates: [{ model: 'gpt-4o-mini' }, { model: 'gpt-4o' }],
  goal: { costPenalty: 0.1 },
  predictor: { enabled: true, warmup: 20 },
  exploration: 0,
});

const HARD = (index: number) => `Summarize invoice ${index}: compute 17*${index}+3 total`;
const EASY = (index: number) => `Summarize: my invoice ${index}`;

/** A labelled traffic file: the cheap model fails the invoices with arithmetic. */
function trafficFile(): string {
  const lines = Array.from({ length: 120 }, (_, index) => {
    const hard = index % 3 === 0;
    return JSON.stringify({
      id: `t-${index}`,
      task: 'ticket-summary',
      prompt: hard ? HARD(index) : EASY(index),
      outcomes: {
        'gpt-4o': { score: 1, cost_usd: 0.004 },
        'gpt-4o-mini': { score: hard ? 0 : 1, cost_usd: 0.0003 },
      },
    });
  });
  const file = join(mkdtempSync(join(tmpdir(), 'router-adoption-')), 'traffic.jsonl');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

function router() {
  return createRouter({ policy, clients: { openai: env.openai }, score: () => 1 });
}

const ask = (routed: ReturnType<typeof router>, content: string) =>
  routed.chat.completions.create(
    { model: 'auto', messages: [{ role: 'user', content }] },
    { task: 'ticket-summary' },
  );

describe('an app adopting the router', () => {
  const examples = labelledExamples(loadRecorded([trafficFile()]), policy);

  /** An easy request, then a hard one: the decisions of both. */
  async function easyThenHard(routed: ReturnType<typeof router>) {
    const easy = await ask(routed, EASY(1002));
    const hard = await ask(routed, HARD(1003));
    return { easy: routed.decisionOf(easy)!, hard: routed.decisionOf(hard)!, model: hard.model };
  }

  it('router.fit learns a labelled history on the router clock and keeps it', async () => {
    const fitted = router();
    fitted.fit(examples);
    const { easy, hard, model } = await easyThenHard(fitted);
    expect(easy.first).toEqual(['gpt-4o-mini']);
    expect(hard.first).toEqual(['gpt-4o']);
    expect(model).toMatch(/^gpt-4o-2/);
    // explain: each candidate's prediction, its evidence and the features that pushed it
    const explained = fitted.engine.explain(hard);
    expect(explained.map((entry) => entry.model)).toEqual(['gpt-4o-mini', 'gpt-4o']);
    expect(explained[0]!.quality).toBeLessThan(0.5);
    expect(explained[1]!.quality).toBeGreaterThan(0.9);
    expect(explained[0]!.evidence).toBeGreaterThan(50);
    expect(explained[0]!.features!.length).toBeGreaterThan(0);
  });

  it('explain with the call params names the hashed features by their words', async () => {
    const words = parsePolicy({
      ...policy,
      predictor: { ...policy.predictor, features: ['words'] },
    });
    const routed = createRouter({ policy: words, clients: { openai: env.openai }, score: () => 1 });
    routed.fit(labelledExamples(loadRecorded([trafficFile()]), words));
    const params = { model: 'auto', messages: [{ role: 'user' as const, content: HARD(1003) }] };
    const completion = await routed.chat.completions.create(params, { task: 'ticket-summary' });
    const decision = routed.decisionOf(completion)!;
    expect(decision.first).toEqual(['gpt-4o']);
    const hashed = (features: readonly string[]) => features.filter((name) => /^#\d+:/.test(name));
    const bare = routed.engine.explain(decision)[0]!.features!;
    expect(hashed(bare).length).toBeGreaterThan(0);
    const named = routed.engine.explain(decision, params)[0]!.features!;
    expect(hashed(named)).toEqual([]);
    expect(named.some((name) => /^(compute|total|17)\b/.test(name))).toBe(true);
  });

  it('engine.fit with the examples stamped from 0 is forgotten by a router on Date.now()', async () => {
    // what the docs showed before: after one live call the history has decayed away
    const stale = router();
    stale.engine.fit(examples);
    const { hard } = await easyThenHard(stale);
    expect(hard.first).toEqual(['gpt-4o-mini']);
    expect(stale.engine.explain(hard)[0]!.evidence).toBeLessThan(1);
  });

  it('decisionOf: a stream has its decision; a pinned model has none', async () => {
    const fitted = router();
    fitted.fit(examples);
    const stream = await fitted.chat.completions.create({
      model: 'auto',
      stream: true,
      messages: [{ role: 'user', content: EASY(7) }],
    });
    for await (const _chunk of stream) {
      // drain
    }
    expect(fitted.decisionOf(stream)?.first).toHaveLength(1);
    const pinned = await fitted.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: EASY(8) }],
    });
    expect(fitted.decisionOf(pinned)).toBeUndefined();
  });

  it('falls back on a 429, cools the model for its retry-after, says how long when all cool', async () => {
    let clock = 1_000_000;
    const routed = createRouter({
      policy: {
        name: 'support',
        candidates: [{ model: 'gpt-4o-mini' }, { model: 'gpt-4o' }],
        exploration: 0,
        fallback: { chain: ['gpt-4o'], maxAttempts: 3, cooldownMs: 30_000 },
      },
      clients: { openai: env.openai },
      now: () => clock,
    });
    const params = { model: 'auto', messages: [{ role: 'user' as const, content: 'hi' }] };
    try {
      env.sim.setModel('gpt-4o-mini', { failure: { rate429: 1, retryAfterSeconds: 7 } });
      // pinned to the cheap model, with fallbacks
      const first = await routed.chat.completions.create({ ...params, model: 'gpt-4o-mini' });
      expect(first.model).toMatch(/^gpt-4o-2/);
      expect(routed.cooldowns().get('gpt-4o-mini')).toBe(clock + 7000);
      env.sim.setModel('gpt-4o', { failure: { rate500: 1 } });
      await expect(routed.chat.completions.create(params)).rejects.toThrow(
        AllCandidatesFailedError,
      );
      clock += 2500;
      // before: '… is cooling down or excluded', not which model or for how long
      await expect(routed.chat.completions.create(params)).rejects.toThrow(
        'policy "support": every candidate for class "chat" is cooling down or excluded (gpt-4o-mini cooling down for 4.5 s more, gpt-4o cooling down for 27.5 s more)',
      );
    } finally {
      env.sim.setModel('gpt-4o-mini', { failure: { rate429: 0 } });
      env.sim.setModel('gpt-4o', { failure: { rate500: 0 } });
    }
  });

  it('a wiring mistake is a Node warning an app sees without a diag logger, once', async () => {
    const warnings: Error[] = [];
    const listen = (warning: Error) => warnings.push(warning);
    process.on('warning', listen);
    try {
      const options = {
        policy: { ...policy, name: 'no-score-adoption' },
        clients: { openai: env.openai },
      };
      createRouter(options);
      createRouter(options);
      createRouter({ ...options, policy: { ...options.policy, shadow: { enabled: true } } });
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listen);
    }
    // before: diag.warn only, silent unless the app set OTEL_LOG_LEVEL
    expect(warnings.map((warning) => warning.message)).toEqual([
      'modelmaxx router: policy "no-score-adoption" routes per request but createRouter has no score(): the predictor learns only from scored calls, so it keeps its priors and routes by cost',
      'modelmaxx router: policy "no-score-adoption" enables shadow comparisons but createRouter has no judge: no shadows',
    ]);
    expect((warnings[0] as Error & { code?: string }).code).toBe('MODELMAXX_ROUTER_CONFIG');
  });
});
