import { diag } from '@opentelemetry/api';
import type { LlmCall } from './llm-call.js';
import { observeStream } from './stream.js';
import { asDict, isThenable } from './util.js';

/** The parts of the SDKs' `APIPromise` the instrumentation observes. */
interface ApiPromiseLike {
  _thenUnwrap(transform: (data: unknown, props: unknown) => unknown): ApiPromiseLike;
  asResponse(): Promise<unknown>;
  parseResponse?: Parser;
  parsedPromise?: unknown;
  responsePromise?: unknown;
}

type Parser = (client: unknown, props: unknown) => unknown;
type Fail = (error: unknown) => void;

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

/**
 * Observes what the SDK's `create` returned without changing what the app sees. Where the
 * promise keeps its parser as an own `parseResponse` (openai, @anthropic-ai/sdk), the very same
 * promise is returned with that parser observed in place (`observeInPlace`); otherwise the result
 * is the SDK's own `_thenUnwrap` derivative, whose transform records the response and returns it
 * as is. Either way `.withResponse()`, `.asResponse()` and helpers that check
 * `instanceof APIPromise` keep working. A plain promise or value is observed as it is.
 */
export function observeResult(result: unknown, call: LlmCall, hideUsageChunk: boolean): unknown {
  const fail: Fail = (error) => call.fail(error);
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
  return observeDerived(result, call, hideUsageChunk, fail);
}

/**
 * Fails the call with the request (status errors after the SDK's retries, timeouts, aborts)
 * without parsing the body: the raw response promise (what `asResponse()` derives from) rejects.
 * Call it before `asResponse` is replaced.
 */
function failWithRequest(result: ApiPromiseLike, fail: Fail): void {
  const { responsePromise } = result;
  (isThenable(responsePromise) ? responsePromise : result.asResponse()).then(undefined, fail);
}

/**
 * `parse` observed: a parser that throws fails the call; a parsed promise that rejects fails it
 * too (the app still gets the very same promise, and its rejection); a parsed value goes to
 * `onData` when given.
 */
function observedParser(parse: Parser, call: LlmCall, fail: Fail, onData?: Fail): Parser {
  return function (this: unknown, client: unknown, props: unknown) {
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
    else onData?.(parsed);
    return parsed;
  };
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
  fail: Fail,
): void {
  let seen = false;
  const onData = (data: unknown): unknown => {
    if (!seen) {
      seen = true;
      handleData(data, call, hideUsageChunk);
    }
    return data;
  };
  const parse = result.parseResponse as Parser;
  const thenUnwrap = result._thenUnwrap;
  const asResponse = result.asResponse;
  failWithRequest(result, fail);
  result.parseResponse = observedParser(parse, call, fail, onData);
  result._thenUnwrap = function (
    this: ApiPromiseLike,
    transform: (data: unknown, props: unknown) => unknown,
  ) {
    return thenUnwrap.call(this, (data: unknown, props: unknown) => transform(onData(data), props));
  };
  result.asResponse = endingWithoutBody(asResponse, call);
}

/** Observes an `APIPromise` without an own parser through its `_thenUnwrap` derivative. */
function observeDerived(
  result: ApiPromiseLike,
  call: LlmCall,
  hideUsageChunk: boolean,
  fail: Fail,
): unknown {
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
    failWithRequest(result, fail);
  } catch (error) {
    diag.error('modelmaxx: observing request errors failed', error);
  }
  try {
    const parse = wrapped.parseResponse;
    if (typeof parse === 'function') wrapped.parseResponse = observedParser(parse, call, fail);
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
