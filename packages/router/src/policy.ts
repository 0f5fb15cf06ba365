/**
 * Routing policy: which models may answer, what "good enough" means, how much to explore,
 * where stats come from and how to fall back. Validated with zod where it enters the
 * process (code or a JSON file).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { formatIssues } from '@modelmaxx/semconv';

export const CandidateSchema = z.object({
  /** The model name sent to the provider, e.g. `gpt-4o-mini`. */
  model: z.string().min(1),
  provider: z.enum(['openai', 'anthropic']).default('openai'),
  /** Overrides the client's base URL for this candidate. */
  baseURL: z.url().optional(),
  /** Name of the client (in `createRouter({ clients })`) that serves this candidate. */
  client: z.string().min(1).optional(),
  /** Price override in USD per million tokens; otherwise the observed cost per call is used. */
  price: z
    .object({
      inputPerMillion: z.number().nonnegative(),
      outputPerMillion: z.number().nonnegative(),
    })
    .optional(),
  /** Prior quality (0..1) for cold starts, e.g. from an offline evaluation. */
  priorQuality: z.number().min(0).max(1).optional(),
  /** Prior cost per call (USD) for cold starts. */
  priorCostPerCallUsd: z.number().nonnegative().optional(),
});
export type Candidate = z.infer<typeof CandidateSchema>;

export const PolicySchema = z
  .object({
    name: z.string().min(1).default('auto'),
    candidates: z.array(CandidateSchema).min(1, 'a policy needs at least one candidate model'),
    goal: z
      .object({
        /** Cheapest model whose quality is within this margin (absolute, 0..1) of the class's best. */
        qualityMargin: z.number().min(0).max(1).default(0.02),
        /** Candidates whose p95 latency exceeds this get no traffic (unless none meets it). */
        latencySloMs: z.number().positive().optional(),
        /** Spend budget per period: above it the cheapest acceptable model is used. */
        budget: z
          .object({ usd: z.number().positive(), periodMs: z.number().int().positive() })
          .optional(),
        /**
         * Trade-off instead of a margin: maximize quality minus this penalty times cost, with
         * cost measured in units of the class's best model's cost per call.
         */
        costPenalty: z.number().nonnegative().optional(),
      })
      .prefault({}),
    /** Share of traffic spread over non-chosen candidates to keep their stats fresh. */
    exploration: z.number().min(0).max(0.5).default(0.05),
    /** Pseudo-count of prior evidence per candidate (cold start strength). */
    priorStrength: z.number().nonnegative().default(2),
    /** Half-life of evidence: older stats count less (drift). */
    halfLifeMs: z
      .number()
      .positive()
      .default(6 * 3600_000),
    statsWindow: z
      .string()
      .regex(/^\d+(s|m|h|d)$/, 'statsWindow is a number followed by s, m, h or d, e.g. 1h')
      .default('1h'),
    refreshIntervalMs: z.number().int().positive().default(30_000),
    /** Stats older than this are stale: the last good weights are kept. */
    staleAfterMs: z
      .number()
      .int()
      .positive()
      .default(5 * 60_000),
    /** Minimum calls before a candidate's observed quality replaces its prior. */
    minCalls: z.number().int().nonnegative().default(20),
    fallback: z
      .object({
        /** Explicit fallback order; otherwise the remaining candidates by weight. */
        chain: z.array(z.string()).optional(),
        maxAttempts: z.number().int().min(1).max(10).default(3),
        cooldownMs: z.number().int().nonnegative().default(30_000),
        timeoutMs: z.number().int().positive().default(60_000),
      })
      .prefault({}),
    cascade: z
      .object({
        enabled: z.boolean().default(false),
        /** Voters are candidates costing at most this share of the best model's cost per call. */
        voterMaxCostShare: z.number().positive().max(1).default(0.25),
        /** Share of prompts on which every voter and the best are called (exploration). */
        probeRate: z.number().min(0).max(1).default(0.03),
        /** Cold start: prompts per class on which every candidate is called. */
        warmupProbes: z.number().int().nonnegative().default(20),
        /** Co-observations a voter pair needs before it may be chosen. */
        minPairCalls: z.number().int().positive().default(15),
        /**
         * Routed client: the two cheap voters asked first (in parallel) and the model to
         * escalate to when their answers differ or the app's check fails.
         */
        voters: z.array(z.string()).length(2).optional(),
        escalateTo: z.string().optional(),
        /** Learn per agreed answer whether agreement is enough (with `goal.costPenalty`). */
        answerEscalation: z.boolean().default(false),
        /** Ask a third voter when the first two disagree, before escalating. */
        thirdVoter: z.boolean().default(false),
      })
      .prefault({}),
    /**
     * Per-request routing: predicts each candidate's quality for this request from its
     * features (see `featurize`), learned online from the router's own calls.
     */
    predictor: z
      .object({
        enabled: z.boolean().default(false),
        /** Cold start: requests per class on which every candidate is called. */
        warmup: z.number().int().nonnegative().default(20),
        /** Pseudo-count of the class statistics when blended with the request's prediction. */
        classWeight: z.number().positive().default(1),
        /** Pseudo-count of a candidate's all-class mean score in each class's statistics. */
        classPrior: z.number().nonnegative().default(5),
        /** Prior precision of each feature weight (L2 regularization of the logistic model). */
        regularization: z.number().positive().default(1),
        /**
         * Offline fit (`engine.fit`): passes of the logistic model over the labelled history
         * (the class statistics count each outcome once). 3 chosen on inner splits of the
         * train splits: 1 / 3 / 5 / 8 passes gave APGR MT-Bench 0.50 / 0.67 / 0.67 / 0.58,
         * GSM8K 0.60 / 0.63 / 0.63 / 0.62, MMLU 0.66 / 0.65 / 0.65 / 0.64.
         */
        fitPasses: z.number().int().min(1).max(20).default(3),
        /** Thompson noise on the predicted logit, as a multiple of its standard deviation. */
        thompson: z.number().nonnegative().default(0),
        /**
         * Feature families the predictor reads: `shape` (length, code, math, JSON/tools, turns,
         * language, digits, questions, choice), `words` (hashed word uni/bigrams), `chars`
         * (hashed character 4-grams; off by default: no gain measured on the train splits),
         * `class` (the routing class), `embedding` (when an embedder is given).
         */
        features: z
          .array(z.enum(['shape', 'words', 'chars', 'class', 'embedding']))
          .default(['shape', 'words', 'class', 'embedding']),
        /**
         * Nearest neighbours over request embeddings (only with an embedder, or recorded
         * embeddings in replay): the last `capacity` requests' scores are kept (4 bytes per
         * dimension each: 4 MB at 2048 × 512; each decision compares the request with all of
         * them), and a prediction moves toward the mean score of the most similar `share` of
         * them by `weight`. An offline fit with at least 200
         * held-out requests chooses `share` and `weight` (0 when the neighbours do not
         * improve the held-out ranking); otherwise the policy's apply, and `weight` 0 (the
         * default) leaves them unused. `capacity` 0: no memory at all.
         */
        neighbours: z
          .object({
            capacity: z.number().int().nonnegative().max(1_000_000).default(2048),
            share: z.number().positive().max(1).default(0.25),
            weight: z.number().min(0).max(1).default(0),
          })
          .prefault({}),
      })
      .prefault({}),
    /**
     * Shadow comparisons (routed client): for a sample of requests the policy sends to a model
     * other than the reference, the reference model is also called off the response path and
     * a pairwise judge compares the two answers; the verdict is recorded on the routed call and
     * the engine learns from it. Per class and model, sampling stops once the 95% interval of
     * the quality difference is narrower than `targetHalfWidth` and resumes on drift.
     */
    shadow: z
      .object({
        enabled: z.boolean().default(false),
        /** The model routed calls are compared with (default: the dearest candidate). */
        referenceModel: z.string().optional(),
        /** Share of eligible routed calls shadowed while a class's estimate is not tight. */
        sampleRate: z.number().min(0).max(1).default(0.2),
        /** Stop sampling a class and model when the 95% half-width is below this. */
        targetHalfWidth: z.number().positive().max(1).default(0.02),
        /**
         * What `targetHalfWidth` is the half-width of: `class`, each class and model's difference;
         * `total`, the policy's traffic-weighted difference (the savings ledger's total), with
         * the shadows spread over classes and models by Neyman allocation (traffic × spread).
         */
        allocation: z.enum(['class', 'total']).default('class'),
        /**
         * Reference answers kept by a hash of the request (LRU, this many; 0: none): a repeated
         * request is judged against the kept answer instead of calling the reference again.
         */
        referenceCache: z.number().int().nonnegative().default(0),
        /** Shadows a class and model needs before the stop rule applies. */
        minSamples: z.number().int().positive().default(30),
        /**
         * Calls the reference answered are shadowed too (same rates): the cheaper candidate is
         * called off the response path and judged against the reference's answer, so a class
         * the engine sent to the reference keeps being measured without giving the app a cheap
         * answer. false: only calls a cheaper model answered are shadowed.
         */
        counterfactual: z.boolean().default(true),
        /**
         * Share of a class's calls sent to a cheaper candidate the engine passed over while that
         * candidate's shadow estimate for the class is open (under `minSamples` verdicts, or a
         * 95% interval holding −`goal.qualityMargin`); these calls are always shadowed. 0: none
         * (the default: `counterfactual` measures the class at the same cost without it).
         */
        explore: z.number().min(0).max(1).default(0),
        /** Share of eligible calls still shadowed after stopping, to watch for drift. */
        monitorRate: z.number().min(0).max(1).default(0.01),
        /** Monitoring shadows in the drift window (their mean against the stopped interval). */
        driftWindow: z.number().int().positive().default(30),
        /** Spend caps of the shadow and judge calls (USD, rolling hour / day). */
        maxUsdPerHour: z.number().positive().optional(),
        maxUsdPerDay: z.number().positive().optional(),
        /** Shadows waiting (more are dropped) and in flight at once. */
        queueSize: z.number().int().positive().default(50),
        concurrency: z.number().int().positive().default(2),
        timeoutMs: z.number().int().positive().default(60_000),
      })
      .prefault({}),
  })
  .superRefine((policy, context) => {
    const seen = new Set<string>();
    policy.candidates.forEach((candidate, index) => {
      if (seen.has(candidate.model)) {
        context.addIssue({
          code: 'custom',
          path: ['candidates', index, 'model'],
          message: `candidate "${candidate.model}" is listed twice`,
        });
      }
      seen.add(candidate.model);
    });
    for (const [index, model] of (policy.cascade.voters ?? []).entries()) {
      if (!seen.has(model)) {
        context.addIssue({
          code: 'custom',
          path: ['cascade', 'voters', index],
          message: `cascade voter "${model}" is not a candidate of this policy`,
        });
      }
    }
    if (policy.cascade.escalateTo !== undefined && !seen.has(policy.cascade.escalateTo)) {
      context.addIssue({
        code: 'custom',
        path: ['cascade', 'escalateTo'],
        message: `cascade escalation model "${policy.cascade.escalateTo}" is not a candidate of this policy`,
      });
    }
    if (
      policy.cascade.enabled &&
      (policy.cascade.voters === undefined) !== (policy.cascade.escalateTo === undefined)
    ) {
      context.addIssue({
        code: 'custom',
        path: ['cascade'],
        message: 'give both cascade.voters and cascade.escalateTo, or neither',
      });
    }
    if (policy.shadow.referenceModel !== undefined && !seen.has(policy.shadow.referenceModel)) {
      context.addIssue({
        code: 'custom',
        path: ['shadow', 'referenceModel'],
        message: `shadow reference model "${policy.shadow.referenceModel}" is not a candidate of this policy`,
      });
    }
    for (const [index, model] of (policy.fallback.chain ?? []).entries()) {
      if (!seen.has(model)) {
        context.addIssue({
          code: 'custom',
          path: ['fallback', 'chain', index],
          message: `fallback model "${model}" is not a candidate of this policy`,
        });
      }
    }
  });
export type Policy = z.infer<typeof PolicySchema>;
export type PolicyInput = z.input<typeof PolicySchema>;

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  readonly issues: readonly string[];
  constructor(message: string, issues: readonly string[], options?: ErrorOptions) {
    super(message, options);
    this.issues = issues;
  }
}

/** Validates a policy; throws `PolicyError` listing every problem with its path. */
export function parsePolicy(input: unknown, source = 'policy'): Policy {
  const result = PolicySchema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => formatIssues([issue]));
  throw new PolicyError(`invalid ${source}:\n  ${issues.join('\n  ')}`, issues);
}

/** Reads and validates a JSON policy file. */
export function loadPolicyFile(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new PolicyError(`cannot read policy file ${path}`, [String(error)], { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PolicyError(`policy file ${path} is not valid JSON`, [String(error)], {
      cause: error,
    });
  }
  return parsePolicy(json, `policy file ${path}`);
}
