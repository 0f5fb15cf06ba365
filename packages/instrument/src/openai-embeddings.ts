import type { Attributes } from '@opentelemetry/api';
import {
  ATTR_GEN_AI_REQUEST_ENCODING_FORMATS,
  ATTR_GEN_AI_REQUEST_MODEL,
  GEN_AI_OPERATION_NAME_VALUE_EMBEDDINGS,
  GEN_AI_PROVIDER_NAME_VALUE_OPENAI,
} from '@modelmaxx/semconv';
import type { ApiAdapter, ResponseSummary } from './internal-types.js';
import { openaiUsage } from './openai-chat.js';
import { asDict, asString, setIfDefined } from './util.js';

function summarize(response: unknown): ResponseSummary {
  const r = asDict(response) ?? {};
  const summary: ResponseSummary = {
    finishReasons: [],
    outputText: '',
    toolCalls: [],
    outputMessages: [],
  };
  setIfDefined(summary, 'model', asString(r['model']));
  const usage = openaiUsage(r['usage']);
  // Embeddings have input tokens only: no output count is reported, so none is recorded.
  if (usage?.inputTokens !== undefined) summary.usage = { inputTokens: usage.inputTokens };
  return summary;
}

export const openaiEmbeddingsAdapter: ApiAdapter = {
  provider: GEN_AI_PROVIDER_NAME_VALUE_OPENAI,
  operation: GEN_AI_OPERATION_NAME_VALUE_EMBEDDINGS,
  prepare: (body) => ({ body, hideUsageChunk: false }),
  requestModel: (body) => asString(body['model']),
  isStream: () => false,
  requestAttributes(body) {
    const attributes: Attributes = {};
    setIfDefined(attributes, ATTR_GEN_AI_REQUEST_MODEL, asString(body['model']));
    // Only what the caller asked for: the SDK's own default (base64 on the wire, decoded to floats) is not recorded.
    const format = asString(body['encoding_format']);
    if (format !== undefined) attributes[ATTR_GEN_AI_REQUEST_ENCODING_FORMATS] = [format];
    return attributes;
  },
  jsonRequested: () => false,
  inputContent: () => undefined,
  summarize,
  accumulator: () => ({
    add() {},
    summary: () => summarize(undefined),
  }),
};
