import type { CallContext, CallResult, JsonObject } from './context.js';
import { gradeOf, invalid, isObject } from './context.js';
import type { GeneratedChoice, ToolChoice, ToolSpec } from './engine.js';
import { generate } from './engine.js';
import { estimateTokens, splitArguments, splitPieces } from './tokens.js';
import type { SseFrame } from './http-util.js';
import { sseData } from './http-util.js';
import { alphaId, hexId } from './random.js';

/** Text of an OpenAI message `content` (string or content parts). */
export function openaiContentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    if (isObject(part) && typeof part['text'] === 'string')
      text += (text ? '\n' : '') + part['text'];
  }
  return text;
}

export function openaiToolChoice(value: unknown): ToolChoice {
  if (value === 'none' || value === 'required' || value === 'auto') return value;
  if (isObject(value)) {
    const fn = value['function'];
    if (isObject(fn) && typeof fn['name'] === 'string') return { name: fn['name'] };
    if (typeof value['name'] === 'string') return { name: value['name'] };
  }
  return 'auto';
}

export function openaiUsage(
  promptTokens: number,
  cachedTokens: number,
  choices: readonly GeneratedChoice[],
): JsonObject {
  let completion = 0;
  let reasoning = 0;
  for (const choice of choices) {
    completion += choice.outputTokens;
    reasoning += choice.reasoningTokens;
  }
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completion,
    total_tokens: promptTokens + completion,
    prompt_tokens_details: { cached_tokens: cachedTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: reasoning,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function finishReason(choice: GeneratedChoice): string {
  return choice.finish;
}

const fingerprints = new Map<string, string>();
function fingerprintOf(name: string): string {
  let fingerprint = fingerprints.get(name);
  if (fingerprint === undefined) {
    fingerprint = `fp_${hexId(10, 'fingerprint', name)}`;
    fingerprints.set(name, fingerprint);
  }
  return fingerprint;
}

/** `POST /v1/chat/completions`. */
export function handleChatCompletions(body: JsonObject, context: CallContext): CallResult {
  const { model } = context;
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) {
    return invalid(
      "Missing required parameter: 'messages'.",
      'messages',
      'missing_required_parameter',
    );
  }
  if (model.reasoningTokens && body['max_tokens'] !== undefined && body['max_tokens'] !== null) {
    return invalid(
      "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
      'max_tokens',
      'unsupported_parameter',
    );
  }
  if (
    body['stream'] !== true &&
    body['stream_options'] !== undefined &&
    body['stream_options'] !== null
  ) {
    return invalid(
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      'stream_options',
      'invalid_value',
    );
  }
  const temperature = body['temperature'];
  if (
    temperature !== undefined &&
    temperature !== null &&
    (typeof temperature !== 'number' || temperature < 0 || temperature > 2)
  ) {
    return invalid(
      `Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got ${String(temperature)} instead.`,
      'temperature',
      'decimal_above_max_value',
    );
  }
  const n = body['n'] === undefined || body['n'] === null ? 1 : Number(body['n']);
  if (!Number.isInteger(n) || n < 1 || n > 128)
    return invalid(`Invalid 'n': must be between 1 and 128.`, 'n');
  const maxRaw = body['max_completion_tokens'] ?? body['max_tokens'];
  const maxOutputTokens = typeof maxRaw === 'number' ? maxRaw : undefined;
  if (
    maxOutputTokens !== undefined &&
    (!Number.isInteger(maxOutputTokens) || maxOutputTokens < 1)
  ) {
    return invalid('max_tokens must be at least 1.', 'max_tokens', 'integer_below_min_value');
  }

  let promptText = '';
  let userText = '';
  let lastRole = '';
  for (const message of messages) {
    if (!isObject(message))
      return invalid("Invalid type for 'messages': expected an object.", 'messages');
    const role = String(message['role']);
    const text = openaiContentText(message['content']);
    promptText += `${role}: ${text}\n`;
    if (Array.isArray(message['tool_calls'])) promptText += JSON.stringify(message['tool_calls']);
    if (role === 'user') userText = text;
    lastRole = role;
  }
  const tools: ToolSpec[] = [];
  if (Array.isArray(body['tools'])) {
    for (const tool of body['tools']) {
      if (
        isObject(tool) &&
        isObject(tool['function']) &&
        typeof tool['function']['name'] === 'string'
      ) {
        tools.push({ name: tool['function']['name'], parameters: tool['function']['parameters'] });
      }
    }
    promptText += JSON.stringify(body['tools']);
  }
  const format = body['response_format'];
  let json: { schema: unknown } | undefined;
  if (isObject(format)) {
    if (format['type'] === 'json_object') json = { schema: undefined };
    else if (format['type'] === 'json_schema') {
      const spec = format['json_schema'];
      json = {
        schema: isObject(spec) ? (spec['schema'] ?? { type: 'object', properties: {} }) : undefined,
      };
    }
  }
  const promptTokens = estimateTokens(promptText) + 3 * messages.length + 3;
  const cachedTokens = Math.min(
    context.cache.lookup(promptText, model.cache.minTokens, model.cache.blockTokens),
    promptTokens,
  );
  const choices = generate({
    model,
    seed: context.seed,
    requestSalt: context.salt,
    userText,
    afterToolResult: lastRole === 'tool',
    tools,
    toolChoice: openaiToolChoice(body['tool_choice']),
    json,
    maxOutputTokens,
    reasoningEffort:
      typeof body['reasoning_effort'] === 'string' ? body['reasoning_effort'] : undefined,
    n,
    directives: context.directives,
    judge: context.judge,
    toolIdPrefix: 'call_',
  });
  const id = `chatcmpl-${alphaId(29, 'chatcmpl', context.salt)}`;
  const responseModel = model.responseModel ?? model.name;
  const fingerprint = fingerprintOf(model.name);
  const usage = openaiUsage(promptTokens, cachedTokens, choices);
  const cost = context.directives.cost;
  if (cost !== undefined) {
    // OpenRouter's `usage.cost`: what the provider charged, in USD (credits).
    const { price } = model;
    usage['cost'] =
      cost === 'list'
        ? ((promptTokens - cachedTokens) * price.inputPerMTok +
            cachedTokens * (price.cachedInputPerMTok ?? price.inputPerMTok) +
            (usage['completion_tokens'] as number) * price.outputPerMTok) /
          1e6
        : cost;
  }

  if (body['stream'] === true) {
    const options = body['stream_options'];
    const includeUsage = isObject(options) && options['include_usage'] === true;
    return {
      kind: 'sse',
      graded: gradeOf(choices),
      frames: chatStreamFrames(
        id,
        context.created,
        responseModel,
        fingerprint,
        choices,
        usage,
        includeUsage,
      ),
    };
  }
  let outputTokens = 0;
  const renderedChoices = choices.map((choice, index) => {
    outputTokens += choice.outputTokens;
    const message: JsonObject = {
      role: 'assistant',
      content: choice.refusal !== undefined || choice.toolCalls.length > 0 ? null : choice.text,
      refusal: choice.refusal ?? null,
      annotations: [],
    };
    if (choice.toolCalls.length > 0) {
      message['tool_calls'] = choice.toolCalls.map((call) => ({
        id: call.id,
        type: 'function',
        function: { name: call.name, arguments: call.arguments },
      }));
    }
    return { index, message, logprobs: null, finish_reason: finishReason(choice) };
  });
  return {
    kind: 'json',
    graded: gradeOf(choices),
    outputTokens,
    body: {
      id,
      object: 'chat.completion',
      created: context.created,
      model: responseModel,
      choices: renderedChoices,
      usage,
      service_tier: 'default',
      system_fingerprint: fingerprint,
    },
  };
}

function chatStreamFrames(
  id: string,
  created: number,
  model: string,
  fingerprint: string,
  choices: readonly GeneratedChoice[],
  usage: JsonObject,
  includeUsage: boolean,
): SseFrame[] {
  const frames: SseFrame[] = [];
  // Serialise the envelope once; only the choice changes from chunk to chunk.
  const head = `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"service_tier":"default","system_fingerprint":${JSON.stringify(fingerprint)},"choices":[`;
  const tail = includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
  const chunk = (choice: JsonObject, tokens: number): void => {
    frames.push({ text: head + JSON.stringify(choice) + tail, tokens });
  };
  const contentChunk = (index: number, key: 'content' | 'refusal', piece: string): void => {
    frames.push({
      text: `${head}{"index":${index},"delta":{"${key}":${JSON.stringify(piece)}},"logprobs":null,"finish_reason":null}${tail}`,
      tokens: estimateTokens(piece),
    });
  };
  choices.forEach((choice, index) => {
    if (choice.toolCalls.length > 0) {
      choice.toolCalls.forEach((call, callIndex) => {
        const first: JsonObject = {
          tool_calls: [
            {
              index: callIndex,
              id: call.id,
              type: 'function',
              function: { name: call.name, arguments: '' },
            },
          ],
        };
        if (callIndex === 0) {
          first['role'] = 'assistant';
          first['content'] = null;
          first['refusal'] = null;
        }
        chunk(
          { index, delta: first, logprobs: null, finish_reason: null },
          callIndex === 0 ? choice.reasoningTokens : 0,
        );
        for (const piece of splitArguments(call.arguments)) {
          chunk(
            {
              index,
              delta: { tool_calls: [{ index: callIndex, function: { arguments: piece } }] },
              logprobs: null,
              finish_reason: null,
            },
            estimateTokens(piece),
          );
        }
      });
    } else {
      chunk(
        {
          index,
          delta: { role: 'assistant', content: '', refusal: null },
          logprobs: null,
          finish_reason: null,
        },
        choice.reasoningTokens,
      );
      if (choice.refusal !== undefined) {
        for (const piece of splitPieces(choice.refusal)) contentChunk(index, 'refusal', piece);
      } else {
        for (const piece of splitPieces(choice.text)) contentChunk(index, 'content', piece);
      }
    }
    chunk({ index, delta: {}, logprobs: null, finish_reason: finishReason(choice) }, 0);
  });
  if (includeUsage) {
    frames.push({
      text: sseData({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        service_tier: 'default',
        system_fingerprint: fingerprint,
        choices: [],
        usage,
      }),
      tokens: 0,
    });
  }
  frames.push({ text: 'data: [DONE]\n\n', tokens: 0 });
  return frames;
}
