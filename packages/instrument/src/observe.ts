import { diag } from '@opentelemetry/api';
import { anthropicMessagesAdapter } from './anthropic-messages.js';
import { patchStreamHelper } from './instrument-anthropic.js';
import { openaiChatAdapter } from './openai-chat.js';
import { openaiEmbeddingsAdapter } from './openai-embeddings.js';
import { openaiResponsesAdapter } from './openai-responses.js';
import { patchMethod } from './patch.js';
import type { InstrumentConfig } from './types.js';
import { asDict } from './util.js';

function resource(client: unknown, ...path: string[]): object | undefined {
  let current: unknown = client;
  for (const key of path) current = asDict(current)?.[key];
  const found = asDict(current);
  return found !== undefined && typeof found['create'] === 'function' ? found : undefined;
}

/**
 * Instruments one client instance (works under bundlers, where no module can be patched): its
 * resource objects get instrumented `create` methods of their own. The SDK's helpers
 * (`parse()`, `stream()`) go through them too, because they call `this._client.<resource>.create`.
 * Returns the same client. Combined with prototype patching (`register`/`auto`), the outer layer
 * makes the one span and the inner one passes through.
 */
export function observe<T extends object>(client: T, config?: InstrumentConfig): T {
  try {
    const chat = resource(client, 'chat', 'completions');
    const responses = resource(client, 'responses');
    const embeddings = resource(client, 'embeddings');
    const messages = resource(client, 'messages');
    let found = false;
    if (chat !== undefined) found = patchMethod(chat, 'create', openaiChatAdapter, config) || found;
    if (responses !== undefined)
      found = patchMethod(responses, 'create', openaiResponsesAdapter, config) || found;
    if (embeddings !== undefined)
      found = patchMethod(embeddings, 'create', openaiEmbeddingsAdapter, config) || found;
    if (messages !== undefined && chat === undefined) {
      found =
        patchMethod(messages, 'create', anthropicMessagesAdapter, config, {
          suppressSdkTracing: true,
        }) || found;
      patchStreamHelper(messages);
    }
    if (!found && chat === undefined && messages === undefined) {
      diag.warn(
        'modelmaxx: observe() got an object that is neither an OpenAI nor an Anthropic client',
      );
    }
  } catch (error) {
    diag.error('modelmaxx: observe() failed', error);
  }
  return client;
}
