/**
 * Demo traffic for the dashboard tests: OTLP/JSON traces of three services
 * calling three models (an HTTP server span, a router decision span and the
 * LLM client span with gen_ai usage, cost, route and evaluation attributes,
 * some failing), spread over the last minutes; plus an independent summary of
 * what the dashboard must show for it, computed from the same plan.
 */
import { randomBytes } from 'node:crypto';
import { createRandom } from '@modelmaxx/router';
import { otlpAttributes } from '../../../test/support/otlp-json.js';

export interface PlannedCall {
  traceId: string;
  startMs: number;
  durationMs: number;
  service: string;
  feature: string;
  model: string;
  provider: string;
  policy: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  error: boolean;
  score: number | undefined;
}

export interface TrafficSummary {
  calls: number;
  errors: number;
  costUsd: number;
  tokens: number;
  scored: number;
  scoreSum: number;
  byModel: Map<
    string,
    { calls: number; errors: number; costUsd: number; scoreSum: number; scored: number }
  >;
  byService: Map<string, { calls: number; costUsd: number }>;
  byFeature: Map<string, { calls: number; costUsd: number }>;
  /** `policy|model` → routed calls. */
  routed: Map<string, number>;
}

const SERVICES = ['checkout', 'support-bot', 'search'] as const;
const FEATURES: Record<(typeof SERVICES)[number], string[]> = {
  checkout: ['fraud-check', 'receipt-summary'],
  'support-bot': ['answer', 'classify-ticket'],
  search: ['query-rewrite'],
};
const MODELS = [
  { model: 'gpt-4o-mini', provider: 'openai', inPerM: 0.15, outPerM: 0.6, baseMs: 450 },
  { model: 'gpt-4o', provider: 'openai', inPerM: 2.5, outPerM: 10, baseMs: 1200 },
  { model: 'claude-haiku-4-5', provider: 'anthropic', inPerM: 1, outPerM: 5, baseMs: 700 },
] as const;

/** `count` LLM calls, one per trace, spread over the `spreadMinutes` before `nowMs`. */
export function planTraffic(
  count: number,
  nowMs: number,
  spreadMinutes = 20,
  seed = 7,
): PlannedCall[] {
  const next = createRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const calls: PlannedCall[] = [];
  for (let index = 0; index < count; index += 1) {
    const service = pick(SERVICES);
    const feature = pick(FEATURES[service]);
    // The router shifts traffic from gpt-4o to the cheaper models over time.
    const progress = index / count;
    const policy = service === 'search' ? 'cheapest' : 'quality-first';
    const roll = next();
    const spec =
      policy === 'cheapest'
        ? MODELS[0]
        : roll < 0.6 - 0.4 * progress
          ? MODELS[1]
          : roll < 0.8
            ? MODELS[2]
            : MODELS[0];
    const error = next() < 0.06;
    // A failed call (rate limited) used no tokens and costs nothing.
    const inputTokens = error ? 0 : 200 + Math.floor(next() * 1800);
    const outputTokens = error ? 0 : 20 + Math.floor(next() * 400);
    const scored = !error && next() < 0.7;
    calls.push({
      traceId: randomBytes(16).toString('hex'),
      startMs: nowMs - spreadMinutes * 60_000 + Math.floor(progress * spreadMinutes * 60_000),
      durationMs: Math.round(spec.baseMs * (0.6 + next() * 1.2)),
      service,
      feature,
      model: spec.model,
      provider: spec.provider,
      policy,
      inputTokens,
      outputTokens,
      costUsd: error ? 0 : (inputTokens * spec.inPerM + outputTokens * spec.outPerM) / 1e6,
      error,
      score: scored
        ? Math.round((spec.model === 'gpt-4o-mini' ? 0.7 : 0.85) * 100 + next() * 15) / 100
        : undefined,
    });
  }
  return calls;
}

const nanos = (ms: number) => (BigInt(Math.round(ms * 1000)) * 1000n).toString();
const spanId = () => randomBytes(8).toString('hex');

/** The planned calls as one OTLP/JSON `ExportTraceServiceRequest` per service. */
export function toOtlpJson(calls: readonly PlannedCall[]): unknown {
  const byService = new Map<string, unknown[]>();
  for (const call of calls) {
    const root = spanId();
    const route = spanId();
    const llm = spanId();
    const routeMs = 2;
    const spans = [
      {
        traceId: call.traceId,
        spanId: root,
        name: `POST /api/${call.feature}`,
        kind: 2,
        startTimeUnixNano: nanos(call.startMs - 15),
        endTimeUnixNano: nanos(call.startMs + routeMs + call.durationMs + 20),
        attributes: otlpAttributes({
          'http.request.method': 'POST',
          'http.route': `/api/${call.feature}`,
        }),
        status: call.error ? { code: 2, message: 'upstream model failed' } : { code: 1 },
      },
      {
        traceId: call.traceId,
        spanId: route,
        parentSpanId: root,
        name: `route ${call.policy}`,
        kind: 1,
        startTimeUnixNano: nanos(call.startMs),
        endTimeUnixNano: nanos(call.startMs + routeMs),
        attributes: otlpAttributes({
          'modelmaxx.route.policy': call.policy,
          'modelmaxx.route.model': call.model,
          'modelmaxx.route.reason': 'weighted',
          'modelmaxx.feature': call.feature,
        }),
        status: { code: 0 },
      },
      {
        traceId: call.traceId,
        spanId: llm,
        parentSpanId: root,
        name: `chat ${call.model}`,
        kind: 3,
        startTimeUnixNano: nanos(call.startMs + routeMs),
        endTimeUnixNano: nanos(call.startMs + routeMs + call.durationMs),
        attributes: otlpAttributes({
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': call.provider,
          'gen_ai.request.model': call.model,
          'gen_ai.response.model': call.model,
          ...(call.error
            ? {}
            : {
                'gen_ai.usage.input_tokens': call.inputTokens,
                'gen_ai.usage.output_tokens': call.outputTokens,
              }),
          'modelmaxx.feature': call.feature,
          'modelmaxx.task': call.feature,
          'modelmaxx.route.policy': call.policy,
          ...(call.error
            ? { 'error.type': 'RateLimitError' }
            : { 'modelmaxx.cost.usd': call.costUsd, 'gen_ai.response.id': `resp-${call.traceId}` }),
        }),
        events:
          call.score === undefined
            ? []
            : [
                {
                  timeUnixNano: nanos(call.startMs + routeMs + call.durationMs),
                  name: 'gen_ai.evaluation.result',
                  attributes: otlpAttributes({
                    'gen_ai.evaluation.name': 'helpfulness',
                    'gen_ai.evaluation.score.value': call.score,
                  }),
                },
              ],
        status: call.error ? { code: 2, message: '429 rate limited' } : { code: 0 },
      },
    ];
    const list = byService.get(call.service) ?? [];
    list.push(...spans);
    byService.set(call.service, list);
  }
  return {
    resourceSpans: [...byService.entries()].map(([service, spans]) => ({
      resource: {
        attributes: otlpAttributes({
          'service.name': service,
          'deployment.environment.name': 'test',
        }),
      },
      scopeSpans: [{ scope: { name: '@modelmaxx/instrument', version: '0.1.0' }, spans }],
    })),
  };
}

export function summarize(calls: readonly PlannedCall[]): TrafficSummary {
  const summary: TrafficSummary = {
    calls: 0,
    errors: 0,
    costUsd: 0,
    tokens: 0,
    scored: 0,
    scoreSum: 0,
    byModel: new Map(),
    byService: new Map(),
    byFeature: new Map(),
    routed: new Map(),
  };
  for (const call of calls) {
    summary.calls += 1;
    summary.errors += call.error ? 1 : 0;
    summary.costUsd += call.costUsd;
    summary.tokens += call.inputTokens + call.outputTokens;
    const model = summary.byModel.get(call.model) ?? {
      calls: 0,
      errors: 0,
      costUsd: 0,
      scoreSum: 0,
      scored: 0,
    };
    model.calls += 1;
    model.errors += call.error ? 1 : 0;
    model.costUsd += call.costUsd;
    if (call.score !== undefined) {
      model.scoreSum += call.score;
      model.scored += 1;
      summary.scoreSum += call.score;
      summary.scored += 1;
    }
    summary.byModel.set(call.model, model);
    for (const [map, key] of [
      [summary.byService, call.service],
      [summary.byFeature, call.feature],
    ] as const) {
      const entry = map.get(key) ?? { calls: 0, costUsd: 0 };
      entry.calls += 1;
      entry.costUsd += call.costUsd;
      map.set(key, entry);
    }
    const key = `${call.policy}|${call.model}`;
    summary.routed.set(key, (summary.routed.get(key) ?? 0) + 1);
  }
  return summary;
}
