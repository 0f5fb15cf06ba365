/**
 * zod schemas of the records that cross package boundaries: feedback sent to the
 * collector, the stats rows the router reads, and the LLM call summary.
 * A separate entry point (`@modelmaxx/semconv/schemas`) so that code running
 * inside user apps can import the attribute names without loading zod.
 */
import { z } from 'zod';
import { COST_SOURCES, EVALUATION_SOURCES } from './index.js';

const hex = (length: number) =>
  z
    .string()
    .regex(new RegExp(`^[0-9a-fA-F]{${length}}$`), `must be ${length} hex characters`)
    .transform((value) => value.toLowerCase());

/** The first instant past what a nanosecond DateTime64 (UInt64 ns since 1970) holds, rounded down to a day. */
const LATEST_TIMESTAMP_MS = Date.UTC(2262, 3, 11);

/** A UTF-16 code unit of a surrogate pair without its other half. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text as it can be stored: a lone surrogate (valid in a JS string and in JSON's `\ud800`
 * escape, but not encodable as UTF-8) becomes U+FFFD, as the OTLP decoders do with bad UTF-8.
 */
export function toWellFormed(value: string): string {
  return value.replace(LONE_SURROGATE, '\uFFFD');
}

/** `POST /v1/feedback` body: a score for an earlier response, linked by response id or span. */
export const FeedbackSchema = z
  .object({
    responseId: z.string().min(1).max(512).transform(toWellFormed).optional(),
    traceId: hex(32).optional(),
    spanId: hex(16).optional(),
    /**
     * The service (`service.name`) whose call is scored: a response id is looked up among its
     * calls only (providers and services can reuse ids).
     */
    service: z.string().min(1).max(256).transform(toWellFormed).optional(),
    name: z.string().min(1).max(256).transform(toWellFormed),
    score: z.number().finite(),
    label: z.string().max(256).transform(toWellFormed).optional(),
    comment: z.string().max(16_384).transform(toWellFormed).optional(),
    source: z.enum(EVALUATION_SOURCES).default('feedback'),
    /**
     * When the score was given; defaults to the time it was received. Within what a
     * nanosecond timestamp (ClickHouse `DateTime64(9)`) holds: 1970 to 2262-04-11.
     */
    timestamp: z.iso
      .datetime({ offset: true })
      .refine(
        (value) => {
          const ms = Date.parse(value);
          return ms >= 0 && ms < LATEST_TIMESTAMP_MS;
        },
        { message: 'timestamp must be between 1970-01-01 and 2262-04-11' },
      )
      .optional(),
  })
  .refine((value) => value.responseId !== undefined || value.traceId !== undefined, {
    message: 'give responseId, or traceId (with spanId) to say which response is scored',
    path: ['responseId'],
  });
export type Feedback = z.infer<typeof FeedbackSchema>;
export type FeedbackInput = z.input<typeof FeedbackSchema>;

export const STATS_GROUP_KEYS = ['model', 'provider', 'task', 'service', 'feature'] as const;
export type StatsGroupKey = (typeof STATS_GROUP_KEYS)[number];

const WINDOW_UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** The longest stats window: ten years (longer reaches before the epoch, or past what a date holds). */
export const MAX_STATS_WINDOW_SECONDS = 3650 * 86_400;

/** Query of `GET /api/stats`. */
export const StatsQuerySchema = z.object({
  /** Window length, e.g. `15m`, `1h`, `24h`, `7d`; at most 3650d. */
  window: z
    .string()
    .regex(/^\d+(s|m|h|d)$/, 'window is a number followed by s, m, h or d, e.g. 1h')
    .refine(
      (value) =>
        // (A value the regex refused already has its message.)
        !/^\d+[smhd]$/.test(value) ||
        Number(value.slice(0, -1)) * (WINDOW_UNIT_SECONDS[value.slice(-1)] ?? 1) <=
          MAX_STATS_WINDOW_SECONDS,
      { message: 'window is at most 3650d (ten years)' },
    )
    .default('1h'),
  /** Comma-separated grouping keys; `model` is always included. */
  groupBy: z
    .string()
    .default('model')
    .transform((value, context) => {
      const keys = value
        .split(',')
        .map((key) => key.trim())
        .filter(Boolean);
      for (const key of keys) {
        if (!(STATS_GROUP_KEYS as readonly string[]).includes(key)) {
          context.addIssue({ code: 'custom', message: `unknown group key "${key}"` });
          return z.NEVER;
        }
      }
      return [...new Set(['model', ...keys])] as StatsGroupKey[];
    }),
  service: z.string().optional(),
  /**
   * `true`: add the separate quality figures (`evaluatedCalls`, `passRate`, judge and feedback
   * scores), from a second query over `llm_scores` (raw scores, not the rollups: about 0.6 s per
   * million scores in the window); default `false`.
   */
  quality: z
    .enum(['true', 'false'])
    .transform((value) => value === 'true')
    .optional(),
  /**
   * Comma-separated evaluation names (`gen_ai.evaluation.name`): when given, `meanScore` and
   * `scoreCount` count only these scores (e.g. the app's correctness check, without the
   * built-in checks that nearly always pass).
   */
  scores: z
    .string()
    .transform((value) => [
      ...new Set(
        value
          .split(',')
          .map((name) => name.trim())
          .filter(Boolean),
      ),
    ])
    .optional(),
});
export type StatsQuery = z.infer<typeof StatsQuerySchema>;

/** One row of `GET /api/stats`: aggregates for one group over the window. */
export const StatsRowSchema = z.object({
  model: z.string(),
  provider: z.string().optional(),
  task: z.string().optional(),
  service: z.string().optional(),
  feature: z.string().optional(),
  calls: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  errorRate: z.number().min(0).max(1),
  costUsd: z.number().nonnegative(),
  /** Mean cost of a call with a known cost; null when no call had one. */
  costPerCallUsd: z.number().nonnegative().nullable(),
  meanInputTokens: z.number().nonnegative(),
  meanOutputTokens: z.number().nonnegative(),
  latencyP50Ms: z.number().nonnegative().nullable(),
  latencyP95Ms: z.number().nonnegative().nullable(),
  latencyP99Ms: z.number().nonnegative().nullable(),
  /** Mean of every score (built-in checks, evaluators, judges, feedback); not a quality figure on its own. */
  meanScore: z.number().nullable(),
  scoreCount: z.number().int().nonnegative(),
  /**
   * Calls with a built-in check or in-process evaluator score (source `evaluator`), and the
   * share of them whose every such score is at least 0.5. Checks nearly always pass: this is
   * no measure of answer quality.
   */
  evaluatedCalls: z.number().int().nonnegative().optional(),
  passRate: z.number().min(0).max(1).nullable().optional(),
  /** Mean pointwise LLM-judge score (source `judge`, pairwise verdicts excluded) and how many; null when none. */
  judgeScore: z.number().nullable().optional(),
  judgeCount: z.number().int().nonnegative().optional(),
  /** Mean feedback score (source `feedback`: users, tests, `POST /v1/feedback`) and how many. */
  feedbackScore: z.number().nullable().optional(),
  feedbackCount: z.number().int().nonnegative().optional(),
  /** Pairwise verdicts against a reference (shadow verdicts `modelmaxx.shadow`, pairwise judges' win/tie/loss): wins, ties, losses. */
  pairwiseWins: z.number().int().nonnegative().optional(),
  pairwiseTies: z.number().int().nonnegative().optional(),
  pairwiseLosses: z.number().int().nonnegative().optional(),
});
export type StatsRow = z.infer<typeof StatsRowSchema>;

export const StatsResponseSchema = z.object({
  /** Window start and end, RFC 3339. */
  from: z.string(),
  to: z.string(),
  groupBy: z.array(z.enum(STATS_GROUP_KEYS)),
  rows: z.array(StatsRowSchema),
});
export type StatsResponse = z.infer<typeof StatsResponseSchema>;

/** One LLM call as the collector stores it in `llm_calls` (camelCase view of the row). */
export const LlmCallSchema = z.object({
  timestamp: z.string(),
  traceId: z.string(),
  spanId: z.string(),
  parentSpanId: z.string(),
  serviceName: z.string(),
  provider: z.string(),
  operation: z.string(),
  requestModel: z.string(),
  responseModel: z.string(),
  responseId: z.string(),
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  cacheReadTokens: z.number().int().nonnegative(),
  cacheWriteTokens: z.number().int().nonnegative(),
  reasoningTokens: z.number().int().nonnegative(),
  costUsd: z.number().nullable(),
  costSource: z.enum(COST_SOURCES),
  durationMs: z.number().nonnegative(),
  timeToFirstChunkMs: z.number().nonnegative().nullable(),
  statusCode: z.string(),
  errorType: z.string(),
  finishReasons: z.array(z.string()),
  stream: z.boolean(),
  task: z.string(),
  feature: z.string(),
  userId: z.string(),
  conversationId: z.string(),
  routePolicy: z.string(),
  routeReason: z.string(),
});
export type LlmCall = z.infer<typeof LlmCallSchema>;
