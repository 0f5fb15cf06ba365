/**
 * One seed of the shadow-ledger experiment (test/savings-e2e.test.ts, bench/shadow-ledger.bench.ts):
 * an app routes two classes of llm-sim tasks through `createRouter` with shadow comparisons on
 * and a pairwise judge only (no ground-truth evaluator, no `score()`): `easy` (easy arithmetic,
 * gpt-4o-mini 0.95 vs gpt-4o 0.98: true difference −0.03, within the policy's 0.1 margin, so
 * the cheap model is right) and `hard` (hard arithmetic, 0.60 vs 0.86: −0.26, the reference
 * is right). Both draw from large prompt pools (a small pool, like the word reversals', would
 * make a seed's truth the pool's, not the profile's). Every call goes through the real openai SDK, instrumented (`observe`),
 * over OTLP/HTTP into a collector; the ledger comes from `GET /api/savings`.
 */
import OpenAI from 'openai';
import { observe } from '@modelmaxx/instrument';
import { DEFAULT_SIM_MODELS, generateTask, startLlmSim } from '@modelmaxx/llm-sim';
import type { TaskDifficulty, TaskKind } from '@modelmaxx/llm-sim';
import { createRandom, createRouter, pairwiseJudge } from '@modelmaxx/router';
import type { Router, ShadowStats } from '@modelmaxx/router';
import type { SavingsRow } from '@modelmaxx/collector';

export const CHEAP = 'gpt-4o-mini';
export const REFERENCE = 'gpt-4o';

export const CLASSES: Record<
  string,
  { kind: TaskKind; difficulty: TaskDifficulty; expected: string }
> = {
  easy: { kind: 'arithmetic', difficulty: 'easy', expected: CHEAP },
  hard: { kind: 'arithmetic', difficulty: 'hard', expected: REFERENCE },
};

/** The true quality difference cheap − reference of a class (the simulator's profiles). */
export function trueDifference(classKey: string): number {
  const { kind, difficulty } = CLASSES[classKey]!;
  const profile = (name: string) =>
    DEFAULT_SIM_MODELS.find((model) => model.name === name)!.quality[kind][difficulty];
  return profile(CHEAP) - profile(REFERENCE);
}

/** A row of `GET /api/savings`, as the collector defines it. */
export type LedgerRow = SavingsRow;

export interface SeedResult {
  seed: number;
  policy: string;
  /** Per class: share of the last `tail` requests answered by the class's right model. */
  convergence: Record<string, number>;
  /** Per class: the ledger row of the cheap model, and whether its interval covers the truth. */
  cheapRows: Record<string, LedgerRow | undefined>;
  covered: Record<string, boolean | undefined>;
  stats: ShadowStats;
  rows: LedgerRow[];
  /** The routed app calls' spend as the router priced them (USD). */
  appUsd: number;
}

export interface SeedOptions {
  collectorUrl: string;
  seed: number;
  requestsPerClass: number;
  /** Requests per class at the end over which convergence is measured. */
  tail: number;
  sampleRate?: number;
  targetHalfWidth?: number;
  judgeAccuracy?: number;
}

async function getJson(url: string, sql?: string): Promise<unknown> {
  const response = await fetch(
    url,
    sql === undefined
      ? {}
      : {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ sql }),
        },
  );
  const body = (await response.json()) as unknown;
  if (response.status !== 200)
    throw new Error(`${url}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

/** Runs one seed; the caller owns the tracer provider (OTLP to the collector) and flushes it. */
export async function runShadowSeed(
  options: SeedOptions,
  flush: () => Promise<void>,
): Promise<SeedResult> {
  const { seed } = options;
  const sim = await startLlmSim({ seed, judge: { accuracy: options.judgeAccuracy ?? 1 } });
  const policyName = `shadow-seed-${seed}`;
  try {
    const client = observe(new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 }));
    const router: Router = createRouter({
      policy: {
        name: policyName,
        candidates: [{ model: CHEAP }, { model: REFERENCE }],
        goal: { qualityMargin: 0.1 },
        exploration: 0.05,
        refreshIntervalMs: 1,
        shadow: {
          enabled: true,
          sampleRate: options.sampleRate ?? 1,
          targetHalfWidth: options.targetHalfWidth ?? 0.05,
          concurrency: 4,
          queueSize: 1000,
        },
      },
      clients: { openai: client },
      judge: pairwiseJudge({ client, model: CHEAP, random: createRandom(seed * 7 + 1) }),
      random: createRandom(seed),
    });
    const answered: Record<string, string[]> = { easy: [], hard: [] };
    let appUsd = 0;
    for (let index = 0; index < options.requestsPerClass; index++) {
      for (const classKey of Object.keys(CLASSES)) {
        const { kind, difficulty } = CLASSES[classKey]!;
        const task = generateTask({ kind, difficulty, seed: seed * 1000 + index });
        const before = router.spend().spentUsd;
        const completion = await router.chat.completions.create(
          { model: 'auto', messages: [{ role: 'user', content: task.prompt }] },
          { task: classKey },
        );
        appUsd += router.spend().spentUsd - before;
        answered[classKey]!.push(completion.model.startsWith(CHEAP) ? CHEAP : REFERENCE);
      }
    }
    await router.idle();
    await flush();
    const stats = router.shadows();
    // Wait until the collector holds every verdict the router recorded.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const result = (await getJson(
        `${options.collectorUrl}/api/sql`,
        `SELECT count() AS n FROM modelmaxx.llm_scores WHERE Name = 'modelmaxx.shadow' AND Score IS NOT NULL AND ResponseId IN (SELECT ResponseId FROM modelmaxx.llm_calls WHERE RoutePolicy = '${policyName}' AND Purpose = 'app')`,
      ).catch(() => undefined)) as { rows?: { n: number | string }[] } | undefined;
      const stored = Number(result?.rows?.[0]?.n ?? 0);
      if (stored >= stats.judged || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const ledger = (await getJson(
      `${options.collectorUrl}/api/savings?window=1h&groupBy=policy,class,model`,
    )) as { rows: LedgerRow[] };
    const rows = ledger.rows.filter((row) => row.policy === policyName);
    const convergence: Record<string, number> = {};
    const cheapRows: Record<string, LedgerRow | undefined> = {};
    const covered: Record<string, boolean | undefined> = {};
    for (const classKey of Object.keys(CLASSES)) {
      const tail = answered[classKey]!.slice(-options.tail);
      convergence[classKey] =
        tail.filter((model) => model === CLASSES[classKey]!.expected).length / tail.length;
      const row = rows.find((entry) => entry.class === classKey && entry.model === CHEAP);
      cheapRows[classKey] = row;
      const quality = row?.quality;
      covered[classKey] =
        quality === null || quality === undefined || quality.low === null || quality.high === null
          ? undefined
          : quality.low <= trueDifference(classKey) && trueDifference(classKey) <= quality.high;
    }
    return { seed, policy: policyName, convergence, cheapRows, covered, stats, rows, appUsd };
  } finally {
    await sim.close();
  }
}
