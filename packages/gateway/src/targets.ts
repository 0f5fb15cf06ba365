/**
 * Target resolution: which upstream, under which model name and URL, a request's `model` goes to —
 * a real model (through `resolveModel`), or `route:<policy>`, whose candidates the router engine
 * of that policy chooses among (with the policy's cooldowns). Resolutions are cached per model
 * name and wire.
 */
import type { Attributes } from '@opentelemetry/api';
import { RoutingEngine, referenceModelOf } from '@modelmaxx/router';
import type { Policy, RandomSource } from '@modelmaxx/router';
import { ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from '@modelmaxx/semconv';
import type { CascadeCheck } from './cascade-check.js';
import { resolveModel } from './config.js';
import type { GatewayConfig, Upstream } from './config.js';
import { RequestError } from './http.js';
import { upstreamUrl, upstreamWireOf } from './upstream.js';
import type { Wire } from './usage.js';

export const ROUTE_PREFIX = 'route:';

/** Why an Anthropic model cannot answer `/v1/embeddings` (the only endpoint it cannot serve). */
const NO_EMBEDDINGS =
  'Anthropic has no embeddings API; send embeddings to a model of an OpenAI-style upstream';

/** A model the request may be sent to: the upstream and the name it gets there. */
export interface Target {
  /** The name the app and the policy use (a candidate's `model`, or the request's model). */
  readonly label: string;
  readonly upstream: Upstream;
  readonly model: string;
  readonly url: string;
  /** The upstream's wire format: the app's, or the other provider's chat format (translated). */
  readonly wire: Wire;
  readonly provider: string;
  readonly server: Attributes;
}

export interface PolicyState {
  readonly policy: Policy;
  readonly engine: RoutingEngine;
  /** The engine's random source (fallback choices draw from it, as the routed client's do). */
  readonly random: RandomSource;
  /** The model routed calls are measured against (`shadow.referenceModel`, else the dearest). */
  readonly referenceModel: string;
  /** Candidate model → until when (ms) it is not tried. */
  readonly cooldownUntil: Map<string, number>;
  /** Candidate model → target per wire (undefined: that wire is not served). */
  readonly targets: Map<string, Map<Wire, Target | undefined>>;
  /** The policy's `cascade.check`: a lead voter's answer that fails it escalates. */
  readonly check: CascadeCheck | undefined;
}

/** What a request's `model` resolved to: a policy's candidates, or the one real model. */
export interface Resolution {
  readonly policy: PolicyState | undefined;
  readonly candidates: readonly string[];
}

export function providerOf(upstream: Upstream): string {
  if (upstream.kind === 'anthropic') return 'anthropic';
  if (upstream.kind === 'openrouter') return 'openrouter';
  return 'openai';
}

function serverAttributes(baseURL: string): Attributes {
  try {
    const url = new URL(baseURL);
    const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    return {
      [ATTR_SERVER_ADDRESS]: url.hostname.replace(/^\[|\]$/g, ''),
      [ATTR_SERVER_PORT]: port,
    };
  } catch {
    return {};
  }
}

function targetOn(
  label: string,
  upstream: Upstream,
  model: string,
  wire: Wire,
): Target | undefined {
  const upstreamWire = upstreamWireOf(upstream, wire);
  if (upstreamWire === undefined) return undefined;
  return {
    label,
    upstream,
    model,
    url: upstreamUrl(upstream, upstreamWire),
    wire: upstreamWire,
    provider: providerOf(upstream),
    server: serverAttributes(upstream.baseURL),
  };
}

export class Targets {
  readonly policies = new Map<string, PolicyState>();
  private readonly config: GatewayConfig;
  private readonly cache = new Map<string, Target | null>();

  constructor(config: GatewayConfig, random: RandomSource) {
    this.config = config;
    for (const policy of config.policies.values()) {
      this.policies.set(policy.name, {
        policy,
        engine: new RoutingEngine({ policy, random }),
        random,
        referenceModel: referenceModelOf(policy),
        cooldownUntil: new Map(),
        targets: new Map(),
        check: config.cascadeChecks.get(policy.name),
      });
    }
  }

  /** The target of a real model on a wire. */
  ofModel(label: string, wire: Wire, preferAnthropic = false): Target | undefined {
    const key = `${wire}\u0000${preferAnthropic ? 1 : 0}\u0000${label}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const resolved = resolveModel(this.config, label, preferAnthropic || wire === 'messages');
    const target =
      resolved === undefined ? undefined : targetOn(label, resolved.upstream, resolved.model, wire);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, target ?? null);
    return target;
  }

  /** The target of a policy's candidate on a wire (its `client` upstream, else its model's). */
  ofCandidate(state: PolicyState, model: string, wire: Wire): Target | undefined {
    let perWire = state.targets.get(model);
    if (perWire === undefined) state.targets.set(model, (perWire = new Map()));
    if (perWire.has(wire)) return perWire.get(wire);
    const candidate = state.policy.candidates.find((entry) => entry.model === model)!;
    const target =
      candidate.client !== undefined
        ? targetOn(model, this.config.upstreams.get(candidate.client)!, model, wire)
        : this.ofModel(model, wire, candidate.provider === 'anthropic');
    perWire.set(wire, target);
    return target;
  }

  /** A candidate's target under a resolution. */
  of(resolution: Resolution, model: string, wire: Wire): Target | undefined {
    return resolution.policy === undefined
      ? this.ofModel(model, wire)
      : this.ofCandidate(resolution.policy, model, wire);
  }

  /** The candidates of the request's `model` on this wire; a 404 / 400 when there are none. */
  resolve(requested: string, wire: Wire): Resolution {
    if (requested.startsWith(ROUTE_PREFIX)) return this.resolvePolicy(requested, wire);
    if (this.ofModel(requested, wire) === undefined) {
      const resolved = resolveModel(this.config, requested, wire === 'messages');
      if (resolved === undefined) {
        throw new RequestError(
          404,
          'invalid_request_error',
          `no upstream serves model "${requested}": list it in upstreams.<name>.models or models, or write <upstream>/${requested}`,
          'model_not_found',
        );
      }
      throw new RequestError(
        400,
        'invalid_request_error',
        `model "${requested}" is on upstream "${resolved.upstream.name}" (${resolved.upstream.kind}), which cannot serve /v1/embeddings: ${NO_EMBEDDINGS}`,
        'unsupported_endpoint',
      );
    }
    return { policy: undefined, candidates: [requested] };
  }

  private resolvePolicy(requested: string, wire: Wire): Resolution {
    const name = requested.slice(ROUTE_PREFIX.length);
    const policy = this.policies.get(name);
    if (policy === undefined) {
      throw new RequestError(
        404,
        'invalid_request_error',
        `no routing policy "${name}" (configured: ${[...this.policies.keys()].join(', ') || 'none'})`,
        'model_not_found',
      );
    }
    const candidates = policy.policy.candidates
      .map((candidate) => candidate.model)
      .filter((model) => this.ofCandidate(policy, model, wire) !== undefined);
    if (candidates.length === 0) {
      throw new RequestError(
        400,
        'invalid_request_error',
        `no candidate of policy "${name}" is served on this endpoint (/v1/embeddings: ${NO_EMBEDDINGS})`,
      );
    }
    return { policy, candidates };
  }
}
