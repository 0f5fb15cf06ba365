import type { JsonObject } from './context.js';
import type { GeneratedChoice } from './engine.js';
import type { SseFrame } from './http-util.js';
import { sseEvent } from './http-util.js';
import { estimateTokens, splitArguments, splitPieces } from './tokens.js';

/** `stop_details` of a refusal (the policy category is not simulated). */
export const REFUSAL_STOP_DETAILS = { type: 'refusal', category: null, explanation: null };

/** A message as both the JSON answer and the stream report it. */
export interface MessageFacts {
  id: string;
  /** The model name the answer reports. */
  model: string;
  content: JsonObject[];
  /** The input side of `usage`. */
  usageInput: JsonObject;
  stop: string;
}

/** The events of a streamed message: each content block as start, deltas and stop. */
class MessageStream {
  readonly frames: SseFrame[] = [];

  push(event: string, payload: JsonObject, tokens = 0): void {
    this.frames.push({ text: sseEvent(event, { type: event, ...payload }), tokens });
  }

  private delta(index: number, delta: JsonObject, tokens = 0): void {
    this.push('content_block_delta', { index, delta }, tokens);
  }

  /** The thinking summary carries the reasoning time; then its signature. */
  thinking(index: number, block: JsonObject, reasoningTokens: number): void {
    const contentBlock = { type: 'thinking', thinking: '', signature: '' };
    this.push('content_block_start', { index, content_block: contentBlock });
    this.delta(index, { type: 'thinking_delta', thinking: block['thinking'] }, reasoningTokens);
    this.delta(index, { type: 'signature_delta', signature: block['signature'] });
  }

  toolUse(index: number, block: JsonObject, leadTokens: number): void {
    const contentBlock = { type: 'tool_use', id: block['id'], name: block['name'], input: {} };
    this.push('content_block_start', { index, content_block: contentBlock }, leadTokens);
    // Same input as the non-streamed block (Anthropic's input is always a JSON object).
    const argumentsText = JSON.stringify(block['input']);
    this.delta(index, { type: 'input_json_delta', partial_json: '' });
    for (const piece of splitArguments(argumentsText)) {
      this.delta(index, { type: 'input_json_delta', partial_json: piece }, estimateTokens(piece));
    }
  }

  text(index: number, block: JsonObject, leadTokens: number): void {
    const contentBlock = { type: 'text', text: '' };
    this.push('content_block_start', { index, content_block: contentBlock }, leadTokens);
    // The text deltas are most of the stream: serialise their envelope once.
    const head = `event: content_block_delta\ndata: {"type":"content_block_delta","index":${index},"delta":{"type":"text_delta","text":`;
    for (const piece of splitPieces(String(block['text']))) {
      this.frames.push({
        text: `${head}${JSON.stringify(piece)}}}\n\n`,
        tokens: estimateTokens(piece),
      });
    }
  }

  /** Anthropic sends a ping right after the first content_block_start. */
  insertPing(): void {
    const firstStart = this.frames.findIndex((frame) =>
      frame.text.startsWith('event: content_block_start'),
    );
    if (firstStart >= 0)
      this.frames.splice(firstStart + 1, 0, {
        text: sseEvent('ping', { type: 'ping' }),
        tokens: 0,
      });
  }
}

export function messageStreamFrames(message: MessageFacts, choice: GeneratedChoice): SseFrame[] {
  const { content, stop } = message;
  const stream = new MessageStream();
  stream.push('message_start', {
    message: {
      id: message.id,
      type: 'message',
      role: 'assistant',
      model: message.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { ...message.usageInput, output_tokens: 1, service_tier: 'standard' },
    },
  });
  // Reasoning time goes before the first block; with a thinking block, into its delta.
  const hasThinking = content[0]?.['type'] === 'thinking';
  content.forEach((block, index) => {
    const lead = index === 0 && !hasThinking ? choice.reasoningTokens : 0;
    if (block['type'] === 'thinking') stream.thinking(index, block, choice.reasoningTokens);
    else if (block['type'] === 'tool_use') stream.toolUse(index, block, lead);
    else stream.text(index, block, lead);
    stream.push('content_block_stop', { index });
  });
  stream.insertPing();
  const delta: JsonObject = { stop_reason: stop, stop_sequence: null };
  if (stop === 'refusal') delta['stop_details'] = REFUSAL_STOP_DETAILS;
  const usage = hasThinking
    ? {
        output_tokens: choice.outputTokens,
        output_tokens_details: { thinking_tokens: choice.reasoningTokens },
      }
    : { output_tokens: choice.outputTokens };
  stream.push('message_delta', { delta, usage });
  stream.push('message_stop', {});
  return stream.frames;
}
