import { diag } from '@opentelemetry/api';
import { openaiChatAdapter } from './openai-chat.js';
import { openaiEmbeddingsAdapter } from './openai-embeddings.js';
import { openaiResponsesAdapter } from './openai-responses.js';
import type { ApiAdapter } from './internal-types.js';
import { findClientClass, patchMethod, prototypeOf, unpatchMethod } from './patch.js';
import type { InstrumentConfig } from './types.js';

function openaiTargets(moduleExports: unknown): { target: object; adapter: ApiAdapter }[] {
  const OpenAI = findClientClass(moduleExports, 'OpenAI');
  if (OpenAI === undefined) return [];
  const chat = OpenAI['Chat'] as Record<string, unknown> | undefined;
  const targets: { target: object; adapter: ApiAdapter }[] = [];
  const completions = prototypeOf(chat?.['Completions']);
  if (completions !== undefined) targets.push({ target: completions, adapter: openaiChatAdapter });
  const responses = prototypeOf(OpenAI['Responses']);
  if (responses !== undefined) targets.push({ target: responses, adapter: openaiResponsesAdapter });
  const embeddings = prototypeOf(OpenAI['Embeddings']);
  if (embeddings !== undefined)
    targets.push({ target: embeddings, adapter: openaiEmbeddingsAdapter });
  return targets;
}

/**
 * Patches one loaded copy of `openai` (pass its ESM namespace or its CJS exports): chat
 * completions (`create`, and so `parse()`, `stream()`, `runTools()` which call it), the Responses
 * API (`create`, and so `parse()`, `stream()`) and embeddings. Idempotent; returns whether it
 * patched anything now.
 */
export function instrumentOpenAI(moduleExports: unknown, config?: InstrumentConfig): boolean {
  try {
    const targets = openaiTargets(moduleExports);
    if (targets.length === 0) {
      diag.warn('modelmaxx: instrumentOpenAI: no OpenAI client class found in the given module');
      return false;
    }
    let patched = false;
    for (const { target, adapter } of targets) {
      if (patchMethod(target, 'create', adapter, config)) patched = true;
    }
    return patched;
  } catch (error) {
    diag.error('modelmaxx: instrumentOpenAI failed', error);
    return false;
  }
}

export function uninstrumentOpenAI(moduleExports: unknown): boolean {
  let undone = false;
  for (const { target } of openaiTargets(moduleExports)) {
    if (unpatchMethod(target, 'create')) undone = true;
  }
  return undone;
}
