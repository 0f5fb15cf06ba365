/**
 * Lets anthropic candidates answer through the openai chat-completions shape: request
 * conversion, response conversion, and stream-event conversion. Types only from the SDKs.
 */
import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';

type ChatParams = OpenAI.Chat.ChatCompletionCreateParams;
type ChatCompletion = OpenAI.Chat.ChatCompletion;
type ChatChunk = OpenAI.Chat.ChatCompletionChunk;

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) =>
        part !== null && typeof part === 'object' && 'text' in part ? String(part.text) : '',
      )
      .join('');
  }
  return '';
}

/** Converts chat-completions params into Anthropic messages params for `model`. */
export function toAnthropicParams(
  params: ChatParams,
  model: string,
): Anthropic.MessageCreateParams {
  const system: string[] = [];
  const messages: Anthropic.MessageParam[] = [];
  for (const message of params.messages) {
    if (message.role === 'system' || message.role === 'developer') {
      system.push(textOf(message.content));
    } else if (message.role === 'user' || message.role === 'assistant') {
      messages.push({ role: message.role, content: textOf(message.content) });
    }
  }
  const maxTokens = params.max_completion_tokens ?? params.max_tokens ?? 1024;
  const stop = params.stop;
  return {
    model,
    max_tokens: maxTokens,
    messages,
    ...(system.length > 0 ? { system: system.join('\n\n') } : {}),
    ...(typeof params.temperature === 'number' ? { temperature: params.temperature } : {}),
    ...(typeof params.top_p === 'number' ? { top_p: params.top_p } : {}),
    ...(stop === undefined || stop === null
      ? {}
      : { stop_sequences: typeof stop === 'string' ? [stop] : stop }),
    ...(params.stream === true ? { stream: true } : {}),
  } as Anthropic.MessageCreateParams;
}

type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

const FINISH: Record<string, FinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

const finishOf = (reason: string | null | undefined): FinishReason =>
  reason === null || reason === undefined ? 'stop' : (FINISH[reason] ?? 'stop');

/** Converts an Anthropic message into a chat completion. */
export function fromAnthropicMessage(message: Anthropic.Message): ChatCompletion {
  const text = message.content.map((block) => (block.type === 'text' ? block.text : '')).join('');
  return {
    id: message.id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: message.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text, refusal: null },
        finish_reason: finishOf(message.stop_reason),
        logprobs: null,
      },
    ],
    usage: {
      prompt_tokens: message.usage.input_tokens,
      completion_tokens: message.usage.output_tokens,
      total_tokens: message.usage.input_tokens + message.usage.output_tokens,
    },
  };
}

/** Converts Anthropic stream events into chat-completion chunks (usage in a final chunk). */
export async function* fromAnthropicStream(
  events: AsyncIterable<Anthropic.RawMessageStreamEvent>,
  includeUsage: boolean,
): AsyncGenerator<ChatChunk> {
  let id = '';
  let model = '';
  let inputTokens = 0;
  let outputTokens = 0;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (choices: ChatChunk['choices']): ChatChunk => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices,
  });
  for await (const event of events) {
    if (event.type === 'message_start') {
      id = event.message.id;
      model = event.message.model;
      inputTokens = event.message.usage.input_tokens;
      yield chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
    } else if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
      yield chunk([{ index: 0, delta: { content: event.delta.text }, finish_reason: null }]);
    } else if (event.type === 'message_delta') {
      outputTokens = event.usage.output_tokens;
      yield chunk([{ index: 0, delta: {}, finish_reason: finishOf(event.delta.stop_reason) }]);
    }
  }
  if (includeUsage) {
    yield {
      ...chunk([]),
      usage: {
        prompt_tokens: inputTokens,
        completion_tokens: outputTokens,
        total_tokens: inputTokens + outputTokens,
      },
    };
  }
}
