import type { CallContext, CallResult, JsonObject } from './context.js';
import { callFields, gradeOf, invalid, isObject } from './context.js';
import type { GeneratedChoice, ToolChoice, ToolSpec } from './engine.js';
import { generate } from './engine.js';
import { REFUSAL_STOP_DETAILS, messageStreamFrames } from './anthropic-messages-stream.js';
import type { MessageFacts } from './anthropic-messages-stream.js';
import type { SimModelConfig } from './models.js';
import type { PrefixCache } from './prefix-cache.js';
import { estimateTokens } from './tokens.js';
import { alphaId } from './random.js';

interface PromptScan {
  text: string;
  /** Character offsets just after each block carrying `cache_control`. */
  breakpoints: number[];
  userText: string;
  afterToolResult: boolean;
  messageCount: number;
}

function scanBlocks(
  content: unknown,
  scan: PromptScan,
  role: string,
): { text: string; toolResultOnly: boolean } {
  if (typeof content === 'string') {
    scan.text += `${role}: ${content}\n`;
    return { text: content, toolResultOnly: false };
  }
  let text = '';
  let sawText = false;
  let sawToolResult = false;
  if (Array.isArray(content)) {
    for (const block of content) {
      if (!isObject(block)) continue;
      const type = block['type'];
      if (type === 'text' && typeof block['text'] === 'string') {
        text += (text ? '\n' : '') + block['text'];
        scan.text += `${role}: ${block['text']}\n`;
        sawText = true;
      } else if (type === 'tool_result') {
        sawToolResult = true;
        const inner = block['content'];
        scan.text += `tool_result: ${typeof inner === 'string' ? inner : JSON.stringify(inner ?? '')}\n`;
      } else if (type === 'tool_use') {
        scan.text += `tool_use: ${JSON.stringify(block['input'] ?? {})}\n`;
      } else {
        scan.text += `${String(type)}\n`;
      }
      if (isObject(block['cache_control'])) scan.breakpoints.push(scan.text.length);
    }
  }
  return { text, toolResultOnly: sawToolResult && !sawText };
}

const THINKING_SUMMARY = 'Let me work through this step by step before answering.';

function anthropicToolChoice(value: unknown): ToolChoice {
  if (!isObject(value)) return 'auto';
  switch (value['type']) {
    case 'any':
      return 'required';
    case 'none':
      return 'none';
    case 'tool':
      return typeof value['name'] === 'string' ? { name: value['name'] } : 'required';
    default:
      return 'auto';
  }
}

function stopReason(choice: GeneratedChoice, refused: boolean): string {
  if (refused) return 'refusal';
  if (choice.finish === 'length') return 'max_tokens';
  if (choice.finish === 'tool_calls') return 'tool_use';
  return 'end_turn';
}

/** Reads tools, system and messages into a scan; an error when a message is not one. */
function scanRequest(body: JsonObject, messages: unknown[]): PromptScan | CallResult {
  const scan: PromptScan = {
    text: '',
    breakpoints: [],
    userText: '',
    afterToolResult: false,
    messageCount: messages.length,
  };
  if (Array.isArray(body['tools'])) {
    for (const tool of body['tools']) {
      if (!isObject(tool) || typeof tool['name'] !== 'string') continue;
      scan.text += `tool: ${JSON.stringify(tool)}\n`;
      if (isObject(tool['cache_control'])) scan.breakpoints.push(scan.text.length);
    }
  }
  if (body['system'] !== undefined) scanBlocks(body['system'], scan, 'system');
  let lastToolResultOnly = false;
  for (const message of messages) {
    if (!isObject(message)) return invalid('messages: Input should be a valid dictionary');
    const role = String(message['role']);
    if (role !== 'user' && role !== 'assistant') {
      return invalid(
        `messages: Unexpected role "${role}". Allowed roles are "user" or "assistant".`,
      );
    }
    const { text, toolResultOnly } = scanBlocks(message['content'], scan, role);
    if (role === 'user' && text) scan.userText = text;
    lastToolResultOnly = role === 'user' && toolResultOnly;
  }
  scan.afterToolResult = lastToolResultOnly;
  return scan;
}

function readTools(body: JsonObject): ToolSpec[] {
  const tools: ToolSpec[] = [];
  if (!Array.isArray(body['tools'])) return tools;
  for (const tool of body['tools']) {
    if (isObject(tool) && typeof tool['name'] === 'string')
      tools.push({ name: tool['name'], parameters: tool['input_schema'] });
  }
  return tools;
}

/** Structured outputs (`output_format`, or `output_config.format`). */
function readOutputFormat(body: JsonObject): { schema: unknown } | undefined {
  const outputConfig = body['output_config'];
  const format =
    body['output_format'] ?? (isObject(outputConfig) ? outputConfig['format'] : undefined);
  return isObject(format) && format['type'] === 'json_schema'
    ? { schema: format['schema'] }
    : undefined;
}

/**
 * Explicit caching at the `cache_control` breakpoints: the longest prefix already cached is read;
 * what lies beyond it up to the last breakpoint is written.
 */
function cacheTokens(
  scan: PromptScan,
  model: SimModelConfig,
  cache: PrefixCache,
): { cacheRead: number; cacheWrite: number } {
  const breakpoints = scan.breakpoints.filter((offset) => offset / 4 >= model.cache.minTokens);
  if (breakpoints.length === 0) return { cacheRead: 0, cacheWrite: 0 };
  const last = breakpoints[breakpoints.length - 1] as number;
  let readChars = 0;
  for (let index = breakpoints.length - 1; index >= 0; index--) {
    const offset = breakpoints[index] as number;
    if (cache.has(scan.text.slice(0, offset))) {
      readChars = offset;
      break;
    }
  }
  for (const offset of breakpoints)
    if (offset > readChars) cache.readOrWrite(scan.text.slice(0, offset));
  const cacheRead = Math.floor(readChars / 4);
  return { cacheRead, cacheWrite: Math.floor(last / 4) - cacheRead };
}

/** Extended thinking: off, or on with an optional budget; an error for a budget Anthropic rejects. */
function readThinking(
  body: JsonObject,
  maxTokens: number,
): CallResult | { thinking?: { budgetTokens: number | undefined } } {
  const thinking = body['thinking'];
  if (!isObject(thinking)) return {};
  if (thinking['type'] === 'enabled') {
    const budget = thinking['budget_tokens'];
    if (typeof budget !== 'number' || budget < 1024) {
      return invalid(
        'thinking.enabled.budget_tokens: Input should be greater than or equal to 1024',
      );
    }
    if (budget >= maxTokens)
      return invalid('`max_tokens` must be greater than `thinking.budget_tokens`.');
  } else if (thinking['type'] !== 'adaptive') {
    return {};
  }
  const budget = thinking['budget_tokens'];
  return { thinking: { budgetTokens: typeof budget === 'number' ? budget : undefined } };
}

/** `POST /v1/messages`. */
export function handleMessages(body: JsonObject, context: CallContext): CallResult {
  const { model } = context;
  const maxTokens = body['max_tokens'];
  if (typeof maxTokens !== 'number') return invalid('max_tokens: Field required');
  if (!Number.isInteger(maxTokens) || maxTokens < 1)
    return invalid('max_tokens: Input should be greater than or equal to 1');
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) return invalid('messages: Field required');
  const scan = scanRequest(body, messages);
  if ('kind' in scan) return scan;
  const totalTokens = estimateTokens(scan.text) + 3 * messages.length;
  const { cacheRead, cacheWrite } = cacheTokens(scan, model, context.cache);
  const thinking = readThinking(body, maxTokens);
  if ('kind' in thinking) return thinking;
  const [choice] = generate({
    ...callFields(context),
    userText: scan.userText,
    afterToolResult: scan.afterToolResult,
    tools: readTools(body),
    toolChoice: anthropicToolChoice(body['tool_choice']),
    json: readOutputFormat(body),
    maxOutputTokens: maxTokens,
    reasoningEffort: undefined,
    ...thinking,
    n: 1,
    toolIdPrefix: 'toolu_01',
  }) as [GeneratedChoice];
  const thinkingOn = thinking.thinking !== undefined;
  const message: MessageFacts = {
    id: `msg_01${alphaId(22, 'msg', context.salt)}`,
    model: model.responseModel ?? model.name,
    content: contentBlocks(choice, thinkingOn, context.salt, maxTokens),
    usageInput: {
      input_tokens: Math.max(0, totalTokens - cacheRead - cacheWrite),
      cache_creation_input_tokens: cacheWrite,
      cache_read_input_tokens: cacheRead,
      cache_creation: { ephemeral_5m_input_tokens: cacheWrite, ephemeral_1h_input_tokens: 0 },
    },
    stop: stopReason(choice, choice.refusal !== undefined),
  };
  const graded = gradeOf([choice]);
  if (body['stream'] === true)
    return { kind: 'sse', graded, frames: messageStreamFrames(message, choice) };
  return {
    kind: 'json',
    outputTokens: choice.outputTokens,
    graded,
    body: messageBody(message, choice, thinkingOn),
  };
}

/** The content blocks: thinking, then the refusal, the tool calls (after a preface) or the text. */
function contentBlocks(
  choice: GeneratedChoice,
  thinkingOn: boolean,
  salt: string,
  maxTokens: number,
): JsonObject[] {
  const content: JsonObject[] = [];
  if (thinkingOn && choice.reasoningTokens > 0) {
    content.push({
      type: 'thinking',
      thinking: THINKING_SUMMARY,
      signature: Buffer.from(`sim-signature:${salt}`).toString('base64'),
    });
  }
  if (choice.refusal !== undefined) {
    content.push({ type: 'text', text: choice.refusal });
  } else if (choice.toolCalls.length > 0) {
    // Claude usually says what it is about to do before the tool_use block.
    const preface = `I'll use the ${choice.toolCalls[0]?.name ?? 'tool'} tool.`;
    if (choice.outputTokens + estimateTokens(preface) <= maxTokens) {
      content.push({ type: 'text', text: preface });
      choice.outputTokens += estimateTokens(preface);
    }
    for (const call of choice.toolCalls) {
      let input: unknown;
      try {
        input = JSON.parse(call.arguments);
      } catch {
        input = {};
      }
      content.push({ type: 'tool_use', id: call.id, name: call.name, input });
    }
  } else if (choice.text !== '') {
    content.push({ type: 'text', text: choice.text });
  }
  return content;
}

function messageBody(
  message: MessageFacts,
  choice: GeneratedChoice,
  thinkingOn: boolean,
): JsonObject {
  const { stop } = message;
  return {
    id: message.id,
    type: 'message',
    role: 'assistant',
    model: message.model,
    content: message.content,
    stop_reason: stop,
    ...(stop === 'refusal' ? { stop_details: REFUSAL_STOP_DETAILS } : {}),
    stop_sequence: null,
    usage: {
      ...message.usageInput,
      output_tokens: choice.outputTokens,
      ...(thinkingOn ? { output_tokens_details: { thinking_tokens: choice.reasoningTokens } } : {}),
      service_tier: 'standard',
    },
  };
}

/** `POST /v1/messages/count_tokens`. */
export function countMessageTokens(body: JsonObject): { input_tokens: number } {
  const scan: PromptScan = {
    text: '',
    breakpoints: [],
    userText: '',
    afterToolResult: false,
    messageCount: 0,
  };
  if (Array.isArray(body['tools'])) scan.text += JSON.stringify(body['tools']);
  if (body['system'] !== undefined) scanBlocks(body['system'], scan, 'system');
  const messages = Array.isArray(body['messages']) ? body['messages'] : [];
  for (const message of messages) {
    if (isObject(message)) scanBlocks(message['content'], scan, String(message['role']));
  }
  return { input_tokens: estimateTokens(scan.text) + 3 * messages.length };
}
