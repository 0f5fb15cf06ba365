import type { Attributes } from '@opentelemetry/api';
import {
  ATTR_GEN_AI_OUTPUT_TYPE,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_STOP_SEQUENCES,
  ATTR_GEN_AI_REQUEST_STREAM,
  ATTR_GEN_AI_REQUEST_TEMPERATURE,
  ATTR_GEN_AI_REQUEST_TOP_P,
} from '@modelmaxx/semconv';
import { asNumber } from './util.js';
import type { Dict } from './util.js';

export function stopSequences(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) {
    const strings = value.filter((v): v is string => typeof v === 'string');
    return strings.length > 0 ? strings : undefined;
  }
  return undefined;
}

/** `gen_ai.output.type` for a `response_format` / `text.format` / `output_config.format` type. */
export function outputType(formatType: unknown): string | undefined {
  if (formatType === 'json_object' || formatType === 'json_schema') return 'json';
  if (formatType === 'text') return 'text';
  return undefined;
}

/** Where an API keeps what the common request attributes are read from. */
export interface RequestFields {
  /** The token limit (each API names it differently). */
  maxTokens: unknown;
  /** The stop sequences, a string or a list (undefined where the API has none). */
  stop: unknown;
  /** The requested output format's `type`. */
  formatType: unknown;
}

/**
 * The `gen_ai.request.*` attributes every chat API has: model, stream, max tokens, temperature,
 * top_p, stop sequences and `gen_ai.output.type`, in a fresh object the adapter adds its own to.
 * Each key is stored at a site of its own (no shared setter): this runs once per call.
 */
export function commonRequestAttributes(body: Dict, fields: RequestFields): Attributes {
  const attributes: Attributes = {};
  const model = body['model'];
  if (typeof model === 'string') attributes[ATTR_GEN_AI_REQUEST_MODEL] = model;
  attributes[ATTR_GEN_AI_REQUEST_STREAM] = body['stream'] === true;
  const maxTokens = asNumber(fields.maxTokens);
  if (maxTokens !== undefined) attributes[ATTR_GEN_AI_REQUEST_MAX_TOKENS] = maxTokens;
  const temperature = asNumber(body['temperature']);
  if (temperature !== undefined) attributes[ATTR_GEN_AI_REQUEST_TEMPERATURE] = temperature;
  const topP = asNumber(body['top_p']);
  if (topP !== undefined) attributes[ATTR_GEN_AI_REQUEST_TOP_P] = topP;
  if (fields.stop !== undefined && fields.stop !== null) {
    const sequences = stopSequences(fields.stop);
    if (sequences !== undefined) attributes[ATTR_GEN_AI_REQUEST_STOP_SEQUENCES] = sequences;
  }
  const type = outputType(fields.formatType);
  if (type !== undefined) attributes[ATTR_GEN_AI_OUTPUT_TYPE] = type;
  return attributes;
}
