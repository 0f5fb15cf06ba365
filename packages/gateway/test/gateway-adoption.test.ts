/**
 * What a platform engineer adopting the gateway from docs/gateway.md ran into (issue 14), through
 * the real SDKs against llm-sim: wrong field types refused with a 400 naming the field (also when
 * the request is translated), malformed JSON said as such, `models.retrieve`, the provider API
 * paths the gateway does not serve answered in the API's shape, and a hard budget's 429 when
 * money is left but less than the request's estimate.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseUrlWarnings, createAccess, resolveConfig } from '../src/index.js';
import { simUpstreams, startSdkGateway } from './helpers.js';
import type { SdkGateway } from './helpers.js';

let sim: LlmSim;
let sdk: SdkGateway;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  sim = await startLlmSim({ seed: 5, latencyScale: 0, failureScale: 0 });
  const config = resolveConfig(
    {
      policies: [
        {
          name: 'support',
          candidates: [{ model: 'gpt-4o-mini' }, { model: 'claude-haiku-4-5' }],
        },
      ],
    },
    simUpstreams(sim),
  );
  const access = createAccess({
    budgets: [{ name: 'small', scope: 'feature', match: 'small', period: 'day', limitUsd: 0.0005 }],
  });
  sdk = await startSdkGateway(config, { access });
  ({ openai, anthropic } = sdk);
});

afterAll(async () => {
  await sdk?.close();
  await sim?.close();
});

const hi = [{ role: 'user' as const, content: 'Say hi' }];

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('wrong types: a 400 naming the field, translated or not', () => {
  it('openai SDK: "stream": "yes" and "max_tokens": "ten" to either provider', async () => {
    for (const model of ['gpt-4o-mini', 'claude-haiku-4-5']) {
      const stream = (await caught(
        openai.chat.completions.create({ model, messages: hi, stream: 'yes' as never }),
      )) as InstanceType<typeof OpenAI.BadRequestError>;
      expect(stream, model).toBeInstanceOf(OpenAI.BadRequestError);
      expect(stream.param).toBe('stream');
      expect(stream.code).toBe('invalid_type');
      expect(stream.message).toContain('"stream" must be a boolean (true or false); got a string');

      const tokens = (await caught(
        openai.chat.completions.create({ model, messages: hi, max_tokens: 'ten' as never }),
      )) as InstanceType<typeof OpenAI.BadRequestError>;
      expect(tokens, model).toBeInstanceOf(OpenAI.BadRequestError);
      expect(tokens.param).toBe('max_tokens');
      expect(tokens.message).toContain('"max_tokens" must be a whole number from 1');
    }
    const messages = (await caught(
      openai.chat.completions.create({ model: 'claude-haiku-4-5', messages: 'hi' as never }),
    )) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(messages).toBeInstanceOf(OpenAI.BadRequestError);
    expect(messages.param).toBe('messages');
    expect(messages.message).toContain('"messages" must be an array of messages; got a string');

    const input = (await caught(
      openai.responses.create({ model: 'claude-haiku-4-5', input: 5 as never }),
    )) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(input).toBeInstanceOf(OpenAI.BadRequestError);
    expect(input.param).toBe('input');
  });

  it('anthropic SDK: "max_tokens": "ten" and no messages, to either provider', async () => {
    for (const model of ['claude-haiku-4-5', 'gpt-4o-mini']) {
      const tokens = (await caught(
        anthropic.messages.create({ model, max_tokens: 'ten' as never, messages: hi }),
      )) as InstanceType<typeof Anthropic.BadRequestError>;
      expect(tokens, model).toBeInstanceOf(Anthropic.BadRequestError);
      expect(tokens.error).toEqual({
        type: 'error',
        error: {
          type: 'invalid_request_error',
          message: '"max_tokens" must be a whole number from 1; got a string: "ten"',
        },
      });
      const missing = (await caught(
        anthropic.messages.create({ model, max_tokens: 10 } as never),
      )) as InstanceType<typeof Anthropic.BadRequestError>;
      expect(missing, model).toBeInstanceOf(Anthropic.BadRequestError);
      expect((missing.error as { error: { message: string } }).error.message).toBe(
        '"messages" (an array of messages) is required',
      );
    }
  });

  it('/v1/messages needs max_tokens whichever provider answers; a message must be an object', async () => {
    // Translated to an OpenAI-style model it used to answer, to Claude the upstream said 400: a
    // route: request without it answered or failed by the candidate picked.
    for (const model of ['gpt-4o-mini', 'claude-haiku-4-5', 'route:support']) {
      const missing = (await caught(
        anthropic.messages.create({ model, messages: hi } as never),
      )) as InstanceType<typeof Anthropic.BadRequestError>;
      expect(missing, model).toBeInstanceOf(Anthropic.BadRequestError);
      expect((missing.error as { error: { message: string } }).error.message).toBe(
        '"max_tokens" (a whole number from 1) is required on /v1/messages, as in Anthropic\'s API',
      );
    }
    const notObject = (await caught(
      openai.chat.completions.create({ model: 'claude-haiku-4-5', messages: ['hi'] as never }),
    )) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(notObject).toBeInstanceOf(OpenAI.BadRequestError);
    expect(notObject.param).toBe('messages[0]');
    expect(notObject.message).toContain(
      '"messages[0]" must be a message object (role, content); got a string: "hi"',
    );
  });

  it('malformed JSON says so, with the parser’s reason; a non-object names what it got', async () => {
    const post = async (body: string) => {
      const response = await fetch(`${sdk.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const json = (await response.json()) as { error: { message: string; type: string } };
      return { status: response.status, error: json.error };
    };
    const truncated = await post('{"model":');
    expect(truncated.status).toBe(400);
    expect(truncated.error.type).toBe('invalid_request_error');
    expect(truncated.error.message).toMatch(/^the request body is not valid JSON \(.+\)/);
    expect((await post('')).error.message).toContain('(the body is empty)');
    expect((await post('[1,2]')).error.message).toBe(
      'the request body is not a JSON object (got an array)',
    );
  });
});

describe('model retrieval and unserved API paths', () => {
  it('models.retrieve: listed, pattern-served and route models; 404 model_not_found else', async () => {
    const listed = await openai.models.retrieve('gpt-4o-mini');
    expect(listed).toMatchObject({ id: 'gpt-4o-mini', object: 'model', owned_by: 'openai' });
    // Not listed, but served by the openai upstream's `gpt-*` pattern.
    expect((await openai.models.retrieve('gpt-4.1')).owned_by).toBe('openai');
    expect((await openai.models.retrieve('route:support')).owned_by).toBe('modelmaxx');
    const claude = await anthropic.models.retrieve('claude-haiku-4-5');
    expect(claude).toMatchObject({ type: 'model', id: 'claude-haiku-4-5' });
    // A policy's candidate without `client` is owned by the upstream that serves it, not by the
    // router schema's default provider (openai).
    expect((await openai.models.retrieve('claude-haiku-4-5')).owned_by).toBe('anthropic');
    const owners = new Map<string, string>();
    for await (const model of openai.models.list()) owners.set(model.id, model.owned_by);
    expect(owners.get('claude-haiku-4-5')).toBe('anthropic');

    const unknown = (await caught(openai.models.retrieve('no-such-model'))) as InstanceType<
      typeof OpenAI.NotFoundError
    >;
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect(unknown.code).toBe('model_not_found');
    const unknownClaude = (await caught(
      anthropic.models.retrieve('no-such-model'),
    )) as InstanceType<typeof Anthropic.NotFoundError>;
    expect(unknownClaude).toBeInstanceOf(Anthropic.NotFoundError);
    expect((unknownClaude.error as { error: { type: string } }).error.type).toBe('not_found_error');
  });

  it('count_tokens and /v1/completions: a 404 in the API’s shape naming what is served', async () => {
    const count = (await caught(
      anthropic.messages.countTokens({ model: 'claude-haiku-4-5', messages: hi }),
    )) as InstanceType<typeof Anthropic.NotFoundError>;
    expect(count).toBeInstanceOf(Anthropic.NotFoundError);
    expect(count.error).toEqual({
      type: 'error',
      error: {
        type: 'not_found_error',
        message:
          'the gateway does not serve POST /v1/messages/count_tokens; it serves POST /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/messages and GET /v1/models',
      },
    });
    const legacy = (await caught(
      openai.completions.create({ model: 'gpt-4o-mini', prompt: 'hi' }),
    )) as InstanceType<typeof OpenAI.NotFoundError>;
    expect(legacy).toBeInstanceOf(OpenAI.NotFoundError);
    expect(legacy.type).toBe('not_found_error');
    expect(legacy.message).toContain('the gateway does not serve POST /v1/completions');
  });
});

describe('a hard budget with money left, less than the estimate', () => {
  it('says how much is left and why the request does not fit; dollar fields are rounded', async () => {
    const feature = { headers: { 'x-modelmaxx-feature': 'small' } };
    // Without max_tokens the estimate counts 4096 output tokens: about $0.0025, over $0.0005.
    const first = (await caught(
      openai.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }, feature),
    )) as InstanceType<typeof OpenAI.RateLimitError>;
    expect(first).toBeInstanceOf(OpenAI.RateLimitError);
    expect(first.message).toContain(
      'budget "small" (feature small, UTC day) has $0.000500 left of $0.000500 ($0.00 spent), less than this request may cost: up to $0.00',
    );
    expect(first.message).toContain('output from max_tokens, 4096 tokens when absent');
    // With a small max_tokens it fits; a few answers spend float sums of their costs.
    for (let index = 0; index < 5; index += 1) {
      await openai.chat.completions.create(
        {
          model: 'gpt-4o-mini',
          max_tokens: 40,
          messages: [{ role: 'user', content: `Hi ${index}` }],
        },
        feature,
      );
    }
    const after = (await caught(
      openai.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }, feature),
    )) as InstanceType<typeof OpenAI.RateLimitError>;
    const budget = (after.error as { budget: Record<string, number> }).budget;
    expect(budget['spent_usd']).toBeGreaterThan(0);
    for (const key of ['spent_usd', 'reserved_usd', 'request_estimate_usd']) {
      const value = budget[key]!;
      // At most 12 significant digits: no 0.00046874999999999993.
      expect(value, key).toBe(Number(value.toPrecision(12)));
    }
  });
});

describe('a budget 429 is final for the SDKs', () => {
  it('x-should-retry: false: one request, no hours-long sleep on retry-after (default retries)', async () => {
    let requests = 0;
    const counting: typeof fetch = (input, init) => {
      requests += 1;
      return fetch(input, init);
    };
    // Default maxRetries (2): without the header, @anthropic-ai/sdk sleeps the retry-after
    // (the seconds to midnight UTC) before each retry, and the openai SDK retries with back-off.
    const anthropicDefault = new Anthropic({ baseURL: sdk.url, apiKey: 'unused', fetch: counting });
    const openaiDefault = new OpenAI({
      baseURL: `${sdk.url}/v1`,
      apiKey: 'unused',
      fetch: counting,
    });
    const feature = { headers: { 'x-modelmaxx-feature': 'small' } };
    const started = Date.now();
    const refused = (await caught(
      anthropicDefault.messages.create(
        { model: 'claude-haiku-4-5', max_tokens: 4096, messages: hi },
        feature,
      ),
    )) as InstanceType<typeof Anthropic.RateLimitError>;
    expect(refused).toBeInstanceOf(Anthropic.RateLimitError);
    expect(refused.headers.get('x-should-retry')).toBe('false');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const openaiRefused = await caught(
      openaiDefault.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }, feature),
    );
    expect(openaiRefused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(requests).toBe(2);
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 20_000);
});

describe('config: a misspelt field is an error naming it, not a silent default', () => {
  it('top level, upstreams and limits (resolveConfig); keys, budgets, rate limits, alerts (access)', () => {
    const flags = { upstreamFlags: [], env: {}, source: 'gateway.json' };
    expect(() => resolveConfig({ upstream: { openai: {} } }, flags)).toThrow(
      'gateway.json: "upstream": unknown field (the fields are upstreams, models, policies, limits,',
    );
    // `baseUrl` ignored would have left this upstream on https://api.openai.com/v1.
    expect(() =>
      resolveConfig({ upstreams: { openai: { baseUrl: 'http://127.0.0.1:1/v1' } } }, flags),
    ).toThrow('gateway.json: upstreams.openai: Unrecognized key: "baseUrl"');
    expect(() => resolveConfig({ limits: { maxBody: 5 } }, flags)).toThrow(
      'gateway.json: limits: Unrecognized key: "maxBody"',
    );
    // The access layer's fields are known at the top level.
    expect(() =>
      resolveConfig({ budgets: [], keys: [], alerts: {}, $schema: 'x' }, flags),
    ).not.toThrow();

    const budget = { name: 'b', scope: 'team', period: 'day', limitUsd: 1 };
    expect(() => createAccess({ budgets: [{ ...budget, warnat: 0.5 }] })).toThrow(
      'budgets.0: Unrecognized key: "warnat"',
    );
    expect(() =>
      createAccess({ rateLimits: [{ name: 'r', scope: 'key', requestPerMinute: 5 }] as never }),
    ).toThrow('Unrecognized key: "requestPerMinute"');
    expect(() =>
      createAccess({
        alerts: { webhooks: [{ url: 'http://127.0.0.1:1/h', header: {} }] } as never,
      }),
    ).toThrow('alerts.webhooks.0: Unrecognized key: "header"');
    expect(() =>
      createAccess({
        alerts: { rules: [{ kind: 'budget', name: 'b', budgte: 'x' }] } as never,
      }),
    ).toThrow('Unrecognized key: "budgte"');
  });
});

describe('base URLs the SDKs would not take', () => {
  it('an Anthropic one ending in /v1 and an OpenAI-style one without a path are warned of', () => {
    const warnings = (flags: string[]) =>
      baseUrlWarnings(resolveConfig({}, { upstreamFlags: flags, env: {} }));
    expect(
      warnings([
        'openai=http://127.0.0.1:8787',
        'anthropic=http://127.0.0.1:8787/v1/',
        'local=http://127.0.0.1:11434/api/v1',
      ]),
    ).toEqual([
      'upstream "openai" (openai): base URL http://127.0.0.1:8787 has no path, and the gateway appends /chat/completions (as the OpenAI SDK does), so calls go to http://127.0.0.1:8787/chat/completions; OpenAI-style base URLs usually end in /v1',
      'upstream "anthropic" (anthropic): base URL http://127.0.0.1:8787/v1 ends in /v1, and the gateway appends /v1/messages (as the Anthropic SDK does), so calls go to http://127.0.0.1:8787/v1/v1/messages; give http://127.0.0.1:8787',
    ]);
    // The documented ones: nothing to say.
    expect(warnings([`openai=${sim.openaiBaseURL}`, `anthropic=${sim.anthropicBaseURL}`])).toEqual(
      [],
    );
  });
});

describe('an upstream without a key', () => {
  it('answering 401: the gateway says once which env var to set (the app key is not forwarded)', async () => {
    const warnings: string[] = [];
    const logger = {
      info: () => undefined,
      warn: (message: string) => warnings.push(message),
      error: () => undefined,
    };
    // No MODELMAXX_UPSTREAM_OPENAI_KEY in env: the upstream is called without a key.
    const keyless = await startSdkGateway(resolveConfig({}, simUpstreams(sim)), { logger });
    try {
      for (let index = 0; index < 2; index += 1) {
        const refused = await caught(
          keyless.openai.chat.completions.create({
            model: 'gpt-4o-mini',
            messages: [{ role: 'user', content: `Hi ${index} [sim:status=401]` }],
          }),
        );
        expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);
      }
      expect(warnings).toEqual([
        'upstream "openai" answered 401 and the gateway has no key for it: set MODELMAXX_UPSTREAM_OPENAI_KEY (the app\'s own Authorization / x-api-key is never forwarded upstream)',
      ]);
    } finally {
      await keyless.close();
    }
  });
});

describe('modelmaxx gateway --config with a bad access field', () => {
  it('names the file, as the gateway fields do (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelmaxx-adoption-'));
    try {
      const file = join(dir, 'gateway.json');
      const budget = { name: 'b', scope: 'teams', period: 'day', limitUsd: 1 };
      writeFileSync(file, JSON.stringify({ upstreams: { openai: {} }, budgets: [budget] }));
      const bin = join(import.meta.dirname, '..', '..', 'cli', 'bin', 'modelmaxx.js');
      const failed = (await promisify(execFile)(
        process.execPath,
        [bin, 'gateway', '--port', '0', '--config', file],
        { timeout: 60_000 },
      ).catch((error: unknown) => error)) as { code: number; stderr: string };
      expect(failed.code).toBe(2);
      expect(failed.stderr).toBe(
        `modelmaxx gateway: ${file}: invalid gateway access config: budgets.0.scope: Invalid option: expected one of "global"|"key"|"user"|"team"|"feature"\n`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
