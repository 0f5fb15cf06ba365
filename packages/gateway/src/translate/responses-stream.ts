/**
 * Anthropic's stream as OpenAI Responses events, event by event: `response.created` and
 * `response.in_progress` at `message_start`; text blocks as `output_text` parts of a message
 * item (`response.output_item.added`, `response.content_part.added`,
 * `response.output_text.delta`, `.done`, `response.content_part.done`); tool_use blocks as
 * `function_call` items (`response.function_call_arguments.delta`, `.done`,
 * `response.output_item.done`); `response.completed` (or `response.incomplete` for a cut answer)
 * with the whole output and usage at the end; an error event as the Responses `error` event.
 * Thinking blocks have no counterpart and are left out. A chat stream (an OpenAI-style upstream
 * without the Responses API) comes the same way, through its Anthropic events (`ChatToResponses`).
 */
import {
  callStatus,
  functionCallItem,
  messageItem,
  messageItemId,
  outputTextPart,
  reasoningTokensOf,
  refusalPart,
  responseObject,
  responsesUsageOf,
  statusOfStop,
  wholeJson,
} from './responses-answers.js';
import { responseEcho } from './responses-echo.js';
import { ChatToAnthropic, FromAnthropic } from './streams.js';
import type { StreamConverter } from './streams.js';

type Dict = Record<string, unknown>;

/** An Anthropic block being streamed: a text part of the open message item, or a call item. */
type OpenBlock =
  | { kind: 'text'; part: number; text: string; refusal: boolean }
  | { kind: 'call'; index: number; id: unknown; name: unknown; args: string };

export class AnthropicToResponses extends FromAnthropic {
  /** Reasoning tokens among the output tokens (what a chat upstream's usage reported). */
  reasoningTokens = 0;
  private sequence = 0;
  private begun = false;
  /** The request's settings each `response` object says back. */
  private readonly echo: Dict;
  /** Items finished, by output_index. */
  private readonly output: Dict[] = [];
  /** Items added so far (the next item's output_index). */
  private added = 0;
  /** The message item text blocks go to: its output_index and finished parts. */
  private message: { index: number; parts: Dict[] } | undefined;
  /** Anthropic block index → what it is streamed as. */
  private readonly blocks = new Map<number, OpenBlock>();
  /**
   * Call items whose block closed but whose status waits on what follows (`callStatus`): the
   * last item so far, and those whose arguments are not whole JSON, until the answer ends.
   */
  private readonly held: Extract<OpenBlock, { kind: 'call' }>[] = [];

  /** `request`: the Responses request (its settings said back in each `response` object). */
  constructor(request: Dict = {}) {
    super('responses');
    this.echo = responseEcho(request);
  }

  private emit(type: string, body: Dict): string {
    const data = { type, sequence_number: this.sequence++, ...body };
    return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
  }

  /** The Responses `error` event, numbered as the others (`ResponseErrorEvent`). */
  protected errorEvent(type: string, message: string): string {
    return this.emit('error', { code: type, message, param: null });
  }

  /**
   * The stream failed: `response.failed` (the response so far, its `error`) once it began, then
   * the `error` event the `openai` SDK throws as an APIError.
   */
  protected failed(type: string, message: string): string {
    if (!this.begun) return this.errorEvent(type, message);
    const response = this.responseNow('failed', { code: 'server_error', message });
    return this.emit('response.failed', { response }) + this.errorEvent(type, message);
  }

  private responseNow(
    status: 'in_progress' | 'completed' | 'incomplete' | 'failed',
    error?: { code: string; message: string },
  ): Dict {
    const final = status !== 'in_progress';
    return responseObject({
      id: this.id,
      model: this.model,
      created: this.created,
      status,
      stop: this.stop,
      output: final ? this.output.filter((item) => item !== undefined) : [],
      usage: final ? responsesUsageOf(this.usage, this.reasoningTokens) : null,
      echo: this.echo,
      ...(error === undefined ? {} : { error }),
    });
  }

  private lifecycle(type: string, status: 'in_progress' | 'completed' | 'incomplete'): string {
    return this.emit(type, { response: this.responseNow(status) });
  }

  protected started(): string {
    if (this.begun) return '';
    this.begun = true;
    return (
      this.lifecycle('response.created', 'in_progress') +
      this.lifecycle('response.in_progress', 'in_progress')
    );
  }

  private itemId(): string {
    return messageItemId(this.id, this.message!.index);
  }

  protected blockStart(index: number, block: Dict): string {
    // A held call is not the last item any more: done now if its arguments are whole JSON.
    let out = this.release(false);
    if (block['type'] === 'tool_use') {
      out += this.closeMessage();
      const call = {
        kind: 'call' as const,
        index: this.added++,
        id: block['id'],
        name: block['name'],
      };
      this.blocks.set(index, { ...call, args: '' });
      const item = functionCallItem(call.id, call.name, '', 'in_progress');
      return out + this.emit('response.output_item.added', { output_index: call.index, item });
    }
    // `refusal`: a chat upstream's refusal text (`ChatToAnthropic`'s own block type).
    const refusal = block['type'] === 'refusal';
    if (block['type'] !== 'text' && !refusal) return out;
    if (this.message === undefined) {
      this.message = { index: this.added++, parts: [] };
      const item = messageItem(this.itemId(), [], 'in_progress');
      out += this.emit('response.output_item.added', { output_index: this.message.index, item });
    }
    const part = this.message.parts.length;
    this.blocks.set(index, { kind: 'text', part, text: '', refusal });
    out += this.emit('response.content_part.added', {
      item_id: this.itemId(),
      output_index: this.message.index,
      content_index: part,
      part: refusal ? refusalPart('') : outputTextPart(''),
    });
    const text = block['text'];
    return typeof text === 'string' && text !== '' ? out + this.textDelta(index, text) : out;
  }

  private textDelta(index: number, delta: string): string {
    const block = this.blocks.get(index);
    if (block?.kind !== 'text') return '';
    block.text += delta;
    const where = {
      item_id: this.itemId(),
      output_index: this.message!.index,
      content_index: block.part,
    };
    if (block.refusal) return this.emit('response.refusal.delta', { ...where, delta });
    return this.emit('response.output_text.delta', { ...where, delta, logprobs: [] });
  }

  protected blockDelta(index: number, delta: Dict): string {
    if (delta['type'] === 'text_delta') return this.textDelta(index, String(delta['text'] ?? ''));
    const block = this.blocks.get(index);
    if (delta['type'] !== 'input_json_delta' || block?.kind !== 'call') return '';
    const piece = String(delta['partial_json'] ?? '');
    block.args += piece;
    if (piece === '') return '';
    return this.emit('response.function_call_arguments.delta', {
      item_id: `fc_${String(block.id)}`,
      output_index: block.index,
      delta: piece,
    });
  }

  protected blockStop(index: number): string {
    const block = this.blocks.get(index);
    this.blocks.delete(index);
    if (block === undefined) return '';
    if (block.kind === 'call') {
      if (block.args === '') block.args = '{}';
      this.held.push(block);
      return this.emit('response.function_call_arguments.done', {
        item_id: `fc_${String(block.id)}`,
        output_index: block.index,
        name: block.name,
        arguments: block.args,
      });
    }
    const part = block.refusal ? refusalPart(block.text) : outputTextPart(block.text);
    this.message!.parts.push(part);
    const where = {
      item_id: this.itemId(),
      output_index: this.message!.index,
      content_index: block.part,
    };
    const done = block.refusal
      ? this.emit('response.refusal.done', { ...where, refusal: block.text })
      : this.emit('response.output_text.done', { ...where, text: block.text, logprobs: [] });
    return done + this.emit('response.content_part.done', { ...where, part });
  }

  /**
   * Held call items done: at the end of the answer (`final`) all of them, with their status;
   * else (an item follows them) those whose arguments are whole JSON, `completed`.
   */
  private release(final: boolean): string {
    let out = '';
    for (const call of [...this.held]) {
      const last = final && call.index === this.added - 1;
      if (!final && !wholeJson(call.args)) continue;
      this.held.splice(this.held.indexOf(call), 1);
      const status = final ? callStatus(statusOfStop(this.stop), last, call.args) : 'completed';
      const item = functionCallItem(call.id, call.name, call.args, status);
      this.output[call.index] = item;
      out += this.emit('response.output_item.done', { output_index: call.index, item });
    }
    return out;
  }

  /** The message item is finished (a call follows, or the answer ended). */
  private closeMessage(): string {
    const message = this.message;
    if (message === undefined) return '';
    const item = messageItem(this.itemId(), message.parts, statusOfStop(this.stop));
    this.message = undefined;
    this.output[message.index] = item;
    return this.emit('response.output_item.done', { output_index: message.index, item });
  }

  protected finish(): string {
    let out = this.started();
    for (const index of [...this.blocks.keys()]) out += this.blockStop(index);
    out += this.closeMessage() + this.release(true);
    const status = statusOfStop(this.stop);
    return out + this.lifecycle(`response.${status}`, status);
  }
}

/**
 * Chat completion chunks as Responses events: each chunk through `ChatToAnthropic`, whose
 * Anthropic events go straight (as objects, not SSE text) to `AnthropicToResponses`, so the two
 * directions to Responses share one converter (text and tool calls, parallel calls interleaved,
 * usage, finish, errors).
 */
export class ChatToResponses implements StreamConverter {
  private readonly responses: AnthropicToResponses;
  private readonly chat = new ChatToAnthropic((type, body) => {
    // The usage's reasoning tokens have no Anthropic counterpart: read from the chat usage.
    if (type === 'message_delta')
      this.responses.reasoningTokens = reasoningTokensOf(this.chat.chatUsage);
    return this.responses.handle({ type, ...body });
  }, true);

  /** `request`: as for `AnthropicToResponses`. */
  constructor(request: Dict = {}) {
    this.responses = new AnthropicToResponses(request);
  }

  event(event: string): string {
    return this.chat.event(event);
  }

  end(): string {
    return this.chat.end() + this.responses.end();
  }

  fail(type: string, message: string): string {
    return this.chat.fail(type, message);
  }

  get cutShort(): boolean {
    return this.chat.cutShort || this.responses.cutShort;
  }
}
