import type { CallContext, CallResult, JsonObject } from './context.js';
import { gradeOf, invalid, isObject } from './context.js';
import type { GeneratedChoice, ToolChoice, ToolSpec } from './engine.js';
import { generate } from './engine.js';
import { estimateTokens, splitArguments, splitPieces } from './tokens.js';
import type { SseFrame } from './http-util.js';
import { sseEvent } from './http-util.js';
import { openaiContentText } from './openai-chat.js';
import { hexId } from './random.js';

function responsesToolChoice(value: unknown): ToolChoice {
  if (value === 'none' || value === 'required' || value === 'auto') return value;
  if (isObject(value) && typeof value['name'] === 'string') return { name: value['name'] };
  return 'auto';
}

/** `POST /v1/responses`. */
export function handleResponses(body: JsonObject, context: CallContext): CallResult {
  const { model } = context;
  const input = body['input'];
  let promptText = '';
  let userText = '';
  let afterToolResult = false;
  let items = 0;
  if (typeof body['instructions'] === 'string')
    promptText += `developer: ${body['instructions']}\n`;
  if (typeof input === 'string') {
    promptText += `user: ${input}\n`;
    userText = input;
    items = 1;
  } else if (Array.isArray(input)) {
    for (const item of input) {
      if (!isObject(item)) continue;
      items++;
      const type = item['type'] ?? 'message';
      if (type === 'message') {
        const text = openaiContentText(item['content']);
        promptText += `${String(item['role'])}: ${text}\n`;
        if (item['role'] === 'user') userText = text;
        afterToolResult = false;
      } else if (type === 'function_call_output') {
        promptText += `tool: ${typeof item['output'] === 'string' ? item['output'] : JSON.stringify(item['output'])}\n`;
        afterToolResult = true;
      } else {
        promptText += `${JSON.stringify(item)}\n`;
      }
    }
  } else {
    return invalid("Missing required parameter: 'input'.", 'input', 'missing_required_parameter');
  }
  const tools: ToolSpec[] = [];
  if (Array.isArray(body['tools'])) {
    for (const tool of body['tools']) {
      if (isObject(tool) && tool['type'] === 'function' && typeof tool['name'] === 'string') {
        tools.push({ name: tool['name'], parameters: tool['parameters'] });
      }
    }
    promptText += JSON.stringify(body['tools']);
  }
  const text = body['text'];
  const format = isObject(text) ? text['format'] : undefined;
  let json: { schema: unknown } | undefined;
  if (isObject(format)) {
    if (format['type'] === 'json_object') json = { schema: undefined };
    else if (format['type'] === 'json_schema')
      json = { schema: format['schema'] ?? { type: 'object', properties: {} } };
  }
  const maxRaw = body['max_output_tokens'];
  const maxOutputTokens = typeof maxRaw === 'number' ? maxRaw : undefined;
  if (maxOutputTokens !== undefined && maxOutputTokens < 16) {
    return invalid(
      `Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got ${maxOutputTokens} instead.`,
      'max_output_tokens',
      'integer_below_min_value',
    );
  }
  const reasoning = body['reasoning'];
  const effort =
    isObject(reasoning) && typeof reasoning['effort'] === 'string'
      ? reasoning['effort']
      : undefined;

  const promptTokens = estimateTokens(promptText) + 3 * items + 3;
  const cachedTokens = Math.min(
    context.cache.lookup(promptText, model.cache.minTokens, model.cache.blockTokens),
    promptTokens,
  );
  const [choice] = generate({
    model,
    seed: context.seed,
    requestSalt: context.salt,
    userText,
    afterToolResult,
    tools,
    toolChoice: responsesToolChoice(body['tool_choice']),
    json,
    maxOutputTokens,
    reasoningEffort: effort,
    n: 1,
    directives: context.directives,
    judge: context.judge,
    toolIdPrefix: 'call_',
  }) as [GeneratedChoice];

  const id = `resp_${hexId(48, 'resp', context.salt)}`;
  const incomplete = choice.finish === 'length';
  const status = incomplete ? 'incomplete' : 'completed';
  const output: JsonObject[] = [];
  if (model.reasoningTokens) {
    output.push({ id: `rs_${hexId(48, 'rs', context.salt)}`, type: 'reasoning', summary: [] });
  }
  if (choice.toolCalls.length > 0) {
    choice.toolCalls.forEach((call, index) => {
      output.push({
        id: `fc_${hexId(48, 'fc', context.salt, index)}`,
        type: 'function_call',
        status: 'completed',
        arguments: call.arguments,
        call_id: call.id,
        name: call.name,
      });
    });
  } else if (!(incomplete && choice.text === '' && choice.refusal === undefined)) {
    output.push({
      id: `msg_${hexId(48, 'msg', context.salt)}`,
      type: 'message',
      status,
      content: [
        choice.refusal !== undefined
          ? { type: 'refusal', refusal: choice.refusal }
          : { type: 'output_text', annotations: [], logprobs: [], text: choice.text },
      ],
      role: 'assistant',
    });
  }
  const usage = {
    input_tokens: promptTokens,
    input_tokens_details: { cached_tokens: cachedTokens, cache_write_tokens: 0 },
    output_tokens: choice.outputTokens,
    output_tokens_details: { reasoning_tokens: choice.reasoningTokens },
    total_tokens: promptTokens + choice.outputTokens,
  };
  const response = (
    state: 'in_progress' | 'completed' | 'incomplete',
    items: JsonObject[],
    withUsage: boolean,
  ): JsonObject => ({
    id,
    object: 'response',
    created_at: context.created,
    status: state,
    background: false,
    completed_at: state === 'in_progress' ? null : context.created,
    error: null,
    incomplete_details: state === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: body['instructions'] ?? null,
    max_output_tokens: maxOutputTokens ?? null,
    max_tool_calls: null,
    model: model.responseModel ?? model.name,
    output: items,
    parallel_tool_calls: true,
    previous_response_id: body['previous_response_id'] ?? null,
    reasoning: { effort: effort ?? (model.reasoningTokens ? 'medium' : null), summary: null },
    service_tier: 'default',
    store: body['store'] !== false,
    temperature: typeof body['temperature'] === 'number' ? body['temperature'] : 1,
    text: { format: isObject(format) ? format : { type: 'text' }, verbosity: 'medium' },
    tool_choice: body['tool_choice'] ?? 'auto',
    tools: Array.isArray(body['tools']) ? body['tools'] : [],
    top_p: typeof body['top_p'] === 'number' ? body['top_p'] : 1,
    truncation: 'disabled',
    usage: withUsage ? usage : null,
    user: null,
    metadata: isObject(body['metadata']) ? body['metadata'] : {},
  });

  if (body['stream'] !== true) {
    return {
      kind: 'json',
      outputTokens: choice.outputTokens,
      graded: gradeOf([choice]),
      body: response(status, output, true),
    };
  }

  const frames: SseFrame[] = [];
  let sequence = 0;
  const push = (type: string, payload: JsonObject, tokens = 0): void => {
    frames.push({
      text: sseEvent(type, { type, sequence_number: sequence++, ...payload }),
      tokens,
    });
  };
  push('response.created', { response: response('in_progress', [], false) });
  push('response.in_progress', { response: response('in_progress', [], false) });
  output.forEach((item, outputIndex) => {
    const itemId = item['id'];
    if (item['type'] === 'reasoning') {
      push(
        'response.output_item.added',
        { output_index: outputIndex, item },
        choice.reasoningTokens,
      );
      push('response.output_item.done', { output_index: outputIndex, item });
    } else if (item['type'] === 'function_call') {
      const args = String(item['arguments']);
      push('response.output_item.added', {
        output_index: outputIndex,
        item: { ...item, status: 'in_progress', arguments: '' },
      });
      for (const piece of splitArguments(args)) {
        push(
          'response.function_call_arguments.delta',
          { item_id: itemId, output_index: outputIndex, delta: piece },
          estimateTokens(piece),
        );
      }
      push('response.function_call_arguments.done', {
        item_id: itemId,
        output_index: outputIndex,
        name: item['name'],
        arguments: args,
      });
      push('response.output_item.done', { output_index: outputIndex, item });
    } else {
      const part = (item['content'] as JsonObject[])[0] as JsonObject;
      push('response.output_item.added', {
        output_index: outputIndex,
        item: { ...item, status: 'in_progress', content: [] },
      });
      const where = { item_id: itemId, output_index: outputIndex, content_index: 0 };
      if (part['type'] === 'refusal') {
        push('response.content_part.added', { ...where, part: { type: 'refusal', refusal: '' } });
        for (const piece of splitPieces(String(part['refusal']))) {
          push('response.refusal.delta', { ...where, delta: piece }, estimateTokens(piece));
        }
        push('response.refusal.done', { ...where, refusal: part['refusal'] });
      } else {
        push('response.content_part.added', {
          ...where,
          part: { type: 'output_text', annotations: [], logprobs: [], text: '' },
        });
        const head = `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":`;
        const middle = `,"item_id":${JSON.stringify(itemId)},"output_index":${outputIndex},"content_index":0,"delta":`;
        for (const piece of splitPieces(String(part['text']))) {
          frames.push({
            text: `${head}${sequence++}${middle}${JSON.stringify(piece)},"logprobs":[]}\n\n`,
            tokens: estimateTokens(piece),
          });
        }
        push('response.output_text.done', { ...where, text: part['text'], logprobs: [] });
      }
      push('response.content_part.done', { ...where, part });
      push('response.output_item.done', { output_index: outputIndex, item });
    }
  });
  push(incomplete ? 'response.incomplete' : 'response.completed', {
    response: response(status, output, true),
  });
  return { kind: 'sse', frames, graded: gradeOf([choice]) };
}
