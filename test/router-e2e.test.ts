/**
 * The routing loop end to end, with nothing mocked: llm-sim serves a cheap model (gpt-4o-mini)
 * and a strong one (gpt-4o) with their own price, latency and quality profiles → the routed
 * client (`createRouter`) calls them through openai SDK clients instrumented with `observe()`,
 * whose user evaluator scores each answer with llm-sim's `checkAnswer` → the spans go over OTLP
 * to a real collector with embedded ClickHouse (chDB) → `/api/stats` → `WeightUpdater` over
 * `collectorStatsSource` → new weights for the next round of requests.
 *
 * Determinism: seeded llm-sim (which answers are right is a function of seed, model and prompt),
 * seeded router and updater random sources, requests issued in a fixed order (the router draws
 * its choice synchronously when a request starts), and after each round the test waits until
 * `/api/stats` holds every call and score of the round before refreshing the weights. So the
 * weights and decisions do not depend on timing or load; only latencies do, and no assertion
 * looks at them.
 *
 * `E2E_SEED=N` runs it with another seed; `E2E_DEBUG=1` prints the weight tables of every round.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickhouseStatsSource, startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import { observe } from '@modelmaxx/instrument';
import type { Evaluator } from '@modelmaxx/instrument';
import { checkAnswer, generateTask, startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import {
  WeightUpdater,
  collectorStatsSource,
  createRandom,
  createRouter,
  parsePolicy,
} from '@modelmaxx/router';
import type { WeightTable } from '@modelmaxx/router';
import type { StatsResponse } from '@modelmaxx/semconv/schemas';

const SERVICE = 'router-e2e';
const CHEAP = 'gpt-4o-mini';
const STRONG = 'gpt-4o';
const EASY = 'arithmetic-easy';
const HARD = 'arithmetic-hard';
const SEED = Number(process.env.E2E_SEED ?? 5);
/** Rounds × requests per round (half easy, half hard, interleaved); weights refresh between rounds. */
const ROUNDS = 8;
const PER_ROUND = 40;
/** The decisions measured: the last LAST requests of each class. */
const LAST = 60;

const policy = parsePolicy({
  name: 'e2e',
  candidates: [
    { model: CHEAP, priorQuality: 0.85 },
    { model: STRONG, priorQuality: 0.9 },
  ],
  goal: { qualityMargin: 0.05 },
  exploration: 0.04,
  statsWindow: '1h',
  // The test refreshes between rounds itself.
  refreshIntervalMs: 3_600_000,
  fallback: { chain: [STRONG], maxAttempts: 2, cooldownMs: 1000, timeoutMs: 15_000 },
});

/** The last user message of a chat request. */
function promptOf(request: unknown): string {
  const messages = (request as { messages?: { role?: string; content?: unknown }[] } | undefined)
    ?.messages;
  const last = messages?.findLast((message) => message.role === 'user');
  return typeof last?.content === 'string' ? last.content : '';
}

/** The quality signal: 1 when llm-sim's task was answered right, else 0. */
const correctness: Evaluator = (call) => {
  const right = checkAnswer(promptOf(call.request), call.outputText);
  return { name: 'e2e.correct', score: right ? 1 : 0, label: right ? 'right' : 'wrong' };
};

interface Decision {
  index: number;
  classKey: string;
  /** Model of the completion the app got, without its date (gpt-4o-mini-2024-07-18 → gpt-4o-mini). */
  answeredBy: string;
  /** As reported (a dated snapshot). */
  reported: string;
}

let dataDir: string;
let collector: RunningCollector;
let sim: LlmSim;
let provider: TracerProvider;
const memory = new InMemorySpanExporter();
const contextManager = new AsyncLocalStorageContextManager();
let updater: WeightUpdater;
const decisions: Decision[] = [];
const tables: WeightTable[] = [];
let lastStats: StatsResponse;
let runtimeMs = 0;

const spansNamed = (prefix: string): ReadableSpan[] =>
  memory.getFinishedSpans().filter((span) => span.name.startsWith(prefix));

const sum = (rows: StatsResponse['rows'], key: 'calls' | 'scoreCount') =>
  rows.reduce((total, row) => total + row[key], 0);

/** Waits until `/api/stats` holds every chat call (and its score) that ended so far. */
async function waitForStats(
  source: () => Promise<StatsResponse>,
  calls: number,
  scores: number,
): Promise<StatsResponse> {
  const deadline = Date.now() + 45_000;
  for (;;) {
    const stats = await source();
    const seenCalls = sum(stats.rows, 'calls');
    const seenScores = sum(stats.rows, 'scoreCount');
    if (seenCalls >= calls && seenScores >= scores) return stats;
    if (Date.now() > deadline) {
      throw new Error(
        `/api/stats has ${seenCalls} / ${calls} calls and ${seenScores} / ${scores} scores after 45 s`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  const started = performance.now();
  context.setGlobalContextManager(contextManager.enable());
  dataDir = await mkdtemp(join(tmpdir(), 'mm-router-e2e-'));
  collector = await startCollector({ config: { port: 0, dataDir } });
  // Profiles: the defaults' prices (gpt-4o-mini 0.15 / 0.60, gpt-4o 2.50 / 10 USD per million
  // tokens) and latency medians (scaled down), no random failures, and quality (P(right)) on
  // arithmetic set apart: gpt-4o-mini 0.98 easy / 0.35 hard, gpt-4o 0.98 / 0.92.
  sim = await startLlmSim({ seed: SEED, latencyScale: 0.02 });
  sim.setModel(CHEAP, { quality: { arithmetic: { easy: 0.98, hard: 0.35 } } });
  sim.setModel(STRONG, { quality: { arithmetic: { easy: 0.98, hard: 0.92 } } });
  provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': SERVICE }),
    spanProcessors: [
      new SimpleSpanProcessor({ exporter: memory }),
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: `${collector.url}/v1/traces` }),
        scheduledDelayMillis: 100,
        maxQueueSize: 8192,
      }),
    ],
  });
  const openai = observe(new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'sim', maxRetries: 0 }), {
    tracerProvider: provider,
    evaluators: [correctness],
    // The router averages every score of a call: only the correctness check should count here.
    builtinEvaluators: false,
  });
  const source = collectorStatsSource({
    url: collector.url,
    window: policy.statsWindow,
    service: SERVICE,
  });
  updater = new WeightUpdater({
    policy,
    source,
    random: createRandom(SEED + 1),
    classes: [EASY, HARD],
  });
  const router = createRouter({
    policy,
    clients: { openai },
    weights: updater,
    random: createRandom(SEED + 2),
    tracer: provider.getTracer('@modelmaxx/router'),
  });
  tables.push(updater.current);

  let index = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // Four requests in flight; each starts (and draws its route) in index order.
    const batch = Array.from({ length: PER_ROUND }, () => index++);
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < batch.length) {
          const at = batch[next++]!;
          const difficulty = at % 2 === 0 ? 'easy' : 'hard';
          const task = generateTask({ kind: 'arithmetic', difficulty, seed: SEED, index: at });
          const classKey = `arithmetic-${difficulty}`;
          const completion = await router.chat.completions.create(
            { model: 'auto', messages: [{ role: 'user', content: task.prompt }] },
            { task: classKey },
          );
          decisions.push({
            index: at,
            classKey,
            answeredBy: completion.model.replace(/-\d{4}-\d{2}-\d{2}$/, ''),
            reported: completion.model,
          });
        }
      }),
    );
    await provider.forceFlush();
    const chats = spansNamed('chat ');
    lastStats = await waitForStats(source, chats.length, chats.length);
    tables.push(await updater.refresh());
    if (process.env.E2E_DEBUG)
      console.info(`round ${round}\n${updater.explain(EASY)}\n${updater.explain(HARD)}`);
  }
  decisions.sort((a, b) => a.index - b.index);
  if (process.env.E2E_DEBUG)
    console.info(
      JSON.stringify(sim.stats()),
      JSON.stringify(lastStats.rows.map((r) => [r.model, r.task, r.calls, r.meanScore])),
    );
  runtimeMs = performance.now() - started;
}, 120_000);

afterAll(async () => {
  await provider?.shutdown();
  context.disable();
  await sim?.close();
  await collector?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

/** Share of the last `LAST` decisions of a class answered by `model`. */
function share(classKey: string, model: string): { share: number; count: number } {
  const last = decisions.filter((decision) => decision.classKey === classKey).slice(-LAST);
  const hits = last.filter((decision) => decision.answeredBy === model).length;
  return { share: hits / last.length, count: last.length };
}

/**
 * Stats rows without their latency percentiles: ClickHouse merges t-digest states in no fixed
 * order, so two reads of the same data may differ a little there (and only there).
 */
function withoutLatency(rows: StatsResponse['rows']) {
  return rows.map(({ latencyP50Ms, latencyP95Ms, latencyP99Ms, ...rest }) => {
    expect([latencyP50Ms, latencyP95Ms, latencyP99Ms].every((value) => value! > 0)).toBe(true);
    return rest;
  });
}

const weightOf = (table: WeightTable, classKey: string, model: string) =>
  table.classes.get(classKey)!.weights.find((weight) => weight.model === model)!;

describe('the routing loop over llm-sim, the instrumentation, the collector and /api/stats', () => {
  it('sends easy tasks mostly to the cheap model and keeps hard ones on the strong one', () => {
    expect(decisions).toHaveLength(ROUNDS * PER_ROUND);
    const easyCheap = share(EASY, CHEAP);
    const hardStrong = share(HARD, STRONG);
    console.info(
      `router e2e: ${decisions.length} requests in ${(runtimeMs / 1000).toFixed(1)} s; last ${LAST} per class: ` +
        `${EASY} → ${CHEAP} ${(easyCheap.share * 100).toFixed(1)}%, ` +
        `${HARD} → ${STRONG} ${(hardStrong.share * 100).toFixed(1)}%`,
    );
    expect(easyCheap.count).toBe(LAST);
    expect(hardStrong.count).toBe(LAST);
    expect(easyCheap.share).toBeGreaterThanOrEqual(0.8);
    expect(hardStrong.share).toBeGreaterThanOrEqual(0.85);
    // Every answer came from one of the two candidates.
    for (const decision of decisions) {
      expect(decision.reported).toMatch(/^gpt-4o(-mini)?-\d{4}-\d{2}-\d{2}$/);
    }
  });

  it('learned it: priors at the start, weights from the measured quality and cost at the end', () => {
    // Every call and every score of the run reached /api/stats, nothing else did.
    expect(sum(lastStats.rows, 'calls')).toBe(decisions.length);
    expect(sum(lastStats.rows, 'scoreCount')).toBe(decisions.length);
    const [first] = tables;
    const last = tables.at(-1)!;
    expect(first!.stale).toBe('no stats yet: weights from priors');
    expect(last.stale).toBeUndefined();
    // At the start: priors only, the same for both classes (no calls, no cost known).
    for (const classKey of [EASY, HARD]) {
      expect(weightOf(first!, classKey, CHEAP).reason).toMatch(
        /: quality 0\.850±0\.\d{3} \(0 calls\), cost\/call unknown, p95 unknown, errors 0\.0%$/,
      );
    }
    // At the end the two classes go opposite ways.
    expect(weightOf(last, EASY, CHEAP).weight).toBeGreaterThan(0.8);
    expect(weightOf(last, HARD, STRONG).weight).toBeGreaterThan(0.9);
    // The quality the weights rest on is the evaluator's, as /api/stats reported it.
    const row = (model: string, task: string) =>
      lastStats.rows.find((entry) => entry.model === model && entry.task === task)!;
    const hardCheap = row(CHEAP, HARD);
    const hardStrongRow = row(STRONG, HARD);
    expect(hardCheap.meanScore!).toBeLessThan(hardStrongRow.meanScore! - 0.1);
    expect(weightOf(last, HARD, STRONG).quality).toBeGreaterThan(
      weightOf(last, HARD, CHEAP).quality,
    );
    expect(row(CHEAP, EASY).costPerCallUsd!).toBeLessThan(row(STRONG, EASY).costPerCallUsd! / 5);
    expect(row(CHEAP, EASY).scoreCount).toBe(row(CHEAP, EASY).calls);

    const easy = updater.explain(EASY);
    expect(easy.split('\n')[0]).toBe(
      `class ${EASY}: cheapest within 0.05 of the best quality (Thompson, 200 draws)`,
    );
    expect(easy).toMatch(
      new RegExp(
        `^  ${CHEAP}: (8|9)\\d\\.\\d% — chosen in \\d+\\.\\d% of draws: quality 0\\.9\\d\\d±0\\.0\\d\\d \\(\\d+ calls\\), cost/call \\$0\\.0+[1-9]\\d{2}, p95 \\d+ms, errors 0\\.0%$`,
        'm',
      ),
    );
    const hard = updater.explain(HARD);
    expect(hard).toMatch(
      new RegExp(`^  ${STRONG}: 9\\d\\.\\d% — chosen in \\d+\\.\\d% of draws`, 'm'),
    );
    expect(hard).toMatch(new RegExp(`^  ${CHEAP}: \\d\\.\\d% — `, 'm'));
  });

  it('records the decision on the route span and on each LLM span (modelmaxx.route.*)', () => {
    const routes = spansNamed('route e2e');
    const chats = spansNamed('chat ');
    expect(routes).toHaveLength(decisions.length);
    expect(chats).toHaveLength(decisions.length);
    const routeById = new Map(routes.map((span) => [span.spanContext().spanId, span]));
    const counted = new Map<string, number>();
    for (const chat of chats) {
      const route = routeById.get(chat.parentSpanContext?.spanId ?? '');
      expect(route, chat.name).toBeDefined();
      const model = chat.attributes['gen_ai.request.model'];
      expect(chat.attributes).toMatchObject({
        'modelmaxx.route.policy': 'e2e',
        'modelmaxx.route.model': model,
        'modelmaxx.route.attempt': 1,
        'modelmaxx.task': route!.attributes['modelmaxx.route.class'],
      });
      expect(route!.attributes).toMatchObject({
        'modelmaxx.route.policy': 'e2e',
        'modelmaxx.route.model': model,
        'modelmaxx.route.attempt': 1,
      });
      expect(route!.attributes['modelmaxx.route.weight']).toBeGreaterThan(0);
      expect(String(route!.attributes['modelmaxx.route.reason'])).toMatch(
        /^(chosen in|exploration share only)/,
      );
      const key = `${String(route!.attributes['modelmaxx.route.class'])} ${String(model)}`;
      counted.set(key, (counted.get(key) ?? 0) + 1);
    }
    // The spans tell the same split as the completions the app got.
    for (const classKey of [EASY, HARD]) {
      for (const model of [CHEAP, STRONG]) {
        const answered = decisions.filter(
          (decision) => decision.classKey === classKey && decision.answeredBy === model,
        ).length;
        expect(counted.get(`${classKey} ${model}`) ?? 0, `${classKey} ${model}`).toBe(answered);
      }
    }
  });

  it('stores the decisions in llm_calls and the scores in llm_scores', async () => {
    const response = await fetch(`${collector.url}/api/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        sql: `SELECT Task AS task, RequestModel AS model, count() AS calls,
                countIf(RoutePolicy = 'e2e' AND RouteReason != '') AS routed,
                countIf(CostUSD > 0) AS priced
              FROM modelmaxx.llm_calls WHERE ServiceName = '${SERVICE}'
              GROUP BY Task, RequestModel ORDER BY Task, RequestModel`,
      }),
    });
    const body = (await response.json()) as { rows: Record<string, unknown>[] };
    expect(response.status, JSON.stringify(body)).toBe(200);
    let total = 0;
    for (const row of body.rows) {
      const calls = Number(row['calls']);
      total += calls;
      expect(Number(row['routed']), JSON.stringify(row)).toBe(calls);
      expect(Number(row['priced']), JSON.stringify(row)).toBe(calls);
      const answered = decisions.filter(
        (decision) => decision.classKey === row['task'] && decision.answeredBy === row['model'],
      ).length;
      expect(calls, JSON.stringify(row)).toBe(answered);
    }
    expect(total).toBe(decisions.length);
  });

  it('reads the same stats straight from ClickHouse (the collector process owns the store)', async () => {
    const direct = clickhouseStatsSource({
      store: collector.store,
      window: policy.statsWindow,
      service: SERVICE,
    });
    const viaApi = collectorStatsSource({
      url: collector.url,
      window: policy.statsWindow,
      service: SERVICE,
    });
    const [fromStore, fromApi] = await Promise.all([direct(), viaApi()]);
    expect(withoutLatency(fromStore.rows)).toEqual(withoutLatency(fromApi.rows));
    expect(fromStore.rows).toHaveLength(4);
    for (const [index, row] of fromStore.rows.entries()) {
      expect(row.latencyP95Ms).toBeCloseTo(fromApi.rows[index]!.latencyP95Ms!, -1);
    }
    // Same stats and the same seed: the same weights, whichever source fed them.
    const fresh = async (source: () => Promise<StatsResponse>) => {
      const table = await new WeightUpdater({ policy, source, random: createRandom(99) }).refresh();
      expect(table.stale).toBeUndefined();
      return [...table.classes.values()].map((entry) => ({
        classKey: entry.classKey,
        // Everything but the reason text, which quotes the p95.
        weights: entry.weights.map(({ reason: _reason, ...weight }) => weight),
      }));
    };
    const [a, b] = await Promise.all([fresh(direct), fresh(viaApi)]);
    expect(a).toEqual(b);
    expect(a.find((entry) => entry.classKey === HARD)!.weights[1]).toMatchObject({ model: STRONG });
    expect(a.find((entry) => entry.classKey === HARD)!.weights[1]!.weight).toBeGreaterThan(0.8);
    expect(a.find((entry) => entry.classKey === EASY)!.weights[0]!.weight).toBeGreaterThan(0.8);
    await direct.close();
  });
});
