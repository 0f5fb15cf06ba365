/**
 * OTLP/JSON chat spans as the instrumentation sends them, and posting them to a collector's
 * `/v1/traces`: for the tests that need LLM calls in a collector without running an app (the
 * CLI's report, SQL and cookbook tests, the gateway's alert tests, the collector's dashboard and
 * feedback tests). Dependency-free, so package tests can include it (their tsconfig lists this file).
 */

/** One `{ key, value }` attribute of OTLP/JSON. */
export interface OtlpAttribute {
  key: string;
  value: { stringValue: string } | { intValue: string } | { doubleValue: number };
}

export interface ChatSpanSpec {
  /** Trace and span id (hex, zero-padded to 32 and 16 digits). */
  id: number;
  model: string;
  /** Default `openai`. */
  provider?: string;
  /** `gen_ai.response.model`; none when undefined. */
  responseModel?: string;
  /** Default: a second ago. */
  startMs?: number;
  /** Default 250. */
  durationMs?: number;
  /** Default 100. */
  inputTokens?: number;
  /** Default 20. */
  outputTokens?: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
  /** USD reported on the span; undefined leaves pricing to the collector's catalog. */
  cost?: number;
  /** An error status with `error.type` = this. */
  errorType?: string;
  /** Further string attributes (`modelmaxx.feature`, ...). */
  attributes?: Record<string, string>;
}

const text = (key: string, value: string): OtlpAttribute => ({
  key,
  value: { stringValue: value },
});
const int = (key: string, value: number): OtlpAttribute => ({
  key,
  value: { intValue: String(value) },
});

/** OTLP/JSON attributes of a record: strings as stringValue, integers as intValue, other numbers as doubleValue. */
export function otlpAttributes(values: Record<string, string | number>): OtlpAttribute[] {
  return Object.entries(values).map(([key, value]) => ({
    key,
    value:
      typeof value === 'string'
        ? { stringValue: value }
        : Number.isInteger(value)
          ? { intValue: String(value) }
          : { doubleValue: value },
  }));
}

/** The span's attributes, in the order the instrumentation writes them. */
function chatAttributes(spec: ChatSpanSpec): OtlpAttribute[] {
  const attributes = [
    text('gen_ai.operation.name', 'chat'),
    text('gen_ai.provider.name', spec.provider ?? 'openai'),
    text('gen_ai.request.model', spec.model),
  ];
  if (spec.responseModel !== undefined)
    attributes.push(text('gen_ai.response.model', spec.responseModel));
  attributes.push(int('gen_ai.usage.input_tokens', spec.inputTokens ?? 100));
  attributes.push(int('gen_ai.usage.output_tokens', spec.outputTokens ?? 20));
  if (spec.cacheReadTokens !== undefined)
    attributes.push(int('gen_ai.usage.cache_read.input_tokens', spec.cacheReadTokens));
  if (spec.cacheWriteTokens !== undefined)
    attributes.push(int('gen_ai.usage.cache_creation.input_tokens', spec.cacheWriteTokens));
  if (spec.cost !== undefined) {
    attributes.push({ key: 'gen_ai.usage.cost.amount', value: { doubleValue: spec.cost } });
    attributes.push(text('gen_ai.usage.cost.currency', 'USD'));
  }
  for (const [key, value] of Object.entries(spec.attributes ?? {}))
    attributes.push(text(key, value));
  if (spec.errorType !== undefined) attributes.push(text('error.type', spec.errorType));
  return attributes;
}

/** A client chat span (`chat <model>`, kind CLIENT). */
export function otlpChatSpan(spec: ChatSpanSpec) {
  const start = BigInt(spec.startMs ?? Date.now() - 1000) * 1_000_000n;
  return {
    traceId: spec.id.toString(16).padStart(32, '0'),
    spanId: spec.id.toString(16).padStart(16, '0'),
    name: `chat ${spec.model}`,
    kind: 3,
    startTimeUnixNano: String(start),
    endTimeUnixNano: String(start + BigInt(spec.durationMs ?? 250) * 1_000_000n),
    attributes: chatAttributes(spec),
    status: { code: spec.errorType === undefined ? 0 : 2 },
  };
}

/**
 * Posts `spans` of one service (default `shop`) to `collectorUrl/v1/traces`, with `headers` (an
 * ingest token); the HTTP status.
 */
export async function postOtlpSpans(
  collectorUrl: string,
  spans: readonly unknown[],
  serviceName = 'shop',
  headers: Record<string, string> = {},
): Promise<number> {
  const response = await fetch(`${collectorUrl}/v1/traces`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [text('service.name', serviceName)] },
          scopeSpans: [{ scope: { name: 'test' }, spans }],
        },
      ],
    }),
  });
  await response.arrayBuffer();
  return response.status;
}
