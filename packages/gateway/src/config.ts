/**
 * The gateway's configuration: upstreams (kind, base URL, the models they serve, where the key
 * comes from), router policies for `route:<name>`, and limits. Validated with zod where it enters
 * the process; the access layer's fields (`keys`, `budgets`, `rateLimits`, `alerts`) pass through
 * untouched for `access/`'s own schema.
 */
import { readFileSync } from 'node:fs';
import { PolicySchema } from '@modelmaxx/router';
import type { Policy } from '@modelmaxx/router';
import { z } from 'zod';
import { formatIssues } from '@modelmaxx/semconv';
import { AccessConfigSchema } from './access/config.js';
import { cascadeChecksOf } from './cascade-check.js';
import type { CascadeCheck } from './cascade-check.js';

export const UPSTREAM_KINDS = ['openai', 'anthropic', 'openrouter', 'openai-compatible'] as const;
export type UpstreamKind = (typeof UPSTREAM_KINDS)[number];

/** How an upstream answers `/v1/responses`: forwarded as is, or through Chat Completions. */
const RESPONSES_APIS = ['native', 'chat'] as const;
type ResponsesApi = (typeof RESPONSES_APIS)[number];

const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Strict: a misspelt field (`baseUrl`) is an error, not a silent default (api.openai.com). */
export const UpstreamSchema = z.strictObject({
  kind: z.enum(UPSTREAM_KINDS).optional(),
  baseURL: z.url().optional(),
  /** Model names this upstream serves; a trailing `*` matches a prefix. */
  models: z.array(z.string().min(1)).optional(),
  /** Environment variable with the key; default `MODELMAXX_UPSTREAM_<NAME>_KEY`. */
  keyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
    .optional(),
  /** Time to the upstream's response headers, ms. */
  timeoutMs: z.number().int().positive().optional(),
  /** Longest silence of the upstream's answer once its headers came, ms (else limits'). */
  streamIdleTimeoutMs: z.number().int().positive().optional(),
  /**
   * How an OpenAI-style upstream answers `/v1/responses`: `native` (it serves the Responses API;
   * the request is forwarded) or `chat` (it does not; the request goes to its
   * `/chat/completions` as its chat counterpart, the answer comes back translated).
   */
  responsesApi: z.enum(RESPONSES_APIS).optional(),
});
export type UpstreamInput = z.infer<typeof UpstreamSchema>;

export const GatewayConfigSchema = z.looseObject({
  upstreams: z
    .record(
      z.string().regex(UPSTREAM_NAME, 'upstream names are letters, digits, _ . -'),
      UpstreamSchema,
    )
    .default({}),
  /** Exact model name → upstream name. */
  models: z.record(z.string().min(1), z.string().min(1)).default({}),
  policies: z.array(PolicySchema).default([]),
  limits: z
    .strictObject({
      maxBodyBytes: z
        .number()
        .int()
        .positive()
        .default(4 * 1024 * 1024),
      maxConcurrentRequests: z.number().int().positive().default(256),
      /**
       * Longest time to receive a request's body once its headers came, ms: a client that sends
       * it slower holds a request slot (`maxConcurrentRequests`), so it gets a 408 at this bound.
       */
      bodyTimeoutMs: z.number().int().positive().default(30_000),
      /** Longest silence of an upstream's answer (a stream's events, a body's bytes), ms. */
      streamIdleTimeoutMs: z.number().int().positive().default(300_000),
    })
    .prefault({}),
  /** Relative difference between provider-reported and catalog cost that counts as disagreement. */
  costDisagreementTolerance: z.number().nonnegative().default(0.05),
  /** The pairwise judge of the policies' shadow comparisons (a model an upstream serves). */
  judge: z
    .strictObject({
      model: z.string().min(1),
      rubric: z.string().optional(),
      structuredOutput: z.boolean().optional(),
      maxTokens: z.number().int().positive().optional(),
      timeoutMs: z.number().int().positive().optional(),
    })
    .optional(),
});
export type GatewayConfigInput = z.input<typeof GatewayConfigSchema>;

/** The config file's top-level fields: the gateway's, then the access layer's. */
const TOP_LEVEL_FIELDS = [
  ...Object.keys(GatewayConfigSchema.shape),
  ...Object.keys(AccessConfigSchema.shape),
];

/** A misspelt top-level field (`upstream`, `policy`) is an error naming it, not ignored. */
function unknownTopLevel(input: unknown): string | undefined {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return undefined;
  const unknown = Object.keys(input).filter(
    (key) => !TOP_LEVEL_FIELDS.includes(key) && !key.startsWith('$'),
  );
  if (unknown.length === 0) return undefined;
  return `${unknown.map((key) => JSON.stringify(key)).join(', ')}: unknown field${unknown.length > 1 ? 's' : ''} (the fields are ${TOP_LEVEL_FIELDS.join(', ')})`;
}
type JudgeConfig = NonNullable<z.infer<typeof GatewayConfigSchema>['judge']>;

export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError';
}

export interface Upstream {
  readonly name: string;
  readonly kind: UpstreamKind;
  readonly baseURL: string;
  readonly models: readonly string[];
  /** The key (from the environment); never logged, echoed or recorded. */
  readonly key: string | undefined;
  readonly keyEnv: string;
  readonly timeoutMs: number;
  readonly streamIdleTimeoutMs: number;
  /**
   * `/v1/responses` on this upstream: `native` (forwarded) or `chat` (through its Chat
   * Completions; an Anthropic upstream's is always translated, to `/v1/messages`).
   */
  readonly responsesApi: ResponsesApi;
}

export interface GatewayConfig {
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly models: ReadonlyMap<string, string>;
  readonly policies: ReadonlyMap<string, Policy>;
  /** Policy name → its `cascade.check` (validated here; the router's schema has no such field). */
  readonly cascadeChecks: ReadonlyMap<string, CascadeCheck>;
  readonly maxBodyBytes: number;
  readonly maxConcurrentRequests: number;
  /** Longest time to receive a request body, ms (408 beyond). */
  readonly bodyTimeoutMs: number;
  readonly costDisagreementTolerance: number;
  /** The shadow comparisons' pairwise judge. */
  readonly judge?: JudgeConfig;
  /** The file's whole object, for the access layer's fields. */
  readonly raw: Record<string, unknown>;
}

const DEFAULT_BASE_URLS: Partial<Record<UpstreamKind, string>> = {
  openai: 'https://api.openai.com/v1',
  anthropic: 'https://api.anthropic.com',
  openrouter: 'https://openrouter.ai/api/v1',
};

const DEFAULT_MODELS: Record<UpstreamKind, readonly string[]> = {
  openai: ['gpt-*', 'o1*', 'o3*', 'o4*', 'chatgpt-*', 'text-embedding-*'],
  anthropic: ['claude-*'],
  openrouter: ['*/*'],
  'openai-compatible': [],
};

/**
 * The Responses API is OpenAI's own: other OpenAI-compatible servers (vLLM, Ollama, Groq,
 * Together…) mostly serve Chat Completions only, and OpenRouter's Responses API is a beta, where
 * its chat endpoint reports the provider's cost. Set `responsesApi: "native"` on one that has it.
 */
const DEFAULT_RESPONSES_API: Record<UpstreamKind, ResponsesApi> = {
  openai: 'native',
  anthropic: 'chat',
  openrouter: 'chat',
  'openai-compatible': 'chat',
};

/** `MODELMAXX_UPSTREAM_<NAME>_KEY`: the name upper-cased, other characters `_`. */
export function upstreamKeyEnv(name: string): string {
  return `MODELMAXX_UPSTREAM_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_KEY`;
}

/** The kind an upstream named on the command line gets when the config does not say. */
export function kindOfName(name: string): UpstreamKind {
  const lower = name.toLowerCase();
  if (lower === 'openai' || lower === 'anthropic' || lower === 'openrouter') return lower;
  return 'openai-compatible';
}

/** `NAME=BASE_URL` (the `--upstream` flag). */
export function parseUpstreamFlag(value: string): { name: string; baseURL: string } {
  const equals = value.indexOf('=');
  const name = equals < 0 ? '' : value.slice(0, equals);
  const baseURL = equals < 0 ? '' : value.slice(equals + 1);
  if (!UPSTREAM_NAME.test(name)) {
    throw new GatewayConfigError(
      `--upstream ${JSON.stringify(value)}: expected NAME=BASE_URL, e.g. openai=https://api.openai.com/v1`,
    );
  }
  try {
    const url = new URL(baseURL);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
  } catch {
    throw new GatewayConfigError(
      `--upstream ${name}: ${JSON.stringify(baseURL)} is not an http(s) URL`,
    );
  }
  return { name, baseURL };
}

export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new GatewayConfigError(`cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new GatewayConfigError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
}

export interface ResolveConfigOptions {
  /** `--upstream NAME=BASE_URL` values, added to (or overriding the base URL of) the file's. */
  readonly upstreamFlags?: readonly string[];
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Names the config's source in errors. */
  readonly source?: string;
}

/** The schema's checks, then the top level's unknown fields; errors name `source`. */
function parseConfig(input: unknown, source = 'config'): z.infer<typeof GatewayConfigSchema> {
  const parsed = GatewayConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new GatewayConfigError(`${source}: ${formatIssues(parsed.error.issues)}`);
  }
  const unknown = unknownTopLevel(input);
  if (unknown !== undefined) throw new GatewayConfigError(`${source}: ${unknown}`);
  return parsed.data;
}

/** Validates a config object (from a file or code) and merges the `--upstream` flags. */
export function resolveConfig(input: unknown, options: ResolveConfigOptions = {}): GatewayConfig {
  const env = options.env ?? process.env;
  const config = parseConfig(input, options.source);
  const inputs = new Map<string, UpstreamInput>(Object.entries(config.upstreams));
  for (const flag of options.upstreamFlags ?? []) {
    const { name, baseURL } = parseUpstreamFlag(flag);
    inputs.set(name, { ...inputs.get(name), baseURL });
  }
  const upstreams = new Map<string, Upstream>();
  for (const [name, upstream] of inputs) {
    const kind = upstream.kind ?? kindOfName(name);
    const baseURL = (upstream.baseURL ?? DEFAULT_BASE_URLS[kind])?.replace(/\/+$/, '');
    if (baseURL === undefined) {
      throw new GatewayConfigError(
        `upstream "${name}" (${kind}) needs a baseURL (or --upstream ${name}=URL)`,
      );
    }
    if (kind === 'anthropic' && upstream.responsesApi !== undefined) {
      throw new GatewayConfigError(
        `upstreams.${name}.responsesApi: upstream "${name}" is anthropic, whose /v1/responses always goes to its /v1/messages (translated); responsesApi is for OpenAI-style upstreams`,
      );
    }
    const keyEnv = upstream.keyEnv ?? upstreamKeyEnv(name);
    const key = env[keyEnv]?.trim();
    upstreams.set(name, {
      name,
      kind,
      baseURL,
      models: upstream.models ?? DEFAULT_MODELS[kind],
      key: key === undefined || key === '' ? undefined : key,
      keyEnv,
      timeoutMs: upstream.timeoutMs ?? 600_000,
      streamIdleTimeoutMs: upstream.streamIdleTimeoutMs ?? config.limits.streamIdleTimeoutMs,
      responsesApi: upstream.responsesApi ?? DEFAULT_RESPONSES_API[kind],
    });
  }
  const models = new Map(Object.entries(config.models));
  for (const [model, upstream] of models) {
    if (!upstreams.has(upstream)) {
      throw new GatewayConfigError(`models.${model}: no upstream named "${upstream}"`);
    }
  }
  const policies = new Map<string, Policy>();
  for (const policy of config.policies) {
    if (policies.has(policy.name)) {
      throw new GatewayConfigError(`policies: "${policy.name}" is defined twice`);
    }
    for (const candidate of policy.candidates) {
      if (candidate.client !== undefined && !upstreams.has(candidate.client)) {
        throw new GatewayConfigError(
          `policy "${policy.name}": candidate ${candidate.model} names client "${candidate.client}", which is no upstream`,
        );
      }
    }
    policies.set(policy.name, policy);
  }
  unservedCandidate({ upstreams, models }, policies);
  const checks = cascadeChecksOf(
    input,
    config.policies.map((policy) => policy.name),
  );
  if ('issues' in checks) {
    throw new GatewayConfigError(`${options.source ?? 'config'}: ${formatIssues(checks.issues)}`);
  }
  return {
    upstreams,
    models,
    policies,
    cascadeChecks: checks.checks,
    maxBodyBytes: config.limits.maxBodyBytes,
    maxConcurrentRequests: config.limits.maxConcurrentRequests,
    bodyTimeoutMs: config.limits.bodyTimeoutMs,
    costDisagreementTolerance: config.costDisagreementTolerance,
    ...(config.judge === undefined ? {} : { judge: config.judge }),
    raw: config as Record<string, unknown>,
  };
}

/**
 * A policy candidate without `client` that no upstream serves would be left out of every request
 * without a word (and a policy of only such candidates answer 400 on every call): an error at
 * start instead, as a `client` naming no upstream is.
 */
function unservedCandidate(
  config: Pick<GatewayConfig, 'upstreams' | 'models'>,
  policies: ReadonlyMap<string, Policy>,
): void {
  for (const policy of policies.values()) {
    for (const candidate of policy.candidates) {
      if (candidate.client !== undefined) continue;
      if (resolveModel(config, candidate.model) !== undefined) continue;
      throw new GatewayConfigError(
        `policy "${policy.name}": no upstream serves candidate ${candidate.model} (upstreams: ${[...config.upstreams.keys()].join(', ') || 'none'}): give it a "client", list it in upstreams.<name>.models or models, or write <upstream>/${candidate.model}`,
      );
    }
  }
}

function matches(pattern: string, model: string): boolean {
  if (pattern === '*/*') return model.includes('/');
  if (pattern.endsWith('*')) return model.startsWith(pattern.slice(0, -1));
  return pattern === model;
}

export interface ResolvedModel {
  readonly upstream: Upstream;
  /** The model name the upstream gets (without an `upstream/` prefix). */
  readonly model: string;
}

/**
 * The upstream for a real model: `UPSTREAM/MODEL`, then the `models` map, then the upstreams'
 * patterns (an Anthropic-kind upstream first when `preferAnthropic`), then the only upstream.
 */
export function resolveModel(
  config: Pick<GatewayConfig, 'upstreams' | 'models'>,
  model: string,
  preferAnthropic = false,
): ResolvedModel | undefined {
  const slash = model.indexOf('/');
  if (slash > 0) {
    const upstream = config.upstreams.get(model.slice(0, slash));
    if (upstream !== undefined) return { upstream, model: model.slice(slash + 1) };
  }
  const mapped = config.models.get(model);
  if (mapped !== undefined) return { upstream: config.upstreams.get(mapped)!, model };
  let found: Upstream | undefined;
  for (const upstream of config.upstreams.values()) {
    if (!upstream.models.some((pattern) => matches(pattern, model))) continue;
    if (!preferAnthropic || upstream.kind === 'anthropic') return { upstream, model };
    found ??= upstream;
  }
  if (found !== undefined) return { upstream: found, model };
  if (config.upstreams.size === 1) {
    return { upstream: config.upstreams.values().next().value!, model };
  }
  return undefined;
}

/**
 * Base URLs that are almost surely wrong, said at start: the paths are appended as the SDKs append
 * them (`/chat/completions` to an OpenAI-style base URL, `/v1/messages` to Anthropic's), so an
 * Anthropic base URL ending in `/v1` calls `…/v1/v1/messages`, and an OpenAI-style one without a
 * path usually misses its `/v1`.
 */
export function baseUrlWarnings(config: GatewayConfig): string[] {
  const warnings: string[] = [];
  for (const { name, kind, baseURL } of config.upstreams.values()) {
    let path: string;
    try {
      path = new URL(baseURL).pathname.replace(/\/+$/, '');
    } catch {
      continue;
    }
    if (kind === 'anthropic' && path.endsWith('/v1')) {
      warnings.push(
        `upstream "${name}" (anthropic): base URL ${baseURL} ends in /v1, and the gateway appends /v1/messages (as the Anthropic SDK does), so calls go to ${baseURL}/v1/messages; give ${baseURL.slice(0, -3)}`,
      );
    } else if (kind !== 'anthropic' && path === '') {
      warnings.push(
        `upstream "${name}" (${kind}): base URL ${baseURL} has no path, and the gateway appends /chat/completions (as the OpenAI SDK does), so calls go to ${baseURL}/chat/completions; OpenAI-style base URLs usually end in /v1`,
      );
    }
  }
  return warnings;
}
