/**
 * Test directives: `[sim:...]` tags in the prompt text, or the `x-sim-directives` request header
 * (same syntax without the brackets). Several may be combined, separated by spaces or commas,
 * e.g. `[sim:status=429 retry-after=2 times=1]`.
 */
export interface Directives {
  /** Finish with `length` (output cut in half). */
  length?: boolean;
  /** Empty output. */
  empty?: boolean;
  /** Refuse (OpenAI `message.refusal`, Responses refusal part, Anthropic `stop_reason: refusal`). */
  refusal?: boolean;
  /** Invalid JSON text when JSON output was requested. */
  invalidJson?: boolean;
  /** Call a tool with arguments that do not parse (OpenAI APIs). */
  badToolArgs?: boolean;
  /** Call a tool even when `tool_choice` is `auto` after a tool result. */
  tool?: boolean;
  /** Call N tools at once (parallel tool calls: the chosen tool, then the next ones, cycling). */
  parallelTools?: number;
  /** OpenAI chat streams: the parallel calls' argument pieces alternate between the calls. */
  interleaveTools?: boolean;
  /** Answer with this HTTP error status (429, 500, 503, 529, 400, ...). */
  status?: number;
  /** `retry-after` seconds on a 429/503/529 (default: the model's). */
  retryAfter?: number;
  /** Hold the response (never answer before the hold ends): the client times out. */
  timeout?: boolean;
  /** Hold duration in ms for `timeout` (default: the sim's `timeoutHoldMs`). */
  timeoutMs?: number;
  /** Apply `status` / `timeout` only to the first N requests with this prompt, then answer. */
  times?: number;
  /** Delay before the first byte of output (ms), independent of `latencyScale`. */
  slowFirstMs?: number;
  /** Streams: send an error event in the provider's shape half-way through the stream. */
  streamError?: boolean;
  /** Streams: drop the connection part-way (after `abortAfter` SSE frames, default half of them). */
  abort?: boolean;
  abortAfter?: number;
  /**
   * Streams: end the body cleanly part-way (after `abortAfter` SSE frames, default half of them),
   * without the provider's terminator (no finish chunk or `[DONE]`, no `message_stop`).
   */
  endEarly?: boolean;
  /** Generic reply of exactly this many output tokens. */
  tokens?: number;
  /** Force the task answer to be right or wrong. */
  correct?: boolean;
  wrong?: boolean;
  /**
   * OpenAI chat: report `usage.cost` (USD) like OpenRouter does — `cost=X` reports X, a bare
   * `cost` the model's list price for the call's tokens.
   */
  cost?: number | 'list';
}

const TAG = /\[sim:([^\]]*)\]/g;

/** Parses `[sim:...]` tags out of a text; returns undefined when there are none (fast path). */
export function parseDirectivesFromText(text: string, into?: Directives): Directives | undefined {
  if (!text.includes('[sim:')) return into;
  let result = into;
  for (const match of text.matchAll(TAG)) {
    result = parseDirectiveList(match[1] ?? '', result ?? {});
  }
  return result;
}

/** Directives that are a bare flag, by their key(s). */
const FLAGS: Record<string, keyof Directives> = {
  length: 'length',
  empty: 'empty',
  refusal: 'refusal',
  refuse: 'refusal',
  'invalid-json': 'invalidJson',
  'bad-tool-args': 'badToolArgs',
  tool: 'tool',
  'interleave-tools': 'interleaveTools',
  'stream-error': 'streamError',
  correct: 'correct',
  wrong: 'wrong',
};

/** Parses `key[=value]` items separated by spaces or commas. Unknown keys are ignored. */
export function parseDirectiveList(list: string, into: Directives = {}): Directives {
  for (const item of list.split(/[\s,]+/)) {
    if (item === '') continue;
    const equals = item.indexOf('=');
    const key = (equals < 0 ? item : item.slice(0, equals)).toLowerCase();
    const value = equals < 0 ? '' : item.slice(equals + 1);
    const number = Number(value);
    const hasNumber = value !== '' && Number.isFinite(number);
    const flag = FLAGS[key];
    if (flag !== undefined) {
      (into as Record<string, unknown>)[flag] = true;
      continue;
    }
    switch (key) {
      case 'parallel-tools':
        into.parallelTools = hasNumber ? Math.max(1, Math.floor(number)) : 2;
        break;
      case 'status':
      case 'error':
        if (hasNumber) into.status = number;
        else if (value === 'timeout') into.timeout = true;
        break;
      case '429':
      case '500':
      case '503':
      case '529':
        into.status = Number(key);
        break;
      case 'retry-after':
        if (hasNumber) into.retryAfter = number;
        break;
      case 'timeout':
        into.timeout = true;
        if (hasNumber) into.timeoutMs = number;
        break;
      case 'times':
        if (hasNumber) into.times = number;
        break;
      case 'slow-first':
        into.slowFirstMs = hasNumber ? number : 1000;
        break;
      case 'abort':
      case 'abort-after':
        into.abort = true;
        if (hasNumber) into.abortAfter = Math.max(0, Math.floor(number));
        break;
      case 'end-early':
      case 'end-after':
        into.endEarly = true;
        if (hasNumber) into.abortAfter = Math.max(0, Math.floor(number));
        break;
      case 'tokens':
        if (hasNumber) into.tokens = Math.max(0, Math.floor(number));
        break;
      case 'cost':
        into.cost = hasNumber && number >= 0 ? number : 'list';
        break;
    }
  }
  return into;
}
