/**
 * The gateway's spans: the attributes `@modelmaxx/instrument` puts on an LLM call's span
 * (`gen_ai.*` per the GenAI semantic conventions v1.41, cost from `@modelmaxx/pricing`,
 * `modelmaxx.route.*`), plus the provider-reported cost beside the catalog's.
 */
import type { Attributes } from '@opentelemetry/api';
import { catalogFromEnv, costOf } from '@modelmaxx/pricing';
import type { PriceCatalog } from '@modelmaxx/pricing';
import type { TokenUsage } from '@modelmaxx/pricing';
import {
  ATTR_GEN_AI_OUTPUT_TYPE,
  ATTR_GEN_AI_REQUEST_CHOICE_COUNT,
  ATTR_GEN_AI_REQUEST_ENCODING_FORMATS,
  ATTR_GEN_AI_REQUEST_FREQUENCY_PENALTY,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_PRESENCE_PENALTY,
  ATTR_GEN_AI_REQUEST_SEED,
  ATTR_GEN_AI_REQUEST_STOP_SEQUENCES,
  ATTR_GEN_AI_REQUEST_STREAM,
  ATTR_GEN_AI_REQUEST_TEMPERATURE,
  ATTR_GEN_AI_REQUEST_TOP_K,
  ATTR_GEN_AI_REQUEST_TOP_P,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_COST_AMOUNT,
  ATTR_GEN_AI_USAGE_COST_CURRENCY,
  ATTR_GEN_AI_USAGE_COST_SOURCE,
  GEN_AI_COST_CURRENCY_VALUE_USD,
  GEN_AI_COST_SOURCE_VALUE_ESTIMATE,
  GEN_AI_COST_SOURCE_VALUE_PROVIDER,
  setCatalogCostAttributes,
  setUsageAttributes,
} from '@modelmaxx/semconv';
import { estimatedTokens } from './request.js';
import type { GatewayRequest } from './request.js';
import { estimatedSummary } from './usage.js';
import type { Summary, Wire } from './usage.js';

/** The catalog's figure for a call whose cost the provider reported. */
export const ATTR_MODELMAXX_COST_CATALOG_USD = 'modelmaxx.cost.catalog_usd';
/** |provider − catalog| ÷ max(provider, catalog) when above the tolerance. */
export const ATTR_MODELMAXX_COST_DISAGREEMENT = 'modelmaxx.cost.disagreement';
/** The gateway key's id (never the key), its team and app: who the call is from. */
export const ATTR_MODELMAXX_GATEWAY_KEY_ID = 'modelmaxx.gateway.key_id';
export const ATTR_MODELMAXX_GATEWAY_TEAM = 'modelmaxx.gateway.team';
export const ATTR_MODELMAXX_GATEWAY_APP = 'modelmaxx.gateway.app';
/** The gateway key's user: what `user` budgets and rate limits count (before the app's end user). */
export const ATTR_MODELMAXX_GATEWAY_USER = 'modelmaxx.gateway.user';
/** The configured upstream the gateway sent the call to. */
export const ATTR_MODELMAXX_GATEWAY_UPSTREAM = 'modelmaxx.gateway.upstream';
/** The upstream API called: `chat`, `responses`, `messages` or `embeddings` (maybe translated). */
export const ATTR_MODELMAXX_GATEWAY_UPSTREAM_API = 'modelmaxx.gateway.upstream_api';

type Dict = Record<string, unknown>;

const asNumber = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;

/** The built-in catalog plus `MODELMAXX_PRICES` overrides, as every package prices. */
export function defaultCatalog(): PriceCatalog {
  return catalogFromEnv().catalog;
}

/** `MODELMAXX_PRICES`'s problems (an unreadable file, bad entries); none: no problem. */
export function priceOverrideErrors(): readonly string[] {
  return catalogFromEnv().errors;
}

/** The request's `gen_ai.request.*` attributes, as the instrumentation records them. */
export function requestAttributes(wire: Wire, body: Dict, requestModel: string): Attributes {
  const attributes: Attributes = { [ATTR_GEN_AI_REQUEST_MODEL]: requestModel };
  if (wire === 'embeddings') {
    const format = body['encoding_format'];
    if (typeof format === 'string') attributes[ATTR_GEN_AI_REQUEST_ENCODING_FORMATS] = [format];
    return attributes;
  }
  attributes[ATTR_GEN_AI_REQUEST_STREAM] = body['stream'] === true;
  const maxTokens =
    asNumber(body['max_completion_tokens']) ??
    asNumber(body['max_tokens']) ??
    asNumber(body['max_output_tokens']);
  if (maxTokens !== undefined) attributes[ATTR_GEN_AI_REQUEST_MAX_TOKENS] = maxTokens;
  const temperature = asNumber(body['temperature']);
  if (temperature !== undefined) attributes[ATTR_GEN_AI_REQUEST_TEMPERATURE] = temperature;
  const topP = asNumber(body['top_p']);
  if (topP !== undefined) attributes[ATTR_GEN_AI_REQUEST_TOP_P] = topP;
  const topK = asNumber(body['top_k']);
  if (topK !== undefined) attributes[ATTR_GEN_AI_REQUEST_TOP_K] = topK;
  const frequency = asNumber(body['frequency_penalty']);
  if (frequency !== undefined) attributes[ATTR_GEN_AI_REQUEST_FREQUENCY_PENALTY] = frequency;
  const presence = asNumber(body['presence_penalty']);
  if (presence !== undefined) attributes[ATTR_GEN_AI_REQUEST_PRESENCE_PENALTY] = presence;
  const stop = body['stop'] ?? body['stop_sequences'];
  if (typeof stop === 'string') attributes[ATTR_GEN_AI_REQUEST_STOP_SEQUENCES] = [stop];
  else if (Array.isArray(stop) && stop.every((item) => typeof item === 'string')) {
    attributes[ATTR_GEN_AI_REQUEST_STOP_SEQUENCES] = stop as string[];
  }
  const seed = asNumber(body['seed']);
  if (seed !== undefined) attributes[ATTR_GEN_AI_REQUEST_SEED] = seed;
  const n = asNumber(body['n']);
  if (n !== undefined && n !== 1) attributes[ATTR_GEN_AI_REQUEST_CHOICE_COUNT] = n;
  const format = (body['response_format'] ?? (body['text'] as Dict | undefined)?.['format']) as
    Dict | undefined;
  const type = typeof format === 'object' && format !== null ? format['type'] : undefined;
  if (type === 'json_object' || type === 'json_schema')
    attributes[ATTR_GEN_AI_OUTPUT_TYPE] = 'json';
  else if (type === 'text') attributes[ATTR_GEN_AI_OUTPUT_TYPE] = 'text';
  return attributes;
}

export interface CostOutcome {
  /** The span's cost (provider's when reported, else the catalog's); undefined when unknown. */
  readonly costUsd: number | undefined;
  /** Relative disagreement when above the tolerance. */
  readonly disagreement?: number;
  readonly catalogUsd?: number;
}

/**
 * Response attributes (model, id, finish reasons, usage, cost) into `attributes`. A chat call
 * without an output count (a stream cut short) has no known cost, as in the instrumentation.
 */
export function responseAttributes(
  attributes: Attributes,
  wire: Wire,
  provider: string,
  requestModel: string,
  summary: Summary,
  tolerance: number,
): CostOutcome {
  if (summary.model !== undefined) attributes[ATTR_GEN_AI_RESPONSE_MODEL] = summary.model;
  if (summary.id !== undefined) attributes[ATTR_GEN_AI_RESPONSE_ID] = summary.id;
  if (summary.finishReasons.length > 0) {
    attributes[ATTR_GEN_AI_RESPONSE_FINISH_REASONS] = summary.finishReasons;
  }
  const usage = summary.usage;
  if (usage === undefined) return { costUsd: summary.providerCostUsd };
  setUsageAttributes(attributes, usage);
  const priced = usage.outputTokens !== undefined || wire === 'embeddings';
  const catalogUsd = priced
    ? (catalogCost(attributes, provider, summary.model, usage) ??
      catalogCost(attributes, provider, requestModel, usage))
    : undefined;
  if (summary.estimated === true) {
    // Estimated tokens and their catalog price: marked so it is not read as billed usage.
    attributes[ATTR_GEN_AI_USAGE_COST_SOURCE] = GEN_AI_COST_SOURCE_VALUE_ESTIMATE;
    return { costUsd: catalogUsd };
  }
  const provided = summary.providerCostUsd;
  if (provided === undefined) return { costUsd: catalogUsd };
  attributes[ATTR_GEN_AI_USAGE_COST_AMOUNT] = provided;
  attributes[ATTR_GEN_AI_USAGE_COST_CURRENCY] = GEN_AI_COST_CURRENCY_VALUE_USD;
  attributes[ATTR_GEN_AI_USAGE_COST_SOURCE] = GEN_AI_COST_SOURCE_VALUE_PROVIDER;
  if (catalogUsd === undefined) return { costUsd: provided };
  attributes[ATTR_MODELMAXX_COST_CATALOG_USD] = catalogUsd;
  const scale = Math.max(Math.abs(provided), Math.abs(catalogUsd));
  const difference = scale === 0 ? 0 : Math.abs(provided - catalogUsd) / scale;
  if (difference > tolerance) {
    attributes[ATTR_MODELMAXX_COST_DISAGREEMENT] = difference;
    return { costUsd: provided, catalogUsd, disagreement: difference };
  }
  return { costUsd: provided, catalogUsd };
}

function catalogCost(
  attributes: Attributes,
  provider: string,
  model: string | undefined,
  usage: TokenUsage,
): number | undefined {
  if (model === undefined || model === '') return undefined;
  const result = costOf({ provider, model, usage }, { catalog: defaultCatalog() });
  if (!result.known) return undefined;
  setCatalogCostAttributes(attributes, result);
  return result.amount;
}

/**
 * The summary a call is accounted by: the upstream's, or its estimate (./usage.ts
 * `estimatedSummary`, input as admission estimated it) when the provider had the call but its
 * usage never came: a stream that ended without the provider's output count, or any call `cut`
 * before its answer ended — the app went away, the gateway's timeout, an answer the upstream cut
 * or that went silent (non-streamed: input only, the answer's body unread). A call the provider
 * refused (status 4xx / 5xx) is not estimated; one whose request never reached it is not
 * accounted at all (./exchange.ts).
 */
export function accountedSummary(
  request: GatewayRequest,
  summary: Summary,
  status: number,
  cut: boolean,
): Summary {
  const unfinished = cut || (request.stream && request.wire !== 'embeddings');
  if (!unfinished || status >= 400) return summary;
  return estimatedSummary(summary, estimatedTokens(request).input) ?? summary;
}

/** Upper-bound USD estimate of a call before it runs (for budgets), 0 when the price is unknown. */
export function estimateCost(
  provider: string,
  model: string,
  inputTokens: number,
  outputTokens: number,
): number {
  const result = costOf(
    { provider, model, usage: { inputTokens, outputTokens } },
    { catalog: defaultCatalog() },
  );
  return result.known ? result.amount : 0;
}
