/**
 * The routed client: `router.chat.completions.create({ model: 'auto', ... })` in the openai
 * SDK's shape. Picks a candidate by weight, falls back on 429 / 5xx / timeouts with cooldowns
 * and a bounded number of attempts, never to a model the policy excludes, and records the
 * decision on a span (each attempt's SDK span, when instrumented, is its child).
 *
 * `createRouter` wires the parts: `route-call.ts` (one request: decision, plan, attempts),
 * `candidate-call.ts` (the SDK calls), `cooldowns.ts`, `spend.ts` (prices and budget),
 * `observation.ts` (what the engine learns), `shadow-dispatch.ts` (shadow comparisons).
 */
import { diag, trace } from '@opentelemetry/api';
import { CandidateClients } from './candidate-call.js';
import { Cooldowns } from './cooldowns.js';
import type { WeightTable } from './decision.js';
import { RoutingEngine } from './engine.js';
import type { Decision, LabelledExample } from './engine.js';
import { cachedEmbedder, featurize, featurizeInputOf } from './features.js';
import type { RequestVector } from './features.js';
import { parsePolicy } from './policy.js';
import type { Policy } from './policy.js';
import { configWarning } from './route-errors.js';
import { routeRequest } from './route-call.js';
import type { RouterCore } from './route-call.js';
import type { ChatParams, Router, RouterOptions } from './router-types.js';
import { referenceModelOf } from './shadow.js';
import { ShadowDispatcher } from './shadow-dispatch.js';
import { BudgetTracker } from './spend.js';

/** The engine's weight source: the app's `weights` option (updater, table or function). */
function externalWeights(options: RouterOptions): (() => WeightTable) | undefined {
  const source = options.weights;
  if (source === undefined) return undefined;
  return (): WeightTable => {
    if (typeof source === 'function') return source();
    if ('classes' in source) return source;
    return source.current;
  };
}

/** The request's feature vector, with its embedding when an embedder is given (and works). */
function vectorSource(
  policy: Policy,
  options: RouterOptions,
): (params: ChatParams, classKey: string) => Promise<RequestVector> {
  const embedder = options.embed === undefined ? undefined : cachedEmbedder(options.embed);
  return async (params, classKey) => {
    const input = featurizeInputOf(params, classKey, policy.predictor.features);
    if (embedder === undefined) return featurize(input);
    try {
      return featurize(input, await embedder(input.text));
    } catch (error) {
      diag.warn(`modelmaxx router: embedding failed, routing without it: ${String(error)}`);
      return featurize(input);
    }
  };
}

/** The examples with their spacing kept, the last one at `now` (the router's clock). */
function onClock(examples: Iterable<LabelledExample>, now: number): LabelledExample[] {
  const list = [...examples];
  let last = -Infinity;
  for (const example of list) last = Math.max(last, example.request.at);
  const shift = now - last;
  if (list.length === 0 || shift === 0) return list;
  return list.map((example) => ({
    ...example,
    request: { ...example.request, at: example.request.at + shift },
  }));
}

export function createRouter(options: RouterOptions): Router {
  const policy = parsePolicy(options.policy);
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const tracer = options.tracer ?? trace.getTracer('@modelmaxx/router');
  const candidates = new Map(policy.candidates.map((candidate) => [candidate.model, candidate]));
  const clients = new CandidateClients(policy, options.clients);
  const weights = externalWeights(options);
  const engine = new RoutingEngine({
    policy,
    random,
    ...(weights === undefined ? {} : { weights }),
  });
  if (policy.predictor.enabled && options.score === undefined) {
    configWarning(
      `modelmaxx router: policy "${policy.name}" routes per request but createRouter has no score(): the predictor learns only from scored calls, so it keeps its priors and routes by cost`,
    );
  }
  const vectorOf = vectorSource(policy, options);
  const referenceModel = referenceModelOf(policy);
  const shadows = new ShadowDispatcher({
    policy,
    engine,
    clients,
    candidates,
    referenceModel,
    tracer,
    random,
    now,
    judge: options.judge,
    onShadow: options.onShadow,
    ...(options.shadowMonitor === undefined ? {} : { monitor: options.shadowMonitor }),
  });
  const cooldowns = new Cooldowns(now, policy.fallback.cooldownMs);
  const budget = new BudgetTracker(policy, now);
  const core: RouterCore = {
    policy,
    engine,
    candidates,
    clients,
    cooldowns,
    budget,
    shadows,
    referenceModel,
    tracer,
    random,
    now,
    options,
    vectorOf,
    decisions: new WeakMap<object, Decision>(),
  };
  const create = (params: ChatParams, routeOptions?: Parameters<typeof routeRequest>[2]) =>
    routeRequest(core, params, routeOptions);
  return {
    policy,
    engine,
    chat: { completions: { create: create as Router['chat']['completions']['create'] } },
    fit: (examples) => engine.fit(onClock(examples, now())),
    decisionOf: (result) => core.decisions.get(result),
    cooldowns: () => cooldowns.snapshot(),
    referenceModel,
    shadows: () => shadows.stats(),
    idle: () => shadows.idle(),
    spend: () => budget.spend(),
  };
}
