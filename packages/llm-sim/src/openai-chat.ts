import type { CallContext, CallResult, JsonObject } from './context.js';
import { callFields, gradeOf, invalid, isObject } from './context.js';
import type { GeneratedChoice, ToolChoice, ToolSpec } from './engine.js';
import { generate } from './engine.js';
import { estimateTokens, splitArguments, splitPieces } from './tokens.js';
import type { SseFrame } from './http-util.js';
import { sseData } from './http-util.js';
import type { SimModelConfig } from './models.js';
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

const fingerprints = new Map<string, string>();
function fingerprintOf(name: string): string {
  let fingerprint = fingerprints.get(name);
  if (fingerprint === undefined) {
    fingerprint = `fp_${hexId(10, 'fingerprint', name)}`;
    fingerprints.set(name, fingerprint);
  }
  return fingerprint;
}

/** The chat request's limits, once checked. */
interface ChatLimits {
  n: number;
  maxOutputTokens: number | undefined;
}

/** Checks the parameters OpenAI rejects with a 400, in the order it checks them. */
function checkChatRequest(body: JsonObject, model: SimModelConfig): CallResult | ChatLimits {
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
  const streamOptions = body['stream_options'];
  if (body['stream'] !== true && streamOptions !== undefined && streamOptions !== null) {
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
  return checkChatLimits(body);
}

function checkChatLimits(body: JsonObject): CallResult | ChatLimits {
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
  return { n, maxOutputTokens };
}

/** The conversation as the simulator reads it. */
interface ChatPrompt {
  promptText: string;
  userText: string;
  lastRole: string;
}

function readMessages(messages: unknown[]): ChatPrompt | CallResult {
  const prompt: ChatPrompt = { promptText: '', userText: '', lastRole: '' };
  for (const message of messages) {
    if (!isObject(message))
      return invalid("Invalid type for 'messages': expected an object.", 'messages');
    const role = String(message['role']);
    const text = openaiContentText(message['content']);
    prompt.promptText += `${role}: ${text}\n`;
    if (Array.isArray(message['tool_calls']))
      prompt.promptText += JSON.stringify(message['tool_calls']);
    if (role === 'user') prompt.userText = text;
    prompt.lastRole = role;
  }
  return prompt;
}

/**
 * The function tools of an OpenAI request; `definition` finds each tool's `name` and `parameters`
 * (chat: `tool.function`; responses: the tool itself).
 */
export function functionTools(
  tools: unknown,
  definition: (tool: JsonObject) => unknown,
): ToolSpec[] {
  const specs: ToolSpec[] = [];
  if (!Array.isArray(tools)) return specs;
  for (const tool of tools) {
    const fn = isObject(tool) ? definition(tool) : undefined;
    if (isObject(fn) && typeof fn['name'] === 'string')
      specs.push({ name: fn['name'], parameters: fn['parameters'] });
  }
  return specs;
}

/** `response_format`: JSON mode or a JSON schema. */
function readResponseFormat(format: unknown): { schema: unknown } | undefined {
  if (!isObject(format)) return undefined;
  if (format['type'] === 'json_object') return { schema: undefined };
  if (format['type'] !== 'json_schema') return undefined;
  const spec = format['json_schema'];
  return {
    schema: isObject(spec) ? (spec['schema'] ?? { type: 'object', properties: {} }) : undefined,
  };
}

/** OpenRouter's `usage.cost` (the `cost` directive): what the provider charged, in USD (credits). */
function chargedCost(
  cost: number | 'list',
  price: SimModelConfig['price'],
  promptTokens: number,
  cachedTokens: number,
  completionTokens: number,
): number {
  if (cost !== 'list') return cost;
  const cachedPrice = price.cachedInputPerMTok ?? price.inputPerMTok;
  return (
    ((promptTokens - cachedTokens) * price.inputPerMTok +
      cachedTokens * cachedPrice +
      completionTokens * price.outputPerMTok) /
    1e6
  );
}

/** `POST /v1/chat/completions`. */
export function handleChatCompletions(body: JsonObject, context: CallContext): CallResult {
  const { model } = context;
  const limits = checkChatRequest(body, model);
  if ('kind' in limits) return limits;
  const messages = body['messages'] as unknown[];
  const prompt = readMessages(messages);
  if ('kind' in prompt) return prompt;
  const tools = functionTools(body['tools'], (tool) => tool['function']);
  if (Array.isArray(body['tools'])) prompt.promptText += JSON.stringify(body['tools']);
  const promptTokens = estimateTokens(prompt.promptText) + 3 * messages.length + 3;
  const cachedTokens = Math.min(
    context.cache.lookup(prompt.promptText, model.cache.minTokens, model.cache.blockTokens),
    promptTokens,
  );
  const choices = generate({
    ...callFields(context),
    userText: prompt.userText,
    afterToolResult: prompt.lastRole === 'tool',
    tools,
    toolChoice: openaiToolChoice(body['tool_choice']),
    json: readResponseFormat(body['response_format']),
    maxOutputTokens: limits.maxOutputTokens,
    reasoningEffort:
      typeof body['reasoning_effort'] === 'string' ? body['reasoning_effort'] : undefined,
    n: limits.n,
    toolIdPrefix: 'call_',
  });
  const usage = openaiUsage(promptTokens, cachedTokens, choices);
  const cost = context.directives.cost;
  if (cost !== undefined) {
    const completion = usage['completion_tokens'] as number;
    usage['cost'] = chargedCost(cost, model.price, promptTokens, cachedTokens, completion);
  }
  const envelope: ChatEnvelope = {
    id: `chatcmpl-${alphaId(29, 'chatcmpl', context.salt)}`,
    created: context.created,
    model: model.responseModel ?? model.name,
    fingerprint: fingerprintOf(model.name),
  };
  if (body['stream'] === true) {
    const options = body['stream_options'];
    const includeUsage = isObject(options) && options['include_usage'] === true;
    const frames = chatStreamFrames(envelope, choices, usage, {
      includeUsage,
      interleaveTools: context.directives.interleaveTools === true,
    });
    return { kind: 'sse', graded: gradeOf(choices), frames };
  }
  return chatCompletion(envelope, choices, usage);
}

/** What every chunk and the completion carry besides the choices. */
interface ChatEnvelope {
  id: string;
  created: number;
  model: string;
  fingerprint: string;
}

function chatCompletion(
  envelope: ChatEnvelope,
  choices: readonly GeneratedChoice[],
  usage: JsonObject,
): CallResult {
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
    return { index, message, logprobs: null, finish_reason: choice.finish };
  });
  return {
    kind: 'json',
    graded: gradeOf(choices),
    outputTokens,
    body: {
      id: envelope.id,
      object: 'chat.completion',
      created: envelope.created,
      model: envelope.model,
      choices: renderedChoices,
      usage,
      service_tier: 'default',
      system_fingerprint: envelope.fingerprint,
    },
  };
}

/** The chunks of a streamed chat completion, one choice after the other. */
class ChatStream {
  readonly frames: SseFrame[] = [];
  private readonly head: string;
  private readonly tail: string;

  constructor(envelope: ChatEnvelope, includeUsage: boolean) {
    // Serialise the envelope once; only the choice changes from chunk to chunk.
    this.head = `data: {"id":${JSON.stringify(envelope.id)},"object":"chat.completion.chunk","created":${envelope.created},"model":${JSON.stringify(envelope.model)},"service_tier":"default","system_fingerprint":${JSON.stringify(envelope.fingerprint)},"choices":[`;
    this.tail = includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
  }

  chunk(choice: JsonObject, tokens: number): void {
    this.frames.push({ text: this.head + JSON.stringify(choice) + this.tail, tokens });
  }

  content(index: number, key: 'content' | 'refusal', piece: string): void {
    this.frames.push({
      text: `${this.head}{"index":${index},"delta":{"${key}":${JSON.stringify(piece)}},"logprobs":null,"finish_reason":null}${this.tail}`,
      tokens: estimateTokens(piece),
    });
  }

  /**
   * Each call: a first chunk with its id and name (the reasoning time goes before it), then
   * argument pieces; one call after the other, or (`interleave`) round-robin over the calls.
   */
  toolCalls(index: number, choice: GeneratedChoice, interleave: boolean): void {
    const pieces = choice.toolCalls.map((call, callIndex) => {
      const function_ = { name: call.name, arguments: '' };
      const first: JsonObject = {
        tool_calls: [{ index: callIndex, id: call.id, type: 'function', function: function_ }],
      };
      if (callIndex === 0)
        Object.assign(first, { role: 'assistant', content: null, refusal: null });
      const lead = callIndex === 0 ? choice.reasoningTokens : 0;
      const chunks = [
        () => this.chunk({ index, delta: first, logprobs: null, finish_reason: null }, lead),
      ];
      for (const piece of splitArguments(call.arguments)) {
        const delta = { tool_calls: [{ index: callIndex, function: { arguments: piece } }] };
        chunks.push(() =>
          this.chunk({ index, delta, logprobs: null, finish_reason: null }, estimateTokens(piece)),
        );
      }
      return chunks;
    });
    if (!interleave) {
      for (const chunk of pieces.flat()) chunk();
      return;
    }
    const longest = Math.max(...pieces.map((chunks) => chunks.length));
    for (let step = 0; step < longest; step++) for (const chunks of pieces) chunks[step]?.();
  }

  /** The role chunk (after the reasoning time), then the text or refusal in pieces. */
  text(index: number, choice: GeneratedChoice): void {
    const delta = { role: 'assistant', content: '', refusal: null };
    this.chunk({ index, delta, logprobs: null, finish_reason: null }, choice.reasoningTokens);
    if (choice.refusal !== undefined) {
      for (const piece of splitPieces(choice.refusal)) this.content(index, 'refusal', piece);
    } else {
      for (const piece of splitPieces(choice.text)) this.content(index, 'content', piece);
    }
  }
}

function chatStreamFrames(
  envelope: ChatEnvelope,
  choices: readonly GeneratedChoice[],
  usage: JsonObject,
  options: { includeUsage: boolean; interleaveTools: boolean },
): SseFrame[] {
  const { includeUsage } = options;
  const stream = new ChatStream(envelope, includeUsage);
  choices.forEach((choice, index) => {
    if (choice.toolCalls.length > 0) stream.toolCalls(index, choice, options.interleaveTools);
    else stream.text(index, choice);
    stream.chunk({ index, delta: {}, logprobs: null, finish_reason: choice.finish }, 0);
  });
  if (includeUsage) {
    const { id, created, model, fingerprint } = envelope;
    stream.frames.push({
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
  stream.frames.push({ text: 'data: [DONE]\n\n', tokens: 0 });
  return stream.frames;
}
