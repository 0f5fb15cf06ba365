import { diag } from '@opentelemetry/api';
import { anthropicMessagesAdapter } from './anthropic-messages.js';
import {
  findClientClass,
  patchMethod,
  prototypeOf,
  unpatchMethod,
  withoutSdkTracing,
} from './patch.js';
import type { InstrumentConfig } from './types.js';
import { asDict } from './util.js';
import type { AnyFunction } from './util.js';

const STREAM_PATCHED = Symbol.for('modelmaxx.instrument.patched.stream');

function messagesPrototype(moduleExports: unknown): object | undefined {
  return prototypeOf(findClientClass(moduleExports, 'Anthropic')?.['Messages']);
}

/**
 * `messages.stream()` starts the SDK's own span before it calls `create()`; we switch the SDK's
 * tracing off for that synchronous start, and our patched `create()` makes the one span.
 */
export function patchStreamHelper(target: object): boolean {
  const holder = target as Record<string | symbol, unknown>;
  if (Object.prototype.hasOwnProperty.call(holder, STREAM_PATCHED)) return false;
  const original = holder['stream'];
  if (typeof original !== 'function') return false;
  const wrapped = function stream(this: unknown, ...args: unknown[]): unknown {
    const client = asDict(asDict(this)?.['_client']);
    return withoutSdkTracing(client, () => (original as AnyFunction).apply(this, args));
  };
  Object.defineProperty(holder, 'stream', { value: wrapped, writable: true, configurable: true });
  Object.defineProperty(holder, STREAM_PATCHED, { value: original, configurable: true });
  return true;
}

function unpatchStreamHelper(target: object): boolean {
  const holder = target as Record<string | symbol, unknown>;
  if (!Object.prototype.hasOwnProperty.call(holder, STREAM_PATCHED)) return false;
  Object.defineProperty(holder, 'stream', {
    value: holder[STREAM_PATCHED],
    writable: true,
    configurable: true,
  });
  delete holder[STREAM_PATCHED];
  return true;
}

/**
 * Patches one loaded copy of `@anthropic-ai/sdk`: `messages.create` (and so `parse()`) and
 * `messages.stream`. The SDK's own OpenTelemetry span is suppressed for the calls we trace, so
 * each call has exactly one span, ours. Idempotent; returns whether it patched anything now.
 */
export function instrumentAnthropic(moduleExports: unknown, config?: InstrumentConfig): boolean {
  try {
    const proto = messagesPrototype(moduleExports);
    if (proto === undefined) {
      diag.warn(
        'modelmaxx: instrumentAnthropic: no Anthropic client class found in the given module',
      );
      return false;
    }
    const created = patchMethod(proto, 'create', anthropicMessagesAdapter, config, {
      suppressSdkTracing: true,
    });
    const streamed = patchStreamHelper(proto);
    return created || streamed;
  } catch (error) {
    diag.error('modelmaxx: instrumentAnthropic failed', error);
    return false;
  }
}

export function uninstrumentAnthropic(moduleExports: unknown): boolean {
  const proto = messagesPrototype(moduleExports);
  if (proto === undefined) return false;
  const a = unpatchMethod(proto, 'create');
  const b = unpatchStreamHelper(proto);
  return a || b;
}
