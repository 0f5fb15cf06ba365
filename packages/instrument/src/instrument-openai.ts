import { diag } from '@opentelemetry/api';
import { openaiChatAdapter } from './openai-chat.js';
import { openaiEmbeddingsAdapter } from './openai-embeddings.js';
import { openaiResponsesAdapter } from './openai-responses.js';
import type { ApiAdapter } from './internal-types.js';
import { wrapCreate } from './patch.js';
import type { InstrumentConfig } from './types.js';
import { asDict } from './util.js';

/** Marks a patched prototype (or observed instance); `Symbol.for` so every copy of this package agrees. */
export const PATCHED = Symbol.for('modelmaxx.instrument.patched');

type AnyFunction = (this: unknown, ...args: unknown[]) => unknown;

interface PatchRecord {
  original: AnyFunction;
  config: { current: InstrumentConfig | undefined };
}

/** Replaces `target[method]` with an instrumented version; returns false when it already was. */
export function patchMethod(
  target: object,
  method: string,
  adapter: ApiAdapter,
  config: InstrumentConfig | undefined,
  options: { suppressSdkTracing?: boolean; own?: boolean } = {},
): boolean {
  const holder = target as Record<string | symbol, unknown>;
  const original = holder[method];
  if (typeof original !== 'function') return false;
  const marks = (
    Object.prototype.hasOwnProperty.call(holder, PATCHED) ? holder[PATCHED] : undefined
  ) as Record<string, PatchRecord> | undefined;
  const existing = marks?.[method];
  if (existing !== undefined) {
    if (config !== undefined) existing.config.current = config;
    return false;
  }
  const record: PatchRecord = { original: original as AnyFunction, config: { current: config } };
  const wrapped = wrapCreate(original as AnyFunction, {
    adapter,
    config: () => record.config.current,
    ...(options.suppressSdkTracing === true ? { suppressSdkTracing: true } : {}),
  });
  Object.defineProperty(wrapped, 'name', { value: (original as AnyFunction).name });
  Object.defineProperty(holder, method, {
    value: wrapped,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  if (marks === undefined) {
    Object.defineProperty(holder, PATCHED, {
      value: { [method]: record },
      configurable: true,
      enumerable: false,
    });
  } else marks[method] = record;
  return true;
}

/** Undoes `patchMethod` (tests, and apps that want to switch instrumentation off). */
export function unpatchMethod(target: object, method: string): boolean {
  const holder = target as Record<string | symbol, unknown>;
  if (!Object.prototype.hasOwnProperty.call(holder, PATCHED)) return false;
  const marks = holder[PATCHED] as Record<string, PatchRecord>;
  const record = marks[method];
  if (record === undefined) return false;
  Object.defineProperty(holder, method, {
    value: record.original,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  delete marks[method];
  return true;
}

/** The SDK's client class in an ESM namespace (`OpenAI`, `default`) or CJS exports (the class itself). */
export function findClientClass(
  moduleExports: unknown,
  name: string,
): Record<string, unknown> | undefined {
  const candidates: unknown[] = [];
  const mod = moduleExports as Record<string, unknown> | undefined;
  if (typeof moduleExports === 'function' || asDict(moduleExports) !== undefined) {
    candidates.push(mod?.[name], mod?.['default'], asDict(mod?.['default'])?.[name], moduleExports);
  }
  for (const candidate of candidates) {
    if (typeof candidate === 'function') return candidate as unknown as Record<string, unknown>;
  }
  return undefined;
}

function prototypeOf(value: unknown): object | undefined {
  if (typeof value !== 'function') return undefined;
  const proto = (value as { prototype?: unknown }).prototype;
  return typeof proto === 'object' && proto !== null ? proto : undefined;
}

export function openaiTargets(moduleExports: unknown): { target: object; adapter: ApiAdapter }[] {
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
