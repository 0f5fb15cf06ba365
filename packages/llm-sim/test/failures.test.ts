import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startLlmSim } from '../src/index.js';
import type { LlmSim } from '../src/index.js';

const sims: LlmSim[] = [];
async function start(options: Parameters<typeof startLlmSim>[0] = {}): Promise<LlmSim> {
  const sim = await startLlmSim(options);
  sims.push(sim);
  return sim;
}
afterEach(async () => {
  await Promise.all(sims.splice(0).map((sim) => sim.close()));
});

const user = (content: string): OpenAI.Chat.ChatCompletionMessageParam[] => [
  { role: 'user', content },
];

describe('errors and failures', () => {
  it('answers unknown models with 404 in the OpenAI error shape', async () => {
    const sim = await start();
    const client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
    const error = await client.chat.completions
      .create({ model: 'gpt-9', messages: user('hi') })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).error).toEqual({
      message: 'The model `gpt-9` does not exist or you do not have access to it.',
      type: 'invalid_request_error',
      param: null,
      code: 'model_not_found',
    });
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).requestID).toMatch(/^req_/);
  });

  it('sends 429 with retry-after, which the SDK honours before retrying', async () => {
    const sim = await start();
    const client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 2 });
    const before = sim.requestCount();
    const started = performance.now();
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: user('hello [sim:status=429 retry-after=1 times=1]'),
    });
    const elapsed = performance.now() - started;
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(sim.requestCount() - before).toBe(2);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(sim.stats()['gpt-4o-mini']).toMatchObject({ requests: 2, errors: 1 });

    const noRetry = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
    const error = await noRetry.chat.completions
      .create({ model: 'gpt-4o-mini', messages: user('again [sim:status=429 retry-after=4]') })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const rateLimit = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rateLimit.headers.get('retry-after')).toBe('4');
    expect(rateLimit.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(rateLimit.code).toBe('rate_limit_exceeded');
  });

  it('retries 500s: every attempt fails while the directive holds', async () => {
    const sim = await start();
    const client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 2 });
    const before = sim.requestCount();
    const error = await client.chat.completions
      .create({ model: 'gpt-4o', messages: user('x [sim:status=500 retry-after=0]') })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(sim.requestCount() - before).toBe(3);
  });

  it('holds the response past the client timeout and closes cleanly', async () => {
    const sim = await start({ timeoutHoldMs: 60_000 });
    const client = new OpenAI({
      baseURL: sim.openaiBaseURL,
      apiKey: 'k',
      maxRetries: 0,
      timeout: 300,
    });
    const started = performance.now();
    const error = await client.chat.completions
      .create({ model: 'gpt-4o', messages: user('x [sim:timeout]') })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(performance.now() - started).toBeLessThan(5000);
    // A second held request is still open when we close: close() must not wait for it.
    const pending = client.chat.completions
      .create({ model: 'gpt-4o', messages: user('y [sim:timeout]') }, { timeout: 30_000 })
      .catch((caught: unknown) => caught);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = performance.now();
    await sim.close();
    expect(performance.now() - closing).toBeLessThan(2000);
    expect(await pending).toBeInstanceOf(OpenAI.APIConnectionError);
  });

  it('answers 504 in the provider shape when the client waits out the hold', async () => {
    const sim = await start({ timeoutHoldMs: 50 });
    const client = new Anthropic({ baseURL: sim.anthropicBaseURL, apiKey: 'k', maxRetries: 0 });
    const error = await client.messages
      .create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'x [sim:timeout]' }],
      })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Anthropic.InternalServerError);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(504);
    expect((error as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      type: 'error',
      error: { type: 'timeout_error' },
    });
  });

  it('injects failures at run time with setModel and draws them deterministically', async () => {
    const sim = await start({ seed: 3 });
    const client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
    sim.setModel('gpt-4o-mini', { failure: { rate500: 1 } });
    await expect(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: user('hi') }),
    ).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    // Other models are untouched (random failures are off by default).
    await expect(
      client.chat.completions.create({ model: 'gpt-4o', messages: user('hi') }),
    ).resolves.toBeTruthy();
    sim.setModel('gpt-4o-mini', { failure: { rate500: 0, rate429: 0.5 } });
    const outcomes: string[] = [];
    for (let index = 0; index < 40; index++) {
      const result = await client.chat.completions
        .create({ model: 'gpt-4o-mini', messages: user(`hi ${index}`) })
        .then(
          () => 'ok',
          (error: unknown) => (error instanceof OpenAI.RateLimitError ? '429' : 'other'),
        );
      outcomes.push(result);
    }
    expect(outcomes.filter((outcome) => outcome === '429').length).toBeGreaterThan(8);
    expect(outcomes.filter((outcome) => outcome === 'ok').length).toBeGreaterThan(8);
    expect(outcomes).not.toContain('other');

    const again = await start({ seed: 3 });
    const client2 = new OpenAI({ baseURL: again.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
    again.setModel('gpt-4o-mini', { failure: { rate500: 1 } });
    await client2.chat.completions
      .create({ model: 'gpt-4o-mini', messages: user('hi') })
      .catch(() => undefined);
    again.setModel('gpt-4o-mini', { failure: { rate500: 0, rate429: 0.5 } });
    const outcomes2: string[] = [];
    for (let index = 0; index < 40; index++) {
      outcomes2.push(
        await client2.chat.completions
          .create({ model: 'gpt-4o-mini', messages: user(`hi ${index}`) })
          .then(
            () => 'ok',
            (error: unknown) => (error instanceof OpenAI.RateLimitError ? '429' : 'other'),
          ),
      );
    }
    expect(outcomes2).toEqual(outcomes);
  });

  it('applies random failure rates scaled by failureScale', async () => {
    const sim = await start({ failureScale: 10, seed: 9, timeoutHoldMs: 20 });
    const client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
    let failed = 0;
    for (let index = 0; index < 100; index++) {
      await client.chat.completions
        .create({ model: 'llama-3.1-8b-instant', messages: user(`q ${index}`) }, { timeout: 2000 })
        .catch(() => failed++);
    }
    // llama: (0.05 + 0.01 + 0.003) × 10 ≈ 63% failures.
    expect(failed).toBeGreaterThan(40);
    expect(failed).toBeLessThan(85);
  });

  it('answers malformed JSON and missing fields with 400', async () => {
    const sim = await start();
    const response = await fetch(`${sim.openaiBaseURL}/chat/completions`, {
      method: 'POST',
      body: '{nope',
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe(
      'invalid_request_error',
    );
    const unknownPath = await fetch(`${sim.url}/v1/nothing`);
    expect(unknownPath.status).toBe(404);
  });
});

describe('shutdown', () => {
  it('closes promptly while a slow stream is in flight', async () => {
    const sim = await start({ latencyScale: 1 });
    sim.setModel('gpt-4o', { latency: { ttftMs: 50, perTokenMs: 200, sigma: 0 } });
    const client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: user('long [sim:tokens=200]'),
      stream: true,
    });
    const consumed = (async () => {
      let chunks = 0;
      for await (const _chunk of stream) chunks++;
      return chunks;
    })().catch((caught: unknown) => caught);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const closing = performance.now();
    await sim.close();
    expect(performance.now() - closing).toBeLessThan(2000);
    expect(await consumed).toBeInstanceOf(Error);
  });
});
