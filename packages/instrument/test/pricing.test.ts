import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openaiModule from 'openai';
import OpenAI from 'openai';
import { DEFAULT_SIM_MODELS, startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { costOf, loadCatalog } from '@modelmaxx/pricing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { configureInstrumentation, instrumentOpenAI } from '../src/index.js';
import { resetInstrumentationConfig } from '../src/config.js';
import { resetDefaultCatalog } from '../src/cost.js';
import { costAttributes, openaiUsageAttributes, serverAttributesOf } from './support/expected.js';
import { setupTracing, waitFor } from './support/tracing.js';
import type { TestTracing } from './support/tracing.js';

let tracing: TestTracing;
let sim: LlmSim;
let client: OpenAI;
let dir: string;

beforeAll(async () => {
  tracing = setupTracing();
  sim = await startLlmSim({ seed: 21, latencyScale: 0 });
  const template = DEFAULT_SIM_MODELS.find((model) => model.name === 'gpt-4o-mini');
  sim.addModel({ ...template!, name: 'acme-private-1', responseModel: 'acme-private-1' });
  instrumentOpenAI(openaiModule);
  client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
  dir = mkdtempSync(join(tmpdir(), 'mm-prices-'));
});

afterAll(async () => {
  await sim.close();
  await tracing.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => tracing.reset());
afterEach(() => {
  delete process.env['MODELMAXX_PRICES'];
  resetDefaultCatalog();
  resetInstrumentationConfig();
});

async function call(model: string) {
  const completion = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'price me' }],
  });
  await waitFor(() => tracing.spans().length === 1);
  return { completion, span: tracing.spans()[0]! };
}

function withoutCost(completion: OpenAI.Chat.Completions.ChatCompletion) {
  const usage = completion.usage!;
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': 'acme-private-1',
    'gen_ai.request.stream': false,
    ...serverAttributesOf(sim.openaiBaseURL),
    'gen_ai.response.model': completion.model,
    'gen_ai.response.id': completion.id,
    'gen_ai.response.finish_reasons': ['stop'],
    'gen_ai.usage.input_tokens': usage.prompt_tokens,
    'gen_ai.usage.output_tokens': usage.completion_tokens,
    'gen_ai.usage.cache_read.input_tokens': usage.prompt_tokens_details?.cached_tokens,
    'gen_ai.usage.reasoning.output_tokens': usage.completion_tokens_details?.reasoning_tokens,
  };
}

function expectedWith(
  catalog: ReturnType<typeof loadCatalog>['catalog'],
  completion: OpenAI.Chat.Completions.ChatCompletion,
) {
  const usage = completion.usage!;
  const expected = costOf(
    {
      provider: 'openai',
      model: completion.model,
      usage: {
        inputTokens: usage.prompt_tokens,
        outputTokens: usage.completion_tokens,
        cacheReadTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
        reasoningTokens: usage.completion_tokens_details?.reasoning_tokens ?? 0,
      },
    },
    { catalog },
  );
  if (!expected.known) throw new Error(expected.reason);
  expect(expected.model).toBe('acme-private-1');
  return {
    expected,
    attributes: {
      ...withoutCost(completion),
      ...costAttributes(expected),
    },
  };
}

describe('cost', () => {
  it('writes no cost attributes (never 0) for a model without a price', async () => {
    const { completion, span } = await call('acme-private-1');
    expect(span.attributes).toEqual(withoutCost(completion));
  });

  it('prices a model from a MODELMAXX_PRICES override file', async () => {
    const file = join(dir, 'prices.json');
    writeFileSync(
      file,
      JSON.stringify({
        prices: [
          { provider: 'openai', model: 'acme-private-1', input: 1, output: 4, date: '2026-01-01' },
        ],
      }),
    );
    process.env['MODELMAXX_PRICES'] = file;
    resetDefaultCatalog();
    const { completion, span } = await call('acme-private-1');
    const { catalog, errors } = loadCatalog({ env: process.env });
    expect(errors).toEqual([]);
    const { expected, attributes } = expectedWith(catalog, completion);
    expect(expected.entry.source).toBe(`MODELMAXX_PRICES ${file}`);
    expect(span.attributes).toEqual(attributes);
  });

  it('a broken price file costs only the overrides: built-in prices still apply', async () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ not json');
    process.env['MODELMAXX_PRICES'] = file;
    resetDefaultCatalog();
    const completion = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'still priced' }],
    });
    await waitFor(() => tracing.spans().length === 1);
    expect(tracing.spans()[0]?.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o',
      'gen_ai.request.stream': false,
      ...serverAttributesOf(sim.openaiBaseURL),
      'gen_ai.response.model': completion.model,
      'gen_ai.response.id': completion.id,
      'gen_ai.response.finish_reasons': ['stop'],
      ...openaiUsageAttributes(completion.model, completion.usage!),
    });
  });

  it('uses a catalog passed in the config', async () => {
    const { catalog } = loadCatalog({
      env: { MODELMAXX_PRICES: join(dir, 'config.json') },
      readFile: () =>
        JSON.stringify([{ provider: 'openai', model: 'acme-private-1', input: 2, output: 2 }]),
    });
    configureInstrumentation({ catalog });
    const { completion, span } = await call('acme-private-1');
    const { expected, attributes } = expectedWith(catalog, completion);
    expect(expected.amount).toBeGreaterThan(0);
    expect(span.attributes).toEqual(attributes);
  });
});
