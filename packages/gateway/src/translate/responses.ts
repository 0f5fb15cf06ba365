/**
 * Whole answers across wire formats: an Anthropic message as a chat completion and back, their
 * stop / finish reasons and usage, and error bodies in the app's format.
 */
import type { Wire } from '../usage.js';
import { asDict } from '../usage.js';

type Dict = Record<string, unknown>;

/** A number field's value, else 0. */
export const num = (value: unknown): number => (typeof value === 'number' ? value : 0);

const FINISH_OF_STOP: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

const STOP_OF_FINISH: Record<string, string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  function_call: 'tool_use',
  content_filter: 'refusal',
};

/** Anthropic `stop_reason` → OpenAI `finish_reason`. */
export function finishOfStop(stop: unknown): string | null {
  if (typeof stop !== 'string') return null;
  return FINISH_OF_STOP[stop] ?? 'stop';
}

/** OpenAI `finish_reason` → Anthropic `stop_reason`. */
export function stopOfFinish(finish: unknown): string | null {
  if (typeof finish !== 'string') return null;
  return STOP_OF_FINISH[finish] ?? 'end_turn';
}

/** Anthropic usage (input excludes cached tokens) → OpenAI usage (prompt includes them). */
export function chatUsageOf(usage: Dict | undefined): Dict {
  const cacheRead = num(usage?.['cache_read_input_tokens']);
  const prompt =
    num(usage?.['input_tokens']) + cacheRead + num(usage?.['cache_creation_input_tokens']);
  const completion = num(usage?.['output_tokens']);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cacheRead },
  };
}

/** OpenAI usage → Anthropic usage. */
export function messagesUsageOf(usage: Dict | undefined): Dict {
  const cached = num(asDict(usage?.['prompt_tokens_details'])?.['cached_tokens']);
  return {
    input_tokens: Math.max(0, num(usage?.['prompt_tokens']) - cached),
    output_tokens: num(usage?.['completion_tokens']),
    cache_read_input_tokens: cached,
    cache_creation_input_tokens: 0,
  };
}

/** An Anthropic message as a chat completion (text joined, tool_use blocks as tool calls). */
export function chatCompletionOf(message: Dict, created: number): Dict {
  let text: string | null = null;
  const calls: Dict[] = [];
  for (const entry of Array.isArray(message['content']) ? message['content'] : []) {
    const block = asDict(entry) ?? {};
    if (block['type'] === 'text') text = (text ?? '') + String(block['text'] ?? '');
    else if (block['type'] === 'tool_use') {
      calls.push({
        id: block['id'],
        type: 'function',
        function: { name: block['name'], arguments: JSON.stringify(block['input'] ?? {}) },
      });
    }
  }
  const reply: Dict = { role: 'assistant', content: text, refusal: null };
  if (calls.length > 0) reply['tool_calls'] = calls;
  return {
    id: message['id'],
    object: 'chat.completion',
    created,
    model: message['model'],
    choices: [
      {
        index: 0,
        message: reply,
        logprobs: null,
        finish_reason: finishOfStop(message['stop_reason']),
      },
    ],
    usage: chatUsageOf(asDict(message['usage'])),
  };
}

/** Tool call arguments as an Anthropic `input` object (arguments that do not parse: `{}`). */
export function inputOf(args: unknown): unknown {
  if (typeof args !== 'string' || args.trim() === '') return {};
  try {
    return JSON.parse(args) as unknown;
  } catch {
    return {};
  }
}

/** A chat completion's first choice as an Anthropic message. */
export function anthropicMessageOf(completion: Dict): Dict {
  const choice = asDict(
    Array.isArray(completion['choices']) ? completion['choices'][0] : undefined,
  );
  const reply = asDict(choice?.['message']) ?? {};
  const content: Dict[] = [];
  const text = typeof reply['content'] === 'string' ? reply['content'] : reply['refusal'];
  if (typeof text === 'string' && text !== '') content.push({ type: 'text', text });
  for (const entry of Array.isArray(reply['tool_calls']) ? reply['tool_calls'] : []) {
    const call = asDict(entry) ?? {};
    const fn = asDict(call['function']) ?? {};
    content.push({
      type: 'tool_use',
      id: call['id'],
      name: fn['name'],
      input: inputOf(fn['arguments']),
    });
  }
  return {
    id: completion['id'],
    type: 'message',
    role: 'assistant',
    model: completion['model'],
    content,
    stop_reason: stopOfFinish(choice?.['finish_reason']),
    stop_sequence: null,
    usage: messagesUsageOf(asDict(completion['usage'])),
  };
}

const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};

/** The message and type of an upstream error body in either format (or plain text). */
function errorOf(text: string, status: number): { message: string; type: string | undefined } {
  let parsed: Dict | undefined;
  try {
    parsed = asDict(JSON.parse(text));
  } catch {
    parsed = undefined;
  }
  const error = asDict(parsed?.['error']);
  const message = error?.['message'];
  if (typeof message === 'string') {
    return { message, type: typeof error?.['type'] === 'string' ? error['type'] : undefined };
  }
  return { message: text.trim().slice(0, 500) || `upstream answered ${status}`, type: undefined };
}

/** An upstream's error body in the app's wire format (status kept by the caller). */
export function errorBodyFor(wire: Wire, status: number, text: string): string {
  const { message, type } = errorOf(text, status);
  if (wire === 'messages') {
    const anthropicType =
      ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
    return JSON.stringify({ type: 'error', error: { type: anthropicType, message } });
  }
  return JSON.stringify({
    error: {
      message,
      type: type ?? (status >= 500 ? 'server_error' : 'invalid_request_error'),
      param: null,
      code: null,
    },
  });
}

/** An error event that ends a stream cleanly in the app's wire format. */
export function streamErrorEvent(wire: Wire, type: string, message: string): string {
  if (wire === 'messages') {
    return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type, message } })}\n\n`;
  }
  if (wire === 'responses') {
    return `event: error\ndata: ${JSON.stringify({ type: 'error', code: type, message, param: null })}\n\n`;
  }
  return `data: ${JSON.stringify({ error: { message, type, param: null, code: type } })}\n\n`;
}
