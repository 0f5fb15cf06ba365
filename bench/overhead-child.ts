/**
 * The client side of the instrument overhead benchmark, in a process of its own (the simulator
 * runs in the parent): `node overhead-child.ts <baseURL> <blocks> <callsPerBlock> <warmup>`.
 *
 * It loads four independent copies of the openai SDK (each with its own classes and JIT state):
 * one left bare, one patched by `@modelmaxx/instrument`, one by our chat patch on
 * `InstrumentationBase` (instrumentation-base-prototype.ts, applied by its require hook), one by
 * `@opentelemetry/instrumentation-openai`, and then alternates short blocks of sequential
 * `chat.completions.create` calls between them in a rotating order, so that load from elsewhere
 * on the machine hits all four alike. The instrumentations send spans through one
 * BatchSpanProcessor into an exporter that counts and drops them. The same is then repeated with an in-process fetch stub that returns the simulator's
 * recorded response (client work only). Prints one JSON line: per-block mean wall-clock and
 * client-CPU µs per call for each variant (loopback and stubbed), and span counts.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type OpenAI from 'openai';
import { OpenAIChatInstrumentationPrototype } from './instrumentation-base-prototype.ts';

const [baseURL = '', blocksArgument = '60', callsArgument = '20', warmupArgument = '200'] =
  process.argv.slice(2);
const blocks = Number(blocksArgument);
const callsPerBlock = Number(callsArgument);
const warmup = Number(warmupArgument);
const require = createRequire(import.meta.url);

type Variant = 'bare' | 'ours' | 'base' | 'contrib';
const VARIANTS: readonly Variant[] = ['bare', 'ours', 'base', 'contrib'];
type OpenAIModule = { OpenAI: typeof OpenAI };

/** A fresh copy of the CJS openai SDK: clears the SDK's files from the require cache first. */
function loadOpenAICopy(): OpenAIModule {
  const packageDir = dirname(require.resolve('openai'));
  for (const file of Object.keys(require.cache)) {
    if (file.startsWith(packageDir)) delete require.cache[file];
  }
  return require('openai') as OpenAIModule;
}

/** Counts spans per instrumentation scope and drops them. */
class CountingExporter implements SpanExporter {
  readonly counts = new Map<string, number>();
  export(spans: ReadableSpan[], resultCallback: (result: { code: number }) => void): void {
    for (const span of spans) {
      const scope = span.instrumentationScope.name;
      this.counts.set(scope, (this.counts.get(scope) ?? 0) + 1);
    }
    resultCallback({ code: 0 });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

const exporter = new CountingExporter();
const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter })] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);

const bareModule = loadOpenAICopy();

const { configureInstrumentation, instrumentOpenAI } = await import('@modelmaxx/instrument');
configureInstrumentation({ tracerProvider: provider });
const oursModule = loadOpenAICopy();
if (!instrumentOpenAI(oursModule)) throw new Error('instrumentOpenAI did not patch its copy');

const { OpenAIInstrumentation } = await import('@opentelemetry/instrumentation-openai');
const instrumentation = new OpenAIInstrumentation();
instrumentation.setTracerProvider(provider);
instrumentation.enable();
const contribModule = loadOpenAICopy();
// instrumentation-openai 0.22 declares openai ">=4.19.0 <7", so its require hook skips openai 7;
// the classes it wraps (OpenAI.Chat.Completions, Embeddings, Responses) are unchanged in 7.x,
// so apply its own module patch to this copy.
const version = (require('openai/version') as { VERSION: string }).VERSION;
for (const definition of instrumentation.getModuleDefinitions()) {
  if (definition.name === 'openai') definition.patch?.(contribModule, version);
}

// Loaded last: once enabled, its require hook patches every copy of openai loaded after it.
const prototype = new OpenAIChatInstrumentationPrototype();
prototype.setTracerProvider(provider);
prototype.enable();
const baseModule = loadOpenAICopy();

const clients: Record<Variant, OpenAI> = {
  bare: new bareModule.OpenAI({ baseURL, apiKey: 'sk-bench', maxRetries: 0 }),
  ours: new oursModule.OpenAI({ baseURL, apiKey: 'sk-bench', maxRetries: 0 }),
  base: new baseModule.OpenAI({ baseURL, apiKey: 'sk-bench', maxRetries: 0 }),
  contrib: new contribModule.OpenAI({ baseURL, apiKey: 'sk-bench', maxRetries: 0 }),
};
const request = {
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system' as const, content: 'You are a terse assistant.' },
    { role: 'user' as const, content: 'Name three prime numbers.' },
  ],
  max_tokens: 32,
  temperature: 0,
};

interface Measured {
  blockMeansUs: Record<Variant, number[]>;
  blockCpuUs: Record<Variant, number[]>;
}

/** Warm-up, then `blocks` rounds of `callsPerBlock` sequential calls per variant, rotating the order. */
async function measure(clientsByVariant: Record<Variant, OpenAI>): Promise<Measured> {
  for (let index = 0; index < warmup; index += 1) {
    for (const variant of VARIANTS)
      await clientsByVariant[variant].chat.completions.create(request);
  }
  const measured: Measured = {
    blockMeansUs: { bare: [], ours: [], base: [], contrib: [] },
    blockCpuUs: { bare: [], ours: [], base: [], contrib: [] },
  };
  for (let block = 0; block < blocks; block += 1) {
    for (let offset = 0; offset < VARIANTS.length; offset += 1) {
      const variant = VARIANTS[(block + offset) % VARIANTS.length] as Variant;
      const client = clientsByVariant[variant];
      const cpuStarted = process.cpuUsage();
      const started = performance.now();
      for (let call = 0; call < callsPerBlock; call += 1) {
        await client.chat.completions.create(request);
      }
      measured.blockMeansUs[variant].push(((performance.now() - started) * 1000) / callsPerBlock);
      const cpu = process.cpuUsage(cpuStarted);
      measured.blockCpuUs[variant].push((cpu.user + cpu.system) / callsPerBlock);
    }
  }
  return measured;
}

const loopback = await measure(clients);

// The same four copies again with a fetch that answers in-process with the simulator's own
// response body (recorded once above): no sockets, no server, so only the client's work is timed.
const recorded = await fetch(`${baseURL}/chat/completions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' },
  body: JSON.stringify(request),
});
const recordedBody = await recorded.text();
const recordedHeaders = Object.fromEntries(recorded.headers);
const stubFetch = (): Promise<Response> =>
  Promise.resolve(new Response(recordedBody, { status: 200, headers: recordedHeaders }));
const stubOptions = { baseURL, apiKey: 'sk-bench', maxRetries: 0, fetch: stubFetch };
const stubbed = await measure({
  bare: new bareModule.OpenAI(stubOptions),
  ours: new oursModule.OpenAI(stubOptions),
  base: new baseModule.OpenAI(stubOptions),
  contrib: new contribModule.OpenAI(stubOptions),
});

await provider.forceFlush();
const callsPerVariant = 2 * (warmup + blocks * callsPerBlock);
console.log(
  JSON.stringify({
    ...loopback,
    stubbed,
    callsPerVariant,
    spans: Object.fromEntries(exporter.counts),
  }),
);
await provider.shutdown();
