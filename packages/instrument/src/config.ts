import { diag, trace } from '@opentelemetry/api';
import type { Tracer, TracerProvider } from '@opentelemetry/api';
import type { PriceCatalog } from '@modelmaxx/pricing';
import type { Evaluator, InstrumentConfig, Redactor } from './types.js';

export const INSTRUMENTATION_NAME = '@modelmaxx/instrument';
export const INSTRUMENTATION_VERSION = '0.1.0';

let globalConfig: InstrumentConfig = {};
/** Bumped whenever the global defaults change, so cached resolutions know they are stale. */
let generation = 0;

/** Sets global defaults for every instrumented client; per-patch / per-`observe` config wins over it. */
export function configureInstrumentation(config: InstrumentConfig): void {
  if (typeof config !== 'object' || config === null) {
    diag.warn('modelmaxx: configureInstrumentation expects an object; ignored');
    return;
  }
  globalConfig = { ...globalConfig, ...config };
  generation += 1;
}

/** Test hook: forget the global defaults. */
export function resetInstrumentationConfig(): void {
  globalConfig = {};
  generation += 1;
}

export interface ResolvedConfig {
  tracer: Tracer;
  captureMessageContent: boolean;
  redact: Redactor | undefined;
  evaluators: readonly Evaluator[];
  builtinEvaluators: boolean;
  catalog: PriceCatalog | undefined;
}

export function resolveConfig(local: InstrumentConfig | undefined): ResolvedConfig {
  const merged: InstrumentConfig = { ...globalConfig, ...local };
  return resolveMerged(merged, providerOf(merged));
}

function providerOf(merged: InstrumentConfig): TracerProvider {
  return merged.tracerProvider ?? trace.getTracerProvider();
}

function resolveMerged(merged: InstrumentConfig, provider: TracerProvider): ResolvedConfig {
  return {
    tracer: provider.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION),
    captureMessageContent: merged.captureMessageContent ?? captureContentFromEnv(),
    redact: typeof merged.redact === 'function' ? merged.redact : undefined,
    evaluators: Array.isArray(merged.evaluators) ? merged.evaluators : [],
    builtinEvaluators: merged.builtinEvaluators ?? true,
    catalog: merged.catalog,
  };
}

interface CachedResolution {
  generation: number;
  local: InstrumentConfig | undefined;
  /** The local config's fields when resolved: a config object changed in place is seen too. */
  fields: readonly unknown[];
  /** The provider the tracer came from (the global one can change between calls). */
  provider: TracerProvider;
  merged: InstrumentConfig;
  resolved: ResolvedConfig;
}

function fieldsOf(local: InstrumentConfig | undefined): unknown[] {
  return local === undefined
    ? []
    : [
        local.tracerProvider,
        local.captureMessageContent,
        local.redact,
        local.evaluators,
        local.builtinEvaluators,
        local.catalog,
      ];
}

function sameFields(fields: readonly unknown[], local: InstrumentConfig | undefined): boolean {
  if (local === undefined) return fields.length === 0;
  return (
    fields.length === 6 &&
    fields[0] === local.tracerProvider &&
    fields[1] === local.captureMessageContent &&
    fields[2] === local.redact &&
    fields[3] === local.evaluators &&
    fields[4] === local.builtinEvaluators &&
    fields[5] === local.catalog
  );
}

/**
 * `resolveConfig` for one patched method, cached between calls: it resolves again only when
 * `configureInstrumentation` (or `resetInstrumentationConfig`) ran, the local config changed, or
 * the tracer provider in use (the configured or the global one) is another one.
 * `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` (when no config sets
 * `captureMessageContent`) is read when the config is resolved, not at each call: a change of the
 * variable takes effect at the next `configureInstrumentation()`.
 */
export function configResolver(): (local: InstrumentConfig | undefined) => ResolvedConfig {
  let cached: CachedResolution | undefined;
  return (local) => {
    if (
      cached !== undefined &&
      cached.generation === generation &&
      cached.local === local &&
      sameFields(cached.fields, local) &&
      cached.provider === providerOf(cached.merged)
    ) {
      return cached.resolved;
    }
    const merged: InstrumentConfig = { ...globalConfig, ...local };
    const provider = providerOf(merged);
    const resolved = resolveMerged(merged, provider);
    cached = { generation, local, fields: fieldsOf(local), provider, merged, resolved };
    return resolved;
  };
}

function captureContentFromEnv(): boolean {
  const value = process.env['OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT'];
  return typeof value === 'string' && value.trim().toLowerCase() === 'true';
}
