/**
 * Whole answers in the OpenAI Responses shape: an Anthropic message as a `response` object
 * (text blocks as `output_text` parts of message items, tool_use blocks as `function_call`
 * items, usage, status), the pieces the stream converter (./responses-stream.ts) builds the same
 * way, and a `response` object as a chat completion (how a shadow comparison reads it).
 */
import { asDict } from './requests.js';
import { chatUsageOf } from './responses.js';

type Dict = Record<string, unknown>;

const num = (value: unknown): number => (typeof value === 'number' ? value : 0);

/** A response's status for an Anthropic stop reason (a cut answer is `incomplete`). */
export function statusOfStop(stop: unknown): 'completed' | 'incomplete' {
  return stop === 'max_tokens' || stop === 'model_context_window_exceeded'
    ? 'incomplete'
    : 'completed';
}

/** Anthropic usage (input excludes cached tokens) → Responses usage (input includes them). */
export function responsesUsageOf(usage: Dict | undefined): Dict {
  const chat = chatUsageOf(usage);
  return {
    input_tokens: chat['prompt_tokens'],
    input_tokens_details: { cached_tokens: num(usage?.['cache_read_input_tokens']) },
    output_tokens: chat['completion_tokens'],
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: chat['total_tokens'],
  };
}

export const outputTextPart = (text: string): Dict => ({
  type: 'output_text',
  annotations: [],
  logprobs: [],
  text,
});

/** A message item's id: the Anthropic message's id and the item's place in the output. */
export const messageItemId = (messageId: string, outputIndex: number): string =>
  `msg_${messageId.replace(/^msg_/, '')}_${outputIndex}`;

export function messageItem(id: string, parts: Dict[], status: string): Dict {
  return { id, type: 'message', status, role: 'assistant', content: parts };
}

export function functionCallItem(toolUseId: unknown, name: unknown, args: string, status: string) {
  return {
    id: `fc_${String(toolUseId)}`,
    type: 'function_call',
    status,
    call_id: toolUseId,
    name,
    arguments: args,
  };
}

export interface ResponseFacts {
  readonly id: string;
  readonly model: string;
  readonly created: number;
  readonly status: 'in_progress' | 'completed' | 'incomplete';
  readonly output: Dict[];
  readonly usage: Dict | null;
}

/** The `response` object (whole, or in a stream's lifecycle events). */
export function responseObject(facts: ResponseFacts): Dict {
  return {
    id: facts.id,
    object: 'response',
    created_at: facts.created,
    status: facts.status,
    error: null,
    incomplete_details: facts.status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    model: facts.model,
    output: facts.output,
    parallel_tool_calls: true,
    usage: facts.usage,
  };
}

/** An Anthropic message as a `response` object. */
export function responseOfMessage(message: Dict, created: number): Dict {
  const id = String(message['id'] ?? '');
  const status = statusOfStop(message['stop_reason']);
  const output: Dict[] = [];
  let parts: Dict[] | undefined;
  const close = () => {
    if (parts === undefined) return;
    output.push(messageItem(messageItemId(id, output.length), parts, status));
    parts = undefined;
  };
  for (const entry of Array.isArray(message['content']) ? message['content'] : []) {
    const block = asDict(entry) ?? {};
    if (block['type'] === 'text') (parts ??= []).push(outputTextPart(String(block['text'] ?? '')));
    else if (block['type'] === 'tool_use') {
      close();
      const args = JSON.stringify(block['input'] ?? {});
      output.push(functionCallItem(block['id'], block['name'], args, 'completed'));
    }
  }
  close();
  return responseObject({
    id,
    model: String(message['model'] ?? ''),
    created,
    status,
    output,
    usage: responsesUsageOf(asDict(message['usage'])),
  });
}

/** A `response` object as a chat completion: its text, function calls, finish reason, usage. */
export function chatCompletionOfResponse(response: Dict): Dict {
  let text: string | null = null;
  const calls: Dict[] = [];
  for (const entry of Array.isArray(response['output']) ? response['output'] : []) {
    const item = asDict(entry) ?? {};
    if (item['type'] === 'function_call') {
      const fn = { name: item['name'], arguments: String(item['arguments'] ?? '') };
      calls.push({ id: item['call_id'], type: 'function', function: fn });
    }
    if (item['type'] !== 'message') continue;
    for (const part of Array.isArray(item['content']) ? item['content'] : []) {
      const dict = asDict(part) ?? {};
      if (dict['type'] === 'output_text') text = (text ?? '') + String(dict['text'] ?? '');
    }
  }
  const message: Dict = { role: 'assistant', content: text, refusal: null };
  if (calls.length > 0) message['tool_calls'] = calls;
  const finish =
    calls.length > 0 ? 'tool_calls' : response['status'] === 'incomplete' ? 'length' : 'stop';
  const usage = asDict(response['usage']);
  const input = num(usage?.['input_tokens']);
  const output = num(usage?.['output_tokens']);
  return {
    id: response['id'],
    object: 'chat.completion',
    created: num(response['created_at']),
    model: response['model'],
    choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
    usage: { prompt_tokens: input, completion_tokens: output, total_tokens: input + output },
  };
}
