import { expect } from 'vitest';
import { costOf, loadCatalog } from '@modelmaxx/pricing';
import type { Attributes, AttributeValue } from './otlp-receiver.js';

/** What the fixture apps print (see fixtures/calls.mjs). */
export interface AppOutput {
  chat: {
    id: string;
    model: string;
    content: string;
    usage: {
      prompt_tokens: number;
      completion_tokens: number;
      prompt_tokens_details?: { cached_tokens?: number };
      completion_tokens_details?: { reasoning_tokens?: number };
    };
  };
  stream: { content: string; chunks: number; usage: unknown };
  anthropic?: {
    id: string;
    model: string;
    content: string;
    usage: {
      input_tokens: number;
      output_tokens: number;
      cache_read_input_tokens?: number | null;
      cache_creation_input_tokens?: number | null;
    };
  };
  parent?: { traceId: string; spanId: string };
}

export function parseAppOutput(stdout: string): AppOutput {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as AppOutput;
}

interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
}

/** Cost attributes as SPEC defines them, from @modelmaxx/pricing (with MODELMAXX_PRICES when given). */
export function expectedCostAttributes(
  provider: string,
  models: readonly string[],
  usage: Usage,
  pricesFile?: string,
): Attributes {
  const { catalog } = loadCatalog({ env: { MODELMAXX_PRICES: pricesFile } });
  for (const model of models) {
    const result = costOf({ provider, model, usage }, { catalog });
    if (!result.known) continue;
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
  throw new Error(`no price for ${models.join(', ')}`);
}

/** The whole attribute map of the non-streaming chat completion span in fixtures/calls.mjs. */
export function expectedChatAttributes(
  output: AppOutput,
  serverPort: number,
  pricesFile?: string,
): Attributes {
  const { usage } = output.chat;
  const tokens: Usage = {
    inputTokens: usage.prompt_tokens,
    outputTokens: usage.completion_tokens,
    cacheReadTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
    cacheWriteTokens: 0,
    reasoningTokens: usage.completion_tokens_details?.reasoning_tokens ?? 0,
  };
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': 'gpt-4o-mini',
    'gen_ai.request.stream': false,
    'gen_ai.request.max_tokens': 50,
    'server.address': '127.0.0.1',
    'server.port': serverPort,
    'gen_ai.response.model': output.chat.model,
    'gen_ai.response.id': output.chat.id,
    'gen_ai.response.finish_reasons': ['stop'],
    'gen_ai.usage.input_tokens': tokens.inputTokens,
    'gen_ai.usage.output_tokens': tokens.outputTokens,
    'gen_ai.usage.cache_read.input_tokens': tokens.cacheReadTokens,
    'gen_ai.usage.reasoning.output_tokens': tokens.reasoningTokens,
    ...expectedCostAttributes('openai', [output.chat.model, 'gpt-4o-mini'], tokens, pricesFile),
  };
}

/** The streamed chat completion: the app never sees usage (the instrumentation asks for it and hides it). */
export function expectedStreamAttributes(
  span: Attributes,
  serverPort: number,
): Record<string, unknown> {
  const number = (value: AttributeValue | undefined): number =>
    typeof value === 'number' ? value : NaN;
  const tokens: Usage = {
    inputTokens: number(span['gen_ai.usage.input_tokens']),
    outputTokens: number(span['gen_ai.usage.output_tokens']),
    cacheReadTokens: number(span['gen_ai.usage.cache_read.input_tokens']),
    cacheWriteTokens: 0,
    reasoningTokens: number(span['gen_ai.usage.reasoning.output_tokens']),
  };
  const responseModel = String(span['gen_ai.response.model']);
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': 'gpt-4o-mini',
    'gen_ai.request.stream': true,
    'server.address': '127.0.0.1',
    'server.port': serverPort,
    'gen_ai.response.model': expect.stringMatching(/^gpt-4o-mini/),
    'gen_ai.response.id': expect.stringMatching(/^chatcmpl-/),
    'gen_ai.response.finish_reasons': ['stop'],
    'gen_ai.usage.input_tokens': expect.any(Number),
    'gen_ai.usage.output_tokens': expect.any(Number),
    'gen_ai.usage.cache_read.input_tokens': 0,
    'gen_ai.usage.reasoning.output_tokens': 0,
    'gen_ai.response.time_to_first_chunk': expect.any(Number),
    ...expectedCostAttributes('openai', [responseModel, 'gpt-4o-mini'], tokens),
  };
}

export function expectedAnthropicAttributes(output: AppOutput, serverPort: number): Attributes {
  const message = output.anthropic;
  if (message === undefined) throw new Error('the app made no Anthropic call');
  const cacheRead = message.usage.cache_read_input_tokens ?? 0;
  const cacheWrite = message.usage.cache_creation_input_tokens ?? 0;
  const tokens: Usage = {
    // GenAI semantics: input tokens include the cached ones (Anthropic reports them apart).
    inputTokens: message.usage.input_tokens + cacheRead + cacheWrite,
    outputTokens: message.usage.output_tokens,
    cacheReadTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
    reasoningTokens: 0,
  };
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'anthropic',
    'gen_ai.request.model': 'claude-haiku-4-5',
    'gen_ai.request.stream': false,
    'gen_ai.request.max_tokens': 64,
    'server.address': '127.0.0.1',
    'server.port': serverPort,
    'gen_ai.response.model': message.model,
    'gen_ai.response.id': message.id,
    'gen_ai.response.finish_reasons': ['end_turn'],
    'gen_ai.usage.input_tokens': tokens.inputTokens,
    'gen_ai.usage.output_tokens': tokens.outputTokens,
    'gen_ai.usage.cache_read.input_tokens': cacheRead,
    'gen_ai.usage.cache_creation.input_tokens': cacheWrite,
    ...expectedCostAttributes('anthropic', [message.model, 'claude-haiku-4-5'], tokens),
  };
}

/** A breakdown part the instrumentation writes only when it is not zero. */
function nonZero(key: string, value: number): Attributes {
  return value === 0 ? {} : { [key]: value };
}
