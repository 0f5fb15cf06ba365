import { INVALID_SPAN_CONTEXT, trace } from '@opentelemetry/api';
import type { Context, Span } from '@opentelemetry/api';

/**
 * The key the OTel API keeps the active span under, learnt through the public API: `setSpan`
 * stores the span with `setValue`, so a context that records the key it is given finds it.
 */
function findSpanKey(): symbol | undefined {
  let found: symbol | undefined;
  const probe: Context = {
    getValue: () => undefined,
    setValue(key) {
      found = key;
      return probe;
    },
    deleteValue: () => probe,
  };
  try {
    trace.setSpan(probe, trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
  } catch {
    // An API that does not set spans this way: `withActiveSpan` falls back to `trace.setSpan`.
    return undefined;
  }
  return found;
}

const SPAN_KEY = findSpanKey();

/**
 * `parent` with `span` as the active span, as `trace.setSpan(parent, span)` gives, without
 * copying the parent's values: the API's own contexts copy their whole map (and make three
 * closures) on every `setValue`, which costs an LLM call about 3 µs. Reads fall through to
 * the parent; writes make a real API context first, so every context stays immutable.
 */
class ActiveSpanContext implements Context {
  readonly #parent: Context;
  readonly #span: Span;

  constructor(parent: Context, span: Span) {
    this.#parent = parent;
    this.#span = span;
  }

  getValue(key: symbol): unknown {
    return key === SPAN_KEY ? this.#span : this.#parent.getValue(key);
  }

  setValue(key: symbol, value: unknown): Context {
    return trace.setSpan(this.#parent, this.#span).setValue(key, value);
  }

  deleteValue(key: symbol): Context {
    return trace.setSpan(this.#parent, this.#span).deleteValue(key);
  }
}

/** `parent` with `span` active (see `ActiveSpanContext`). */
export function withActiveSpan(parent: Context, span: Span): Context {
  return SPAN_KEY === undefined ? trace.setSpan(parent, span) : new ActiveSpanContext(parent, span);
}
