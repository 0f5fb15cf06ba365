import { diag } from '@opentelemetry/api';
import type { LlmCall } from './llm-call.js';
import type { StreamAccumulator } from './internal-types.js';
import { asDict, guard } from './util.js';

/** Thrown into nothing: only its class name is recorded for a stream the app aborted. */
class APIUserAbortError extends Error {
  override readonly name = 'APIUserAbortError';
}

interface StreamLike {
  controller?: { signal?: AbortSignal };
  iterator?: () => AsyncIterator<unknown>;
  [Symbol.asyncIterator]?: () => AsyncIterator<unknown>;
}

/**
 * Observes an SDK `Stream` in place: the app keeps the very same object (class, `controller`,
 * `tee()`, `toReadableStream()`, helpers built on it), and every way of reading it goes through
 * one observed iterator. Both SDKs' `Stream` keep their source in an `iterator` factory that
 * `[Symbol.asyncIterator]`, `tee()` and `toReadableStream()` all use; when it is missing we fall
 * back to an own `[Symbol.asyncIterator]`.
 */
export function observeStream(
  stream: unknown,
  call: LlmCall,
  options: { hideUsageChunk: boolean },
): void {
  const target = stream as StreamLike;
  const accumulator = call.adapter.accumulator();
  const signal = target.controller?.signal;
  const observing = (iterate: () => AsyncIterator<unknown>) =>
    function observedIterator(this: unknown) {
      return observeIterator(iterate.call(this), call, accumulator, signal, options.hideUsageChunk);
    };
  if (typeof target.iterator === 'function') {
    target.iterator = observing(target.iterator);
    return;
  }
  const original = target[Symbol.asyncIterator];
  if (typeof original !== 'function') {
    diag.warn('modelmaxx: streamed result is not iterable; span ended without a body');
    call.endWithoutBody();
    return;
  }
  Object.defineProperty(target, Symbol.asyncIterator, {
    configurable: true,
    writable: true,
    value: observing(original),
  });
}

function observeIterator(
  source: AsyncIterator<unknown>,
  call: LlmCall,
  accumulator: StreamAccumulator,
  signal: AbortSignal | undefined,
  hideUsageChunk: boolean,
): AsyncIterator<unknown> & AsyncIterable<unknown> {
  const summary = () => guard('summarizing the stream', () => accumulator.summary());
  const iterator: AsyncIterator<unknown> & AsyncIterable<unknown> = {
    async next() {
      for (;;) {
        let result: IteratorResult<unknown>;
        try {
          result = await source.next();
        } catch (error) {
          call.fail(error, summary());
          throw error;
        }
        if (result.done === true) {
          if (signal?.aborted === true)
            call.fail(new APIUserAbortError('stream aborted'), summary());
          else {
            const finished = summary();
            if (finished !== undefined) call.succeed(finished, undefined);
            else call.endWithoutBody();
          }
          return result;
        }
        const item = result.value;
        let hide = false;
        guard('observing a stream chunk', () => {
          call.markChunk();
          accumulator.add(item);
          if (hideUsageChunk) {
            if (call.adapter.isUsageOnlyChunk?.(item) === true) hide = true;
            else {
              // We asked for usage, so every chunk carries `usage: null`; the app did not ask for it.
              const chunk = asDict(item);
              if (chunk !== undefined && chunk['usage'] === null) delete chunk['usage'];
            }
          }
        });
        if (!hide) return result;
      }
    },
    async return(value?: unknown) {
      // The app stopped reading (`break`, `toReadableStream().cancel()`): the span ends with what arrived.
      if (!call.isEnded()) {
        const partial = summary();
        if (partial !== undefined) call.succeed(partial, undefined, { evaluate: false });
        else call.endWithoutBody();
      }
      if (typeof source.return === 'function') return source.return(value);
      return { done: true, value };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  if (typeof source.throw === 'function') {
    const sourceThrow = source.throw.bind(source);
    iterator.throw = async (error?: unknown) => {
      call.fail(error, summary());
      return sourceThrow(error);
    };
  }
  return iterator;
}
