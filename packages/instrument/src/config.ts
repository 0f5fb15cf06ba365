import { diag, trace } from '@opentelemetry/api';
import type { Tracer } from '@opentelemetry/api';
import type { PriceCatalog } from '@modelmaxx/pricing';
import type { Evaluator, InstrumentConfig, Redactor } from './types.js';

export const INSTRUMENTATION_NAME = '@modelmaxx/instrument';
export const INSTRUMENTATION_VERSION = '0.1.0';

let globalConfig: InstrumentConfig = {};

/** Sets global defaults for every instrumented client; per-patch / per-`observe` config wins over it. */
export function configureInstrumentation(config: InstrumentConfig): void {
  if (typeof config !== 'object' || config === null) {
    diag.warn('modelmaxx: configureInstrumentation expects an object; ignored');
    return;
  }
  globalConfig = { ...globalConfig, ...config };
}

/** Test hook: forget the global defaults. */
export function resetInstrumentationConfig(): void {
  globalConfig = {};
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
  const provider = merged.tracerProvider ?? trace.getTracerProvider();
  return {
    tracer: provider.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION),
    captureMessageContent: merged.captureMessageContent ?? captureContentFromEnv(),
    redact: typeof merged.redact === 'function' ? merged.redact : undefined,
    evaluators: Array.isArray(merged.evaluators) ? merged.evaluators : [],
    builtinEvaluators: merged.builtinEvaluators ?? true,
    catalog: merged.catalog,
  };
}

function captureContentFromEnv(): boolean {
  const value = process.env['OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT'];
  return typeof value === 'string' && value.trim().toLowerCase() === 'true';
}
