/**
 * An OpenAI Responses request as its Chat Completions counterpart: `instructions` and the
 * `input` items (messages, function calls and their outputs) as chat messages, function tools,
 * tool choice, token limit and sampling. An Anthropic upstream gets it through `chatToMessages`
 * (./requests.ts), an OpenAI-style upstream without the Responses API as it is (with structured
 * output and reasoning effort, which Chat Completions has too); a shadow comparison compares it
 * as chat. What has no counterpart (server-side state, hosted tools, files; for Anthropic also
 * structured output and reasoning settings) is refused with a 400 naming the field, as the chat
 * translation does; docs/gateway.md lists both.
 */
import type { UpstreamKind } from '../config.js';
import { RequestError } from '../http.js';
import { asDict } from '../usage.js';
import { untranslatable } from './requests.js';

type Dict = Record<string, unknown>;

/** A 400 naming what the upstream's format (Anthropic Messages, else Chat Completions) lacks. */
type Refuse = (what: string) => RequestError;

/** A content part of an input message as a chat content part. */
function chatPart(part: unknown, refuse: Refuse): Dict {
  const dict = asDict(part) ?? {};
  const type = dict['type'];
  if (type === 'input_text' || type === 'output_text' || type === 'text') {
    return { type: 'text', text: String(dict['text'] ?? '') };
  }
  if (type === 'refusal') return { type: 'refusal', refusal: String(dict['refusal'] ?? '') };
  if (type === 'input_image') {
    const url = dict['image_url'];
    if (typeof url !== 'string') throw refuse('an input_image without an image_url (a file_id)');
    const detail = dict['detail'];
    // `detail` (low / high / auto) is Chat Completions' too; Anthropic's translation ignores it.
    const image = typeof detail === 'string' && detail !== 'auto' ? { url, detail } : { url };
    return { type: 'image_url', image_url: image };
  }
  throw refuse(`an input content part of type "${String(type)}"`);
}

function messageOf(item: Dict, refuse: Refuse): Dict {
  const role = item['role'];
  if (role !== 'user' && role !== 'assistant' && role !== 'system' && role !== 'developer') {
    throw refuse(`an input message with role "${String(role)}"`);
  }
  const content = item['content'];
  if (typeof content === 'string') return { role, content };
  if (!Array.isArray(content)) throw refuse(`an input message without content`);
  return { role, content: content.map((part) => chatPart(part, refuse)) };
}

/** A function_call_output's `output`: a string, or text parts. */
function outputText(output: unknown, refuse: Refuse): string {
  if (typeof output === 'string') return output;
  if (!Array.isArray(output)) throw refuse('a function_call_output without an output');
  return output
    .map((part) => {
      const dict = asDict(part) ?? {};
      if (dict['type'] !== 'input_text' || typeof dict['text'] !== 'string')
        throw refuse(`a function_call_output part of type "${String(dict['type'])}"`);
      return dict['text'];
    })
    .join('\n');
}

/**
 * A function_call item as a tool call of the assistant message just before it (its text, or the
 * calls of the same turn: parallel calls are separate items, but Chat Completions wants them in
 * one assistant message, each answered by a tool message after it), else of a new one.
 */
function addCall(messages: Dict[], item: Dict): void {
  const fn = { name: item['name'], arguments: item['arguments'] };
  const call = { id: item['call_id'], type: 'function', function: fn };
  const last = messages.at(-1);
  if (last?.['role'] !== 'assistant') {
    messages.push({ role: 'assistant', content: null, tool_calls: [call] });
    return;
  }
  const calls = Array.isArray(last['tool_calls']) ? (last['tool_calls'] as unknown[]) : [];
  last['tool_calls'] = [...calls, call];
}

/** `input` (a string or items) as chat messages. */
function chatMessagesOf(input: unknown, refuse: Refuse): Dict[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  if (!Array.isArray(input)) throw refuse('"input" that is neither a string nor an array');
  const messages: Dict[] = [];
  for (const [index, entry] of input.entries()) {
    const item = asDict(entry);
    // Not a translation limit: no Responses API takes it either.
    if (item === undefined)
      throw new RequestError(
        400,
        'invalid_request_error',
        `input[${index}] is not an input item (an object with a "type" or a "role")`,
      );
    const type = item['type'] ?? 'message';
    if (type === 'message') messages.push(messageOf(item, refuse));
    else if (type === 'function_call') addCall(messages, item);
    else if (type === 'function_call_output') {
      messages.push({
        role: 'tool',
        tool_call_id: item['call_id'],
        content: outputText(item['output'], refuse),
      });
    } else if (type !== 'reasoning') {
      // Reasoning items of an earlier turn are the other provider's (encrypted): left out.
      throw refuse(`an input item of type "${String(type)}"`);
    }
  }
  return messages;
}

function chatTools(tools: unknown, refuse: Refuse): Dict[] {
  if (!Array.isArray(tools)) throw refuse('"tools" that is not an array');
  return tools.map((tool) => {
    const dict = asDict(tool) ?? {};
    if (dict['type'] !== 'function') throw refuse(`a "${String(dict['type'])}" tool`);
    const fn: Dict = { name: dict['name'] };
    if (dict['parameters'] !== undefined && dict['parameters'] !== null)
      fn['parameters'] = dict['parameters'];
    if (typeof dict['description'] === 'string') fn['description'] = dict['description'];
    // Chat's own flag (Anthropic's tool `strict` from there, ./requests.ts).
    if (typeof dict['strict'] === 'boolean') fn['strict'] = dict['strict'];
    return { type: 'function', function: fn };
  });
}

function chatToolChoice(choice: unknown, refuse: Refuse): unknown {
  if (choice === undefined || choice === null || typeof choice === 'string') return choice;
  const dict = asDict(choice) ?? {};
  if (dict['type'] === 'function' && typeof dict['name'] === 'string') {
    return { type: 'function', function: { name: dict['name'] } };
  }
  throw refuse(`tool_choice of type "${String(dict['type'])}"`);
}

/**
 * `tools`, `tool_choice` and `parallel_tool_calls` into `out`, only with at least one tool: the
 * Responses API takes a tool choice or `parallel_tool_calls` (and `tools: []`) without tools,
 * while Chat Completions and Anthropic refuse them (their SDKs' agents send them that way).
 */
function toolFields(body: Dict, out: Dict, refuse: Refuse): void {
  const given = body['tools'];
  const tools = given === undefined || given === null ? [] : chatTools(given, refuse);
  const choice = chatToolChoice(body['tool_choice'], refuse);
  if (tools.length === 0) return;
  out['tools'] = tools;
  if (choice !== undefined && choice !== null) out['tool_choice'] = choice;
  const parallel = body['parallel_tool_calls'];
  if (parallel !== undefined && parallel !== null) out['parallel_tool_calls'] = parallel;
}

/** `text.format` as a chat `response_format` (json_schema's fields move under `json_schema`). */
function responseFormatOf(format: Dict): Dict {
  if (format['type'] !== 'json_schema') return { type: format['type'] };
  const { type, ...schema } = format;
  return { type, json_schema: schema };
}

/**
 * Settings with a Chat Completions counterpart (structured output, reasoning effort) into `out`
 * for an OpenAI-style upstream; the others (and, for Anthropic, these too) accepted only at the
 * value that changes nothing.
 */
function settings(body: Dict, out: Dict, refuse: Refuse, chat: boolean): void {
  const text = asDict(body['text']);
  const format = asDict(text?.['format']);
  if (format !== undefined && format['type'] !== undefined && format['type'] !== 'text') {
    if (!chat) throw refuse(`text.format "${String(format['type'])}"`);
    out['response_format'] = responseFormatOf(format);
  }
  const verbosity = text?.['verbosity'];
  if (verbosity !== undefined && verbosity !== null && verbosity !== 'medium')
    throw refuse('"text.verbosity"');
  const reasoning = asDict(body['reasoning']);
  const effort = reasoning?.['effort'] ?? null;
  if (effort !== null) {
    if (!chat) throw refuse('"reasoning"');
    out['reasoning_effort'] = effort;
  }
  if ((reasoning?.['summary'] ?? null) !== null) throw refuse('"reasoning.summary"');
  const truncation = body['truncation'];
  if (truncation !== undefined && truncation !== null && truncation !== 'disabled')
    throw refuse(`truncation "${String(truncation)}"`);
  const include = body['include'];
  if (Array.isArray(include) && include.length > 0) throw refuse('"include"');
  if (body['background'] === true) throw refuse('"background"');
  if (typeof body['top_logprobs'] === 'number' && body['top_logprobs'] > 0)
    throw refuse('"top_logprobs"');
}

/** Fields read by `responsesToChat`, or dropped because they change nothing in the answer. */
const RESPONSES_FIELDS = new Set([
  'model',
  'input',
  'instructions',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'max_output_tokens',
  'temperature',
  'top_p',
  'stream',
  'user',
  'text',
  'reasoning',
  'truncation',
  'include',
  'background',
  'top_logprobs',
  // Dropped: no effect on the answer's content.
  'store',
  'metadata',
  'service_tier',
  'prompt_cache_key',
  'safety_identifier',
  'stream_options',
]);

/**
 * An OpenAI Responses body as a Chat Completions body (a 400 for what has no counterpart): for an
 * Anthropic upstream (`chatToMessages` takes it on) by default, else for an OpenAI-style upstream
 * of `kind` (its token limit field, usage asked for on a stream).
 */
export function responsesToChat(body: Dict, kind: UpstreamKind = 'anthropic'): Dict {
  const chat = kind !== 'anthropic';
  const refuse: Refuse = (what) => untranslatable(what, chat ? 'openai' : 'anthropic');
  for (const field of Object.keys(body)) {
    if (!RESPONSES_FIELDS.has(field)) throw refuse(`"${field}"`);
  }
  const messages = chatMessagesOf(body['input'], refuse);
  // OpenAI-compatible servers' chat templates mostly know no `developer` role.
  if (chat && kind !== 'openai') {
    for (const message of messages) if (message['role'] === 'developer') message['role'] = 'system';
  }
  const instructions = body['instructions'];
  if (typeof instructions === 'string' && instructions !== '')
    messages.unshift({ role: 'system', content: instructions });
  const out: Dict = { model: body['model'], messages };
  settings(body, out, refuse, chat);
  // As for a Messages request: OpenAI's own API wants max_completion_tokens, others max_tokens.
  if (typeof body['max_output_tokens'] === 'number')
    out[chat && kind !== 'openai' ? 'max_tokens' : 'max_completion_tokens'] =
      body['max_output_tokens'];
  for (const field of ['temperature', 'top_p', 'user'] as const) {
    if (body[field] !== undefined && body[field] !== null) out[field] = body[field];
  }
  toolFields(body, out, refuse);
  if (body['stream'] === true) {
    out['stream'] = true;
    // The span's usage (and the response.completed event's) comes from the usage chunk.
    if (chat) out['stream_options'] = { include_usage: true };
  }
  return out;
}
