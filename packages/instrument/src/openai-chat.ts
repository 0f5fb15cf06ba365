import {
  ATTR_GEN_AI_REQUEST_CHOICE_COUNT,
  ATTR_GEN_AI_REQUEST_FREQUENCY_PENALTY,
  ATTR_GEN_AI_REQUEST_PRESENCE_PENALTY,
  ATTR_GEN_AI_REQUEST_SEED,
  GEN_AI_OPERATION_NAME_VALUE_CHAT,
  GEN_AI_PROVIDER_NAME_VALUE_OPENAI,
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

export function openaiUsage(usage: unknown): TokenUsage | undefined {
  const u = asDict(usage);
  if (u === undefined) return undefined;
  const result: TokenUsage = {};
  // Chat completions / embeddings use prompt_/completion_; the Responses API input_/output_.
  const input = asNumber(u['prompt_tokens']) ?? asNumber(u['input_tokens']);
  const output = asNumber(u['completion_tokens']) ?? asNumber(u['output_tokens']);
  const inputDetails = asDict(u['prompt_tokens_details']) ?? asDict(u['input_tokens_details']);
  const outputDetails =
    asDict(u['completion_tokens_details']) ?? asDict(u['output_tokens_details']);
  if (input !== undefined) result.inputTokens = input;
  if (output !== undefined) result.outputTokens = output;
  const cached = asNumber(inputDetails?.['cached_tokens']);
  if (cached !== undefined) result.cacheReadTokens = cached;
  const reasoning = asNumber(outputDetails?.['reasoning_tokens']);
  if (reasoning !== undefined) result.reasoningTokens = reasoning;
  return Object.keys(result).length > 0 ? result : undefined;
}

function textOfContent(content: unknown): string {
  if (typeof content === 'string') return content;
  return asArray(content)
    .map((part) => asString(asDict(part)?.['text']) ?? '')
    .join('');
}

function contentParts(content: unknown): MessagePart[] {
  if (typeof content === 'string') return [{ type: 'text', content }];
  const parts: MessagePart[] = [];
  for (const raw of asArray(content)) {
    const part = asDict(raw);
    if (part === undefined) continue;
    const text = asString(part['text']);
    if (text !== undefined) parts.push({ type: 'text', content: text });
    else parts.push({ type: asString(part['type']) ?? 'unknown' });
  }
  return parts;
}

function toolCallParts(toolCalls: unknown): MessagePart[] {
  return asArray(toolCalls).map((raw) => {
    const call = asDict(raw) ?? {};
    const fn = asDict(call['function']) ?? {};
    const part: MessagePart = { type: 'tool_call' };
    setIfDefined(part, 'id', asString(call['id']));
    setIfDefined(part, 'name', asString(fn['name']));
    const args = fn['arguments'];
    if (typeof args === 'string') {
      try {
        part['arguments'] = JSON.parse(args) as unknown;
      } catch {
        part['arguments'] = args;
      }
    }
    return part;
  });
}

export function chatInputContent(body: Dict): InputContent | undefined {
  const messages: ChatMessage[] = [];
  for (const raw of asArray(body['messages'])) {
    const message = asDict(raw);
    if (message === undefined) continue;
    const role = asString(message['role']) ?? 'user';
    if (role === 'tool') {
      messages.push({
        role: 'tool',
        parts: [
          {
            type: 'tool_call_response',
            id: asString(message['tool_call_id']) ?? null,
            response: textOfContent(message['content']),
          },
        ],
      });
      continue;
    }
    const parts = [...contentParts(message['content']), ...toolCallParts(message['tool_calls'])];
    const out: ChatMessage = { role, parts };
    const name = asString(message['name']);
    if (name !== undefined) out.name = name;
    messages.push(out);
  }
  return { messages };
}

function toolCallSummaries(toolCalls: unknown): ToolCallSummary[] {
  return asArray(toolCalls).map((raw) => {
    const call = asDict(raw) ?? {};
    const fn = asDict(call['function']) ?? {};
    const summary: ToolCallSummary = { arguments: fn['arguments'] };
    const id = asString(call['id']);
    const name = asString(fn['name']);
    if (id !== undefined) summary.id = id;
    if (name !== undefined) summary.name = name;
    return summary;
  });
}

interface ChoiceSummary {
  message: Dict;
  finishReason: string | undefined;
  index: number;
}

function inIndexOrder(choices: readonly ChoiceSummary[]): boolean {
  for (let position = 1; position < choices.length; position += 1) {
    if ((choices[position - 1] as ChoiceSummary).index > (choices[position] as ChoiceSummary).index)
      return false;
  }
  return true;
}

/** `withContent` false: `outputMessages` stays empty (message content is not captured). */
function summaryFromChoices(
  choices: ChoiceSummary[],
  withContent: boolean,
): Pick<
  ResponseSummary,
  'finishReasons' | 'outputText' | 'toolCalls' | 'outputMessages' | 'refusal'
> {
  const finishReasons: string[] = [];
  const outputMessages: ChatMessage[] = [];
  let toolCalls: ToolCallSummary[] = [];
  let outputText = '';
  let refusal: string | undefined;
  const sorted = inIndexOrder(choices) ? choices : [...choices].sort((a, b) => a.index - b.index);
  for (let position = 0; position < sorted.length; position += 1) {
    const choice = sorted[position] as ChoiceSummary;
    if (choice.finishReason !== undefined) finishReasons.push(choice.finishReason);
    const message = choice.message;
    if (position > 0 && !withContent) continue;
    const text = textOfContent(message['content']);
    const choiceRefusal = asString(message['refusal']);
    if (position === 0) {
      outputText = text;
      if (choiceRefusal !== undefined && choiceRefusal !== '') refusal = choiceRefusal;
      toolCalls = toolCallSummaries(message['tool_calls']);
    }
    if (!withContent) continue;
    const parts: MessagePart[] = [];
    if (text !== '') parts.push({ type: 'text', content: text });
    if (choiceRefusal !== undefined && choiceRefusal !== '') {
      parts.push({ type: 'refusal', content: choiceRefusal });
    }
    parts.push(...toolCallParts(message['tool_calls']));
    const out: ChatMessage = { role: asString(message['role']) ?? 'assistant', parts };
    if (choice.finishReason !== undefined) out.finish_reason = choice.finishReason;
    outputMessages.push(out);
  }
  const result: ReturnType<typeof summaryFromChoices> = {
    finishReasons,
    outputText,
    toolCalls,
    outputMessages,
  };
  if (refusal !== undefined) result.refusal = refusal;
  return result;
}

function summarize(response: unknown, withContent = true): ResponseSummary {
  const r = asDict(response) ?? {};
  const choices = asArray(r['choices']).map((raw, position): ChoiceSummary => {
    const choice = asDict(raw) ?? {};
    return {
      message: asDict(choice['message']) ?? {},
      finishReason: asString(choice['finish_reason']),
      index: asNumber(choice['index']) ?? position,
    };
  });
  const summary: ResponseSummary = summaryFromChoices(choices, withContent);
  setIfDefined(summary, 'id', asString(r['id']));
  setIfDefined(summary, 'model', asString(r['model']));
  const usage = openaiUsage(r['usage']);
  if (usage !== undefined) summary.usage = usage;
  return summary;
}

interface ChoiceState {
  index: number;
  content: string;
  refusal: string;
  role: string | undefined;
  finishReason: string | undefined;
  toolCalls: Map<number, { id?: string; name?: string; arguments: string }>;
}

function accumulator(): StreamAccumulator {
  let id: string | undefined;
  let model: string | undefined;
  let usage: TokenUsage | undefined;
  const choices = new Map<number, ChoiceState>();
  return {
    add(item) {
      const chunk = asDict(item);
      if (chunk === undefined) return;
      id ??= asString(chunk['id']) || undefined;
      model ??= asString(chunk['model']) || undefined;
      const chunkUsage = openaiUsage(chunk['usage']);
      if (chunkUsage !== undefined) usage = chunkUsage;
      for (const raw of asArray(chunk['choices'])) {
        const choice = asDict(raw);
        if (choice === undefined) continue;
        const index = asNumber(choice['index']) ?? 0;
        let state = choices.get(index);
        if (state === undefined) {
          state = {
            index,
            content: '',
            refusal: '',
            role: undefined,
            finishReason: undefined,
            toolCalls: new Map(),
          };
          choices.set(index, state);
        }
        const delta = asDict(choice['delta']) ?? {};
        state.role ??= asString(delta['role']);
        state.content += asString(delta['content']) ?? '';
        state.refusal += asString(delta['refusal']) ?? '';
        for (const rawCall of asArray(delta['tool_calls'])) {
          const call = asDict(rawCall) ?? {};
          const callIndex = asNumber(call['index']) ?? 0;
          let callState = state.toolCalls.get(callIndex);
          if (callState === undefined) {
            callState = { arguments: '' };
            state.toolCalls.set(callIndex, callState);
          }
          const callId = asString(call['id']);
          if (callId !== undefined) callState.id = callId;
          const fn = asDict(call['function']) ?? {};
          const name = asString(fn['name']);
          if (name !== undefined) callState.name = name;
          callState.arguments += asString(fn['arguments']) ?? '';
        }
        const finish = asString(choice['finish_reason']);
        if (finish !== undefined) state.finishReason = finish;
      }
    },
    summary() {
      const list = [...choices.values()].map((state) => {
        const message: Dict = { role: state.role ?? 'assistant', content: state.content };
        if (state.refusal !== '') message['refusal'] = state.refusal;
        if (state.toolCalls.size > 0) {
          message['tool_calls'] = [...state.toolCalls.entries()]
            .sort(([a], [b]) => a - b)
            .map(([, call]) => ({
              id: call.id,
              type: 'function',
              function: { name: call.name, arguments: call.arguments },
            }));
        }
        return { message, finishReason: state.finishReason, index: state.index };
      });
      const summary: ResponseSummary = summaryFromChoices(list, true);
      if (id !== undefined) summary.id = id;
      if (model !== undefined) summary.model = model;
      if (usage !== undefined) summary.usage = usage;
      return summary;
    },
  };
}

export const openaiChatAdapter: ApiAdapter = {
  provider: GEN_AI_PROVIDER_NAME_VALUE_OPENAI,
  operation: GEN_AI_OPERATION_NAME_VALUE_CHAT,
  prepare(body) {
    if (body['stream'] !== true) return { body, hideUsageChunk: false };
    const options = asDict(body['stream_options']);
    if (options?.['include_usage'] === true) return { body, hideUsageChunk: false };
    return {
      body: { ...body, stream_options: { ...options, include_usage: true } },
      hideUsageChunk: true,
    };
  },
  requestModel: (body) => asString(body['model']),
  isStream: (body) => body['stream'] === true,
  requestAttributes(body) {
    const attributes = commonRequestAttributes(body, {
      maxTokens: asNumber(body['max_completion_tokens']) ?? body['max_tokens'],
      stop: body['stop'],
      formatType: asDict(body['response_format'])?.['type'],
    });
    const frequencyPenalty = asNumber(body['frequency_penalty']);
    if (frequencyPenalty !== undefined)
      attributes[ATTR_GEN_AI_REQUEST_FREQUENCY_PENALTY] = frequencyPenalty;
    const presencePenalty = asNumber(body['presence_penalty']);
    if (presencePenalty !== undefined)
      attributes[ATTR_GEN_AI_REQUEST_PRESENCE_PENALTY] = presencePenalty;
    const seed = asNumber(body['seed']);
    if (seed !== undefined) attributes[ATTR_GEN_AI_REQUEST_SEED] = seed;
    const n = asNumber(body['n']);
    if (n !== undefined && n !== 1) attributes[ATTR_GEN_AI_REQUEST_CHOICE_COUNT] = n;
    return attributes;
  },
  jsonRequested(body) {
    const type = asDict(body['response_format'])?.['type'];
    return type === 'json_object' || type === 'json_schema';
  },
  inputContent: chatInputContent,
  summarize,
  accumulator,
  isUsageOnlyChunk(item) {
    const chunk = asDict(item);
    return (
      chunk !== undefined &&
      asArray(chunk['choices']).length === 0 &&
      asDict(chunk['usage']) !== undefined
    );
  },
};
