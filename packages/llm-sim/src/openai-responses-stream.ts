import type { JsonObject } from './context.js';
import type { GeneratedChoice } from './engine.js';
import type { SseFrame } from './http-util.js';
import { sseEvent } from './http-util.js';
import { estimateTokens, splitArguments, splitPieces } from './tokens.js';

export type ResponseState = 'in_progress' | 'completed' | 'incomplete';

/** The SSE events of a streamed `/v1/responses` answer, numbered in order. */
class ResponsesStream {
  readonly frames: SseFrame[] = [];
  private sequence = 0;

  push(type: string, payload: JsonObject, tokens = 0): void {
    const text = sseEvent(type, { type, sequence_number: this.sequence++, ...payload });
    this.frames.push({ text, tokens });
  }

  /** A reasoning item: its tokens are spent before it is added. */
  reasoning(item: JsonObject, outputIndex: number, reasoningTokens: number): void {
    this.push('response.output_item.added', { output_index: outputIndex, item }, reasoningTokens);
    this.push('response.output_item.done', { output_index: outputIndex, item });
  }

  functionCall(item: JsonObject, outputIndex: number): void {
    const itemId = item['id'];
    const args = String(item['arguments']);
    this.push('response.output_item.added', {
      output_index: outputIndex,
      item: { ...item, status: 'in_progress', arguments: '' },
    });
    for (const piece of splitArguments(args)) {
      this.push(
        'response.function_call_arguments.delta',
        { item_id: itemId, output_index: outputIndex, delta: piece },
        estimateTokens(piece),
      );
    }
    this.push('response.function_call_arguments.done', {
      item_id: itemId,
      output_index: outputIndex,
      name: item['name'],
      arguments: args,
    });
    this.push('response.output_item.done', { output_index: outputIndex, item });
  }

  message(item: JsonObject, outputIndex: number): void {
    const part = (item['content'] as JsonObject[])[0] as JsonObject;
    this.push('response.output_item.added', {
      output_index: outputIndex,
      item: { ...item, status: 'in_progress', content: [] },
    });
    const where = { item_id: item['id'], output_index: outputIndex, content_index: 0 };
    if (part['type'] === 'refusal') this.refusal(where, String(part['refusal']));
    else this.outputText(where, String(part['text']));
    this.push('response.content_part.done', { ...where, part });
    this.push('response.output_item.done', { output_index: outputIndex, item });
  }

  private refusal(where: JsonObject, refusal: string): void {
    this.push('response.content_part.added', { ...where, part: { type: 'refusal', refusal: '' } });
    for (const piece of splitPieces(refusal)) {
      this.push('response.refusal.delta', { ...where, delta: piece }, estimateTokens(piece));
    }
    this.push('response.refusal.done', { ...where, refusal });
  }

  private outputText(where: JsonObject, text: string): void {
    this.push('response.content_part.added', {
      ...where,
      part: { type: 'output_text', annotations: [], logprobs: [], text: '' },
    });
    // The text deltas are most of the stream: serialise their envelope once.
    const head = `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":`;
    const middle = `,"item_id":${JSON.stringify(where['item_id'])},"output_index":${String(where['output_index'])},"content_index":0,"delta":`;
    for (const piece of splitPieces(text)) {
      this.frames.push({
        text: `${head}${this.sequence++}${middle}${JSON.stringify(piece)},"logprobs":[]}\n\n`,
        tokens: estimateTokens(piece),
      });
    }
    this.push('response.output_text.done', { ...where, text, logprobs: [] });
  }
}

/** The stream: created, in progress, each output item with its deltas, then completed or incomplete. */
export function responsesStreamFrames(
  envelope: (state: ResponseState, items: JsonObject[], withUsage: boolean) => JsonObject,
  output: JsonObject[],
  status: ResponseState,
  choice: GeneratedChoice,
): SseFrame[] {
  const stream = new ResponsesStream();
  stream.push('response.created', { response: envelope('in_progress', [], false) });
  stream.push('response.in_progress', { response: envelope('in_progress', [], false) });
  output.forEach((item, outputIndex) => {
    if (item['type'] === 'reasoning') stream.reasoning(item, outputIndex, choice.reasoningTokens);
    else if (item['type'] === 'function_call') stream.functionCall(item, outputIndex);
    else stream.message(item, outputIndex);
  });
  stream.push(status === 'incomplete' ? 'response.incomplete' : 'response.completed', {
    response: envelope(status, output, true),
  });
  return stream.frames;
}
