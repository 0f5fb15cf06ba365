/**
 * `@modelmaxx/instrument/instrumentation`: the instrumentation as an OpenTelemetry
 * `InstrumentationBase`, for apps that list their instrumentations in their own SDK
 * (`new NodeSDK({ instrumentations: [new ModelmaxxInstrumentation()] })`,
 * `registerInstrumentations`). Its module definitions (openai, @anthropic-ai/sdk, each with the
 * supported version range) patch with the same functions as `register`, `auto` and
 * `instrumentOpenAI` / `instrumentAnthropic`, so a call is still recorded once whichever
 * combination an app uses. A subpath of its own: `@opentelemetry/instrumentation` is loaded only
 * by apps that use it, not by the zero-code set-up.
 */
import type { TracerProvider } from '@opentelemetry/api';
import {
  InstrumentationBase,
  InstrumentationNodeModuleDefinition,
} from '@opentelemetry/instrumentation';
import type { InstrumentationConfig } from '@opentelemetry/instrumentation';
import { INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION } from './config.js';
import { INSTRUMENTED_SDKS } from './sdks.js';
import type { InstrumentConfig } from './types.js';

/** `InstrumentationBase`'s options (`enabled`) and ours (`InstrumentConfig` without the provider, which the SDK sets). */
export type ModelmaxxInstrumentationConfig = InstrumentationConfig &
  Omit<InstrumentConfig, 'tracerProvider'>;

/** The fields of our config the patched methods read from this instrumentation's config. */
const PATCH_CONFIG_KEYS = [
  'captureMessageContent',
  'redact',
  'evaluators',
  'builtinEvaluators',
  'catalog',
] as const satisfies readonly (keyof InstrumentConfig)[];

export class ModelmaxxInstrumentation extends InstrumentationBase<ModelmaxxInstrumentationConfig> {
  /**
   * The config the patched methods read (one object, changed in place: the per-call resolver sees
   * a changed field and resolves again). Created on first use: `InstrumentationBase`'s
   * constructor calls `init()` and `enable()` before this class's fields exist.
   */
  private patchConfigObject: InstrumentConfig | undefined;

  constructor(config: ModelmaxxInstrumentationConfig = {}) {
    super(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION, config);
  }

  override setTracerProvider(tracerProvider: TracerProvider): void {
    super.setTracerProvider(tracerProvider);
    this.patchConfig().tracerProvider = tracerProvider;
  }

  override setConfig(config: ModelmaxxInstrumentationConfig): void {
    super.setConfig(config);
    if (this.patchConfigObject !== undefined) this.fillPatchConfig(this.patchConfigObject);
  }

  protected init(): InstrumentationNodeModuleDefinition[] {
    return INSTRUMENTED_SDKS.map(
      (sdk) =>
        new InstrumentationNodeModuleDefinition(
          sdk.packageName,
          [sdk.supportedVersions],
          (moduleExports: unknown) => {
            sdk.instrument(moduleExports, this.patchConfig());
            return moduleExports;
          },
          (moduleExports: unknown) => {
            if (moduleExports !== undefined) sdk.uninstrument(moduleExports);
          },
        ),
    );
  }

  private patchConfig(): InstrumentConfig {
    if (this.patchConfigObject === undefined) {
      this.patchConfigObject = {};
      this.fillPatchConfig(this.patchConfigObject);
    }
    return this.patchConfigObject;
  }

  private fillPatchConfig(target: InstrumentConfig): void {
    const config = this.getConfig();
    const fields = target as Record<string, unknown>;
    for (const key of PATCH_CONFIG_KEYS) {
      if (config[key] === undefined) delete fields[key];
      else fields[key] = config[key];
    }
  }
}
