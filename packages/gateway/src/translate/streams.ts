/**
 * Streams across wire formats, event by event (nothing held back beyond the event at hand, but
 * for parallel tool calls that come interleaved, see `ChatToAnthropic`):
 * Anthropic's SSE events (`message_start`, `content_block_*`, `message_delta`, `message_stop`,
 * `error`) as `chat.completion.chunk`s ending in `[DONE]`, and chat chunks as Anthropic events.
 */
import { ENDED_EARLY, dataOf } from '../usage.js';
import type { Wire } from '../usage.js';
import { asDict } from '../usage.js';
import {
  chatUsageOf,
  finishOfStop,
  messagesUsageOf,
  num,
  stopOfFinish,
  streamErrorEvent,
} from './responses.js';

type Dict = Record<string, unknown>;

/** Turns the upstream's SSE events into the app's. */
export interface StreamConverter {
  /** One complete upstream event (without its blank line) → the app's events (maybe none). */
  event(event: string): string;
  /** The upstream's stream ended: what still closes the app's stream. */
  end(): string;
  /** The upstream's stream ended without its terminator (the app got an error event). */
  readonly cutShort: boolean;
  /** The upstream stalled and is cut: the error event that ends the app's stream. */
  fail(type: string, message: string): string;
}

export function parseData(event: string): Dict | 'done' | undefined {
  const data = dataOf(event);
  if (data === undefined) return undefined;
  if (data.trim() === '[DONE]') return 'done';
  try {
    return asDict(JSON.parse(data));
  } catch {
    return undefined;
  }
}

/** Why a stream that ended without its terminator ends in an error event. */
export const CUT_SHORT = `${ENDED_EARLY}; the answer is cut here`;

/**
 * Anthropic events read for a converter to the app's format: the message's id, model, usage and
 * stop reason kept here, each content block event handed to the converter, an error event
 * written in the app's format (and the stream over).
 */
export abstract class FromAnthropic implements StreamConverter {
  protected id = '';
  protected model = '';
  protected readonly created = Math.floor(Date.now() / 1000);
  protected usage: Dict = {};
  protected stop: unknown = null;
  protected done = false;
  /** `message_stop` came. */
  private stopped = false;
  cutShort = false;
  private readonly wire: Wire;

  constructor(wire: Wire) {
    this.wire = wire;
  }

  event(event: string): string {
    const data = parseData(event);
    return data === undefined || data === 'done' ? '' : this.handle(data);
  }

  /** One Anthropic event's data (parsed, or made by `ChatToAnthropic` without the round trip). */
  handle(data: Dict): string {
    if (this.done) return '';
    switch (data['type']) {
      case 'message_start': {
        const message = asDict(data['message']) ?? {};
        this.id = String(message['id'] ?? '');
        this.model = String(message['model'] ?? '');
        this.usage = { ...asDict(message['usage']) };
        return this.started();
      }
      case 'content_block_start':
        return this.blockStart(num(data['index']), asDict(data['content_block']) ?? {});
      case 'content_block_delta':
        return this.blockDelta(num(data['index']), asDict(data['delta']) ?? {});
      case 'content_block_stop':
        return this.blockStop(num(data['index']));
      case 'message_delta':
        this.stop = asDict(data['delta'])?.['stop_reason'] ?? this.stop;
        Object.assign(this.usage, asDict(data['usage']));
        return '';
      case 'message_stop':
        this.stopped = true;
        return this.end();
      case 'error': {
        this.done = true;
        const error = asDict(data['error']) ?? {};
        const type = String(error['type'] ?? 'api_error');
        return this.failed(type, String(error['message'] ?? 'stream error'));
      }
      default:
        return '';
    }
  }

  /** The app's error event that ends its stream. */
  protected errorEvent(type: string, message: string): string {
    return streamErrorEvent(this.wire, type, message);
  }

  fail(type: string, message: string): string {
    if (this.done) return '';
    this.done = true;
    return this.failed(type, message);
  }

  /** The stream failed (an upstream error event, cut short, or stalled): what ends the app's. */
  protected failed(type: string, message: string): string {
    return this.errorEvent(type, message);
  }

  /**
   * The upstream's stream is over (`message_stop`, or its body ended): the app's stream ends as
   * the answer did, or, when it ended without saying how the answer ended (neither
   * `message_stop` nor a stop reason came), in an error: a cut answer never reads as a whole one.
   */
  end(): string {
    if (this.done) return '';
    this.done = true;
    if (!this.stopped && this.stop === null) {
      this.cutShort = true;
      return this.failed('api_error', CUT_SHORT);
    }
    return this.finish();
  }

  /** `message_start` came (id, model and usage read). */
  protected abstract started(): string;
  protected abstract blockStart(index: number, block: Dict): string;
  protected abstract blockDelta(index: number, delta: Dict): string;
  protected abstract blockStop(index: number): string;
  /** The answer is over (its stop reason known): the app's stream ends. */
  protected abstract finish(): string;
}

/** Anthropic events → chat completion chunks (the usage chunk only when the app asked). */
export class AnthropicToChat extends FromAnthropic {
  /** Anthropic block index → tool call index. */
  private readonly tools = new Map<number, number>();
  private readonly includeUsage: boolean;

  constructor(includeUsage: boolean) {
    super('chat');
    this.includeUsage = includeUsage;
  }

  private chunk(delta: Dict, finish: string | null = null): string {
    const choice = { index: 0, delta, logprobs: null, finish_reason: finish };
    const body = {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [choice],
    };
    return `data: ${JSON.stringify(body)}\n\n`;
  }

  protected started(): string {
    return this.chunk({ role: 'assistant', content: '' });
  }

  protected blockStop(): string {
    return '';
  }

  protected blockStart(index: number, block: Dict): string {
    if (block['type'] === 'tool_use') {
      const call = this.tools.size;
      this.tools.set(index, call);
      const fn = { name: block['name'], arguments: '' };
      return this.chunk({
        tool_calls: [{ index: call, id: block['id'], type: 'function', function: fn }],
      });
    }
    if (block['type'] === 'text' && typeof block['text'] === 'string' && block['text'] !== '') {
      return this.chunk({ content: block['text'] });
    }
    return '';
  }

  protected blockDelta(index: number, delta: Dict): string {
    if (delta['type'] === 'text_delta') return this.chunk({ content: String(delta['text'] ?? '') });
    if (delta['type'] === 'input_json_delta') {
      const call = this.tools.get(index) ?? 0;
      const fn = { arguments: String(delta['partial_json'] ?? '') };
      return this.chunk({ tool_calls: [{ index: call, function: fn }] });
    }
    return ''; // thinking and signatures have no chat counterpart
  }

  protected finish(): string {
    let out = this.chunk({}, finishOfStop(this.stop) ?? 'stop');
    if (this.includeUsage) {
      const body = {
        id: this.id,
        object: 'chat.completion.chunk',
        created: this.created,
        model: this.model,
        choices: [],
        usage: chatUsageOf(this.usage),
      };
      out += `data: ${JSON.stringify(body)}\n\n`;
    }
    return `${out}data: [DONE]\n\n`;
  }
}

/** Where `ChatToAnthropic` puts an Anthropic event: written as SSE, or handed on. */
type AnthropicSink = (type: string, body: Dict) => string;

const anthropicEvent: AnthropicSink = (type, body) =>
  `event: ${type}\ndata: ${JSON.stringify({ type, ...body })}\n\n`;

/** A tool call not yet given a block: what its chunks said so far. */
interface WaitingCall {
  id: unknown;
  name: unknown;
  args: string;
}

/** Tool call arguments that are a whole JSON object (more chunks of that call cannot follow). */
function complete(args: string): boolean {
  if (!args.trimEnd().endsWith('}')) return false;
  try {
    JSON.parse(args);
    return true;
  } catch {
    return false;
  }
}

/**
 * Chat completion chunks → Anthropic events (text and tool_use blocks, one at a time). Parallel
 * tool calls may come interleaved (chunks of `tool_calls[].index` 0, 1, 0, 1…) while Anthropic's
 * stream has one open block at a time: the first call streams live, a later one waits (its chunks
 * held) until the open call's arguments are a whole JSON object, or the choice finishes.
 */
export class ChatToAnthropic implements StreamConverter {
  private started = false;
  private done = false;
  /**
   * The open content block: its index and what it is (a text, a refusal's text, or a tool call's
   * index).
   */
  private open: { index: number; tool: number | undefined; refusal?: boolean } | undefined;
  /** The open tool call's arguments so far. */
  private openArgs = '';
  /** Tool calls (by chat index) that had a block already. */
  private readonly begun = new Set<number>();
  /** Tool calls (by chat index) waiting for a block, in the order they came. */
  private readonly waiting = new Map<number, WaitingCall>();
  private blocks = 0;
  private stop: string | null = null;
  /** `[DONE]` came. */
  private terminated = false;
  cutShort = false;
  private usage: Dict | undefined;
  private readonly send: AnthropicSink;
  private readonly refusals: boolean;

  /** The chat usage chunk's `usage` as it came (undefined before it). */
  get chatUsage(): Dict | undefined {
    return this.usage;
  }

  /**
   * `send`: where each Anthropic event goes (default: written as SSE for the app). `refusals`:
   * `delta.refusal` text in blocks of its own, of the type `refusal` (not Anthropic's: for a
   * converter to a format that has refusal parts), else as text like the content.
   */
  constructor(send: AnthropicSink = anthropicEvent, refusals = false) {
    this.send = send;
    this.refusals = refusals;
  }

  event(event: string): string {
    const data = parseData(event);
    if (data === undefined || this.done) return '';
    if (data === 'done') {
      this.terminated = true;
      return this.end();
    }
    const error = asDict(data['error']);
    if (error !== undefined) {
      this.done = true;
      const message = String(error['message'] ?? 'stream error');
      return this.send('error', { error: { type: 'api_error', message } });
    }
    let out = this.start(data);
    if (asDict(data['usage']) !== undefined) this.usage = asDict(data['usage']);
    const choice = asDict(Array.isArray(data['choices']) ? data['choices'][0] : undefined);
    const delta = asDict(choice?.['delta']) ?? {};
    out += this.textDelta(delta);
    for (const entry of Array.isArray(delta['tool_calls']) ? delta['tool_calls'] : [])
      out += this.toolDelta(asDict(entry) ?? {});
    if (typeof choice?.['finish_reason'] === 'string') {
      this.stop = stopOfFinish(choice['finish_reason']);
      out += this.closeAll();
    }
    return out;
  }

  /** A chunk's content (or refusal) text into the open text block, else a new one. */
  private textDelta(delta: Dict): string {
    const content = typeof delta['content'] === 'string';
    const text = content ? delta['content'] : delta['refusal'];
    if (typeof text !== 'string' || text === '') return '';
    const refusal = this.refusals && !content;
    let out = '';
    if (
      this.open === undefined ||
      this.open.tool !== undefined ||
      !!this.open.refusal !== refusal
    ) {
      out = this.openBlock({ type: refusal ? 'refusal' : 'text', text: '' }, undefined);
      this.open!.refusal = refusal;
    }
    return (
      out +
      this.send('content_block_delta', {
        index: this.open!.index,
        delta: { type: 'text_delta', text },
      })
    );
  }

  private start(data: Dict): string {
    if (this.started) return '';
    this.started = true;
    const message = {
      id: data['id'],
      type: 'message',
      role: 'assistant',
      model: data['model'],
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0 },
    };
    return this.send('message_start', { message });
  }

  private toolDelta(call: Dict): string {
    const index = num(call['index']);
    const fn = asDict(call['function']) ?? {};
    const args = typeof fn['arguments'] === 'string' ? fn['arguments'] : '';
    if (this.open?.tool === index) {
      this.openArgs += args;
      // Its arguments may be whole now: a waiting call can have its block at once.
      return this.argsDelta(args) + (this.waiting.size > 0 ? this.advance(false) : '');
    }
    // A call whose block closed on its whole JSON: nothing but whitespace can follow.
    if (this.begun.has(index)) return '';
    const waiting = this.waiting.get(index);
    if (waiting === undefined) this.waiting.set(index, { id: call['id'], name: fn['name'], args });
    else {
      waiting.args += args;
      waiting.id ??= call['id'];
      waiting.name ??= fn['name'];
    }
    return this.advance(false);
  }

  /**
   * Gives waiting calls their block while no tool block is open or the open one is complete; a
   * call whose name has not come yet waits on (a block's id and name cannot follow its start),
   * but when the choice is over (`force`).
   */
  private advance(force: boolean): string {
    let out = '';
    for (const [index, call] of this.waiting) {
      if (!force && this.open?.tool !== undefined && !complete(this.openArgs)) break;
      if (!force && typeof call.name !== 'string') continue;
      this.waiting.delete(index);
      this.begun.add(index);
      out += this.openBlock({ type: 'tool_use', id: call.id, name: call.name, input: {} }, index);
      this.openArgs = call.args;
      out += this.argsDelta(call.args);
    }
    return out;
  }

  private argsDelta(args: string): string {
    if (args === '') return '';
    return this.send('content_block_delta', {
      index: this.open!.index,
      delta: { type: 'input_json_delta', partial_json: args },
    });
  }

  /** The choice is over: the open block closes, and each waiting call has its block in turn. */
  private closeAll(): string {
    return this.advance(true) + this.closeBlock();
  }

  private openBlock(block: Dict, tool: number | undefined): string {
    const out = this.closeBlock();
    this.open = { index: this.blocks, tool };
    this.blocks += 1;
    return out + this.send('content_block_start', { index: this.open.index, content_block: block });
  }

  private closeBlock(): string {
    if (this.open === undefined) return '';
    const { index } = this.open;
    this.open = undefined;
    this.openArgs = '';
    return this.send('content_block_stop', { index });
  }

  fail(type: string, message: string): string {
    if (this.done) return '';
    this.done = true;
    return this.send('error', { error: { type, message } });
  }

  /**
   * The stream is over (`[DONE]`, or the body ended): the open blocks close and the message
   * ends, or, when the stream ended without saying how the answer ended (neither a finish reason
   * nor `[DONE]` came), an error event: a cut answer never reads as a whole one.
   */
  end(): string {
    if (this.done) return '';
    this.done = true;
    if (!this.terminated && this.stop === null) {
      this.cutShort = true;
      return this.send('error', { error: { type: 'api_error', message: CUT_SHORT } });
    }
    const out = this.start({}) + this.closeAll();
    const usage = messagesUsageOf(this.usage);
    return (
      out +
      this.send('message_delta', {
        delta: { stop_reason: this.stop ?? 'end_turn', stop_sequence: null },
        usage,
      }) +
      this.send('message_stop', {})
    );
  }
}
