/**
 * A passed-through stream (the app's format is the upstream's: no translation) that ends cleanly
 * without its terminator (llm-sim's `[sim:end-early]`: no finish reason nor `[DONE]`, no
 * `message_stop`, no `response.completed`): the app gets the bytes as the upstream sent them (no
 * error event added), and the attempt's span says the answer was cut (`stream_error`, status
 * error), with the usage and cost known so far. Real `openai` and `@anthropic-ai/sdk` SDKs
 * against llm-sim behind a recording proxy; each cut case failed before (its span read as a clean
 * completion), the last one checks that a whole stream still does.
 */
import { describe, expect, it } from 'vitest';
import { chatNativeAnthropicUpstreams, startProxiedSim, useProxiedSim } from './helpers.js';
import type { ReceivedSpan } from './helpers.js';

const CHAT_MODEL = 'llama-3.1-8b-instant';
const CLAUDE = 'claude-haiku-4-5';
/** The chat model's upstream declared as serving the Responses API (forwarded as is). */
const NATIVE = `native/${CHAT_MODEL}`;
const CUT = 'Tell me a story [sim:end-early tokens=40]';

const rig = useProxiedSim(() => startProxiedSim(23, 6, [], chatNativeAnthropicUpstreams));

/** The one attempt span, which must read as a failed call. */
async function cutSpan(): Promise<ReceivedSpan> {
  const spans = await rig().sdk.chatSpans(1);
  expect(spans).toHaveLength(1);
  const span = spans[0]!;
  expect(span.attributes['error.type']).toBe('stream_error');
  expect(span.status.code).toBe(2);
  expect(span.status.message).toContain('ended before the answer did');
  return span;
}

describe('a passed-through stream that ends without its terminator', () => {
  it('chat to a chat upstream: the chunks as sent (no finish, no [DONE], no error event); the span is a stream_error', async () => {
    const { openai } = rig().sdk;
    const stream = await openai.chat.completions.create({
      model: CHAT_MODEL,
      messages: [{ role: 'user', content: CUT }],
      stream: true,
    });
    const finishes: unknown[] = [];
    let text = '';
    for await (const chunk of stream) {
      finishes.push(chunk.choices[0]?.finish_reason ?? null);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    // What the upstream sent, read as the SDK reads it: content, and nothing that ends it.
    expect(text.length).toBeGreaterThan(0);
    expect(finishes.filter((finish) => finish !== null)).toEqual([]);
    const span = await cutSpan();
    expect(span.attributes['gen_ai.request.model']).toBe(CHAT_MODEL);
    expect(span.attributes['gen_ai.response.finish_reasons'] ?? []).toEqual([]);
  });

  it('chat: the raw bytes carry no terminator and no event the gateway added', async () => {
    const { openai } = rig().sdk;
    const response = await openai.chat.completions
      .create({
        model: CHAT_MODEL,
        messages: [{ role: 'user', content: CUT }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .asResponse();
    const body = await response.text();
    const events = body.split('\n\n').filter((event) => event !== '');
    expect(events.length).toBeGreaterThan(1);
    for (const event of events) {
      expect(event.startsWith('data: {')).toBe(true);
      expect(JSON.parse(event.slice(6))).toMatchObject({ object: 'chat.completion.chunk' });
    }
    expect(body).not.toContain('[DONE]');
    expect(body).not.toContain('"error"');
    await cutSpan();
  });

  it('Anthropic to an Anthropic upstream: the events as sent (no message_stop, no error event); the span is a stream_error with the input tokens and cost known', async () => {
    const { anthropic } = rig().sdk;
    const stream = anthropic.messages.stream({
      model: CLAUDE,
      max_tokens: 200,
      messages: [{ role: 'user', content: CUT }],
    });
    const types: string[] = [];
    stream.on('streamEvent', (event) => types.push(event.type));
    await stream.done().catch(() => undefined);
    expect(types[0]).toBe('message_start');
    expect(types).toContain('content_block_delta');
    expect(types).not.toContain('message_stop');
    expect(types).not.toContain('message_delta');
    expect(types).not.toContain('error');
    const span = await cutSpan();
    expect(span.attributes['gen_ai.provider.name']).toBe('anthropic');
    // message_start told the input tokens: priced as far as known.
    expect(span.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
    expect(span.attributes['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
  });

  it('Responses to a native Responses upstream: the events as sent (no response.completed); the span is a stream_error', async () => {
    const { openai } = rig().sdk;
    const stream = await openai.responses.create({ model: NATIVE, input: CUT, stream: true });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types[0]).toBe('response.created');
    expect(types).toContain('response.output_text.delta');
    expect(types).not.toContain('response.completed');
    expect(types).not.toContain('response.failed');
    expect(types).not.toContain('error');
    await cutSpan();
  });

  it('a stream with its terminator is still a clean completion', async () => {
    const { openai, anthropic } = rig().sdk;
    const chat = await openai.chat.completions.create({
      model: CHAT_MODEL,
      messages: [{ role: 'user', content: 'Tell me a story' }],
      stream: true,
    });
    for await (const chunk of chat) void chunk;
    await anthropic.messages
      .stream({ model: CLAUDE, max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] })
      .finalMessage();
    const spans = await rig().sdk.chatSpans(2);
    expect(spans.map((span) => span.attributes['error.type'])).toEqual([undefined, undefined]);
    expect(spans.map((span) => span.status.code ?? 0)).not.toContain(2);
  });
});
