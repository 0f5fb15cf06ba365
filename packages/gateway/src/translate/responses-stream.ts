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
  functionCallItem,
  messageItem,
  messageItemId,
  outputTextPart,
  reasoningTokensOf,
  refusalPart,
  responseObject,
  responsesUsageOf,
  statusOfStop,
} from './responses-answers.js';
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
  /** Items finished, in output order. */
  private readonly output: Dict[] = [];
  /** Items added so far (the next item's output_index). */
  private added = 0;
  /** The message item text blocks go to: its output_index and finished parts. */
  private message: { index: number; parts: Dict[] } | undefined;
  /** Anthropic block index → what it is streamed as. */
  private readonly blocks = new Map<number, OpenBlock>();

  constructor() {
    super('responses');
  }

  private emit(type: string, body: Dict): string {
    const data = { type, sequence_number: this.sequence++, ...body };
    return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
  }

  /** The Responses `error` event, numbered as the others (`ResponseErrorEvent`). */
  protected errorEvent(type: string, message: string): string {
    return this.emit('error', { code: type, message, param: null });
  }

  private lifecycle(type: string, status: 'in_progress' | 'completed' | 'incomplete'): string {
    const final = status !== 'in_progress';
    const response = responseObject({
      id: this.id,
      model: this.model,
      created: this.created,
      status,
      stop: this.stop,
      output: final ? this.output : [],
      usage: final ? responsesUsageOf(this.usage, this.reasoningTokens) : null,
    });
    return this.emit(type, { response });
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
    if (block['type'] === 'tool_use') {
      const out = this.closeMessage();
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
    if (block['type'] !== 'text' && !refusal) return '';
    let out = '';
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
      const args = block.args === '' ? '{}' : block.args;
      const item = functionCallItem(block.id, block.name, args, 'completed');
      this.output.push(item);
      const where = { item_id: item.id, output_index: block.index };
      return (
        this.emit('response.function_call_arguments.done', {
          ...where,
          name: block.name,
          arguments: args,
        }) + this.emit('response.output_item.done', { output_index: block.index, item })
      );
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

  /** The message item is finished (a call follows, or the answer ended). */
  private closeMessage(): string {
    const message = this.message;
    if (message === undefined) return '';
    const item = messageItem(this.itemId(), message.parts, statusOfStop(this.stop));
    this.message = undefined;
    this.output.push(item);
    return this.emit('response.output_item.done', { output_index: message.index, item });
  }

  end(): string {
    if (this.done) return '';
    this.done = true;
    let out = this.started();
    for (const index of [...this.blocks.keys()]) out += this.blockStop(index);
    out += this.closeMessage();
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
  private readonly responses = new AnthropicToResponses();
  private readonly chat = new ChatToAnthropic((type, body) => {
    // The usage's reasoning tokens have no Anthropic counterpart: read from the chat usage.
    if (type === 'message_delta')
      this.responses.reasoningTokens = reasoningTokensOf(this.chat.chatUsage);
    return this.responses.handle({ type, ...body });
  }, true);

  event(event: string): string {
    return this.chat.event(event);
  }

  end(): string {
    return this.chat.end() + this.responses.end();
  }
}
