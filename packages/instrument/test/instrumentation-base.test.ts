import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ModelmaxxInstrumentation } from '../src/instrumentation.js';
import { waitFor } from './support/tracing.js';

// The instrumentation as an app's own OpenTelemetry SDK takes it: registered with
// `registerInstrumentations` (what NodeSDK does with `instrumentations: [...]`), it patches the
// SDK copies the app requires afterwards through InstrumentationBase's require hook, and its
// spans go to the provider the SDK hands it (not the global one, which stays unset here).

const require = createRequire(import.meta.url);
const packageJson = require('../package.json') as { peerDependencies: Record<string, string> };

interface ChatClient {
  chat: { completions: { create(body: object): Promise<{ choices: unknown[] }> } };
}
interface MessagesClient {
  messages: { create(body: object): Promise<{ content: unknown[] }> };
}

/** A fresh CJS copy of an SDK, required after the instrumentation's hook is in place. */
function requireFreshCopy(name: string): Record<string, unknown> {
  const packageDir = dirname(require.resolve(name));
  for (const file of Object.keys(require.cache)) {
    if (file.startsWith(packageDir)) delete require.cache[file];
  }
  return require(name) as Record<string, unknown>;
}

let sim: LlmSim;
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const instrumentation = new ModelmaxxInstrumentation();
let unregister: () => void;

beforeAll(async () => {
  sim = await startLlmSim({ seed: 3, latencyScale: 0 });
  unregister = registerInstrumentations({
    instrumentations: [instrumentation],
    tracerProvider: provider,
  });
});

afterAll(async () => {
  unregister();
  await sim.close();
  await provider.shutdown();
});

beforeEach(() => exporter.reset());

function openaiClient(): ChatClient {
  const { OpenAI } = requireFreshCopy('openai') as {
    OpenAI: new (options: object) => ChatClient;
  };
  return new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
}

const chatCall = (client: ChatClient) =>
  client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Through the SDK of the app.' }],
  });

describe('ModelmaxxInstrumentation (InstrumentationBase)', () => {
  it('declares openai and @anthropic-ai/sdk with the supported ranges of peerDependencies', () => {
    const definitions = instrumentation
      .getModuleDefinitions()
      .map((definition) => [definition.name, definition.supportedVersions]);
    expect(definitions).toEqual([
      ['openai', [packageJson.peerDependencies['openai']]],
      ['@anthropic-ai/sdk', [packageJson.peerDependencies['@anthropic-ai/sdk']]],
    ]);
  });

  it('patches an openai copy required after registration; its spans go to the given provider', async () => {
    const completion = await chatCall(openaiClient());
    expect(completion.choices).toHaveLength(1);
    await waitFor(() => exporter.getFinishedSpans().length === 1);
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('chat gpt-4o-mini');
    expect(span?.instrumentationScope.name).toBe('@modelmaxx/instrument');
    expect(span?.attributes).toMatchObject({
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.usage.cost.source': 'local',
    });
  });

  it('patches @anthropic-ai/sdk with one span per call (the SDK’s own tracing suppressed)', async () => {
    const { Anthropic } = requireFreshCopy('@anthropic-ai/sdk') as {
      Anthropic: new (options: object) => MessagesClient;
    };
    const client = new Anthropic({ baseURL: sim.anthropicBaseURL, apiKey: 'k', maxRetries: 0 });
    const message = await client.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Hello' }],
    });
    expect(message.content.length).toBeGreaterThan(0);
    await waitFor(() => exporter.getFinishedSpans().length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const spans = exporter.getFinishedSpans();
    expect(spans.map((span) => span.name)).toEqual(['chat claude-sonnet-4-5']);
    expect(spans[0]?.attributes['gen_ai.provider.name']).toBe('anthropic');
  });

  it('disable() unpatches the copies it patched and enable() patches them again', async () => {
    const client = openaiClient();
    instrumentation.disable();
    try {
      await chatCall(client);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(exporter.getFinishedSpans()).toHaveLength(0);
    } finally {
      instrumentation.enable();
    }
    await chatCall(client);
    await waitFor(() => exporter.getFinishedSpans().length === 1);
  });

  it('setConfig() reaches the patched methods (message content capture)', async () => {
    const client = openaiClient();
    instrumentation.setConfig({ captureMessageContent: true });
    try {
      await chatCall(client);
      await waitFor(() => exporter.getFinishedSpans().length === 1);
      const [span] = exporter.getFinishedSpans();
      expect(String(span?.attributes['gen_ai.input.messages'])).toContain(
        'Through the SDK of the app.',
      );
    } finally {
      instrumentation.setConfig({});
    }
  });
});
