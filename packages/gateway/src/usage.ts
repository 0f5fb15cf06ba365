/**
 * What the gateway reads back from an upstream's answer, per wire format: response model and id,
 * finish reasons, token usage and a provider-reported cost. Streams are read event by event with
 * cheap string checks first, so most chunks are never parsed.
 */
import type { TokenUsage } from '@modelmaxx/pricing';

export type Wire = 'chat' | 'responses' | 'embeddings' | 'messages';

export interface Summary {
  model?: string;
  id?: string;
  finishReasons: string[];
  usage?: TokenUsage;
  /** USD the provider says it charged (OpenRouter's `usage.cost`). */
  providerCostUsd?: number;
  /** An error event inside a stream (the status was 200). */
  streamError?: string;
  /** Characters of text, reasoning and tool-call arguments a stream has relayed so far. */
  outputChars?: number;
  /** `usage` is the gateway's estimate (the stream ended without the provider's output count). */
  estimated?: boolean;
  /**
   * The output count so far is a stream's first, not its last (Anthropic's `message_start` says
   * 1; `message_delta` gives the final count).
   */
  outputPartial?: boolean;
}

/**
 * Why a stream whose body ended cleanly without saying how the answer ended (no finish or stop
 * reason, nor its terminator) is an error on the span.
 */
export const ENDED_EARLY =
  "the upstream's stream ended before the answer did (no finish reason or end event)";

type Dict = Record<string, unknown>;

/** The value as a JSON object, or undefined (null, an array, a scalar). */
export const asDict = (value: unknown): Dict | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Dict)
    : undefined;
const asNumber = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;
const asString = (value: unknown): string | undefined =>
  typeof value === 'string' ? value : undefined;

function openaiChatUsage(summary: Summary, usage: Dict): void {
  const result: TokenUsage = {};
  const input = asNumber(usage['prompt_tokens']);
  const output = asNumber(usage['completion_tokens']);
  if (input !== undefined) result.inputTokens = input;
  if (output !== undefined) result.outputTokens = output;
  const details = asDict(usage['prompt_tokens_details']);
  const cached = asNumber(details?.['cached_tokens']);
  if (cached !== undefined && cached > 0) result.cacheReadTokens = cached;
  // OpenRouter reports prompt-cache writes too.
  const written = asNumber(details?.['cache_write_tokens']);
  if (written !== undefined && written > 0) result.cacheWriteTokens = written;
  const reasoning = asNumber(asDict(usage['completion_tokens_details'])?.['reasoning_tokens']);
  if (reasoning !== undefined && reasoning > 0) result.reasoningTokens = reasoning;
  summary.usage = result;
  const cost = asNumber(usage['cost']);
  if (cost !== undefined) summary.providerCostUsd = cost;
}

function responsesUsage(summary: Summary, usage: Dict): void {
  const result: TokenUsage = {};
  const input = asNumber(usage['input_tokens']);
  const output = asNumber(usage['output_tokens']);
  if (input !== undefined) result.inputTokens = input;
  if (output !== undefined) result.outputTokens = output;
  const cached = asNumber(asDict(usage['input_tokens_details'])?.['cached_tokens']);
  if (cached !== undefined && cached > 0) result.cacheReadTokens = cached;
  const reasoning = asNumber(asDict(usage['output_tokens_details'])?.['reasoning_tokens']);
  if (reasoning !== undefined && reasoning > 0) result.reasoningTokens = reasoning;
  summary.usage = result;
  const cost = asNumber(usage['cost']);
  if (cost !== undefined) summary.providerCostUsd = cost;
}

/** Anthropic: `input_tokens` excludes cached tokens; the span's input count includes them. */
function anthropicUsage(summary: Summary, usage: Dict): void {
  const result: TokenUsage = { ...summary.usage };
  const uncached = asNumber(usage['input_tokens']);
  const cacheRead = asNumber(usage['cache_read_input_tokens']);
  const cacheWrite = asNumber(usage['cache_creation_input_tokens']);
  if (uncached !== undefined) result.inputTokens = uncached + (cacheRead ?? 0) + (cacheWrite ?? 0);
  if (cacheRead !== undefined && cacheRead > 0) result.cacheReadTokens = cacheRead;
  if (cacheWrite !== undefined && cacheWrite > 0) result.cacheWriteTokens = cacheWrite;
  const output = asNumber(usage['output_tokens']);
  if (output !== undefined) result.outputTokens = output;
  summary.usage = result;
}

function responseObject(summary: Summary, response: Dict): void {
  const model = asString(response['model']);
  if (model !== undefined) summary.model = model;
  const id = asString(response['id']);
  if (id !== undefined) summary.id = id;
  const status = asString(response['status']);
  if (status !== undefined && status !== 'in_progress') summary.finishReasons = [status];
  const usage = asDict(response['usage']);
  if (usage !== undefined) responsesUsage(summary, usage);
}

/** A whole (non-streamed) JSON answer. */
export function summarizeBody(wire: Wire, body: unknown): Summary {
  const summary: Summary = { finishReasons: [] };
  const dict = asDict(body);
  if (dict === undefined) return summary;
  if (wire === 'responses') {
    responseObject(summary, dict);
    return summary;
  }
  const model = asString(dict['model']);
  if (model !== undefined) summary.model = model;
  const id = asString(dict['id']);
  if (id !== undefined) summary.id = id;
  const usage = asDict(dict['usage']);
  if (wire === 'messages') {
    const stop = asString(dict['stop_reason']);
    if (stop !== undefined) summary.finishReasons = [stop];
    if (usage !== undefined) anthropicUsage(summary, usage);
    return summary;
  }
  if (wire === 'chat' && Array.isArray(dict['choices'])) {
    for (const choice of dict['choices']) {
      const reason = asString(asDict(choice)?.['finish_reason']);
      if (reason !== undefined) summary.finishReasons.push(reason);
    }
  }
  if (usage !== undefined) {
    if (wire === 'embeddings') {
      const input = asNumber(usage['prompt_tokens']);
      if (input !== undefined) summary.usage = { inputTokens: input };
      const cost = asNumber(usage['cost']);
      if (cost !== undefined) summary.providerCostUsd = cost;
    } else {
      openaiChatUsage(summary, usage);
    }
  }
  return summary;
}

const FINISH_REASON = /"finish_reason":"([a-z_]+)"/g;

/** The JSON string fields of a stream's events that carry generated output, per wire. */
const OUTPUT_FIELDS: Record<Wire, readonly string[]> = {
  // Reasoning text (DeepSeek's `reasoning_content`, OpenRouter's `reasoning`) is billed as output.
  chat: ['"content":"', '"arguments":"', '"refusal":"', '"reasoning_content":"', '"reasoning":"'],
  messages: ['"text":"', '"partial_json":"', '"thinking":"'],
  // Only `*.delta` events are read: `response.completed` repeats the whole text.
  responses: ['"delta":"'],
  embeddings: [],
};

/** Characters of the JSON string starting at `start` (an escape counts as one). */
function stringLength(text: string, start: number): number {
  let count = 0;
  for (let index = start; index < text.length; count += 1) {
    const code = text.charCodeAt(index);
    if (code === 34) break; // The closing quote.
    index += code !== 92 ? 1 : text.charCodeAt(index + 1) === 117 ? 6 : 2; // \uXXXX, \n, …
  }
  return count;
}

/** Adds the generated characters an event carries to `summary.outputChars` (no parse). */
function countOutput(wire: Wire, event: string, summary: Summary): void {
  if (wire === 'responses' && !event.includes('.delta"')) return;
  let chars = 0;
  for (const field of OUTPUT_FIELDS[wire]) {
    for (let at = event.indexOf(field); at >= 0; at = event.indexOf(field, at + field.length)) {
      chars += stringLength(event, at + field.length);
    }
  }
  if (chars > 0) summary.outputChars = (summary.outputChars ?? 0) + chars;
}

/** The gateway's estimate of the tokens in a text of `length` bytes or characters: 4 to a token. */
export function tokensOfLength(length: number): number {
  return Math.ceil(length / 4);
}

/**
 * A stream that ended without the provider's output count (the app went away, the upstream cut
 * it or went silent before its usage event): usage estimated instead of none, so the span and the
 * budgets do not count it at $0. Input: the provider's count if one came, else admission's
 * estimate (body bytes ÷ 4); output: the characters of text, reasoning and tool-call arguments
 * relayed ÷ 4, or the provider's first count if larger (an Anthropic stream cut before its
 * `message_delta`: `message_start` said 1). Undefined when the provider's final output count came.
 */
export function estimatedSummary(summary: Summary, inputEstimate: number): Summary | undefined {
  const reported = summary.usage?.outputTokens;
  if (reported !== undefined && summary.outputPartial !== true) return undefined;
  const usage: TokenUsage = {
    ...summary.usage,
    inputTokens: summary.usage?.inputTokens ?? inputEstimate,
    outputTokens: Math.max(reported ?? 0, tokensOfLength(summary.outputChars ?? 0)),
  };
  return { ...summary, usage, estimated: true };
}

export function dataOf(event: string): string | undefined {
  // One `data:` line per event from every provider we serve; join several if they come.
  const start = event.indexOf('data:');
  if (start < 0) return undefined;
  const lines = event.slice(start).split('\n');
  let data = '';
  for (const line of lines) {
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === '' ? value : `${data}\n${value}`;
  }
  return data;
}

function parse(data: string): Dict | undefined {
  try {
    return asDict(JSON.parse(data));
  } catch {
    return undefined;
  }
}

/**
 * Reads one complete SSE event (without its trailing blank line) into `summary`. Returns true
 * when the event is the usage-only chunk a chat stream sends after `include_usage` (to hide
 * from a client that did not ask for it).
 */
export function scanEvent(wire: Wire, event: string, summary: Summary, first: boolean): boolean {
  countOutput(wire, event, summary);
  if (wire === 'chat') {
    if (first || summary.model === undefined) {
      const data = dataOf(event);
      const dict = data === undefined ? undefined : parse(data);
      if (dict !== undefined) {
        const model = asString(dict['model']);
        if (model !== undefined) summary.model = model;
        const id = asString(dict['id']);
        if (id !== undefined) summary.id = id;
      }
    }
    if (event.includes('"finish_reason":"')) {
      for (const match of event.matchAll(FINISH_REASON)) summary.finishReasons.push(match[1]!);
    }
    if (event.includes('"usage":{')) {
      const dict = parse(dataOf(event) ?? '');
      const usage = asDict(dict?.['usage']);
      if (usage !== undefined) openaiChatUsage(summary, usage);
      const choices = dict?.['choices'];
      return Array.isArray(choices) && choices.length === 0;
    }
    if (event.includes('"error"')) {
      const dict = parse(dataOf(event) ?? '');
      const error = asDict(dict?.['error']);
      if (error !== undefined) summary.streamError = asString(error['message']) ?? 'stream error';
    }
    return false;
  }
  if (wire === 'messages') {
    if (event.includes('message_start')) {
      const message = asDict(parse(dataOf(event) ?? '')?.['message']);
      if (message !== undefined) {
        const model = asString(message['model']);
        if (model !== undefined) summary.model = model;
        const id = asString(message['id']);
        if (id !== undefined) summary.id = id;
        const usage = asDict(message['usage']);
        if (usage !== undefined) anthropicUsage(summary, usage);
        if (summary.usage?.outputTokens !== undefined) summary.outputPartial = true;
      }
    } else if (event.includes('message_delta')) {
      const dict = parse(dataOf(event) ?? '');
      const stop = asString(asDict(dict?.['delta'])?.['stop_reason']);
      if (stop !== undefined) summary.finishReasons = [stop];
      const usage = asDict(dict?.['usage']);
      if (usage !== undefined) {
        anthropicUsage(summary, usage);
        if (asNumber(usage['output_tokens']) !== undefined) delete summary.outputPartial;
      }
    } else if (event.startsWith('event: error') || event.includes('\nevent: error')) {
      const error = asDict(parse(dataOf(event) ?? '')?.['error']);
      summary.streamError = asString(error?.['message']) ?? 'stream error';
    }
    return false;
  }
  if (wire === 'responses') {
    if (
      event.includes('response.completed') ||
      event.includes('response.incomplete') ||
      event.includes('response.failed') ||
      (first && event.includes('response.created'))
    ) {
      const response = asDict(parse(dataOf(event) ?? '')?.['response']);
      if (response !== undefined) responseObject(summary, response);
    } else if (event.includes('"type":"error"')) {
      const dict = parse(dataOf(event) ?? '');
      summary.streamError = asString(dict?.['message']) ?? 'stream error';
    }
  }
  return false;
}
