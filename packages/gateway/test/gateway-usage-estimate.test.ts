/**
 * The output a stream relayed, counted for an estimate when the provider's usage never comes
 * (src/usage.ts `scanEvent` / `estimatedSummary`): text, tool-call arguments and reasoning in each
 * wire's events, JSON escapes as one character, and no estimate once the provider's output count
 * came. Events are serialized by JSON.stringify, as providers send them.
 */
import { describe, expect, it } from 'vitest';
import { estimatedSummary, scanEvent } from '../src/usage.js';
import type { Summary, Wire } from '../src/usage.js';

const data = (body: object) => `data: ${JSON.stringify(body)}`;

function scanned(wire: Wire, events: string[]): Summary {
  const summary: Summary = { finishReasons: [] };
  events.forEach((event, index) => scanEvent(wire, event, summary, index === 0));
  return summary;
}

describe('output relayed so far', () => {
  it('chat: content and tool-call arguments, escapes counted once', () => {
    const text = 'line one\n"quoted" \\ é😀';
    const summary = scanned('chat', [
      data({ model: 'gpt-4o-mini', choices: [{ delta: { role: 'assistant', content: '' } }] }),
      data({ choices: [{ delta: { content: text } }] }),
      data({
        choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: '{"a":1}' } }] } }],
      }),
      data({ choices: [{ delta: { reasoning_content: 'think' } }] }),
    ]);
    // The emoji is two UTF-16 units, as JSON.stringify leaves it unescaped.
    expect(summary.outputChars).toBe(text.length + '{"a":1}'.length + 'think'.length);
  });

  it('responses: deltas only (the completed event repeats the text)', () => {
    const summary = scanned('responses', [
      `event: response.output_text.delta\n${data({ type: 'response.output_text.delta', delta: 'Hello there' })}`,
      `event: response.function_call_arguments.delta\n${data({ type: 'response.function_call_arguments.delta', delta: '{"q":"x"}' })}`,
      `event: response.output_text.done\n${data({ type: 'response.output_text.done', text: 'Hello there' })}`,
    ]);
    expect(summary.outputChars).toBe('Hello there'.length + '{"q":"x"}'.length);
  });

  it('messages: text and input_json deltas; input from message_start is kept', () => {
    const summary = scanned('messages', [
      `event: message_start\n${data({ type: 'message_start', message: { model: 'claude-haiku-4-5', id: 'msg_1', content: [], usage: { input_tokens: 30 } } })}`,
      `event: content_block_delta\n${data({ type: 'content_block_delta', delta: { type: 'text_delta', text: 'abcdefgh' } })}`,
      `event: content_block_delta\n${data({ type: 'content_block_delta', delta: { type: 'input_json_delta', partial_json: '{"k":' } })}`,
    ]);
    expect(summary.outputChars).toBe(13);
    expect(estimatedSummary(summary, 999)?.usage).toEqual({ inputTokens: 30, outputTokens: 4 });
  });

  it("messages cut before message_delta: message_start's output count (1) is not the final one", () => {
    const start = `event: message_start\n${data({ type: 'message_start', message: { model: 'claude-haiku-4-5', id: 'msg_2', content: [], usage: { input_tokens: 30, output_tokens: 1 } } })}`;
    const text = `event: content_block_delta\n${data({ type: 'content_block_delta', delta: { type: 'text_delta', text: 'x'.repeat(40) } })}`;
    expect(estimatedSummary(scanned('messages', [start, text]), 999)).toMatchObject({
      estimated: true,
      usage: { inputTokens: 30, outputTokens: 10 },
    });
    // no text yet: the provider's first count stands, still marked as an estimate
    expect(estimatedSummary(scanned('messages', [start]), 999)).toMatchObject({
      estimated: true,
      usage: { inputTokens: 30, outputTokens: 1 },
    });
    const done = `event: message_delta\n${data({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 12 } })}`;
    expect(estimatedSummary(scanned('messages', [start, text, done]), 999)).toBeUndefined();
  });

  it('estimates input from admission when no count came; none once the output count came', () => {
    const cut = scanned('chat', [data({ choices: [{ delta: { content: 'x'.repeat(9) } }] })]);
    expect(estimatedSummary(cut, 57)).toMatchObject({
      estimated: true,
      usage: { inputTokens: 57, outputTokens: 3 },
    });
    const whole = scanned('chat', [
      data({ choices: [{ delta: { content: 'x'.repeat(9) } }] }),
      data({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } }),
    ]);
    expect(estimatedSummary(whole, 57)).toBeUndefined();
  });
});
