import { context, diag } from '@opentelemetry/api';
import { withActiveSpan } from './active-span.js';
import { configResolver } from './config.js';
import { NO_LLM_CONTEXT, pickLlmContext } from './context.js';
import type { ApiAdapter } from './internal-types.js';
import { LlmCall } from './llm-call.js';
import { observeStream } from './stream.js';
import type { InstrumentConfig, LlmContextAttributes } from './types.js';
import { asDict } from './util.js';
import type { Dict } from './util.js';

/** Per-call app context: `{ modelmaxx: { task, feature, userId, conversationId } }` in the SDK's request options. */
export const REQUEST_OPTION_KEY = 'modelmaxx';

type AnyFunction = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Shared by every copy of this package in the process: while one instrumented layer is inside
 * an SDK call, inner layers (prototype patch under `observe()`, a second copy of the package)
 * pass straight through, so a call gets exactly one span.
 */
const state = ((globalThis as Record<symbol, unknown>)[Symbol.for('modelmaxx.instrument.state')] ??=
  {
    depth: 0,
  }) as { depth: number };

export function insideInstrumentedCall(): boolean {
  return state.depth > 0;
}

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

interface ApiPromiseLike {
  _thenUnwrap(transform: (data: unknown, props: unknown) => unknown): ApiPromiseLike;
  asResponse(): Promise<unknown>;
  parseResponse?: (client: unknown, props: unknown) => unknown;
  parsedPromise?: unknown;
}

function isApiPromise(value: unknown): value is ApiPromiseLike {
  const candidate = asDict(value);
  return (
    candidate !== undefined &&
    typeof candidate['_thenUnwrap'] === 'function' &&
    typeof candidate['asResponse'] === 'function'
  );
}

function handleData(data: unknown, call: LlmCall, hideUsageChunk: boolean): void {
  try {
    if (call.stream && asDict(data) !== undefined && 'controller' in (data as object)) {
      observeStream(data, call, { hideUsageChunk });
    } else {
      call.succeed(call.adapter.summarize(data, call.config.captureMessageContent), data);
    }
  } catch (error) {
    diag.error('modelmaxx: observing the response failed', error);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}

/**
 * Observes the SDK's `APIPromise` without changing what the app sees. Where the promise keeps its
 * parser as an own `parseResponse` (openai, @anthropic-ai/sdk), the very same promise is returned
 * with that parser observed in place (`observeInPlace`); otherwise the result is the SDK's own
 * `_thenUnwrap` derivative, whose transform records the response and returns it as is. Either way
 * `.withResponse()`, `.asResponse()` and helpers that check `instanceof APIPromise` keep working.
 */
function observeResult(result: unknown, call: LlmCall, hideUsageChunk: boolean): unknown {
  const fail = (error: unknown): void => call.fail(error);
  if (!isApiPromise(result)) {
    try {
      if (isThenable(result)) {
        result.then((data) => handleData(data, call, hideUsageChunk), fail);
      } else {
        handleData(result, call, hideUsageChunk);
      }
    } catch (error) {
      diag.error('modelmaxx: observing a plain promise failed', error);
    }
    return result;
  }
  if (typeof result.parseResponse === 'function') {
    try {
      observeInPlace(result, call, hideUsageChunk, fail);
      return result;
    } catch (error) {
      diag.error('modelmaxx: could not observe the response in place', error);
    }
  }
  let wrapped: ApiPromiseLike;
  try {
    wrapped = result._thenUnwrap((data) => {
      handleData(data, call, hideUsageChunk);
      return data;
    });
  } catch (error) {
    diag.error('modelmaxx: could not observe the response', error);
    call.endWithoutBody();
    return result;
  }
  try {
    // Fails with the call (status errors after the SDK's retries, timeouts, aborts) without
    // parsing the body: the raw response promise (what `asResponse()` derives from) rejects.
    const responsePromise = (result as { responsePromise?: unknown }).responsePromise;
    (isThenable(responsePromise) ? responsePromise : result.asResponse()).then(undefined, fail);
  } catch (error) {
    diag.error('modelmaxx: observing request errors failed', error);
  }
  try {
    const parse = wrapped.parseResponse;
    if (typeof parse === 'function') {
      wrapped.parseResponse = function (this: unknown, client: unknown, props: unknown) {
        let parsed: unknown;
        try {
          parsed = parse.call(this, client, props);
        } catch (error) {
          call.fail(error);
          throw error;
        }
        // Body errors fail the call; the app still gets the very same promise (and its rejection).
        if (isThenable(parsed)) parsed.then(undefined, fail);
        return parsed;
      };
    }
  } catch (error) {
    diag.error('modelmaxx: observing body errors failed', error);
  }
  try {
    wrapped.asResponse = endingWithoutBody(wrapped.asResponse, call);
  } catch (error) {
    diag.error('modelmaxx: observing asResponse failed', error);
  }
  return wrapped;
}

/**
 * Observes an `APIPromise` in place: its own parser records the response (or the body error),
 * `_thenUnwrap` (which SDK helpers such as `parse()` and `stream()` use, and which may parse with
 * a parser of its own) records the response before the helper's transform, and the raw response
 * promise records request errors. Each response is recorded once, whichever path parsed it.
 */
function observeInPlace(
  result: ApiPromiseLike,
  call: LlmCall,
  hideUsageChunk: boolean,
  fail: (error: unknown) => void,
): void {
  let seen = false;
  const onData = (data: unknown): unknown => {
    if (!seen) {
      seen = true;
      handleData(data, call, hideUsageChunk);
    }
    return data;
  };
  const parse = result.parseResponse as (client: unknown, props: unknown) => unknown;
  const thenUnwrap = result._thenUnwrap;
  const asResponse = result.asResponse;
  // Fails with the call (status errors after the SDK's retries, timeouts, aborts) without
  // parsing the body: the raw response promise (what `asResponse()` derives from) rejects.
  const responsePromise = (result as { responsePromise?: unknown }).responsePromise;
  (isThenable(responsePromise) ? responsePromise : asResponse.call(result)).then(undefined, fail);
  result.parseResponse = function (this: unknown, client: unknown, props: unknown) {
    let parsed: unknown;
    try {
      parsed = parse.call(this, client, props);
    } catch (error) {
      call.fail(error);
      throw error;
    }
    // Observed on a side branch, so the app's own chain gets the parser's promise as is (no
    // extra hop); the branch's reactions run first, so the span is recorded (or the stream
    // observed) before the app sees the result.
    if (isThenable(parsed)) parsed.then(onData, fail);
    else onData(parsed);
    return parsed;
  };
  result._thenUnwrap = function (
    this: ApiPromiseLike,
    transform: (data: unknown, props: unknown) => unknown,
  ) {
    return thenUnwrap.call(this, (data: unknown, props: unknown) => transform(onData(data), props));
  };
  result.asResponse = endingWithoutBody(asResponse, call);
}

/**
 * `asResponse` that ends the call without a body when the raw response is read before any
 * parse: the same rule as the SDKs' own tracing (such a response may never be parsed).
 */
function endingWithoutBody(
  asResponse: ApiPromiseLike['asResponse'],
  call: LlmCall,
): ApiPromiseLike['asResponse'] {
  return function (this: ApiPromiseLike) {
    const parseStarted = this.parsedPromise !== undefined;
    const response = asResponse.call(this);
    if (!parseStarted) {
      response.then(
        () => call.endWithoutBody(),
        () => undefined,
      );
    }
    return response;
  };
}
