import { Agent, request } from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { generateTask, startLlmSim } from '../src/index.js';
import type { LlmSim, LlmSimOptions } from '../src/index.js';

const sims: LlmSim[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((sim) => sim.close()));
});

async function transcript(options: LlmSimOptions): Promise<unknown[]> {
  const sim = await startLlmSim(options);
  sims.push(sim);
  const openai = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
  const anthropic = new Anthropic({ baseURL: sim.anthropicBaseURL, apiKey: 'k', maxRetries: 0 });
  const out: unknown[] = [];
  for (let index = 0; index < 12; index++) {
    const task = generateTask({ seed: 1, index });
    const { data, response } = await openai.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: task.prompt }] })
      .withResponse();
    out.push([
      data.id,
      data.choices[0]?.message.content,
      data.usage,
      response.headers.get('x-request-id'),
    ]);
    const message = await anthropic.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 200,
      messages: [{ role: 'user', content: task.prompt }],
    });
    out.push([message.id, message.content, message.usage]);
    const responses = await openai.responses.create({ model: 'o3-mini', input: task.prompt });
    out.push([responses.id, responses.output_text, responses.usage]);
  }
  return out;
}

describe('determinism', () => {
  it('gives the same ids, answers and usage under the same seed, and different ones under another', async () => {
    const first = await transcript({ seed: 5 });
    const second = await transcript({ seed: 5 });
    expect(second).toEqual(first);
    const other = await transcript({ seed: 6 });
    expect(other).not.toEqual(first);
    // Ids differ everywhere under another seed.
    expect(other.map((entry) => (entry as unknown[])[0])).not.toContainEqual(
      (first[0] as unknown[])[0],
    );
  });

  it('draws latency from the same seeded distribution (and none at latencyScale 0)', async () => {
    // latencyScale stays 0: latency set with setModel applies anyway, to that model only.
    const sim = await startLlmSim({ seed: 1 });
    sims.push(sim);
    sim.setModel('gpt-4o-mini', { latency: { ttftMs: 400, perTokenMs: 1, sigma: 0 } });
    const client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
    let started = performance.now();
    await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);

    // Streams: the first chunk waits for the time to first token, later chunks come paced.
    started = performance.now();
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hello [sim:tokens=40]' }],
      stream: true,
    });
    const arrivals: number[] = [];
    for await (const chunk of stream)
      if (chunk.choices[0]?.delta.content) arrivals.push(performance.now() - started);
    expect(arrivals[0]).toBeGreaterThanOrEqual(390);
    expect((arrivals[arrivals.length - 1] ?? 0) - (arrivals[0] ?? 0)).toBeGreaterThanOrEqual(30);

    // Other models keep latencyScale 0: no delay.
    started = performance.now();
    await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(performance.now() - started).toBeLessThan(300);
  });

  it('delays the first chunk with slow-first regardless of latencyScale', async () => {
    const sim = await startLlmSim();
    sims.push(sim);
    const client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
    const started = performance.now();
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x [sim:slow-first=300]' }],
      stream: true,
    });
    let first = 0;
    for await (const chunk of stream) {
      if (first === 0 && chunk.choices[0]?.delta.content) first = performance.now() - started;
    }
    expect(first).toBeGreaterThanOrEqual(290);
  });

  it('is fast at zero latency: 500 sequential requests over one keep-alive connection', async () => {
    const sim = await startLlmSim();
    sims.push(sim);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    let sockets = 0;
    const body = JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'What is 37 * 48?' }],
    });
    const post = () =>
      new Promise<number>((resolve, reject) => {
        const call = request(`${sim.openaiBaseURL}/chat/completions`, {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json' },
        });
        call.on('socket', (socket) => {
          if (!(socket as { counted?: boolean }).counted) {
            (socket as { counted?: boolean }).counted = true;
            sockets++;
          }
        });
        call.on('response', (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        });
        call.on('error', reject);
        call.end(body);
      });
    expect(await post()).toBe(200);
    const started = performance.now();
    for (let index = 0; index < 500; index++) await post();
    const elapsed = performance.now() - started;
    agent.destroy();
    expect(sockets).toBe(1);
    expect(elapsed).toBeLessThan(5000);
  });
});
