import { context, diag } from '@opentelemetry/api';
import { withActiveSpan } from './active-span.js';
import { configResolver } from './config.js';
import { NO_LLM_CONTEXT, pickLlmContext } from './context.js';
import type { ApiAdapter } from './internal-types.js';
import { observeResult } from './api-promise.js';
import { LlmCall } from './llm-call.js';
import type { InstrumentConfig, LlmContextAttributes } from './types.js';
import { asDict } from './util.js';
import type { AnyFunction, Dict } from './util.js';

/** Per-call app context: `{ modelmaxx: { task, feature, userId, conversationId } }` in the SDK's request options. */
export const REQUEST_OPTION_KEY = 'modelmaxx';

/**
 * Shared by every copy of this package in the process: while one instrumented layer is inside
 * an SDK call, inner layers (prototype patch under `observe()`, a second copy of the package)
 * pass straight through, so a call gets exactly one span.
 */
const state = ((globalThis as Record<symbol, unknown>)[Symbol.for('modelmaxx.instrument.state')] ??=
  {
    depth: 0,
  }) as { depth: number };

export interface WrapOptions {
  adapter: ApiAdapter;
  config: () => InstrumentConfig | undefined;
  /** Anthropic: switch the SDK's own tracing off for the calls we trace. */
  suppressSdkTracing?: boolean;
}

interface ClientLike {
  baseURL?: unknown;
  _tracer?: unknown;
}

function clientOf(resource: unknown): ClientLike | undefined {
  const client = asDict(resource)?.['_client'];
  return asDict(client) as ClientLike | undefined;
}

/** Whether the SDK request options carry our per-call app context (`{ modelmaxx: … }`). */
function hasOurOption(options: unknown): options is Dict {
  return typeof options === 'object' && options !== null && REQUEST_OPTION_KEY in options;
}

/** The request options without our key (the SDK must not see it), and our per-call context. */
function stripRequestOptions(options: Dict): { options: Dict; perCall: LlmContextAttributes } {
  const { [REQUEST_OPTION_KEY]: ours, ...rest } = options;
  return { options: rest, perCall: pickLlmContext(asDict(ours) ?? {}) };
}

/**
 * Runs `fn` with the SDK's own tracer of `client` switched off. `@anthropic-ai/sdk` reads
 * `client._tracer` synchronously when a call starts (its span, its traced request), so switching
 * it off for the synchronous part of the call keeps its span from being made, for this call only.
 */
export function withoutSdkTracing<T>(client: ClientLike | undefined, fn: () => T): T {
  if (client === undefined || client._tracer === undefined) return fn();
  const saved = client._tracer;
  let switched = false;
  try {
    client._tracer = undefined;
    switched = true;
  } catch (error) {
    diag.debug('modelmaxx: could not switch the SDK tracer off', error);
  }
  try {
    return fn();
  } finally {
    if (switched) client._tracer = saved;
  }
}

/** Marks a patched prototype (or observed instance); `Symbol.for` so every copy of this package agrees. */
const PATCHED = Symbol.for('modelmaxx.instrument.patched');

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
  options: { suppressSdkTracing?: boolean } = {},
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

export function prototypeOf(value: unknown): object | undefined {
  if (typeof value !== 'function') return undefined;
  const proto = (value as { prototype?: unknown }).prototype;
  return typeof proto === 'object' && proto !== null ? proto : undefined;
}

/** Wraps an SDK `create` method: one span per call, the SDK's own result returned. */
export function wrapCreate(original: AnyFunction, options: WrapOptions): AnyFunction {
  const { adapter } = options;
  const resolveConfig = configResolver();
  return function instrumentedCreate(this: unknown, ...args: unknown[]): unknown {
    if (state.depth > 0) return original.apply(this, args);
    let call: LlmCall;
    // The app's own arguments unless something has to change (our request option, stream usage).
    let callArgs = args;
    let hideUsageChunk = false;
    let client: ClientLike | undefined;
    try {
      const body = asDict(args[0]);
      if (body === undefined) return original.apply(this, args);
      client = clientOf(this);
      let perCall = NO_LLM_CONTEXT;
      if (hasOurOption(args[1])) {
        const stripped = stripRequestOptions(args[1]);
        perCall = stripped.perCall;
        callArgs = [...args];
        callArgs[1] = stripped.options;
      }
      call = new LlmCall({
        adapter,
        config: resolveConfig(options.config()),
        body,
        baseURL: client?.baseURL,
        perCall,
      });
      // Only streams are changed (usage asked for); an unsampled call goes out as the app made it.
      if (call.stream && call.span.isRecording()) {
        const prepared = adapter.prepare(body);
        hideUsageChunk = prepared.hideUsageChunk;
        if (prepared.body !== body) {
          if (callArgs === args) callArgs = [...args];
          callArgs[0] = prepared.body;
        }
      }
    } catch (error) {
      diag.error('modelmaxx: could not start span', error);
      return original.apply(this, args);
    }
    let result: unknown;
    state.depth += 1;
    try {
      const run = () =>
        context.with(withActiveSpan(call.parentContext, call.span), () =>
          original.apply(this, callArgs),
        );
      result = options.suppressSdkTracing === true ? withoutSdkTracing(client, run) : run();
    } catch (error) {
      call.fail(error);
      throw error;
    } finally {
      state.depth -= 1;
    }
    if (!call.span.isRecording()) return result;
    return observeResult(result, call, hideUsageChunk);
  };
}
