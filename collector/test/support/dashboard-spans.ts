/**
 * Six hours of demo spans for the Grafana dashboard tests: three services calling five models,
 * server, router decision and LLM client spans with usage, cost, route, stream, evaluation and
 * feedback attributes, some failing and some falling back; deterministic (seed 42).
 */
import type { SpanRow } from '../../src/store/span-store.js';
import { createRandom } from '@modelmaxx/router';

const MODELS = [
  { model: 'gpt-4o', provider: 'openai', latencyMs: 1800, quality: 0.92 },
  { model: 'gpt-4o-mini', provider: 'openai', latencyMs: 700, quality: 0.81 },
  { model: 'claude-sonnet-4-5', provider: 'anthropic', latencyMs: 2100, quality: 0.94 },
  { model: 'claude-haiku-4-5', provider: 'anthropic', latencyMs: 650, quality: 0.83 },
  { model: 'acme-llm-1', provider: 'acme', latencyMs: 900, quality: 0.7 },
] as const;
const SERVICES = ['shop', 'support-bot', 'search-api'] as const;
const FEATURES = ['checkout-assistant', 'ticket-triage', 'semantic-search'] as const;
const TASKS = ['classify', 'summarize', 'answer'] as const;
const FINISH = ['stop', 'stop', 'stop', 'length', 'tool_calls', 'content_filter'] as const;
const CALLS = 420;

const hex = (next: () => number, bytes: number) =>
  Array.from({ length: bytes }, () =>
    Math.floor(next() * 256)
      .toString(16)
      .padStart(2, '0'),
  ).join('');
const nanos = (ms: number) => (BigInt(Math.round(ms * 1000)) * 1000n).toString();

export interface Demo {
  rows: SpanRow[];
  routedTraceIds: string[];
}

export function demoSpans(nowMs: number): Demo {
  const next = createRandom(42);
  const rows: SpanRow[] = [];
  const routedTraceIds: string[] = [];
  const span = (
    fields: Partial<SpanRow> & Pick<SpanRow, 'TraceId' | 'SpanId' | 'ServiceName'>,
  ): SpanRow => ({
    Timestamp: nanos(nowMs),
    ParentSpanId: '',
    TraceState: '',
    SpanName: 'span',
    SpanKind: 'Internal',
    ResourceAttributes: {
      'service.name': fields.ServiceName,
      'deployment.environment.name': 'demo',
    },
    ScopeName: '@modelmaxx/instrument',
    ScopeVersion: '0.1.0',
    SpanAttributes: {},
    Duration: '1000000',
    StatusCode: 'Unset',
    StatusMessage: '',
    Events: { Timestamp: [], Name: [], Attributes: [] },
    Links: { TraceId: [], SpanId: [], TraceState: [], Attributes: [] },
    ...fields,
  });
  for (let index = 0; index < CALLS; index += 1) {
    // Six hours of traffic, the last call five seconds ago.
    const startMs = nowMs - 5000 - (CALLS - 1 - index) * 51_000 - Math.floor(next() * 1000);
    const serviceIndex = index % SERVICES.length;
    const service = SERVICES[serviceIndex]!;
    const feature = FEATURES[serviceIndex]!;
    const task = TASKS[Math.floor(next() * TASKS.length)]!;
    const user = `user-${1 + Math.floor(next() * 12)}`;
    const traceId = hex(next, 16);
    const rootId = hex(next, 8);
    const routed = index % 3 !== 0;
    const fallback = routed && index % 17 === 1;
    const model = MODELS[routed ? index % 4 : index % MODELS.length]!;
    const stream = index % 4 === 0;
    const failed = index % 23 === 5;
    const durationMs = model.latencyMs * (0.5 + next()) + (fallback ? 400 : 0);
    const inputTokens = 200 + Math.floor(next() * 3000);
    const outputTokens = failed ? 0 : 20 + Math.floor(next() * 700);
    const cacheRead = index % 5 === 0 ? Math.floor(inputTokens * 0.6) : 0;
    const reasoning =
      model.model === 'gpt-4o' && index % 2 === 0 ? Math.floor(outputTokens / 3) : 0;
    const finish = FINISH[Math.floor(next() * FINISH.length)]!;
    rows.push(
      span({
        TraceId: traceId,
        SpanId: rootId,
        ServiceName: service,
        Timestamp: nanos(startMs),
        SpanName: `POST /api/${feature}`,
        SpanKind: 'Server',
        SpanAttributes: { 'http.request.method': 'POST', 'http.route': `/api/${feature}` },
        Duration: nanos(durationMs + 30),
        StatusCode: failed ? 'Error' : 'Unset',
      }),
    );
    let parentId = rootId;
    const routeAttributes: Record<string, string> = {};
    if (routed) {
      routedTraceIds.push(traceId);
      const routeId = hex(next, 8);
      const weight = (0.4 + next() * 0.6).toFixed(3);
      Object.assign(routeAttributes, {
        'modelmaxx.route.policy': 'auto',
        'modelmaxx.route.class': task,
        'modelmaxx.route.model': model.model,
        'modelmaxx.route.reference_model': 'gpt-4o',
        'modelmaxx.route.weight': weight,
        'modelmaxx.route.reason': fallback
          ? 'fallback after a retryable error'
          : `weighted choice for ${task}`,
        'modelmaxx.route.attempt': fallback ? '2' : '1',
      });
      const failedModel = MODELS[(index + 1) % 4]!.model;
      rows.push(
        span({
          TraceId: traceId,
          SpanId: routeId,
          ParentSpanId: rootId,
          ServiceName: service,
          Timestamp: nanos(startMs + 5),
          SpanName: 'route auto',
          SpanAttributes: { ...routeAttributes },
          Duration: nanos(durationMs + 10),
          StatusCode: failed ? 'Error' : 'Unset',
          StatusMessage: failed ? 'policy "auto": all 2 attempts failed' : '',
          Events: fallback
            ? {
                Timestamp: [nanos(startMs + 300)],
                Name: ['route.attempt_failed'],
                Attributes: [
                  {
                    'modelmaxx.route.model': failedModel,
                    'modelmaxx.route.attempt': '1',
                    'error.type': 'RateLimitError',
                  },
                ],
              }
            : { Timestamp: [], Name: [], Attributes: [] },
        }),
      );
      parentId = routeId;
    }
    const evaluations: { name: string; score: string; label: string; source: string }[] = [
      {
        name: 'modelmaxx.finish_length',
        score: finish === 'length' ? '0' : '1',
        label: finish === 'length' ? 'truncated' : 'complete',
        source: 'evaluator',
      },
    ];
    if (!failed && index % 2 === 0) {
      const score = Math.min(1, Math.max(0, model.quality + (next() - 0.5) * 0.3));
      evaluations.push({ name: 'relevance', score: score.toFixed(3), label: '', source: 'judge' });
    }
    if (!failed && index % 7 === 0) {
      evaluations.push({
        name: 'user_feedback',
        score: next() > 0.3 ? '1' : '0',
        label: 'thumbs',
        source: 'feedback',
      });
    }
    const attributes: Record<string, string> = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': model.provider,
      'gen_ai.request.model': model.model,
      'gen_ai.usage.input_tokens': String(inputTokens),
      'gen_ai.usage.output_tokens': String(outputTokens),
      'modelmaxx.task': task,
      'modelmaxx.feature': feature,
      'enduser.id': user,
      'gen_ai.conversation.id': `conv-${index % 40}`,
      ...routeAttributes,
    };
    if (!failed) {
      attributes['gen_ai.response.model'] = model.model;
      attributes['gen_ai.response.id'] = `resp-${index}`;
      attributes['gen_ai.response.finish_reasons'] = JSON.stringify([finish]);
    } else {
      attributes['error.type'] = 'RateLimitError';
    }
    if (cacheRead > 0) attributes['gen_ai.usage.cache_read.input_tokens'] = String(cacheRead);
    if (reasoning > 0) attributes['gen_ai.usage.reasoning.output_tokens'] = String(reasoning);
    if (stream) {
      attributes['gen_ai.request.stream'] = 'true';
      attributes['gen_ai.response.time_to_first_chunk'] = (
        (durationMs * (0.15 + next() * 0.2)) /
        1000
      ).toFixed(4);
    }
    if (index % 9 === 0 && model.model !== 'acme-llm-1') {
      attributes['gen_ai.usage.cost.amount'] = ((inputTokens + 4 * outputTokens) / 1e6).toFixed(6);
      attributes['gen_ai.usage.cost.currency'] = 'USD';
    }
    const llmStartMs = startMs + (fallback ? 400 : 10);
    rows.push(
      span({
        TraceId: traceId,
        SpanId: hex(next, 8),
        ParentSpanId: parentId,
        ServiceName: service,
        Timestamp: nanos(llmStartMs),
        SpanName: `chat ${model.model}`,
        SpanKind: 'Client',
        SpanAttributes: attributes,
        Duration: nanos(durationMs),
        StatusCode: failed ? 'Error' : 'Unset',
        StatusMessage: failed ? '429 Rate limit reached' : '',
        Events: failed
          ? { Timestamp: [], Name: [], Attributes: [] }
          : {
              Timestamp: evaluations.map(() => nanos(llmStartMs + durationMs + 1)),
              Name: evaluations.map(() => 'gen_ai.evaluation.result'),
              Attributes: evaluations.map((evaluation) => ({
                'gen_ai.evaluation.name': evaluation.name,
                'gen_ai.evaluation.score.value': evaluation.score,
                ...(evaluation.label === ''
                  ? {}
                  : { 'gen_ai.evaluation.score.label': evaluation.label }),
                'gen_ai.evaluation.explanation': `${evaluation.name} for resp-${index}`,
                'gen_ai.response.id': `resp-${index}`,
                'modelmaxx.evaluation.source': evaluation.source,
              })),
            },
      }),
    );
  }
  return { rows, routedTraceIds };
}
