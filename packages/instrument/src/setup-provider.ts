import { context, diag, trace } from '@opentelemetry/api';
import type {
  Context,
  Span,
  SpanOptions,
  Tracer,
  TracerOptions,
  TracerProvider as ApiTracerProvider,
} from '@opentelemetry/api';

/** A tracer provider the SDK set-up can start on demand, or undefined when it cannot (or must not). */
export type ProviderStarter = () => ApiTracerProvider | undefined;

/**
 * Whether some tracer provider is registered globally: by this copy of `@opentelemetry/api` or by
 * another one (the ESM and the CJS build of the API share one global slot, but each has its own
 * unregistered proxy, so `instanceof` and identity checks do not work across copies).
 */
export function isGlobalTracerProviderRegistered(probeName: string): boolean {
  const provider = trace.getTracerProvider() as ApiTracerProvider & {
    getDelegateTracer?: (name: string) => Tracer | undefined;
  };
  if (typeof provider.getDelegateTracer !== 'function') return true; // not a proxy: someone's own provider
  return provider.getDelegateTracer(probeName) !== undefined;
}

/**
 * The provider our instrumentation asks for tracers. It decides only when the first span starts:
 * if the app (or anyone) has registered a global tracer provider by then, ours is never created
 * and every span goes to theirs; otherwise it starts our SDK once, registers it globally and uses it.
 * This is what lets `import '@modelmaxx/instrument/auto'` come before the app's own `NodeSDK.start()`.
 */
export class DeferredTracerProvider implements ApiTracerProvider {
  readonly #start: ProviderStarter;
  #resolved: ApiTracerProvider | undefined;
  readonly #tracers = new Map<string, Tracer>();

  constructor(start: ProviderStarter) {
    this.#start = start;
  }

  getTracer(name: string, version?: string, options?: TracerOptions): Tracer {
    const key = `${name}@${version ?? ''}:${options?.schemaUrl ?? ''}`;
    let tracer = this.#tracers.get(key);
    if (tracer === undefined) {
      tracer = new DeferredTracer(this, name, version, options);
      this.#tracers.set(key, tracer);
    }
    return tracer;
  }

  /** The provider spans go to; decided on the first call and then fixed. */
  resolve(probeName: string): ApiTracerProvider {
    if (this.#resolved !== undefined) return this.#resolved;
    let resolved: ApiTracerProvider | undefined;
    if (!isGlobalTracerProviderRegistered(probeName)) {
      try {
        resolved = this.#start();
      } catch (error) {
        diag.error('modelmaxx: could not start the tracing SDK; spans are dropped', error);
      }
    }
    this.#resolved = resolved ?? trace.getTracerProvider();
    return this.#resolved;
  }

  /** True once the first span decided the provider. */
  get resolved(): boolean {
    return this.#resolved !== undefined;
  }
}

class DeferredTracer implements Tracer {
  readonly #provider: DeferredTracerProvider;
  readonly #name: string;
  readonly #version: string | undefined;
  readonly #options: TracerOptions | undefined;
  #tracer: Tracer | undefined;

  constructor(
    provider: DeferredTracerProvider,
    name: string,
    version: string | undefined,
    options: TracerOptions | undefined,
  ) {
    this.#provider = provider;
    this.#name = name;
    this.#version = version;
    this.#options = options;
  }

  #get(): Tracer {
    this.#tracer ??= this.#provider
      .resolve(this.#name)
      .getTracer(this.#name, this.#version, this.#options);
    return this.#tracer;
  }

  startSpan(name: string, options?: SpanOptions, parent?: Context): Span {
    return this.#get().startSpan(name, options, parent);
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(
    name: string,
    options: SpanOptions,
    fn: F,
  ): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(
    name: string,
    options: SpanOptions,
    parent: Context,
    fn: F,
  ): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(
    name: string,
    optionsOrFn: SpanOptions | F,
    parentOrFn?: Context | F,
    maybeFn?: F,
  ): ReturnType<F> {
    // Same argument juggling as the SDK's Tracer, expressed through startSpan so the resolved
    // tracer is asked exactly once per span.
    let options: SpanOptions | undefined;
    let parent: Context | undefined;
    let fn: F;
    if (typeof optionsOrFn === 'function') {
      fn = optionsOrFn;
    } else if (typeof parentOrFn === 'function') {
      options = optionsOrFn;
      fn = parentOrFn;
    } else {
      options = optionsOrFn;
      parent = parentOrFn;
      fn = maybeFn as F;
    }
    const parentContext = parent ?? context.active();
    const span = this.startSpan(name, options, parentContext);
    const run = fn as (span: Span) => ReturnType<F>;
    return context.with(trace.setSpan(parentContext, span), run, undefined, span);
  }
}
