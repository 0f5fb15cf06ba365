/**
 * One seed of the shadow-ledger experiment (test/savings-e2e.test.ts, bench/shadow-ledger.bench.ts):
 * an app routes two classes of llm-sim tasks through `createRouter` with shadow comparisons on
 * and a pairwise judge only (no ground-truth evaluator, no `score()`): `easy` (easy arithmetic,
 * gpt-4o-mini 0.95 vs gpt-4o 0.98: true difference −0.03, within the policy's 0.1 margin, so
 * the cheap model is right) and `hard` (hard arithmetic, 0.60 vs 0.86: −0.26, the reference
 * is right). Both draw from large prompt pools (a small pool, like the word reversals', would
 * make a seed's truth the pool's, not the profile's). Every call goes through the real openai SDK, instrumented (`observe`),
 * over OTLP/HTTP into a collector; the ledger comes from `GET /api/savings`. Options make the
 * judge wrong part of the time (`judgeAccuracy`), send user feedback (the truth about the
 * routed answer, `POST /v1/feedback`) on a sample of the cheap model's answers, keep the
 * router on the cheap model (`qualityMargin`), and change the cheap model's quality per class.
 */
import OpenAI from 'openai';
import { observe } from '@modelmaxx/instrument';
import { DEFAULT_SIM_MODELS, checkAnswer, generateTask, startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim, TaskDifficulty, TaskKind } from '@modelmaxx/llm-sim';
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
  /** Hard JSON extraction (0.85 vs 0.95 in the profiles): a second class for the pooled judge. */
  json: { kind: 'json', difficulty: 'hard', expected: REFERENCE },
};

/**
 * The true quality difference cheap − reference of a class (the simulator's profiles, or the
 * cheap model's quality `cheapQuality` gives the class).
 */
export function trueDifference(classKey: string, cheapQuality: CheapQuality = {}): number {
  const { kind, difficulty } = CLASSES[classKey]!;
  const profile = (name: string) =>
    DEFAULT_SIM_MODELS.find((model) => model.name === name)!.quality[kind][difficulty];
  return (cheapQuality[classKey] ?? profile(CHEAP)) - profile(REFERENCE);
}

/** The cheap model's quality per class key, instead of its profile's. */
export type CheapQuality = Partial<Record<string, number>>;

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
  /** The same for the interval as the verdicts measured it (before the judge correction). */
  measuredCovered: Record<string, boolean | undefined>;
  /** User feedback sent (on the cheap model's answers). */
  feedback: number;
  stats: ShadowStats;
  rows: LedgerRow[];
  /** The routed app calls' spend as the router priced them (USD). */
  appUsd: number;
  /** Per class, every `timelineStep` requests: the router's estimate of the cheap model's difference. */
  timeline: Record<string, TimelinePoint[]>;
}

/** The shadow monitor's estimate for a class's cheap model after `requests` of the class. */
export interface TimelinePoint {
  requests: number;
  samples: number;
  difference: number;
  halfWidth: number;
  /** Share of the class's last `timelineStep` requests the right model answered. */
  right: number;
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
  /** Share of the cheap model's answers that get user feedback (default 0). */
  feedbackRate?: number;
  /** The policy's quality margin (default 0.1; 1 keeps every class on the cheap model). */
  qualityMargin?: number;
  /** Classes whose cheap answers get feedback (default every class). */
  feedbackClasses?: string[];
  /** Classes to run (default easy and hard). */
  classes?: string[];
  cheapQuality?: CheapQuality;
  /** Virtual milliseconds between two requests on the router's clock (default 100). */
  stepMs?: number;
  /** Appended to the policy's name (two runs of a seed into one collector). */
  policySuffix?: string;
  /** The policy's `shadow` settings over the runner's (e.g. `counterfactual`, `explore`). */
  shadow?: Record<string, unknown>;
  /** Requests per class between two timeline points (default 25). */
  timelineStep?: number;
}

/** An app call the router answered: its class, model, response id and whether it is right. */
interface Answered {
  classKey: string;
  model: string;
  responseId: string;
  right: boolean;
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

/** Polls `sql` (a count) until it reaches `expected` or 30 s pass. */
async function waitForCount(collectorUrl: string, sql: string, expected: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const result = (await getJson(`${collectorUrl}/api/sql`, sql).catch(() => undefined)) as
      { rows?: { n: number | string }[] } | undefined;
    const stored = Number(result?.rows?.[0]?.n ?? 0);
    if (stored >= expected || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * The router of a seed, on a virtual clock (`clock.at` advanced per request by the caller):
 * the engine's weight refresh and decay, the spend windows and the verdicts' times depend on
 * the clock, so a wall clock would make the routing depend on how fast the machine runs.
 */
function createShadowRouter(
  options: SeedOptions,
  sim: LlmSim,
  policyName: string,
  clock: { at: number },
): Router {
  const { seed } = options;
  const client = observe(new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 }));
  return createRouter({
    policy: {
      name: policyName,
      candidates: [{ model: CHEAP }, { model: REFERENCE }],
      goal: { qualityMargin: options.qualityMargin ?? 0.1 },
      exploration: 0.05,
      refreshIntervalMs: 1,
      shadow: {
        enabled: true,
        sampleRate: options.sampleRate ?? 1,
        targetHalfWidth: options.targetHalfWidth ?? 0.05,
        concurrency: 4,
        queueSize: 1000,
        ...options.shadow,
      },
    },
    clients: { openai: client },
    judge: pairwiseJudge({ client, model: CHEAP, random: createRandom(seed * 7 + 1) }),
    random: createRandom(seed),
    now: () => clock.at,
  });
}

/**
 * The app's requests, class after class in turn; what answered each, and the spend. The shadow
 * comparison a request starts (reference call, judge, verdict learned) is drained before the
 * next request: run concurrently, verdicts landed after a number of later decisions that
 * depended on the machine's scheduling, and the same seed gave another ledger each run (a CI
 * flake of the coverage bounds). Now the same seed gives the same routing, verdicts and ledger.
 */
async function routeRequests(
  router: Router,
  options: SeedOptions,
  classes: string[],
  clock: { at: number },
): Promise<{ answered: Answered[]; appUsd: number; timeline: SeedResult['timeline'] }> {
  const answered: Answered[] = [];
  const timeline: SeedResult['timeline'] = Object.fromEntries(classes.map((key) => [key, []]));
  const step = options.timelineStep ?? 25;
  let appUsd = 0;
  for (let index = 0; index < options.requestsPerClass; index++) {
    for (const classKey of classes) {
      clock.at += options.stepMs ?? 100;
      const { kind, difficulty } = CLASSES[classKey]!;
      const task = generateTask({ kind, difficulty, seed: options.seed * 1000 + index });
      const before = router.spend().spentUsd;
      const completion = await router.chat.completions.create(
        { model: 'auto', messages: [{ role: 'user', content: task.prompt }] },
        { task: classKey },
      );
      appUsd += router.spend().spentUsd - before;
      await router.idle();
      answered.push({
        classKey,
        model: completion.model.startsWith(CHEAP) ? CHEAP : REFERENCE,
        responseId: completion.id,
        right: checkAnswer(task, completion.choices[0]?.message.content ?? ''),
      });
      if ((index + 1) % step === 0) {
        timeline[classKey]!.push(timelinePoint(router, answered, classKey, step));
      }
    }
  }
  return { answered, appUsd, timeline };
}

/** The router's estimate of a class's cheap model now, and who answered its last `step` requests. */
function timelinePoint(
  router: Router,
  answered: Answered[],
  classKey: string,
  step: number,
): TimelinePoint {
  const estimate = router
    .shadows()
    .estimates.find((entry) => entry.classKey === classKey && entry.model === CHEAP);
  const calls = answered.filter((call) => call.classKey === classKey);
  const last = calls.slice(-step);
  return {
    requests: calls.length,
    samples: estimate?.samples ?? 0,
    difference: estimate?.difference ?? 0,
    halfWidth: estimate?.halfWidth ?? Infinity,
    right: last.filter((call) => call.model === CLASSES[classKey]!.expected).length / last.length,
  };
}

/** User feedback (1 right, 0 wrong) on a sample of the cheap model's answers; how many. */
async function sendFeedback(
  collectorUrl: string,
  answered: Answered[],
  options: SeedOptions,
): Promise<number> {
  const rate = options.feedbackRate ?? 0;
  const random = createRandom(options.seed * 13 + 5);
  let sent = 0;
  for (const call of answered) {
    if (call.model !== CHEAP || !(random() < rate)) continue;
    if (options.feedbackClasses !== undefined && !options.feedbackClasses.includes(call.classKey)) {
      continue;
    }
    const response = await fetch(`${collectorUrl}/v1/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        responseId: call.responseId,
        service: 'shadowed-app',
        name: 'user.thumbs',
        score: call.right ? 1 : 0,
      }),
    });
    if (!response.ok) {
      throw new Error(`feedback ${call.responseId}: ${response.status} ${await response.text()}`);
    }
    sent += 1;
  }
  return sent;
}

/** Whether an interval holds the truth (undefined: no interval). */
function covers(low: number | null | undefined, high: number | null | undefined, truth: number) {
  return low === null || low === undefined || high === null || high === undefined
    ? undefined
    : low <= truth && truth <= high;
}

type LedgerFigures = Pick<
  SeedResult,
  'convergence' | 'cheapRows' | 'covered' | 'measuredCovered' | 'rows'
>;

/** The ledger's rows of the policy, and per class the cheap row, its coverage and convergence. */
async function ledgerFigures(
  options: SeedOptions,
  policyName: string,
  classes: string[],
  answered: Answered[],
): Promise<LedgerFigures> {
  const ledger = (await getJson(
    `${options.collectorUrl}/api/savings?window=1h&groupBy=policy,class,model`,
  )) as { rows: LedgerRow[] };
  const rows = ledger.rows.filter((row) => row.policy === policyName);
  const figures: LedgerFigures = {
    convergence: {},
    cheapRows: {},
    covered: {},
    measuredCovered: {},
    rows,
  };
  for (const classKey of classes) {
    const tail = answered.filter((call) => call.classKey === classKey).slice(-options.tail);
    figures.convergence[classKey] =
      tail.filter((call) => call.model === CLASSES[classKey]!.expected).length / tail.length;
    const row = rows.find((entry) => entry.class === classKey && entry.model === CHEAP);
    figures.cheapRows[classKey] = row;
    const truth = trueDifference(classKey, options.cheapQuality);
    const quality = row?.quality ?? undefined;
    figures.covered[classKey] = covers(quality?.low, quality?.high, truth);
    const measured = quality?.measured;
    figures.measuredCovered[classKey] =
      measured === undefined || measured.halfWidth === null
        ? undefined
        : covers(
            measured.difference - measured.halfWidth,
            measured.difference + measured.halfWidth,
            truth,
          );
  }
  return figures;
}

/** Runs one seed; the caller owns the tracer provider (OTLP to the collector) and flushes it. */
export async function runShadowSeed(
  options: SeedOptions,
  flush: () => Promise<void>,
): Promise<SeedResult> {
  const { seed } = options;
  const classes = options.classes ?? ['easy', 'hard'];
  const sim = await startLlmSim({ seed, judge: { accuracy: options.judgeAccuracy ?? 1 } });
  for (const [classKey, value] of Object.entries(options.cheapQuality ?? {})) {
    const { kind, difficulty } = CLASSES[classKey]!;
    sim.setModel(CHEAP, { quality: { [kind]: { [difficulty]: value } } });
  }
  const policyName = `shadow-seed-${seed}${options.judgeAccuracy === undefined ? '' : `-a${options.judgeAccuracy}`}${options.policySuffix ?? ''}`;
  try {
    const clock = { at: Date.UTC(2026, 0, 1) };
    const router = createShadowRouter(options, sim, policyName, clock);
    const { answered, appUsd, timeline } = await routeRequests(router, options, classes, clock);
    await router.idle();
    await flush();
    const stats = router.shadows();
    const ofPolicy = `ResponseId IN (SELECT ResponseId FROM modelmaxx.llm_calls WHERE RoutePolicy = '${policyName}' AND Purpose = 'app')`;
    // Wait until the collector holds every verdict the router recorded (and every app call).
    await waitForCount(
      options.collectorUrl,
      `SELECT count() AS n FROM modelmaxx.llm_scores WHERE Name = 'modelmaxx.shadow' AND Score IS NOT NULL AND ${ofPolicy}`,
      stats.judged,
    );
    await waitForCount(
      options.collectorUrl,
      `SELECT count() AS n FROM modelmaxx.llm_calls WHERE RoutePolicy = '${policyName}' AND Purpose = 'app'`,
      answered.length,
    );
    const feedback = await sendFeedback(options.collectorUrl, answered, options);
    await waitForCount(
      options.collectorUrl,
      `SELECT count() AS n FROM modelmaxx.llm_scores WHERE Source = 'feedback' AND ${ofPolicy}`,
      feedback,
    );
    const figures = await ledgerFigures(options, policyName, classes, answered);
    return { seed, policy: policyName, ...figures, feedback, stats, appUsd, timeline };
  } finally {
    await sim.close();
  }
}
