/**
 * A fixture app for `collector-instrument.test.ts`, run by plain Node (type stripping) under
 * `--import @modelmaxx/instrument/register`: real openai / @anthropic-ai/sdk calls against llm-sim
 * (OPENAI_BASE_URL / ANTHROPIC_BASE_URL), app context through `withLlmContext`, one score through
 * `feedback()`. Prints one JSON line with what the app saw (ids, models, usage).
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { feedback, withLlmContext } from '@modelmaxx/instrument';

export interface CollectorAppOutput {
  chat: {
    id: string;
    model: string;
    usage: OpenAI.CompletionUsage | undefined;
    finishReason: string | null;
  };
  stream: {
    id: string;
    model: string;
    usage: OpenAI.CompletionUsage | undefined;
    finishReason: string | null;
  };
  anthropic: { id: string; model: string; usage: Anthropic.Usage; stopReason: string | null };
}

async function main(): Promise<CollectorAppOutput> {
  const openai = new OpenAI({ maxRetries: 0 });
  const anthropic = new Anthropic({ maxRetries: 0 });
  const chat = await withLlmContext(
    { task: 'summarize', feature: 'inbox', userId: 'user-7', conversationId: 'conv-1' },
    () =>
      openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Summarize: the meeting moved to Tuesday.' }],
        max_tokens: 100,
      }),
  );
  // Cut off by max_tokens: the built-in evaluator scores finish_length 0.
  const stream = await withLlmContext({ task: 'draft', feature: 'compose' }, () =>
    openai.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Write a long story about a lighthouse keeper.' }],
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    }),
  );
  let streamId = '';
  let streamModel = '';
  let streamUsage: OpenAI.CompletionUsage | undefined;
  let finishReason: string | null = null;
  for await (const chunk of stream) {
    streamId = chunk.id;
    streamModel = chunk.model;
    if (chunk.usage) streamUsage = chunk.usage;
    finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
  }
  const message = await withLlmContext({ task: 'classify' }, () =>
    anthropic.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Is "great product!" positive or negative?' }],
    }),
  );
  feedback({ responseId: chat.id, name: 'user.thumbs', score: 1, label: 'up' });
  return {
    chat: {
      id: chat.id,
      model: chat.model,
      usage: chat.usage,
      finishReason: chat.choices[0]?.finish_reason ?? null,
    },
    stream: { id: streamId, model: streamModel, usage: streamUsage, finishReason },
    anthropic: {
      id: message.id,
      model: message.model,
      usage: message.usage,
      stopReason: message.stop_reason,
    },
  };
}

process.stdout.write(`${JSON.stringify(await main())}\n`);
