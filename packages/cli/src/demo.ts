/**
 * `modelmaxx demo`: simulated app traffic through the router and the
 * instrumentation into a collector. Three services (support-bot, search,
 * code-review) send a mix of easy and hard tasks, streams, tool calls and
 * embeddings to llm-sim; some models fail on purpose so fallbacks happen;
 * an evaluator checks each answer with llm-sim's `checkAnswer`, and some
 * answers get later `feedback()`. The router's weights are refreshed from the
 * collector's `/api/stats` while the traffic runs (the router's `WeightUpdater`
 * over `collectorStatsSource`), so they shift visibly.
 */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace';
import OpenAI from 'openai';
import { startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import { feedback, observe, withLlmContext } from '@modelmaxx/instrument';
import type { Evaluator } from '@modelmaxx/instrument';
import { checkAnswer, generateTask, startLlmSim, TASK_KINDS } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { costOf } from '@modelmaxx/pricing';
import {
  WeightUpdater,
  collectorStatsSource,
  createRandom,
  createRouter,
  pairwiseJudge,
  parsePolicy,
} from '@modelmaxx/router';
import type { Policy, WeightTable } from '@modelmaxx/router';
import { formatUsd } from './format.js';
import { httpSource } from './query-source.js';

export const DEMO_SERVICES = ['support-bot', 'search', 'code-review'] as const;
const DEMO_FRONTIER_MODEL = 'gpt-4o';

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

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(new URL('/healthz', url), { signal: AbortSignal.timeout(1500) });
    return response.ok;
  } catch {
    return false;
  }
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

/**
 * The support bot's system prompt: a help-centre excerpt long enough (> 1024 tokens) for
 * OpenAI-style prompt caching, so repeated calls report cached input tokens.
 */
const SUPPORT_SYSTEM_PROMPT = [
  'You are the support assistant of Acme Cloud. Answer briefly and precisely.',
  ...Array.from(
    { length: 40 },
    (_, index) =>
      `Help-centre article ${index + 1}: accounts, billing, invoices, refunds, plan limits, API keys, rate limits and data retention are handled as described in section ${index + 1}.`,
  ),
].join('\n');

function demoPolicy(): Policy {
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
    // A fifth of the calls routed to a cheaper model are compared with the reference (the
    // frontier model) by a judge, off the response path: the savings ledger's quality figures.
    shadow: { enabled: true, sampleRate: 0.2, concurrency: 4, queueSize: 200 },
  });
}

/** `hard tasks: gpt-4o 80% · gpt-4o-mini 15% …` for a few classes. */
function describeWeights(table: WeightTable, classes: readonly string[]): string {
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
class ChatSpanCounter implements SpanProcessor {
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

interface ServiceClients {
  name: string;
  provider: TracerProvider;
  client: OpenAI;
}

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const out = options.stdout;
  const seed = options.seed ?? 1;
  const random = createRandom(seed);
  const runStart = new Date(Date.now() - 1000);
  let collector: RunningCollector | undefined;
  let url = options.url.replace(/\/+$/, '');
  if (!(await answers(url))) {
    const parsed = new URL(url);
    out(`modelmaxx demo: no collector answers at ${url}; starting one here\n`);
    collector = await startCollector({
      config: {
        host: parsed.hostname.replace(/^\[|\]$/g, ''),
        port: parsed.port === '' ? 4318 : Number(parsed.port),
        dataDir: options.dataDir ?? './.modelmaxx',
      },
    });
    url = collector.url;
  }

  const contextManager = new AsyncLocalStorageContextManager();
  contextManager.enable();
  const ownContextManager = context.setGlobalContextManager(contextManager);

  const sim: LlmSim = await startLlmSim({ seed, latencyScale: 0.05, failureScale: 1 });
  // Failures on purpose: the cheap models hit rate limits and 500s, so fallbacks happen.
  sim.setModel('llama-3.1-8b-instant', {
    failure: { rate429: 0.05, rate500: 0.02, rateTimeout: 0, retryAfterSeconds: 1 },
  });
  sim.setModel('gpt-4o-mini', {
    failure: { rate429: 0.02, rate500: 0.02, rateTimeout: 0, retryAfterSeconds: 1 },
  });
  sim.setModel(DEMO_FRONTIER_MODEL, {
    failure: { rate429: 0.005, rate500: 0.005, rateTimeout: 0 },
  });

  const headers =
    options.ingestToken === undefined
      ? undefined
      : { authorization: `Bearer ${options.ingestToken}` };
  const chatSpans = new ChatSpanCounter();
  const services: ServiceClients[] = DEMO_SERVICES.map((name) => {
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
          maxQueueSize: 8192,
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

  const policy = demoPolicy();
  const classes = TASK_KINDS.flatMap((kind) => [`${kind}-easy`, `${kind}-hard`]);
  // The product path: the router's weight updater over the collector's /api/stats.
  const weights = new WeightUpdater({
    policy,
    source: collectorStatsSource({
      url,
      ...(options.readToken === undefined ? {} : { token: options.readToken }),
      window: policy.statsWindow,
    }),
    random,
    classes,
  });
  const routers = services.map((service) =>
    createRouter({
      policy,
      clients: { openai: service.client },
      weights,
      random,
      tracer: service.provider.getTracer('@modelmaxx/router'),
      judge: pairwiseJudge({ client: service.client, model: 'gpt-4o-mini', random }),
    }),
  );
  const shownClasses = ['arithmetic-easy', 'arithmetic-hard', 'reverse-hard'];
  const weightsBefore = describeWeights(weights.current, shownClasses);
  weights.start();

  out(
    `modelmaxx demo: ${options.requests} requests from ${DEMO_SERVICES.join(', ')} via llm-sim (${sim.url}) into ${url}\n`,
  );
  let failed = 0;
  let firstError: string | undefined;
  let done = 0;
  const features = ['chat', 'ticket-summary', 'search-answer', 'review-comment'];
  const one = async (index: number): Promise<void> => {
    const serviceIndex = index % services.length;
    const service = services[serviceIndex]!;
    const router = routers[serviceIndex]!;
    const kind = TASK_KINDS[Math.floor(random() * TASK_KINDS.length)] ?? 'arithmetic';
    const difficulty = random() < 0.4 ? 'hard' : 'easy';
    const task = generateTask({ kind, difficulty, seed, index });
    const taskLabel = `${kind}-${difficulty}`;
    const userId = `user-${Math.floor(random() * 25)}`;
    const feature = features[(index + serviceIndex) % features.length] ?? 'chat';
    const shape = random();
    const embedding = service.name === 'search' && shape < 0.15;
    const supportStream = service.name === 'support-bot' && shape < 0.25;
    const toolCall = service.name === 'code-review' && shape < 0.2;
    // Calls that bypass the router get task labels of their own: a routing class is one kind of
    // work, and a long-prompt stream or a tool loop in an arithmetic class would skew its stats.
    const contextTask = embedding
      ? 'search-embedding'
      : supportStream
        ? 'support-stream'
        : toolCall
          ? 'code-lint'
          : taskLabel;
    await withLlmContext(
      { task: contextTask, feature, userId, conversationId: `conv-${index % 40}` },
      async () => {
        if (embedding) {
          await service.client.embeddings.create({
            model: 'text-embedding-3-small',
            input: task.prompt,
          });
          return;
        }
        if (supportStream) {
          // A streamed answer straight from one model (no router).
          const stream = await service.client.chat.completions.create({
            model: 'gpt-4o-mini',
            messages: [
              { role: 'system', content: SUPPORT_SYSTEM_PROMPT },
              { role: 'user', content: task.prompt },
            ],
            stream: true,
          });
          let text = '';
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
          if (text === '') throw new Error('empty stream');
          return;
        }
        if (toolCall) {
          // A tool call and the follow-up with the tool's result.
          const tools = [
            {
              type: 'function' as const,
              function: {
                name: 'run_linter',
                description: 'Runs the linter on a file',
                parameters: {
                  type: 'object',
                  properties: { path: { type: 'string' } },
                  required: ['path'],
                },
              },
            },
          ];
          const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
            { role: 'user', content: `Lint src/file-${index}.ts and summarise the problems.` },
          ];
          const first = await service.client.chat.completions.create({
            model: 'gpt-4o',
            messages,
            tools,
          });
          const call = first.choices[0]?.message.tool_calls?.[0];
          if (call !== undefined) {
            messages.push(first.choices[0]!.message, {
              role: 'tool',
              tool_call_id: call.id,
              content: '2 warnings: unused variable, missing return type',
            });
            await service.client.chat.completions.create({ model: 'gpt-4o', messages, tools });
          }
          return;
        }
        const completion = await router.chat.completions.create(
          { model: 'auto', messages: [{ role: 'user', content: task.prompt }] },
          { task: taskLabel },
        );
        const text = completion.choices[0]?.message.content ?? '';
        // A quarter of the answers get a user's thumbs up or down later.
        if (random() < 0.25 && completion.id !== '') {
          const right = checkAnswer(task, text);
          feedback({
            responseId: completion.id,
            name: 'user.thumbs',
            score: right ? 1 : 0,
            label: right ? 'up' : 'down',
          });
        }
      },
    ).catch((error: unknown) => {
      failed++;
      firstError ??= `${(error as Error).name}: ${(error as Error).message}`;
    });
    done++;
    if (done % 50 === 0) out(`  ${done} / ${options.requests}\n`);
  };

  const concurrency = options.concurrency ?? 8;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, options.requests) }, async () => {
      while (next < options.requests) await one(next++);
    }),
  );
  weights.stop();
  // The shadow comparisons still queued finish before the spans are flushed.
  await Promise.all(routers.map((router) => router.idle()));
  await Promise.all(services.map((service) => service.provider.forceFlush()));
  await Promise.all(services.map((service) => service.provider.shutdown()));
  await sim.close();
  if (ownContextManager) {
    context.disable();
  }
  await weights.refresh();
  const stale = weights.current.stale;
  const weightsAfter =
    describeWeights(weights.current, shownClasses) +
    (stale === undefined ? '' : `\n    note: ${stale}`);

  const summary = {
    ...(await summarize(
      url,
      options.readToken,
      runStart,
      chatSpans.count,
      weightsBefore,
      weightsAfter,
    )),
    failedRequests: failed,
  };
  out(formatSummary(summary, url, collector !== undefined));
  if (firstError !== undefined) out(`  first failed request: ${firstError.slice(0, 300)}\n`);
  if (collector !== undefined) {
    if (!options.exit && options.waitForStop !== undefined) {
      out(`\nThe collector keeps running at ${url}; Ctrl-C to stop.\n`);
      await options.waitForStop();
    }
    await collector.close();
  }
  return summary;
}

/** Waits (at most 30 s) until the collector has inserted every span it acknowledged. */
async function waitForStored(url: string, token: string | undefined): Promise<void> {
  const metric = (text: string, name: string) =>
    Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      const response = await fetch(new URL('/metrics', url), {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(5000),
      });
      if (!response.ok) return;
      const text = await response.text();
      const accepted = metric(text, 'modelmaxx_spans_accepted_total');
      const stored = metric(text, 'modelmaxx_spans_stored_total');
      if (!(stored < accepted)) return;
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function summarize(
  url: string,
  token: string | undefined,
  since: Date,
  expectedChatCalls: number,
  weightsBefore: string,
  weightsAfter: string,
): Promise<Omit<DemoSummary, 'failedRequests'>> {
  await waitForStored(url, token);
  const source = httpSource(url, token);
  const services = DEMO_SERVICES.map((name) => `'${name}'`).join(', ');
  const sinceText = since.toISOString().replace('T', ' ').replace('Z', '');
  const where = `ServiceName IN (${services}) AND Timestamp >= toDateTime64('${sinceText}', 3, 'UTC')`;
  try {
    let calls: Record<string, unknown> = {};
    // The collector acknowledges spans once they are durable and inserts them in batches:
    // wait until every chat span sent is in llm_calls (at most 30 s).
    for (let attempt = 0; attempt < 60; attempt++) {
      const result = await source.query(
        `SELECT count() AS calls, uniqExact(ServiceName) AS services, countIf(StatusCode = 'Error') AS errors,
           sum(ifNull(CostUSD, 0)) AS spend, sum(InputTokens) AS input, sum(OutputTokens) AS output,
           sum(CacheReadTokens) AS cache_read
         FROM modelmaxx.llm_calls WHERE ${where} AND Operation = 'chat'`,
      );
      calls = rowObject(result);
      if (Number(calls['calls'] ?? 0) >= expectedChatCalls) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const scores = rowObject(
      await source.query(
        `SELECT count() AS scores FROM modelmaxx.llm_scores
         WHERE TraceId IN (SELECT TraceId FROM modelmaxx.llm_calls WHERE ${where})`,
      ),
    );
    const frontier = costOf({
      provider: 'openai',
      model: DEMO_FRONTIER_MODEL,
      usage: {
        inputTokens: Number(calls['input'] ?? 0),
        outputTokens: Number(calls['output'] ?? 0),
        cacheReadTokens: Number(calls['cache_read'] ?? 0),
      },
    });
    const spendUsd = Number(calls['spend'] ?? 0);
    const frontierSpendUsd = frontier.known ? frontier.amount : Number.NaN;
    return {
      calls: Number(calls['calls'] ?? 0),
      services: Number(calls['services'] ?? 0),
      errors: Number(calls['errors'] ?? 0),
      spendUsd,
      frontierSpendUsd,
      savingsShare: frontierSpendUsd > 0 ? 1 - spendUsd / frontierSpendUsd : Number.NaN,
      scores: Number(scores['scores'] ?? 0),
      weightsBefore,
      weightsAfter,
    };
  } finally {
    await source.close();
  }
}

function rowObject(result: {
  columns: readonly { name: string }[];
  rows: readonly unknown[];
}): Record<string, unknown> {
  const row = result.rows[0];
  if (row === undefined) return {};
  if (Array.isArray(row)) {
    return Object.fromEntries(result.columns.map((column, index) => [column.name, row[index]]));
  }
  return row as Record<string, unknown>;
}

function formatSummary(summary: DemoSummary, url: string, local: boolean): string {
  const usd = (value: number) => `$${formatUsd(value)}`;
  const data = local ? '' : ` --url ${url}`;
  return `
modelmaxx demo: done
  chat calls stored    ${summary.calls} from ${summary.services} services (${summary.errors} failed attempts, ${summary.failedRequests} requests failed after fallbacks)
  spend                ${usd(summary.spendUsd)}
  always-${DEMO_FRONTIER_MODEL} would cost ${usd(summary.frontierSpendUsd)} (same tokens, ${DEMO_FRONTIER_MODEL} prices)
  savings              ${Number.isFinite(summary.savingsShare) ? `${(summary.savingsShare * 100).toFixed(1)}%` : 'n/a'}
  quality scores       ${summary.scores}
  router weights at the start (priors):
${summary.weightsBefore}
  router weights now (from ${url}/api/stats):
${summary.weightsAfter}

Where to look:
  dashboard            ${url}/
  report               pnpm exec modelmaxx report --by model${data}
                       pnpm exec modelmaxx report --by service --baseline ${DEMO_FRONTIER_MODEL}${data}
  SQL                  pnpm exec modelmaxx sql${data} "SELECT Task, RequestModel, count() AS calls, round(sum(CostUSD), 4) AS usd FROM modelmaxx.llm_calls GROUP BY Task, RequestModel ORDER BY Task, usd DESC"
  traces (Jaeger API)  ${url}/api/traces?service=support-bot&limit=5
  more                 docs/sql-cookbook.md, docs/traces.md
`;
}
