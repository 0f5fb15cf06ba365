import type { Attributes } from '@opentelemetry/api';
import { expect } from 'vitest';
import { costOf } from '@modelmaxx/pricing';
import type { CostResult, TokenUsage } from '@modelmaxx/pricing';

type KnownCost = Extract<CostResult, { known: true }>;

/** The cost attributes the instrumentation must write, computed here from `@modelmaxx/pricing`. */
export function expectedCost(provider: string, model: string, usage: TokenUsage): Attributes {
  const result = costOf({ provider, model, usage });
  if (!result.known) throw new Error(`test expects a known price for ${model}: ${result.reason}`);
  return costAttributes(result);
}

/** The cost attributes of a priced call. */
export function costAttributes(result: KnownCost): Attributes {
  return {
    'gen_ai.usage.cost.amount': result.amount,
    'gen_ai.usage.cost.currency': 'USD',
    'gen_ai.usage.cost.source': 'local',
    'modelmaxx.cost.input_usd': result.breakdown.input,
    ...nonZero('modelmaxx.cost.cache_read_usd', result.breakdown.cacheRead),
    ...nonZero('modelmaxx.cost.cache_write_usd', result.breakdown.cacheWrite),
    'modelmaxx.cost.output_usd': result.breakdown.output,
    ...nonZero('modelmaxx.cost.reasoning_usd', result.breakdown.reasoning),
    'modelmaxx.pricing.model': result.model,
    'modelmaxx.pricing.version': result.version,
  };
}

interface OpenAIUsageWire {
  prompt_tokens?: number;
  completion_tokens?: number;
  input_tokens?: number;
  output_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
  input_tokens_details?: { cached_tokens?: number } | null;
  output_tokens_details?: { reasoning_tokens?: number } | null;
}

/** Usage + cost attributes for an OpenAI usage object (chat or Responses shape). */
export function openaiUsageAttributes(model: string, usage: OpenAIUsageWire): Attributes {
  const input = usage.prompt_tokens ?? usage.input_tokens ?? 0;
  const output = usage.completion_tokens ?? usage.output_tokens ?? 0;
  const cached = (usage.prompt_tokens_details ?? usage.input_tokens_details)?.cached_tokens;
  const reasoning = (usage.completion_tokens_details ?? usage.output_tokens_details)
    ?.reasoning_tokens;
  const attributes: Attributes = {
    'gen_ai.usage.input_tokens': input,
    'gen_ai.usage.output_tokens': output,
  };
  if (cached !== undefined) attributes['gen_ai.usage.cache_read.input_tokens'] = cached;
  if (reasoning !== undefined) attributes['gen_ai.usage.reasoning.output_tokens'] = reasoning;
  return {
    ...attributes,
    ...expectedCost('openai', model, {
      inputTokens: input,
      outputTokens: output,
      cacheReadTokens: cached ?? 0,
      reasoningTokens: reasoning ?? 0,
    }),
  };
}

interface AnthropicUsageWire {
  input_tokens: number;
  output_tokens: number;
  output_tokens_details?: { thinking_tokens: number } | null;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}

/** Anthropic: input_tokens on the span = uncached + cache read + cache write. */
export function anthropicUsageAttributes(model: string, usage: AnthropicUsageWire): Attributes {
  const read = usage.cache_read_input_tokens ?? 0;
  const write = usage.cache_creation_input_tokens ?? 0;
  const input = usage.input_tokens + read + write;
  const attributes: Attributes = {
    'gen_ai.usage.input_tokens': input,
    'gen_ai.usage.output_tokens': usage.output_tokens,
  };
  if (usage.cache_read_input_tokens != null)
    attributes['gen_ai.usage.cache_read.input_tokens'] = read;
  if (usage.cache_creation_input_tokens != null)
    attributes['gen_ai.usage.cache_creation.input_tokens'] = write;
  const thinking = usage.output_tokens_details?.thinking_tokens;
  if (thinking !== undefined) attributes['gen_ai.usage.reasoning.output_tokens'] = thinking;
  return {
    ...attributes,
    ...expectedCost('anthropic', model, {
      inputTokens: input,
      outputTokens: usage.output_tokens,
      cacheReadTokens: read,
      cacheWriteTokens: write,
      reasoningTokens: thinking ?? 0,
    }),
  };
}

export function serverAttributesOf(baseURL: string): Attributes {
  const url = new URL(baseURL);
  return { 'server.address': url.hostname, 'server.port': Number(url.port) };
}

/** A breakdown part the instrumentation writes only when it is not zero. */
function nonZero(key: string, value: number): Attributes {
  return value === 0 ? {} : { [key]: value };
}

/**
 * What a streamed call's span records about its response: model, id and finish reasons as the
 * stream said, a time to first chunk, and the usage (and cost) attributes given.
 */
export function streamedResponse(
  model: unknown,
  id: unknown,
  finishReasons: unknown[],
  usage: Attributes,
): Record<string, unknown> {
  return {
    'gen_ai.response.model': model,
    'gen_ai.response.id': id,
    'gen_ai.response.finish_reasons': finishReasons,
    'gen_ai.response.time_to_first_chunk': expect.any(Number),
    ...usage,
  };
}
