import {
  GEN_AI_OPERATION_NAME_VALUE_CHAT,
  GEN_AI_PROVIDER_NAME_VALUE_OPENAI,
} from '@modelmaxx/semconv';
import type {
  ApiAdapter,
  InputContent,
  ResponseSummary,
  StreamAccumulator,
} from './internal-types.js';
import { openaiUsage } from './openai-chat.js';
import { commonRequestAttributes } from './request-attributes.js';
import type { ChatMessage, MessagePart, ToolCallSummary } from './types.js';
import { asArray, asDict, asString, setIfDefined } from './util.js';
import type { Dict } from './util.js';

function parts(content: unknown): MessagePart[] {
  if (typeof content === 'string') return [{ type: 'text', content }];
  const out: MessagePart[] = [];
  for (const raw of asArray(content)) {
    const part = asDict(raw);
    if (part === undefined) continue;
    const text = asString(part['text']);
    if (text !== undefined) out.push({ type: 'text', content: text });
    else if (typeof part['refusal'] === 'string')
      out.push({ type: 'refusal', content: part['refusal'] });
    else out.push({ type: asString(part['type']) ?? 'unknown' });
  }
  return out;
}

function parseArguments(args: unknown): unknown {
  if (typeof args !== 'string') return args;
  try {
    return JSON.parse(args) as unknown;
  } catch {
    return args;
  }
}

function inputContent(body: Dict): InputContent | undefined {
  const messages: ChatMessage[] = [];
  const input = body['input'];
  if (typeof input === 'string') {
    messages.push({ role: 'user', parts: [{ type: 'text', content: input }] });
  } else {
    for (const raw of asArray(input)) {
      const item = asDict(raw);
      if (item === undefined) continue;
      const type = asString(item['type']);
      if (type === 'function_call') {
        const part: MessagePart = { type: 'tool_call', name: asString(item['name']) ?? null };
        setIfDefined(part, 'id', asString(item['call_id']));
        part['arguments'] = parseArguments(item['arguments']);
        messages.push({ role: 'assistant', parts: [part] });
      } else if (type === 'function_call_output') {
        messages.push({
          role: 'tool',
          parts: [
            {
              type: 'tool_call_response',
              id: asString(item['call_id']) ?? null,
              response: item['output'],
            },
          ],
        });
      } else if (type === undefined || type === 'message') {
        messages.push({ role: asString(item['role']) ?? 'user', parts: parts(item['content']) });
      }
    }
  }
  const result: InputContent = { messages };
  const instructions = asString(body['instructions']);
  if (instructions !== undefined) result.system = [{ type: 'text', content: instructions }];
  return result;
}

function summarize(response: unknown): ResponseSummary {
  const r = asDict(response) ?? {};
  let outputText = '';
  let refusal: string | undefined;
  const toolCalls: ToolCallSummary[] = [];
  const messageParts: MessagePart[] = [];
  for (const raw of asArray(r['output'])) {
    const item = asDict(raw);
    if (item === undefined) continue;
    const type = asString(item['type']);
    if (type === 'message') {
      for (const rawPart of asArray(item['content'])) {
        const part = asDict(rawPart);
        if (part === undefined) continue;
        if (part['type'] === 'output_text' && typeof part['text'] === 'string') {
          outputText += part['text'];
          messageParts.push({ type: 'text', content: part['text'] });
        } else if (part['type'] === 'refusal' && typeof part['refusal'] === 'string') {
          refusal = (refusal ?? '') + part['refusal'];
          messageParts.push({ type: 'refusal', content: part['refusal'] });
        }
      }
    } else if (type === 'function_call') {
      const call: ToolCallSummary = { arguments: item['arguments'] };
      setIfDefined(call, 'id', asString(item['call_id']));
      setIfDefined(call, 'name', asString(item['name']));
      toolCalls.push(call);
      const part: MessagePart = { type: 'tool_call', name: asString(item['name']) ?? null };
      setIfDefined(part, 'id', asString(item['call_id']));
      part['arguments'] = parseArguments(item['arguments']);
      messageParts.push(part);
    }
  }
  const status = asString(r['status']);
  const finishReasons: string[] = [];
  if (status === 'completed') finishReasons.push(toolCalls.length > 0 ? 'tool_calls' : 'stop');
  else if (status === 'incomplete') {
    finishReasons.push(asString(asDict(r['incomplete_details'])?.['reason']) ?? 'incomplete');
  } else if (status === 'failed') finishReasons.push('error');
  const outputMessages: ChatMessage[] = [];
  if (messageParts.length > 0 || finishReasons.length > 0) {
    const message: ChatMessage = { role: 'assistant', parts: messageParts };
    if (finishReasons[0] !== undefined) message.finish_reason = finishReasons[0];
    outputMessages.push(message);
  }
  const summary: ResponseSummary = { finishReasons, outputText, toolCalls, outputMessages };
  if (refusal !== undefined) summary.refusal = refusal;
  setIfDefined(summary, 'id', asString(r['id']));
  setIfDefined(summary, 'model', asString(r['model']));
  const usage = openaiUsage(r['usage']);
  if (usage !== undefined) summary.usage = usage;
  return summary;
}

const FINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

function accumulator(): StreamAccumulator {
  let latest: unknown;
  let final: unknown;
  let text = '';
  return {
    add(item) {
      const event = asDict(item);
      if (event === undefined) return;
      const type = asString(event['type']);
      if (type === 'response.output_text.delta') text += asString(event['delta']) ?? '';
      const response = event['response'];
      if (asDict(response) !== undefined) {
        latest = response;
        if (type !== undefined && FINAL_EVENTS.has(type)) final = response;
      }
    },
    summary() {
      const summary = summarize(final ?? latest);
      if (final === undefined && summary.outputText === '') summary.outputText = text;
      if (final !== undefined) summary.final = final;
      return summary;
    },
  };
}

export const openaiResponsesAdapter: ApiAdapter = {
  provider: GEN_AI_PROVIDER_NAME_VALUE_OPENAI,
  operation: GEN_AI_OPERATION_NAME_VALUE_CHAT,
  prepare: (body) => ({ body, hideUsageChunk: false }),
  requestModel: (body) => asString(body['model']),
  isStream: (body) => body['stream'] === true,
  requestAttributes: (body) =>
    commonRequestAttributes(body, {
      maxTokens: body['max_output_tokens'],
      stop: undefined,
      formatType: asDict(asDict(body['text'])?.['format'])?.['type'],
    }),
  jsonRequested(body) {
    const type = asDict(asDict(body['text'])?.['format'])?.['type'];
    return type === 'json_object' || type === 'json_schema';
  },
  inputContent,
  summarize,
  accumulator,
};
