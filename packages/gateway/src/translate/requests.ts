/**
 * Request bodies across wire formats: an OpenAI Chat Completions body for an Anthropic Messages
 * upstream, and an Anthropic Messages body for an OpenAI-compatible upstream. What has a faithful
 * counterpart is translated (system prompt, text and image parts, tools, tool calls and results,
 * tool choice, sampling, stop sequences, streaming); what has none is refused with a 400 naming
 * the field, rather than silently dropped. docs/gateway.md lists both.
 */
import type { UpstreamKind } from '../config.js';
import { RequestError } from '../http.js';
import { asDict } from '../usage.js';

type Dict = Record<string, unknown>;

/** `max_tokens` an Anthropic upstream gets when the OpenAI request sets none (it is required). */
export const DEFAULT_ANTHROPIC_MAX_TOKENS = 4096;

/** A 400 for what cannot be translated; `to` names the upstream's format. */
export function untranslatable(what: string, to: 'anthropic' | 'openai'): RequestError {
  const format = to === 'anthropic' ? 'Anthropic Messages' : 'OpenAI Chat Completions';
  return new RequestError(
    400,
    'invalid_request_error',
    `${what} cannot be translated to ${format} (this model's upstream speaks ${format}); send it to a model served in your request's format`,
  );
}

const DATA_URL = /^data:(image\/(?:png|jpeg|gif|webp));base64,(.*)$/s;

/** The text of a string or an array of text parts; undefined when a part is not text. */
function textOf(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return content === null || content === undefined ? '' : undefined;
  let text = '';
  for (const part of content) {
    const dict = asDict(part);
    if (dict?.['type'] !== 'text' || typeof dict['text'] !== 'string') return undefined;
    text += (text === '' ? '' : '\n') + dict['text'];
  }
  return text;
}

// ---- OpenAI Chat Completions → Anthropic Messages -------------------------------------------

function imageBlock(part: Dict): Dict {
  const url = asDict(part['image_url'])?.['url'];
  if (typeof url !== 'string') throw untranslatable('an image_url part without a url', 'anthropic');
  const data = DATA_URL.exec(url);
  if (data !== null) {
    return { type: 'image', source: { type: 'base64', media_type: data[1], data: data[2] } };
  }
  if (/^https?:\/\//.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw untranslatable(
    'an image that is neither a base64 data URL of png/jpeg/gif/webp nor an http(s) URL',
    'anthropic',
  );
}

function userBlocks(content: unknown): Dict[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content)) throw untranslatable('a user message without content', 'anthropic');
  return content.map((part) => {
    const dict = asDict(part) ?? {};
    if (dict['type'] === 'text') return { type: 'text', text: String(dict['text'] ?? '') };
    if (dict['type'] === 'image_url') return imageBlock(dict);
    throw untranslatable(`a "${String(dict['type'])}" content part`, 'anthropic');
  });
}

function toolUseBlock(call: unknown): Dict {
  const dict = asDict(call) ?? {};
  const fn = asDict(dict['function']);
  if (dict['type'] !== 'function' || fn === undefined) {
    throw untranslatable(`a "${String(dict['type'])}" tool call`, 'anthropic');
  }
  let input: unknown = {};
  const args = fn['arguments'];
  if (typeof args === 'string' && args.trim() !== '') {
    try {
      input = JSON.parse(args);
    } catch {
      throw untranslatable(`tool call ${String(dict['id'])}'s arguments (not JSON)`, 'anthropic');
    }
  }
  return { type: 'tool_use', id: dict['id'], name: fn['name'], input };
}

function assistantBlocks(message: Dict): Dict[] {
  const blocks: Dict[] = [];
  const content = message['content'];
  if (Array.isArray(content)) {
    for (const part of content) {
      const dict = asDict(part) ?? {};
      const text = dict['type'] === 'refusal' ? dict['refusal'] : dict['text'];
      if (typeof text !== 'string')
        throw untranslatable(`a "${String(dict['type'])}" assistant part`, 'anthropic');
      if (text !== '') blocks.push({ type: 'text', text });
    }
  } else if (typeof content === 'string' && content !== '') {
    blocks.push({ type: 'text', text: content });
  }
  if (Array.isArray(message['tool_calls'])) blocks.push(...message['tool_calls'].map(toolUseBlock));
  return blocks;
}

/** Chat messages as Anthropic's `system` and alternating turns (tool results in user turns). */
function anthropicTurns(messages: unknown): { system: string[]; turns: Dict[] } {
  if (!Array.isArray(messages))
    throw untranslatable('"messages" that is not an array', 'anthropic');
  const system: string[] = [];
  const turns: { role: string; content: Dict[] }[] = [];
  const push = (role: string, blocks: Dict[]) => {
    const last = turns.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (const entry of messages) {
    const message = asDict(entry) ?? {};
    const role = message['role'];
    if (role === 'system' || role === 'developer') {
      const text = textOf(message['content']);
      if (text === undefined)
        throw untranslatable('a system message with non-text parts', 'anthropic');
      system.push(text);
    } else if (role === 'user') {
      push('user', userBlocks(message['content']));
    } else if (role === 'assistant') {
      const blocks = assistantBlocks(message);
      if (blocks.length > 0) push('assistant', blocks);
    } else if (role === 'tool') {
      const text = textOf(message['content']);
      if (text === undefined)
        throw untranslatable('a tool message with non-text parts', 'anthropic');
      push('user', [{ type: 'tool_result', tool_use_id: message['tool_call_id'], content: text }]);
    } else {
      throw untranslatable(`a message with role "${String(role)}"`, 'anthropic');
    }
  }
  return { system, turns };
}

function anthropicTools(tools: unknown): Dict[] {
  if (!Array.isArray(tools)) throw untranslatable('"tools" that is not an array', 'anthropic');
  return tools.map((tool) => {
    const dict = asDict(tool) ?? {};
    const fn = asDict(dict['function']);
    if (dict['type'] !== 'function' || fn === undefined) {
      throw untranslatable(`a "${String(dict['type'])}" tool`, 'anthropic');
    }
    const out: Dict = {
      name: fn['name'],
      input_schema: asDict(fn['parameters']) ?? { type: 'object', properties: {} },
    };
    if (typeof fn['description'] === 'string') out['description'] = fn['description'];
    // Both APIs' strict schema adherence of the call's arguments (`input`).
    if (typeof fn['strict'] === 'boolean') out['strict'] = fn['strict'];
    return out;
  });
}

function anthropicToolChoice(choice: unknown, parallel: unknown): Dict | undefined {
  let out: Dict | undefined;
  if (choice === 'auto') out = { type: 'auto' };
  else if (choice === 'required') out = { type: 'any' };
  else if (choice === 'none') out = { type: 'none' };
  else if (choice !== undefined) {
    const name = asDict(asDict(choice)?.['function'])?.['name'];
    if (typeof name !== 'string') throw untranslatable('this "tool_choice"', 'anthropic');
    out = { type: 'tool', name };
  }
  if (parallel === false) out = { ...(out ?? { type: 'auto' }), disable_parallel_tool_use: true };
  return out;
}

/** OpenAI fields with no Anthropic counterpart, accepted only at their no-op value. */
function refuseChatOnly(body: Dict): void {
  const n = body['n'];
  if (n !== undefined && n !== null && n !== 1)
    throw untranslatable('"n" other than 1', 'anthropic');
  const format = asDict(body['response_format'])?.['type'];
  if (format !== undefined && format !== 'text')
    throw untranslatable(`response_format "${String(format)}"`, 'anthropic');
  for (const field of ['frequency_penalty', 'presence_penalty']) {
    const value = body[field];
    if (value !== undefined && value !== null && value !== 0)
      throw untranslatable(`"${field}"`, 'anthropic');
  }
  if (body['logprobs'] === true || typeof body['top_logprobs'] === 'number') {
    throw untranslatable('"logprobs"', 'anthropic');
  }
}

/** Fields read by `chatToMessages`, or dropped because they change nothing in the answer. */
const CHAT_FIELDS = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'stop',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'user',
  'n',
  'response_format',
  'frequency_penalty',
  'presence_penalty',
  'logprobs',
  'top_logprobs',
  // Dropped: no effect on the answer's content.
  'seed',
  'store',
  'metadata',
  'service_tier',
  'prompt_cache_key',
  'safety_identifier',
]);

/** An OpenAI Chat Completions body as an Anthropic Messages body for `model`. */
export function chatToMessages(body: Dict, model: string): Dict {
  for (const field of Object.keys(body)) {
    if (!CHAT_FIELDS.has(field)) throw untranslatable(`"${field}"`, 'anthropic');
  }
  refuseChatOnly(body);
  const { system, turns } = anthropicTurns(body['messages']);
  const maxTokens = body['max_completion_tokens'] ?? body['max_tokens'];
  const out: Dict = {
    model,
    max_tokens: typeof maxTokens === 'number' ? maxTokens : DEFAULT_ANTHROPIC_MAX_TOKENS,
    messages: turns,
  };
  if (system.length > 0) out['system'] = system.join('\n\n');
  const temperature = body['temperature'];
  if (typeof temperature === 'number') {
    if (temperature > 1)
      throw untranslatable('"temperature" above 1 (Anthropic accepts 0-1)', 'anthropic');
    out['temperature'] = temperature;
  }
  if (typeof body['top_p'] === 'number') out['top_p'] = body['top_p'];
  const stop = body['stop'];
  if (typeof stop === 'string') out['stop_sequences'] = [stop];
  else if (Array.isArray(stop)) out['stop_sequences'] = stop;
  if (body['tools'] !== undefined && body['tools'] !== null)
    out['tools'] = anthropicTools(body['tools']);
  const choice = anthropicToolChoice(body['tool_choice'] ?? undefined, body['parallel_tool_calls']);
  if (choice !== undefined) out['tool_choice'] = choice;
  if (typeof body['user'] === 'string') out['metadata'] = { user_id: body['user'] };
  if (body['stream'] === true) out['stream'] = true;
  return out;
}

// ---- Anthropic Messages → OpenAI Chat Completions -------------------------------------------

function imagePart(block: Dict): Dict {
  const source = asDict(block['source']) ?? {};
  if (source['type'] === 'base64') {
    const url = `data:${String(source['media_type'])};base64,${String(source['data'])}`;
    return { type: 'image_url', image_url: { url } };
  }
  if (source['type'] === 'url') return { type: 'image_url', image_url: { url: source['url'] } };
  throw untranslatable(`an image with a "${String(source['type'])}" source`, 'openai');
}

function toolResultMessage(block: Dict): Dict {
  const text = textOf(block['content']);
  if (text === undefined) throw untranslatable('a tool_result with non-text content', 'openai');
  return { role: 'tool', tool_call_id: block['tool_use_id'], content: text };
}

/** One user turn: its tool results as `tool` messages first, then the rest as a user message. */
function userMessages(content: unknown): Dict[] {
  if (typeof content === 'string') return [{ role: 'user', content }];
  if (!Array.isArray(content)) throw untranslatable('a user turn without content', 'openai');
  const tools: Dict[] = [];
  const parts: Dict[] = [];
  for (const entry of content) {
    const block = asDict(entry) ?? {};
    if (block['type'] === 'text') parts.push({ type: 'text', text: String(block['text'] ?? '') });
    else if (block['type'] === 'image') parts.push(imagePart(block));
    else if (block['type'] === 'tool_result') tools.push(toolResultMessage(block));
    else throw untranslatable(`a "${String(block['type'])}" content block`, 'openai');
  }
  return parts.length === 0 ? tools : [...tools, { role: 'user', content: parts }];
}

function assistantMessage(content: unknown): Dict {
  if (typeof content === 'string') return { role: 'assistant', content };
  if (!Array.isArray(content)) throw untranslatable('an assistant turn without content', 'openai');
  let text = '';
  const calls: Dict[] = [];
  for (const entry of content) {
    const block = asDict(entry) ?? {};
    const type = block['type'];
    if (type === 'text') text += String(block['text'] ?? '');
    else if (type === 'tool_use') {
      const args = JSON.stringify(block['input'] ?? {});
      calls.push({
        id: block['id'],
        type: 'function',
        function: { name: block['name'], arguments: args },
      });
    } else if (type !== 'thinking' && type !== 'redacted_thinking') {
      throw untranslatable(`a "${String(type)}" content block`, 'openai');
    }
  }
  const message: Dict = {
    role: 'assistant',
    content: text === '' && calls.length > 0 ? null : text,
  };
  if (calls.length > 0) message['tool_calls'] = calls;
  return message;
}

function chatMessages(body: Dict): Dict[] {
  const out: Dict[] = [];
  const system = body['system'];
  if (system !== undefined) {
    const text = textOf(system);
    if (text === undefined) throw untranslatable('a system prompt with non-text blocks', 'openai');
    if (text !== '') out.push({ role: 'system', content: text });
  }
  if (!Array.isArray(body['messages']))
    throw untranslatable('"messages" that is not an array', 'openai');
  for (const entry of body['messages']) {
    const message = asDict(entry) ?? {};
    if (message['role'] === 'user') out.push(...userMessages(message['content']));
    else if (message['role'] === 'assistant') out.push(assistantMessage(message['content']));
    else throw untranslatable(`a message with role "${String(message['role'])}"`, 'openai');
  }
  return out;
}

function chatTools(tools: unknown): Dict[] {
  if (!Array.isArray(tools)) throw untranslatable('"tools" that is not an array', 'openai');
  return tools.map((tool) => {
    const dict = asDict(tool) ?? {};
    if (dict['type'] !== undefined && dict['type'] !== 'custom') {
      throw untranslatable(`the server tool "${String(dict['type'])}"`, 'openai');
    }
    const fn: Dict = { name: dict['name'], parameters: dict['input_schema'] ?? { type: 'object' } };
    if (typeof dict['description'] === 'string') fn['description'] = dict['description'];
    if (typeof dict['strict'] === 'boolean') fn['strict'] = dict['strict'];
    return { type: 'function', function: fn };
  });
}

function chatToolChoice(out: Dict, choice: Dict | undefined): void {
  if (choice === undefined) return;
  const type = choice['type'];
  if (type === 'auto') out['tool_choice'] = 'auto';
  else if (type === 'any') out['tool_choice'] = 'required';
  else if (type === 'none') out['tool_choice'] = 'none';
  else if (type === 'tool')
    out['tool_choice'] = { type: 'function', function: { name: choice['name'] } };
  else throw untranslatable(`tool_choice "${String(type)}"`, 'openai');
  if (choice['disable_parallel_tool_use'] === true) out['parallel_tool_calls'] = false;
}

/** Fields read by `messagesToChat`, or dropped because they change nothing in the answer. */
const MESSAGES_FIELDS = new Set([
  'model',
  'messages',
  'system',
  'max_tokens',
  'stream',
  'temperature',
  'top_p',
  'stop_sequences',
  'tools',
  'tool_choice',
  'metadata',
  'thinking',
  // Dropped: no effect on the answer's content.
  'service_tier',
]);

/** An Anthropic Messages body as an OpenAI Chat Completions body for `model` on `kind`. */
export function messagesToChat(body: Dict, model: string, kind: UpstreamKind): Dict {
  for (const field of Object.keys(body)) {
    if (!MESSAGES_FIELDS.has(field)) throw untranslatable(`"${field}"`, 'openai');
  }
  const thinking = asDict(body['thinking'])?.['type'];
  if (thinking !== undefined && thinking !== 'disabled')
    throw untranslatable('"thinking"', 'openai');
  const out: Dict = { model, messages: chatMessages(body) };
  // OpenAI's own API wants max_completion_tokens (its reasoning models refuse max_tokens);
  // other OpenAI-compatible servers know max_tokens.
  if (typeof body['max_tokens'] === 'number') {
    out[kind === 'openai' ? 'max_completion_tokens' : 'max_tokens'] = body['max_tokens'];
  }
  for (const field of ['temperature', 'top_p'] as const) {
    if (typeof body[field] === 'number') out[field] = body[field];
  }
  if (Array.isArray(body['stop_sequences'])) out['stop'] = body['stop_sequences'];
  if (body['tools'] !== undefined) out['tools'] = chatTools(body['tools']);
  chatToolChoice(out, asDict(body['tool_choice']));
  const user = asDict(body['metadata'])?.['user_id'];
  if (typeof user === 'string') out['user'] = user;
  if (body['stream'] === true) {
    out['stream'] = true;
    out['stream_options'] = { include_usage: true };
  }
  return out;
}
