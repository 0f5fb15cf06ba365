import {
  ATTR_GEN_AI_REQUEST_TOP_K,
  GEN_AI_OPERATION_NAME_VALUE_CHAT,
  GEN_AI_PROVIDER_NAME_VALUE_ANTHROPIC,
} from '@modelmaxx/semconv';
import type {
  ApiAdapter,
  InputContent,
  ResponseSummary,
  StreamAccumulator,
} from './internal-types.js';
import { commonRequestAttributes } from './request-attributes.js';
import type { ChatMessage, MessagePart, TokenUsage, ToolCallSummary } from './types.js';
import { asArray, asDict, asNumber, asString, setIfDefined } from './util.js';
import type { Dict } from './util.js';

/** Anthropic reports uncached input apart from cache reads and writes; OTel's input count includes them. */
export function anthropicUsage(usage: unknown): TokenUsage | undefined {
  const u = asDict(usage);
  if (u === undefined) return undefined;
  const uncached = asNumber(u['input_tokens']);
  const cacheRead = asNumber(u['cache_read_input_tokens']);
  const cacheWrite = asNumber(u['cache_creation_input_tokens']);
  const output = asNumber(u['output_tokens']);
  // Thinking tokens are counted in output_tokens; `output_tokens_details.thinking_tokens` says how many.
  const thinking = asNumber(asDict(u['output_tokens_details'])?.['thinking_tokens']);
  const result: TokenUsage = {};
  if (uncached !== undefined) result.inputTokens = uncached + (cacheRead ?? 0) + (cacheWrite ?? 0);
  if (output !== undefined) result.outputTokens = output;
  if (cacheRead !== undefined) result.cacheReadTokens = cacheRead;
  if (cacheWrite !== undefined) result.cacheWriteTokens = cacheWrite;
  if (thinking !== undefined && output !== undefined) result.reasoningTokens = thinking;
  return Object.keys(result).length > 0 ? result : undefined;
}

function blockParts(content: unknown): MessagePart[] {
  if (typeof content === 'string') return [{ type: 'text', content }];
  const parts: MessagePart[] = [];
  for (const raw of asArray(content)) {
    const block = asDict(raw);
    if (block === undefined) continue;
    const type = asString(block['type']);
    if (type === 'text') parts.push({ type: 'text', content: asString(block['text']) ?? '' });
    else if (type === 'tool_use') {
      parts.push({
        type: 'tool_call',
        id: asString(block['id']) ?? null,
        name: asString(block['name']) ?? null,
        arguments: block['input'],
      });
    } else if (type === 'tool_result') {
      parts.push({
        type: 'tool_call_response',
        id: asString(block['tool_use_id']) ?? null,
        response: block['content'],
      });
    } else if (type === 'thinking') {
      parts.push({ type: 'reasoning', content: asString(block['thinking']) ?? '' });
    } else parts.push({ type: type ?? 'unknown' });
  }
  return parts;
}

function inputContent(body: Dict): InputContent | undefined {
  const messages: ChatMessage[] = asArray(body['messages']).map((raw) => {
    const message = asDict(raw) ?? {};
    return { role: asString(message['role']) ?? 'user', parts: blockParts(message['content']) };
  });
  const result: InputContent = { messages };
  if (body['system'] !== undefined) result.system = blockParts(body['system']);
  return result;
}

function fromMessage(message: Dict, usage: TokenUsage | undefined): ResponseSummary {
  const content = asArray(message['content']);
  let outputText = '';
  const toolCalls: ToolCallSummary[] = [];
  for (const raw of content) {
    const block = asDict(raw);
    if (block === undefined) continue;
    if (block['type'] === 'text') outputText += asString(block['text']) ?? '';
    if (block['type'] === 'tool_use') {
      const call: ToolCallSummary = { arguments: block['input'] };
      const id = asString(block['id']);
      const name = asString(block['name']);
      if (id !== undefined) call.id = id;
      if (name !== undefined) call.name = name;
      toolCalls.push(call);
    }
  }
  const stopReason = asString(message['stop_reason']);
  const finishReasons = stopReason !== undefined ? [stopReason] : [];
  const output: ChatMessage = {
    role: asString(message['role']) ?? 'assistant',
    parts: blockParts(content),
  };
  if (stopReason !== undefined) output.finish_reason = stopReason;
  const summary: ResponseSummary = {
    finishReasons,
    outputText,
    toolCalls,
    outputMessages: [output],
  };
  if (stopReason === 'refusal') summary.refusal = outputText === '' ? 'refusal' : outputText;
  setIfDefined(summary, 'id', asString(message['id']));
  setIfDefined(summary, 'model', asString(message['model']));
  if (usage !== undefined) summary.usage = usage;
  return summary;
}

function summarize(response: unknown): ResponseSummary {
  const message = asDict(response) ?? {};
  return fromMessage(message, anthropicUsage(message['usage']));
}

function accumulator(): StreamAccumulator {
  let message: Dict = {};
  let usage: Dict = {};
  let finalUsage = false;
  const blocks = new Map<number, Dict & { partialJson?: string }>();
  return {
    add(item) {
      const event = asDict(item);
      if (event === undefined) return;
      switch (event['type']) {
        case 'message_start': {
          message = { ...asDict(event['message']) };
          usage = { ...asDict(message['usage']) };
          break;
        }
        case 'content_block_start': {
          const index = asNumber(event['index']) ?? blocks.size;
          blocks.set(index, { ...asDict(event['content_block']) });
          break;
        }
        case 'content_block_delta': {
          const block = blocks.get(asNumber(event['index']) ?? 0);
          const delta = asDict(event['delta']);
          if (block === undefined || delta === undefined) break;
          if (delta['type'] === 'text_delta') {
            block['text'] = (asString(block['text']) ?? '') + (asString(delta['text']) ?? '');
          } else if (delta['type'] === 'input_json_delta') {
            block.partialJson = (block.partialJson ?? '') + (asString(delta['partial_json']) ?? '');
          } else if (delta['type'] === 'thinking_delta') {
            block['thinking'] =
              (asString(block['thinking']) ?? '') + (asString(delta['thinking']) ?? '');
          }
          break;
        }
        case 'message_delta': {
          const delta = asDict(event['delta']);
          if (delta?.['stop_reason'] !== undefined) message['stop_reason'] = delta['stop_reason'];
          // message_delta usage is cumulative; fields it carries win over message_start's.
          finalUsage = true;
          for (const [key, value] of Object.entries(asDict(event['usage']) ?? {})) {
            if (value !== null && value !== undefined) usage[key] = value;
          }
          break;
        }
        default:
          break;
      }
    },
    summary() {
      const content = [...blocks.entries()]
        .sort(([a], [b]) => a - b)
        .map(([, block]) => {
          const { partialJson, ...rest } = block;
          if (block['type'] === 'tool_use' && partialJson !== undefined) {
            // Unparseable streamed tool input stays a string, so the evaluator can flag it.
            try {
              rest['input'] = partialJson === '' ? {} : (JSON.parse(partialJson) as unknown);
            } catch {
              rest['input'] = partialJson;
            }
          }
          return rest;
        });
      // Until message_delta, output_tokens is a placeholder: a stream that stopped early has no output count.
      const counted = finalUsage
        ? usage
        : { ...usage, output_tokens: undefined, output_tokens_details: undefined };
      return fromMessage({ ...message, content }, anthropicUsage(counted));
    },
  };
}

export const anthropicMessagesAdapter: ApiAdapter = {
  provider: GEN_AI_PROVIDER_NAME_VALUE_ANTHROPIC,
  operation: GEN_AI_OPERATION_NAME_VALUE_CHAT,
  prepare: (body) => ({ body, hideUsageChunk: false }),
  requestModel: (body) => asString(body['model']),
  isStream: (body) => body['stream'] === true,
  requestAttributes(body) {
    const attributes = commonRequestAttributes(body, {
      maxTokens: body['max_tokens'],
      stop: body['stop_sequences'],
      formatType: asDict(asDict(body['output_config'])?.['format'])?.['type'],
    });
    const topK = asNumber(body['top_k']);
    if (topK !== undefined) attributes[ATTR_GEN_AI_REQUEST_TOP_K] = topK;
    return attributes;
  },
  jsonRequested(body) {
    const type = asDict(asDict(body['output_config'])?.['format'])?.['type'];
    return type === 'json_schema';
  },
  inputContent,
  summarize,
  accumulator,
};
