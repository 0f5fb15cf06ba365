/**
 * Whole answers in the OpenAI Responses shape: an Anthropic message as a `response` object
 * (text blocks as `output_text` parts of message items, tool_use blocks as `function_call`
 * items, usage, status), the pieces the stream converter (./responses-stream.ts) builds the same
 * way, and a `response` object as a chat completion (how a shadow comparison reads it).
 */
import { asDict } from '../usage.js';
import { anthropicMessageOf, chatUsageOf, num } from './responses.js';
import { responseEcho } from './responses-echo.js';

type Dict = Record<string, unknown>;

/**
 * Why a response with this Anthropic stop reason is `incomplete` (`incomplete_details.reason`):
 * cut at the token limit, or stopped by the provider's safety classifier (`refusal`, which chat
 * calls `content_filter`); null for a complete one.
 */
function incompleteReasonOf(stop: unknown): 'max_output_tokens' | 'content_filter' | null {
  if (stop === 'max_tokens' || stop === 'model_context_window_exceeded') return 'max_output_tokens';
  return stop === 'refusal' ? 'content_filter' : null;
}

/** A response's status for an Anthropic stop reason (a cut or filtered answer is `incomplete`). */
export function statusOfStop(stop: unknown): 'completed' | 'incomplete' {
  return incompleteReasonOf(stop) === null ? 'completed' : 'incomplete';
}

/** Tool call arguments that are whole JSON (not cut part-way). */
export function wholeJson(args: unknown): boolean {
  if (typeof args !== 'string') return false;
  try {
    JSON.parse(args);
    return true;
  } catch {
    return false;
  }
}

/**
 * A function call item's status in a response of `status`: in an incomplete one (cut at the
 * token limit, or stopped by the safety classifier), the call being written when it stopped
 * (the `last` item) and any whose arguments are not whole JSON (parallel calls cut part-way)
 * are `incomplete`; the others are `completed`.
 */
export function callStatus(status: string, last: boolean, args: unknown): string {
  return status === 'incomplete' && (last || !wholeJson(args)) ? 'incomplete' : 'completed';
}

/**
 * The items' statuses in a response of `status` (as a stream says them): the last item's is the
 * response's, a function call's as `callStatus` says, an earlier message item's `completed`.
 */
function settleStatuses(output: Dict[], status: string): void {
  for (const [index, item] of output.entries()) {
    const last = index === output.length - 1;
    if (item['type'] === 'function_call')
      item['status'] = callStatus(status, last, item['arguments']);
    else item['status'] = last ? status : 'completed';
  }
}

/** A `response` object's status and reason as a chat finish reason (as its Anthropic stop's). */
export function finishOfResponse(response: Dict, toolCalls: number): string {
  if (response['status'] === 'incomplete') {
    const reason = asDict(response['incomplete_details'])?.['reason'];
    return reason === 'content_filter' ? 'content_filter' : 'length';
  }
  return toolCalls > 0 ? 'tool_calls' : 'stop';
}

/** A chat upstream's reasoning tokens (its usage's `completion_tokens_details`), else 0. */
export const reasoningTokensOf = (chatUsage: unknown): number =>
  num(asDict(asDict(chatUsage)?.['completion_tokens_details'])?.['reasoning_tokens']);

/**
 * Anthropic usage (input excludes cached tokens) → Responses usage (input includes them);
 * `reasoning`: the reasoning tokens among the output tokens (a chat upstream reports them;
 * Anthropic counts thinking in its output tokens without a separate figure).
 */
export function responsesUsageOf(usage: Dict | undefined, reasoning = 0): Dict {
  const chat = chatUsageOf(usage);
  return {
    input_tokens: chat['prompt_tokens'],
    input_tokens_details: { cached_tokens: num(usage?.['cache_read_input_tokens']) },
    output_tokens: chat['completion_tokens'],
    output_tokens_details: { reasoning_tokens: reasoning },
    total_tokens: chat['total_tokens'],
  };
}

export const outputTextPart = (text: string): Dict => ({
  type: 'output_text',
  annotations: [],
  logprobs: [],
  text,
});

export const refusalPart = (refusal: string): Dict => ({ type: 'refusal', refusal });

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
  readonly status: 'in_progress' | 'completed' | 'incomplete' | 'failed';
  /** The Anthropic stop reason (why an incomplete response is). */
  readonly stop: unknown;
  readonly output: Dict[];
  readonly usage: Dict | null;
  /** The request's settings the response says back (`responseEcho`). */
  readonly echo: Dict;
  /** Why a failed response failed. */
  readonly error?: { code: string; message: string };
}

/** The `response` object (whole, or in a stream's lifecycle events). */
export function responseObject(facts: ResponseFacts): Dict {
  return {
    id: facts.id,
    object: 'response',
    created_at: facts.created,
    // Always in OpenAI's `response` (nullable): no access programs apply to another provider.
    access_programs: null,
    status: facts.status,
    completed_at: facts.status === 'completed' ? Math.floor(Date.now() / 1000) : null,
    error: facts.error ?? null,
    incomplete_details:
      facts.status === 'incomplete' ? { reason: incompleteReasonOf(facts.stop) } : null,
    model: facts.model,
    output: facts.output,
    ...facts.echo,
    usage: facts.usage,
  };
}

/**
 * An Anthropic message as a `response` object to the Responses request `request` (its settings
 * said back); `reasoning`: as for `responsesUsageOf`.
 */
export function responseOfMessage(
  message: Dict,
  created: number,
  request: Dict = {},
  reasoning = 0,
): Dict {
  const id = String(message['id'] ?? '');
  const stop = message['stop_reason'];
  const status = statusOfStop(stop);
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
  settleStatuses(output, status);
  return responseObject({
    id,
    model: String(message['model'] ?? ''),
    created,
    status,
    stop,
    output,
    usage: responsesUsageOf(asDict(message['usage']), reasoning),
    echo: responseEcho(request),
  });
}

/**
 * A chat completion as a `response` object, through its Anthropic message, but with what that
 * message cannot hold: the tool calls' `arguments` as the model wrote them (Anthropic's `input`
 * is an object: arguments that do not parse would read `{}`, as a stream's deltas do not) and
 * the usage's reasoning tokens.
 */
export function responseOfChat(completion: Dict, created: number, request: Dict = {}): Dict {
  const response = responseOfMessage(
    anthropicMessageOf(completion),
    created,
    request,
    reasoningTokensOf(completion['usage']),
  );
  const choice = asDict(
    Array.isArray(completion['choices']) ? completion['choices'][0] : undefined,
  );
  const reply = asDict(choice?.['message']);
  const refusal = reply?.['refusal'];
  // A refusal (no content) is a refusal part, as in OpenAI's own Responses answers.
  if (typeof refusal === 'string' && refusal !== '' && typeof reply?.['content'] !== 'string') {
    const item = (response['output'] as Dict[]).find((entry) => entry['type'] === 'message');
    if (item !== undefined) item['content'] = [refusalPart(refusal)];
  }
  const calls = reply?.['tool_calls'];
  const written = new Map<unknown, unknown>();
  for (const entry of Array.isArray(calls) ? calls : []) {
    const call = asDict(entry);
    const args = asDict(call?.['function'])?.['arguments'];
    if (typeof args === 'string' && args.trim() !== '') written.set(call?.['id'], args);
  }
  const output = response['output'] as Dict[];
  for (const item of output) {
    if (item['type'] === 'function_call' && written.has(item['call_id']))
      item['arguments'] = written.get(item['call_id']);
  }
  settleStatuses(output, String(response['status']));
  return response;
}

/** A `response` object as a chat completion: its text, function calls, finish reason, usage. */
export function chatCompletionOfResponse(response: Dict): Dict {
  let text: string | null = null;
  let refusal: string | null = null;
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
      if (dict['type'] === 'refusal') refusal = (refusal ?? '') + String(dict['refusal'] ?? '');
    }
  }
  const message: Dict = { role: 'assistant', content: text, refusal };
  if (calls.length > 0) message['tool_calls'] = calls;
  const finish = finishOfResponse(response, calls.length);
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
