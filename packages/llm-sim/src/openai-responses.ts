import type { CallContext, CallResult, JsonObject } from './context.js';
import { callFields, gradeOf, invalid, isObject } from './context.js';
import type { GeneratedChoice, ToolChoice } from './engine.js';
import { generate } from './engine.js';
import type { SimModelConfig } from './models.js';
import { functionTools, openaiContentText } from './openai-chat.js';
import { responsesStreamFrames } from './openai-responses-stream.js';
import type { ResponseState } from './openai-responses-stream.js';
import { hexId } from './random.js';
import { estimateTokens } from './tokens.js';

function responsesToolChoice(value: unknown): ToolChoice {
  if (value === 'none' || value === 'required' || value === 'auto') return value;
  if (isObject(value) && typeof value['name'] === 'string') return { name: value['name'] };
  return 'auto';
}

/** The prompt as the simulator reads it: all text, the last user turn, and the item count. */
interface ResponsesPrompt {
  promptText: string;
  userText: string;
  afterToolResult: boolean;
  items: number;
}

/** Reads `instructions` and `input` (a string or a list of items). */
function readInput(body: JsonObject): ResponsesPrompt | undefined {
  const input = body['input'];
  const prompt: ResponsesPrompt = {
    promptText: '',
    userText: '',
    afterToolResult: false,
    items: 0,
  };
  if (typeof body['instructions'] === 'string')
    prompt.promptText += `developer: ${body['instructions']}\n`;
  if (typeof input === 'string') {
    prompt.promptText += `user: ${input}\n`;
    prompt.userText = input;
    prompt.items = 1;
    return prompt;
  }
  if (!Array.isArray(input)) return undefined;
  for (const item of input) {
    if (!isObject(item)) continue;
    prompt.items++;
    const type = item['type'] ?? 'message';
    if (type === 'message') {
      const text = openaiContentText(item['content']);
      prompt.promptText += `${String(item['role'])}: ${text}\n`;
      if (item['role'] === 'user') prompt.userText = text;
      prompt.afterToolResult = false;
    } else if (type === 'function_call_output') {
      const output = item['output'];
      prompt.promptText += `tool: ${typeof output === 'string' ? output : JSON.stringify(output)}\n`;
      prompt.afterToolResult = true;
    } else {
      prompt.promptText += `${JSON.stringify(item)}\n`;
    }
  }
  return prompt;
}

/** `text.format`: JSON mode or a JSON schema. */
function readFormat(format: unknown): { schema: unknown } | undefined {
  if (!isObject(format)) return undefined;
  if (format['type'] === 'json_object') return { schema: undefined };
  if (format['type'] === 'json_schema')
    return { schema: format['schema'] ?? { type: 'object', properties: {} } };
  return undefined;
}

/** `POST /v1/responses`. */
export function handleResponses(body: JsonObject, context: CallContext): CallResult {
  const { model } = context;
  const prompt = readInput(body);
  if (!prompt)
    return invalid("Missing required parameter: 'input'.", 'input', 'missing_required_parameter');
  const tools = functionTools(body['tools'], (tool) =>
    tool['type'] === 'function' ? tool : undefined,
  );
  if (Array.isArray(body['tools'])) prompt.promptText += JSON.stringify(body['tools']);
  const text = body['text'];
  const format = isObject(text) ? text['format'] : undefined;
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
  const promptTokens = estimateTokens(prompt.promptText) + 3 * prompt.items + 3;
  const cachedTokens = Math.min(
    context.cache.lookup(prompt.promptText, model.cache.minTokens, model.cache.blockTokens),
    promptTokens,
  );
  const [choice] = generate({
    ...callFields(context),
    userText: prompt.userText,
    afterToolResult: prompt.afterToolResult,
    tools,
    toolChoice: responsesToolChoice(body['tool_choice']),
    json: readFormat(format),
    maxOutputTokens,
    reasoningEffort: effort,
    n: 1,
    toolIdPrefix: 'call_',
  }) as [GeneratedChoice];
  const envelope = responseEnvelope(body, context, {
    choice,
    promptTokens,
    cachedTokens,
    effort,
    format,
    maxOutputTokens,
  });
  const status = choice.finish === 'length' ? 'incomplete' : 'completed';
  const output = outputItems(choice, model, context.salt);
  const graded = gradeOf([choice]);
  if (body['stream'] !== true)
    return {
      kind: 'json',
      outputTokens: choice.outputTokens,
      graded,
      body: envelope(status, output, true),
    };
  return { kind: 'sse', frames: responsesStreamFrames(envelope, output, status, choice), graded };
}

/** The output items: reasoning (for reasoning models), then function calls or one message. */
function outputItems(choice: GeneratedChoice, model: SimModelConfig, salt: string): JsonObject[] {
  const output: JsonObject[] = [];
  const incomplete = choice.finish === 'length';
  if (model.reasoningTokens) {
    output.push({ id: `rs_${hexId(48, 'rs', salt)}`, type: 'reasoning', summary: [] });
  }
  if (choice.toolCalls.length > 0) {
    choice.toolCalls.forEach((call, index) => {
      output.push({
        id: `fc_${hexId(48, 'fc', salt, index)}`,
        type: 'function_call',
        status: 'completed',
        arguments: call.arguments,
        call_id: call.id,
        name: call.name,
      });
    });
  } else if (!(incomplete && choice.text === '' && choice.refusal === undefined)) {
    output.push({
      id: `msg_${hexId(48, 'msg', salt)}`,
      type: 'message',
      status: incomplete ? 'incomplete' : 'completed',
      content: [
        choice.refusal !== undefined
          ? { type: 'refusal', refusal: choice.refusal }
          : { type: 'output_text', annotations: [], logprobs: [], text: choice.text },
      ],
      role: 'assistant',
    });
  }
  return output;
}

/** What the response object reports besides the request's own fields. */
interface ResponseFacts {
  choice: GeneratedChoice;
  promptTokens: number;
  cachedTokens: number;
  effort: string | undefined;
  format: unknown;
  maxOutputTokens: number | undefined;
}

/** Builds the `response` object in a given state (the stream sends it three times). */
function responseEnvelope(
  body: JsonObject,
  context: CallContext,
  facts: ResponseFacts,
): (state: ResponseState, items: JsonObject[], withUsage: boolean) => JsonObject {
  const { model } = context;
  const { choice, promptTokens, cachedTokens } = facts;
  const id = `resp_${hexId(48, 'resp', context.salt)}`;
  const usage = {
    input_tokens: promptTokens,
    input_tokens_details: { cached_tokens: cachedTokens, cache_write_tokens: 0 },
    output_tokens: choice.outputTokens,
    output_tokens_details: { reasoning_tokens: choice.reasoningTokens },
    total_tokens: promptTokens + choice.outputTokens,
  };
  return (state, items, withUsage) => ({
    id,
    object: 'response',
    created_at: context.created,
    status: state,
    background: false,
    completed_at: state === 'in_progress' ? null : context.created,
    error: null,
    incomplete_details: state === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: body['instructions'] ?? null,
    max_output_tokens: facts.maxOutputTokens ?? null,
    max_tool_calls: null,
    model: model.responseModel ?? model.name,
    output: items,
    parallel_tool_calls: true,
    previous_response_id: body['previous_response_id'] ?? null,
    reasoning: { effort: facts.effort ?? (model.reasoningTokens ? 'medium' : null), summary: null },
    service_tier: 'default',
    store: body['store'] !== false,
    temperature: typeof body['temperature'] === 'number' ? body['temperature'] : 1,
    text: { format: isObject(facts.format) ? facts.format : { type: 'text' }, verbosity: 'medium' },
    tool_choice: body['tool_choice'] ?? 'auto',
    tools: Array.isArray(body['tools']) ? body['tools'] : [],
    top_p: typeof body['top_p'] === 'number' ? body['top_p'] : 1,
    truncation: 'disabled',
    usage: withUsage ? usage : null,
    user: null,
    metadata: isObject(body['metadata']) ? body['metadata'] : {},
  });
}
