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

/** `POST /v1/feedback` body: a score for an earlier response, linked by response id or span. */
export const FeedbackSchema = z
  .object({
    responseId: z.string().min(1).max(512).optional(),
    traceId: hex(32).optional(),
    spanId: hex(16).optional(),
    name: z.string().min(1).max(256),
    score: z.number().finite(),
    label: z.string().max(256).optional(),
    comment: z.string().max(16_384).optional(),
    source: z.enum(EVALUATION_SOURCES).default('feedback'),
    /** When the score was given; defaults to the time it was received. */
    timestamp: z.iso.datetime({ offset: true }).optional(),
  })
  .refine((value) => value.responseId !== undefined || value.traceId !== undefined, {
    message: 'give responseId, or traceId (with spanId) to say which response is scored',
    path: ['responseId'],
  });
export type Feedback = z.infer<typeof FeedbackSchema>;
export type FeedbackInput = z.input<typeof FeedbackSchema>;

export const STATS_GROUP_KEYS = ['model', 'provider', 'task', 'service', 'feature'] as const;
export type StatsGroupKey = (typeof STATS_GROUP_KEYS)[number];

/** Query of `GET /api/stats`. */
export const StatsQuerySchema = z.object({
  /** Window length, e.g. `15m`, `1h`, `24h`, `7d`. */
  window: z
    .string()
    .regex(/^\d+(s|m|h|d)$/, 'window is a number followed by s, m, h or d, e.g. 1h')
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
  meanScore: z.number().nullable(),
  scoreCount: z.number().int().nonnegative(),
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
