/**
 * The access part of the gateway's config file: virtual keys, budgets, rate limits and alerts.
 * The gateway's config schema embeds these fields (`keys`, `budgets`, `rateLimits`, `alerts`) at
 * its top level; `AccessConfigSchema` validates them alone. Objects are strict: a misspelt optional
 * field (`warnat`, `budgte`) is an error naming it, not a silent default.
 */
import { z } from 'zod';
import { formatIssues } from '@modelmaxx/semconv';

const name = z
  .string()
  .min(1)
  .max(120)
  .regex(/^[A-Za-z0-9_.:@/-]+$/, 'letters, digits and _ . : @ / - only');

export const KEY_HASH_PATTERN = /^sha256:[0-9a-f]{64}$/;

export const GatewayKeySchema = z.strictObject({
  /** Public id of the key (shown in logs, spans and budgets; never the key itself). */
  id: name,
  /** `sha256:<64 hex>` of the key (`modelmaxx gateway keys create` prints both). */
  hash: z
    .string()
    .regex(KEY_HASH_PATTERN, 'hash is "sha256:" followed by 64 lower-case hex digits'),
  team: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  app: z.string().min(1).optional(),
  /** A disabled key is refused with 403. */
  disabled: z.boolean().default(false),
});
export type GatewayKeyConfig = z.infer<typeof GatewayKeySchema>;

export const BUDGET_SCOPES = ['global', 'key', 'user', 'team', 'feature'] as const;

export const BudgetSchema = z
  .strictObject({
    name,
    /** What the budget counts: all traffic, or each key / user / team / feature apart. */
    scope: z.enum(BUDGET_SCOPES),
    /** Only this key id / user / team / feature; without it, each one has its own budget. */
    match: z.string().min(1).optional(),
    /** UTC calendar day or UTC calendar month. */
    period: z.enum(['day', 'month']),
    limitUsd: z.number().positive(),
    /**
     * `hard`: 429 once the limit would be passed; `soft`: warnings only; `steer`: as `hard`, and
     * before that, cheaper candidates first while the burn rate runs ahead of plan.
     */
    mode: z.enum(['hard', 'soft', 'steer']).default('hard'),
    /** Share of the limit from which admissions carry a warning. */
    warnAt: z.number().min(0).max(1).default(0.8),
    /** Steer only once this share of the limit is spent (no steering on the first cent). */
    steerMinSpend: z.number().min(0).max(1).default(0.05),
  })
  .refine((budget) => budget.scope !== 'global' || budget.match === undefined, {
    message: 'a global budget takes no "match"',
    path: ['match'],
  });
export type BudgetConfig = z.infer<typeof BudgetSchema>;

export const RATE_SCOPES = ['global', 'key', 'user', 'team'] as const;

export const RateLimitSchema = z
  .strictObject({
    name,
    scope: z.enum(RATE_SCOPES),
    match: z.string().min(1).optional(),
    requestsPerMinute: z.number().positive().optional(),
    /** Estimated tokens (input + max output) at admission, corrected by the actual ones at settle. */
    tokensPerMinute: z.number().positive().optional(),
    /** Requests admitted and not yet ended (a stream counts until its last chunk). */
    concurrentRequests: z.number().int().positive().optional(),
  })
  .refine(
    (limit) =>
      limit.requestsPerMinute !== undefined ||
      limit.tokensPerMinute !== undefined ||
      limit.concurrentRequests !== undefined,
    { message: 'a rate limit needs requestsPerMinute, tokensPerMinute or concurrentRequests' },
  );
export type RateLimitConfig = z.infer<typeof RateLimitSchema>;

const windowText = z
  .string()
  .regex(/^\d+(s|m|h|d)$/, 'a window is a number followed by s, m, h or d, e.g. 1h');

const ruleFilter = {
  /** Only stats rows of this model / feature / service. */
  model: z.string().optional(),
  feature: z.string().optional(),
  service: z.string().optional(),
};

export const AlertRuleSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('spend'),
    name,
    window: windowText.default('1h'),
    aboveUsd: z.number().nonnegative(),
    ...ruleFilter,
  }),
  z.strictObject({
    kind: z.literal('errorRate'),
    name,
    window: windowText.default('15m'),
    above: z.number().min(0).max(1),
    minCalls: z.number().int().positive().default(20),
    ...ruleFilter,
  }),
  z.strictObject({
    kind: z.literal('latencyP95'),
    name,
    window: windowText.default('15m'),
    aboveMs: z.number().positive(),
    minCalls: z.number().int().positive().default(20),
    ...ruleFilter,
  }),
  z.strictObject({
    kind: z.literal('qualityDrop'),
    name,
    /** The recent window, compared with the longer baseline window before it. */
    window: windowText.default('1h'),
    baselineWindow: windowText.default('7d'),
    /** Which figure: mean of all scores, judge scores, feedback, or the checks' pass rate. */
    score: z.enum(['meanScore', 'judgeScore', 'feedbackScore', 'passRate']).default('meanScore'),
    /** Fires when recent < baseline − dropBy (absolute, scores are 0..1). */
    dropBy: z.number().positive(),
    minCount: z.number().int().positive().default(20),
    ...ruleFilter,
  }),
  z.strictObject({
    kind: z.literal('budget'),
    name,
    /** Only this budget (by name); default: every budget. */
    budget: z.string().optional(),
    /** Shares of the limit whose crossing sends an alert (once per budget window). */
    thresholds: z.array(z.number().positive().max(10)).min(1).default([0.8, 1]),
  }),
]);
export type AlertRuleConfig = z.infer<typeof AlertRuleSchema>;

export const WebhookSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  /** Extra headers, e.g. an authorization the receiver wants. */
  headers: z.record(z.string(), z.string()).default({}),
});

export const AlertsSchema = z.strictObject({
  /** How often the stats rules are evaluated. */
  intervalSeconds: z.number().min(1).default(60),
  /** Send a firing alert again after this long while it keeps firing. */
  repeatMinutes: z.number().positive().default(60),
  /** The collector whose `GET /api/stats` the rules read (unless the gateway passes its own). */
  collector: z
    .strictObject({ url: z.url(), token: z.string().optional(), service: z.string().optional() })
    .optional(),
  webhooks: z.array(WebhookSchema).default([]),
  rules: z.array(AlertRuleSchema).default([]),
  /** Delivery: attempts per alert and the back-off between them (doubling, with jitter). */
  retry: z
    .strictObject({
      attempts: z.number().int().min(1).max(20).default(6),
      initialDelayMs: z.number().int().min(1).default(500),
      maxDelayMs: z.number().int().min(1).default(30_000),
      timeoutMs: z.number().int().min(1).default(10_000),
    })
    .prefault({}),
  /** Alerts waiting for delivery; the oldest is dropped (and logged) beyond this. */
  queueSize: z.number().int().min(1).default(100),
});
export type AlertsConfig = z.infer<typeof AlertsSchema>;

/**
 * Budgets shared by several gateway replicas: each one reads the others' spend from the collector
 * they all export spans to (`POST /api/sql`) every `intervalSeconds`.
 */
export const BudgetSyncSchema = z.strictObject({
  /** The collector's base URL (the one the replicas export their spans to). */
  collector: z.url({ protocol: /^https?$/ }),
  /** The collector's read token (`MODELMAXX_READ_TOKEN`), when it has one. */
  token: z.string().min(1).optional(),
  /** Only spans of this `service.name` (the replicas' `--service-name`); default: every gateway's. */
  service: z.string().min(1).optional(),
  intervalSeconds: z.number().positive().default(5),
});
export type BudgetSyncConfig = z.infer<typeof BudgetSyncSchema>;

export const AccessConfigSchema = z.object({
  keys: z.array(GatewayKeySchema).default([]),
  budgets: z.array(BudgetSchema).default([]),
  /**
   * Longest time a request's budget reservation is held: one not settled by then (a leak) is
   * released, so it cannot block a budget forever. Above the longest request expected.
   */
  reservationTtlSeconds: z.number().positive().default(900),
  rateLimits: z.array(RateLimitSchema).default([]),
  alerts: AlertsSchema.prefault({}),
  /** Budgets shared with the other replicas through the collector (./budget-sync.ts). */
  budgetSync: BudgetSyncSchema.optional(),
});
export type AccessConfig = z.infer<typeof AccessConfigSchema>;
export type AccessConfigInput = z.input<typeof AccessConfigSchema>;

/** Validates the access fields; throws an Error that lists every problem by path. */
export function parseAccessConfig(input: unknown): AccessConfig {
  const parsed = AccessConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new Error(`invalid gateway access config: ${formatIssues(parsed.error.issues)}`);
  }
  const seen = new Set<string>();
  for (const [kind, list] of [
    ['key', parsed.data.keys],
    ['budget', parsed.data.budgets],
    ['rate limit', parsed.data.rateLimits],
    ['alert rule', parsed.data.alerts.rules],
  ] as const) {
    seen.clear();
    for (const entry of list) {
      const id = 'id' in entry ? entry.id : entry.name;
      if (seen.has(id))
        throw new Error(`invalid gateway access config: two ${kind}s named "${id}"`);
      seen.add(id);
    }
  }
  const mistake = crossReferenceMistake(parsed.data);
  if (mistake !== undefined) throw new Error(`invalid gateway access config: ${mistake}`);
  return parsed.data;
}

/**
 * Names that point at nothing, which would leave a budget, limit, key or alert silently doing
 * nothing: two keys with one hash (only one of them can ever match), a `budget` alert rule naming
 * no budget, and, when keys are configured, a key or team budget or rate limit whose `match`
 * names no key id / no key's team (a typo there would never apply the limit).
 */
function crossReferenceMistake(config: AccessConfig): string | undefined {
  const hashes = new Map<string, string>();
  for (const key of config.keys) {
    const other = hashes.get(key.hash);
    if (other !== undefined) return `keys "${other}" and "${key.id}" have the same hash`;
    hashes.set(key.hash, key.id);
  }
  const budgetNames = config.budgets.map((budget) => budget.name);
  for (const [index, rule] of config.alerts.rules.entries()) {
    if (rule.kind === 'budget' && rule.budget !== undefined && !budgetNames.includes(rule.budget)) {
      return `alerts.rules.${index}.budget: no budget named "${rule.budget}" (the budgets: ${budgetNames.join(', ') || 'none'})`;
    }
  }
  if (config.keys.length === 0) return undefined;
  const known = {
    key: config.keys.map((key) => key.id),
    team: [...new Set(config.keys.flatMap((key) => (key.team === undefined ? [] : [key.team])))],
  };
  for (const [field, list] of [
    ['budgets', config.budgets],
    ['rateLimits', config.rateLimits],
  ] as const) {
    for (const [index, entry] of list.entries()) {
      if (entry.match === undefined || (entry.scope !== 'key' && entry.scope !== 'team')) continue;
      const names = known[entry.scope];
      if (names.includes(entry.match)) continue;
      return `${field}.${index}.match: no ${entry.scope === 'key' ? 'key id' : "key's team"} is "${entry.match}" (the keys' ${entry.scope === 'key' ? 'ids' : 'teams'}: ${names.join(', ') || 'none'})`;
    }
  }
  return undefined;
}
