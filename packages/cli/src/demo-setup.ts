/** What `modelmaxx demo` sets up: the simulated services, their router and its weights. */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace';
import OpenAI from 'openai';
import { observe } from '@modelmaxx/instrument';
import type { Evaluator } from '@modelmaxx/instrument';
import { checkAnswer, startLlmSim, TASK_KINDS } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import {
  ShadowMonitor,
  WeightUpdater,
  collectorStatsSource,
  createRouter,
  pairwiseJudge,
  parsePolicy,
} from '@modelmaxx/router';
import type { Policy, PolicyInput, Router, WeightTable } from '@modelmaxx/router';

export const DEMO_SERVICES = ['support-bot', 'search', 'code-review'] as const;
export const DEMO_FRONTIER_MODEL = 'gpt-4o';
/** Reference answers the demo's routers keep (`shadow.referenceCache`). */
const DEMO_REFERENCE_CACHE = 5000;

export interface DemoOptions {
  /** Collector base URL; when nothing answers `/healthz` there, one is started in-process. */
  url: string;
  requests: number;
  /** Exit after the traffic even when the collector was started here. */
  exit: boolean;
  /** Data folder of an in-process collector (default `./.modelmaxx`). */
  dataDir?: string;
  seed?: number;
  /** Requests in flight at once (default 8). */
  concurrency?: number;
  /** Bearer tokens for a collector that requires them. */
  ingestToken?: string | undefined;
  readToken?: string | undefined;
  stdout: (text: string) => void;
  /** Resolves when the user wants to stop (Ctrl-C); only awaited when the collector runs here. */
  waitForStop?: () => Promise<void>;
  /** llm-sim's latency scale (default 0.05; 0 answers at once: benches). */
  latencyScale?: number;
  /**
   * The simulated failures (default true). Without latency they are best off: a 429 cools a
   * model down for a second of wall time, hundreds of requests, and half the requests failed.
   */
  failures?: boolean;
  /** Changes to the routing policy's shadow settings (bench/shadow-spend.bench.ts). */
  shadow?: PolicyInput['shadow'];
  /** The shadow judge's model (default gpt-4o-mini). */
  judgeModel?: string;
  /** Spans each service's exporter may hold (default 8192; more when llm-sim has no latency). */
  exportQueueSize?: number;
}

export interface DemoSummary {
  calls: number;
  services: number;
  errors: number;
  spendUsd: number;
  frontierSpendUsd: number;
  savingsShare: number;
  scores: number;
  /** Requests that failed after the router's fallbacks (all candidates failed or cooling down). */
  failedRequests: number;
  weightsBefore: string;
  weightsAfter: string;
}

function demoPolicy(shadow: PolicyInput['shadow'] = {}): Policy {
  return parsePolicy({
    name: 'demo',
    candidates: [
      { model: 'gpt-4o-mini', priorQuality: 0.8 },
      { model: 'llama-3.1-8b-instant', priorQuality: 0.7 },
      { model: DEMO_FRONTIER_MODEL, priorQuality: 0.9 },
    ],
    goal: { qualityMargin: 0.05 },
    exploration: 0.1,
    statsWindow: '1h',
    refreshIntervalMs: 2000,
    fallback: { chain: [DEMO_FRONTIER_MODEL], maxAttempts: 3, cooldownMs: 1000, timeoutMs: 10_000 },
    // A fifth of the routed calls are compared with the reference (the frontier model) by a
    // judge, off the response path: the savings ledger's quality figures. The settings
    // docs/routing.md recommends: sampling stops once the policy's traffic-weighted difference
    // (the ledger total) is within ±2 points, the verdicts spread over classes and models by
    // traffic and spread ('total'; per class and model, 'class' kept shadowing a third of the
    // spend forever), and a repeated prompt is judged against the kept reference answer.
    shadow: {
      enabled: true,
      sampleRate: 0.2,
      allocation: 'total',
      referenceCache: DEMO_REFERENCE_CACHE,
      concurrency: 4,
      queueSize: 200,
      ...shadow,
    },
  });
}

/** `hard tasks: gpt-4o 80% · gpt-4o-mini 15% …` for a few classes. */
export function describeWeights(table: WeightTable, classes: readonly string[]): string {
  return classes
    .map((classKey) => {
      const weights = table.classes.get(classKey) ?? table.fallbackClass;
      const parts = [...weights.weights]
        .sort((a, b) => b.weight - a.weight)
        .map((weight) => `${weight.model} ${(weight.weight * 100).toFixed(0)}%`);
      return `    ${classKey.padEnd(16)} ${parts.join(' · ')}`;
    })
    .join('\n');
}

/** Counts the chat spans that end, so the summary can wait until the collector stored them all. */
export class ChatSpanCounter implements SpanProcessor {
  count = 0;
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    if (span.attributes['gen_ai.operation.name'] === 'chat') this.count++;
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface ServiceClients {
  name: string;
  provider: TracerProvider;
  client: OpenAI;
}

/** The last user message's text of a chat request. */
function promptOf(request: unknown): string {
  const messages = (request as { messages?: { role?: string; content?: unknown }[] } | undefined)
    ?.messages;
  if (!Array.isArray(messages)) return '';
  for (let index = messages.length - 1; index >= 0; index--) {
    const message = messages[index];
    if (message?.role === 'user' && typeof message.content === 'string') return message.content;
  }
  return '';
}

/** Scores a simulated task's answer (1 right, 0 wrong); prompts that are no task get no score. */
const correctness: Evaluator = (call) => {
  const prompt = promptOf(call.request);
  if (!/What is|Reverse the word|How many times|Extract the/.test(prompt)) return undefined;
  const right = checkAnswer(prompt, call.outputText);
  return {
    name: 'demo.correct',
    score: right ? 1 : 0,
    label: right ? 'right' : 'wrong',
    explanation: 'checked against the simulated task',
  };
};

/** llm-sim with some latency, and failures on purpose: the cheap models hit rate limits and 500s, so fallbacks happen. */
export async function startDemoSim(
  seed: number,
  latencyScale = 0.05,
  failures = true,
): Promise<LlmSim> {
  const sim = await startLlmSim({ seed, latencyScale, failureScale: failures ? 1 : 0 });
  if (!failures) return sim;
  sim.setModel('llama-3.1-8b-instant', {
    failure: { rate429: 0.05, rate500: 0.02, rateTimeout: 0, retryAfterSeconds: 1 },
  });
  sim.setModel('gpt-4o-mini', {
    failure: { rate429: 0.02, rate500: 0.02, rateTimeout: 0, retryAfterSeconds: 1 },
  });
  sim.setModel(DEMO_FRONTIER_MODEL, {
    failure: { rate429: 0.005, rate500: 0.005, rateTimeout: 0 },
  });
  return sim;
}

/** One tracer provider (exporting to the collector) and one observed OpenAI client per service. */
export function demoServices(
  url: string,
  sim: LlmSim,
  ingestToken: string | undefined,
  chatSpans: ChatSpanCounter,
  exportQueueSize = 8192,
): ServiceClients[] {
  const headers =
    ingestToken === undefined ? undefined : { authorization: `Bearer ${ingestToken}` };
  return DEMO_SERVICES.map((name) => {
    const provider = new TracerProvider({
      resource: resourceFromAttributes({
        'service.name': name,
        'service.version': '1.0.0',
        'deployment.environment.name': 'demo',
      }),
      spanProcessors: [
        chatSpans,
        new BatchSpanProcessor({
          exporter: new OTLPTraceExporter({
            url: `${url}/v1/traces`,
            ...(headers === undefined ? {} : { headers }),
          }),
          scheduledDelayMillis: 500,
          maxExportBatchSize: 256,
          maxQueueSize: exportQueueSize,
        }),
      ],
    });
    const client = observe(
      new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'sim', maxRetries: 0 }),
      // Only the correctness check scores calls: the router averages every score of a call, and the
      // built-in checks (which nearly always pass here) would flatten the quality differences.
      { tracerProvider: provider, evaluators: [correctness], builtinEvaluators: false },
    );
    return { name, provider, client };
  });
}

/**
 * The product path: the router's weight updater over the collector's `/api/stats`, and one
 * router per service (with a pairwise shadow judge).
 */
export function demoRouting(
  services: readonly ServiceClients[],
  url: string,
  readToken: string | undefined,
  random: () => number,
  tuning: Pick<DemoOptions, 'shadow' | 'judgeModel'> = {},
): { weights: WeightUpdater; routers: Router[] } {
  const policy = demoPolicy(tuning.shadow);
  const weights = new WeightUpdater({
    policy,
    source: collectorStatsSource({
      url,
      ...(readToken === undefined ? {} : { token: readToken }),
      window: policy.statsWindow,
    }),
    random,
    classes: TASK_KINDS.flatMap((kind) => [`${kind}-easy`, `${kind}-hard`]),
  });
  // One stop rule for the three services' routers (one policy, like the weights): their
  // verdicts count together toward the shadow target.
  const shadowMonitor = new ShadowMonitor(policy);
  const routers = services.map((service) =>
    createRouter({
      shadowMonitor,
      policy,
      clients: { openai: service.client },
      weights,
      random,
      tracer: service.provider.getTracer('@modelmaxx/router'),
      judge: pairwiseJudge({
        client: service.client,
        model: tuning.judgeModel ?? 'gpt-4o-mini',
        random,
      }),
    }),
  );
  return { weights, routers };
}
