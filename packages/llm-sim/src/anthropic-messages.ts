import type { CallContext, CallResult, JsonObject } from './context.js';
import { gradeOf, invalid, isObject } from './context.js';
import type { GeneratedChoice, ToolChoice, ToolSpec } from './engine.js';
import { generate } from './engine.js';
import { estimateTokens, splitArguments, splitPieces } from './tokens.js';
import type { SseFrame } from './http-util.js';
import { sseEvent } from './http-util.js';
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

/** `stop_details` of a refusal (the policy category is not simulated). */
const REFUSAL_STOP_DETAILS = { type: 'refusal', category: null, explanation: null };

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

/** `POST /v1/messages`. */
export function handleMessages(body: JsonObject, context: CallContext): CallResult {
  const { model } = context;
  const maxTokens = body['max_tokens'];
  if (typeof maxTokens !== 'number') return invalid('max_tokens: Field required');
  if (!Number.isInteger(maxTokens) || maxTokens < 1)
    return invalid('max_tokens: Input should be greater than or equal to 1');
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) return invalid('messages: Field required');

  const scan: PromptScan = {
    text: '',
    breakpoints: [],
    userText: '',
    afterToolResult: false,
    messageCount: messages.length,
  };
  const tools: ToolSpec[] = [];
  if (Array.isArray(body['tools'])) {
    for (const tool of body['tools']) {
      if (!isObject(tool) || typeof tool['name'] !== 'string') continue;
      tools.push({ name: tool['name'], parameters: tool['input_schema'] });
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
    if (role === 'user') {
      if (text) scan.userText = text;
      lastToolResultOnly = toolResultOnly;
    } else {
      lastToolResultOnly = false;
    }
  }
  scan.afterToolResult = lastToolResultOnly;

  // Structured outputs (`output_format`, or `output_config.format`).
  let json: { schema: unknown } | undefined;
  const outputConfig = body['output_config'];
  const format =
    body['output_format'] ?? (isObject(outputConfig) ? outputConfig['format'] : undefined);
  if (isObject(format) && format['type'] === 'json_schema') json = { schema: format['schema'] };

  const totalTokens = estimateTokens(scan.text) + 3 * messages.length;
  let cacheRead = 0;
  let cacheWrite = 0;
  const breakpoints = scan.breakpoints.filter((offset) => offset / 4 >= model.cache.minTokens);
  if (breakpoints.length > 0) {
    // The longest prefix already cached is read; what lies beyond it up to the last breakpoint is written.
    const last = breakpoints[breakpoints.length - 1] as number;
    let readChars = 0;
    for (let index = breakpoints.length - 1; index >= 0; index--) {
      const offset = breakpoints[index] as number;
      if (context.cache.has(scan.text.slice(0, offset))) {
        readChars = offset;
        break;
      }
    }
    for (const offset of breakpoints)
      if (offset > readChars) context.cache.readOrWrite(scan.text.slice(0, offset));
    cacheRead = Math.floor(readChars / 4);
    cacheWrite = Math.floor(last / 4) - cacheRead;
  }
  const inputTokens = Math.max(0, totalTokens - cacheRead - cacheWrite);

  const thinking = body['thinking'];
  const thinkingOn =
    isObject(thinking) && (thinking['type'] === 'enabled' || thinking['type'] === 'adaptive');
  if (isObject(thinking) && thinking['type'] === 'enabled') {
    const budget = thinking['budget_tokens'];
    if (typeof budget !== 'number' || budget < 1024) {
      return invalid(
        'thinking.enabled.budget_tokens: Input should be greater than or equal to 1024',
      );
    }
    if (budget >= maxTokens)
      return invalid('`max_tokens` must be greater than `thinking.budget_tokens`.');
  }
  const [choice] = generate({
    model,
    seed: context.seed,
    requestSalt: context.salt,
    userText: scan.userText,
    afterToolResult: scan.afterToolResult,
    tools,
    toolChoice: anthropicToolChoice(body['tool_choice']),
    json,
    maxOutputTokens: maxTokens,
    reasoningEffort: undefined,
    ...(thinkingOn
      ? {
          thinking: {
            budgetTokens:
              isObject(thinking) && typeof thinking['budget_tokens'] === 'number'
                ? thinking['budget_tokens']
                : undefined,
          },
        }
      : {}),
    n: 1,
    directives: context.directives,
    judge: context.judge,
    toolIdPrefix: 'toolu_01',
  }) as [GeneratedChoice];
  const refused = choice.refusal !== undefined;
  const content: JsonObject[] = [];
  if (thinkingOn && choice.reasoningTokens > 0) {
    content.push({
      type: 'thinking',
      thinking: THINKING_SUMMARY,
      signature: Buffer.from(`sim-signature:${context.salt}`).toString('base64'),
    });
  }
  if (refused) {
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
  const id = `msg_01${alphaId(22, 'msg', context.salt)}`;
  const responseModel = model.responseModel ?? model.name;
  const usageInput = {
    input_tokens: inputTokens,
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cacheRead,
    cache_creation: { ephemeral_5m_input_tokens: cacheWrite, ephemeral_1h_input_tokens: 0 },
  };
  const stop = stopReason(choice, refused);

  if (body['stream'] === true) {
    return {
      kind: 'sse',
      graded: gradeOf([choice]),
      frames: messageStreamFrames(id, responseModel, content, choice, usageInput, stop),
    };
  }
  return {
    kind: 'json',
    outputTokens: choice.outputTokens,
    graded: gradeOf([choice]),
    body: {
      id,
      type: 'message',
      role: 'assistant',
      model: responseModel,
      content,
      stop_reason: stop,
      ...(refused ? { stop_details: REFUSAL_STOP_DETAILS } : {}),
      stop_sequence: null,
      usage: {
        ...usageInput,
        output_tokens: choice.outputTokens,
        ...(thinkingOn
          ? { output_tokens_details: { thinking_tokens: choice.reasoningTokens } }
          : {}),
        service_tier: 'standard',
      },
    },
  };
}

function messageStreamFrames(
  id: string,
  model: string,
  content: readonly JsonObject[],
  choice: GeneratedChoice,
  usageInput: JsonObject,
  stop: string,
): SseFrame[] {
  const frames: SseFrame[] = [];
  const push = (event: string, payload: JsonObject, tokens: number): void => {
    frames.push({ text: sseEvent(event, payload), tokens });
  };
  push(
    'message_start',
    {
      type: 'message_start',
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usageInput, output_tokens: 1, service_tier: 'standard' },
      },
    },
    0,
  );
  // Reasoning time goes before the first block; with a thinking block, into its delta.
  const hasThinking = content[0]?.['type'] === 'thinking';
  const leadTokens = (index: number): number =>
    index === 0 && !hasThinking ? choice.reasoningTokens : 0;
  content.forEach((block, index) => {
    if (block['type'] === 'thinking') {
      push(
        'content_block_start',
        {
          type: 'content_block_start',
          index,
          content_block: { type: 'thinking', thinking: '', signature: '' },
        },
        0,
      );
      push(
        'content_block_delta',
        {
          type: 'content_block_delta',
          index,
          delta: { type: 'thinking_delta', thinking: block['thinking'] },
        },
        choice.reasoningTokens,
      );
      push(
        'content_block_delta',
        {
          type: 'content_block_delta',
          index,
          delta: { type: 'signature_delta', signature: block['signature'] },
        },
        0,
      );
    } else if (block['type'] === 'tool_use') {
      push(
        'content_block_start',
        {
          type: 'content_block_start',
          index,
          content_block: { type: 'tool_use', id: block['id'], name: block['name'], input: {} },
        },
        leadTokens(index),
      );
      // Same input as the non-streamed block (Anthropic's input is always a JSON object).
      const argumentsText = JSON.stringify(block['input']);
      push(
        'content_block_delta',
        {
          type: 'content_block_delta',
          index,
          delta: { type: 'input_json_delta', partial_json: '' },
        },
        0,
      );
      for (const piece of splitArguments(argumentsText)) {
        push(
          'content_block_delta',
          {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: piece },
          },
          estimateTokens(piece),
        );
      }
    } else {
      push(
        'content_block_start',
        { type: 'content_block_start', index, content_block: { type: 'text', text: '' } },
        leadTokens(index),
      );
      const head = `event: content_block_delta\ndata: {"type":"content_block_delta","index":${index},"delta":{"type":"text_delta","text":`;
      for (const piece of splitPieces(String(block['text']))) {
        frames.push({
          text: `${head}${JSON.stringify(piece)}}}\n\n`,
          tokens: estimateTokens(piece),
        });
      }
    }
    push('content_block_stop', { type: 'content_block_stop', index }, 0);
  });
  // Anthropic sends a ping right after the first content_block_start.
  const firstStart = frames.findIndex((frame) =>
    frame.text.startsWith('event: content_block_start'),
  );
  if (firstStart >= 0)
    frames.splice(firstStart + 1, 0, { text: sseEvent('ping', { type: 'ping' }), tokens: 0 });
  push(
    'message_delta',
    {
      type: 'message_delta',
      delta:
        stop === 'refusal'
          ? { stop_reason: stop, stop_sequence: null, stop_details: REFUSAL_STOP_DETAILS }
          : { stop_reason: stop, stop_sequence: null },
      usage: hasThinking
        ? {
            output_tokens: choice.outputTokens,
            output_tokens_details: { thinking_tokens: choice.reasoningTokens },
          }
        : { output_tokens: choice.outputTokens },
    },
    0,
  );
  push('message_stop', { type: 'message_stop' }, 0);
  return frames;
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
