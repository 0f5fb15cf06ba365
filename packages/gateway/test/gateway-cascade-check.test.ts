/**
 * A cascade's declarative `check` in the gateway's config (the routed client's `check` function,
 * as data): validated with the config (every problem named by its path), and behind the gateway
 * an agreed voter answer that fails it escalates, on every endpoint, as the routed client's
 * `check` does (llm-sim voters that agree on "The answer is 1776.", the real SDKs).
 */
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { createRandom, createRouter } from '@modelmaxx/router';
import type { PolicyInput } from '@modelmaxx/router';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GatewayConfigError, resolveConfig } from '../src/index.js';
import { simUpstreams, startSdkGateway, waitFor } from './helpers.js';
import type { SdkGateway } from './helpers.js';

const VOTERS = ['gpt-4o-mini', 'llama-3.1-8b-instant'];

/** Two agreeing voters and gpt-4o to escalate to, with this check (as config data). */
const policy = (name: string, check?: unknown): PolicyInput =>
  ({
    name,
    candidates: [...VOTERS, 'gpt-4o'].map((model) => ({ model, client: 'openai' })),
    cascade: { enabled: true, voters: VOTERS, escalateTo: 'gpt-4o', check },
  }) as PolicyInput;

let sim: LlmSim;
let sdk: SdkGateway;

beforeAll(async () => {
  sim = await startLlmSim({ seed: 11 });
  for (const model of VOTERS)
    sim.setModel(model, { quality: { arithmetic: { easy: 1, hard: 1 } } });
  const config = resolveConfig(
    {
      policies: [
        policy('json', { json: true }),
        policy('pattern', {
          regex: { pattern: '\\b1776\\b' },
          finishReason: 'stop',
          nonEmpty: true,
        }),
        policy('unchecked'),
      ],
    },
    simUpstreams(sim),
  );
  sdk = await startSdkGateway(config, { seed: 11 });
});

afterAll(async () => {
  await sdk?.close();
  await sim?.close();
});

beforeEach(async () => {
  await sdk.reset();
});

/** The route span's answering model and reason once the request's route span came. */
async function routeOf(name: string): Promise<[unknown, unknown]> {
  await waitFor(() => {
    void sdk.gateway.forceFlush();
    return sdk.receiver.spans.some((span) => span.name === `route ${name}`);
  });
  const route = sdk.receiver.spans.find((span) => span.name === `route ${name}`)!;
  return [route.attributes['modelmaxx.route.model'], route.attributes['modelmaxx.route.reason']];
}

const arithmetic = 'What is 37 * 48?';

describe('cascade check in the gateway config', () => {
  it('refuses a bad check, naming where it is', () => {
    for (const [check, problem] of [
      [{ regex: '(' }, 'policies.0.cascade.check.regex: not a regular expression'],
      [{ json: true, length: 3 }, 'policies.0.cascade.check'],
      [{}, 'a check needs at least one of json, nonEmpty, finishReason, regex'],
      [{ finishReason: 'done' }, 'policies.0.cascade.check.finishReason'],
    ] as const) {
      expect(() => resolveConfig({ policies: [policy('bad', check)] }, simUpstreams(sim))).toThrow(
        problem,
      );
    }
    const plain = {
      name: 'plain',
      candidates: [{ model: 'gpt-4o' }],
      cascade: { check: { json: true } },
    };
    expect(() => resolveConfig({ policies: [plain] }, simUpstreams(sim))).toThrow(
      GatewayConfigError,
    );
    expect(() => resolveConfig({ policies: [plain] }, simUpstreams(sim))).toThrow(
      'policies.0.cascade.check: a cascade check needs cascade.enabled',
    );
  });

  it('an agreed answer that fails the check escalates; one that passes is answered', async () => {
    const ask = (name: string, content = arithmetic) =>
      sdk.openai.chat.completions.create({
        model: `route:${name}`,
        messages: [{ role: 'user', content }],
      });
    // Not JSON: the voters agree, the check fails, gpt-4o answers.
    expect((await ask('json')).model).toMatch(/^gpt-4o-2024/);
    expect(await routeOf('json')).toEqual(['gpt-4o', 'cascade escalated: the check failed']);
    const escalation = sdk.receiver.spans.filter(
      (span) => span.attributes['modelmaxx.route.reason'] === 'cascade escalated: the check failed',
    );
    expect(escalation.some((span) => span.name === 'chat gpt-4o')).toBe(true);
    await sdk.reset();

    // Matches, finishes with stop, has text: answered by the agreement.
    const passed = await ask('pattern');
    expect(passed.choices[0]!.message.content).toBe('The answer is 1776.');
    expect(await routeOf('pattern')).toEqual([
      'gpt-4o-mini',
      'cascade: gpt-4o-mini and llama-3.1-8b-instant agree',
    ]);
    await sdk.reset();

    // An agreed answer the pattern does not match escalates.
    await ask('pattern', 'What is 12 * 12?');
    expect((await routeOf('pattern'))[1]).toBe('cascade escalated: the check failed');
    await sdk.reset();

    await ask('unchecked');
    expect((await routeOf('unchecked'))[1]).toBe(
      'cascade: gpt-4o-mini and llama-3.1-8b-instant agree',
    );
  }, 60_000);

  it('reads the answer in the request format: Anthropic Messages and Responses escalate too', async () => {
    const message = await sdk.anthropic.messages.create({
      model: 'route:json',
      max_tokens: 100,
      messages: [{ role: 'user', content: arithmetic }],
    });
    expect(message.model).toMatch(/^gpt-4o-2024/);
    expect((await routeOf('json'))[1]).toBe('cascade escalated: the check failed');
    await sdk.reset();
    const response = await sdk.openai.responses.create({
      model: 'route:pattern',
      input: arithmetic,
    });
    expect(response.output_text).toBe('The answer is 1776.');
    expect((await routeOf('pattern'))[1]).toBe(
      'cascade: gpt-4o-mini and llama-3.1-8b-instant agree',
    );
  }, 60_000);

  it('decides as the routed client with the same check as a function', async () => {
    const router = createRouter({
      policy: policy('json'),
      clients: { openai: new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 }) },
      random: createRandom(11),
      check: (completion) => {
        try {
          JSON.parse(completion.choices[0]?.message.content ?? '');
          return true;
        } catch {
          return false;
        }
      },
    });
    const routed = (await router.chat.completions.create({
      model: 'auto',
      messages: [{ role: 'user', content: arithmetic }],
    })) as OpenAI.ChatCompletion;
    const gateway = await sdk.openai.chat.completions.create({
      model: 'route:json',
      messages: [{ role: 'user', content: arithmetic }],
    });
    expect(gateway.model).toBe(routed.model);
    expect(gateway.choices[0]!.message.content).toBe(routed.choices[0]!.message.content);
  }, 60_000);
});
