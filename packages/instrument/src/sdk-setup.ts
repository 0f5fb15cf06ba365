import * as nodeModule from 'node:module';
import { dirname } from 'node:path';
import { DiagConsoleLogger, context, diag, trace } from '@opentelemetry/api';
import type { TracerProvider as ApiTracerProvider } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  processDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { ReadableSpan, Sampler, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import { logLevelFrom, readSetupConfig } from './env.js';
import type { SamplerSetting, SetupConfig } from './env.js';
import { installCrashFlush, PendingSpans, SettlingExporter } from './setup-crash.js';
import { DeferredOtlpExporter, ExportFailureWarner, otlpTracesUrl } from './setup-exporter.js';
import { DeferredTracerProvider } from './setup-provider.js';
import { patchInstalledModules, patchOnLoad } from './setup-patch.js';
import type { PatchOutcome, PatchTarget } from './setup-patch.js';
import { configureInstrumentation } from './index.js';
import { INSTRUMENTED_SDKS } from './sdks.js';
import type { InstrumentConfig } from './types.js';

const DISTRO_NAME = '@modelmaxx/instrument';
const DISTRO_VERSION = '0.1.0';

/** What `register` / `auto` did; one per process. */
export interface SetupHandle {
  readonly config: SetupConfig;
  /** The provider our instrumentation draws tracers from (the app's own one if it registers one before the first LLM call). */
  readonly tracerProvider: ApiTracerProvider;
  /** Copies of `openai` / `@anthropic-ai/sdk` found and patched at start-up. */
  readonly patched: readonly PatchOutcome[];
  /** Settles when copies that needed `import()` are patched too. */
  readonly ready: Promise<void>;
  /** Our SDK provider, once the first span started it (undefined when the app brought its own or tracing is disabled). */
  sdkProvider(): TracerProvider | undefined;
  /** Flushes our SDK's spans, bounded by the flush timeout; never rejects. */
  flush(): Promise<void>;
}

export interface SetupOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Directories to resolve the provider SDKs from; default: `process.cwd()` and the main script's directory. */
  readonly resolveFrom?: readonly string[];
  /** Replaces the OTLP exporter (tests, benchmarks). */
  readonly exporter?: SpanExporter;
  /** Patch targets; default: openai and @anthropic-ai/sdk through instrumentOpenAI / instrumentAnthropic. */
  readonly targets?: readonly PatchTarget[];
  /**
   * Patch each SDK copy when the app loads it (a module load hook; `register` only, as it runs
   * before the app's modules load) rather than loading every copy now. Falls back to start-up
   * patching where the hook API is not available without warnings (Node < 24).
   */
  readonly patchOnLoad?: boolean;
}

type RegisterHooks = Parameters<typeof patchOnLoad>[2];

/** `module.registerHooks`, where it runs without an experimental warning (Node >= 24). */
function quietRegisterHooks(): RegisterHooks | undefined {
  const major = Number(process.versions.node.split('.')[0]);
  if (!(major >= 24)) return undefined;
  const candidate = (nodeModule as { registerHooks?: unknown }).registerHooks;
  return typeof candidate === 'function' ? (candidate as RegisterHooks) : undefined;
}

const HANDLE_KEY = Symbol.for('modelmaxx.instrument.setup');
type GlobalWithHandle = typeof globalThis & { [HANDLE_KEY]?: SetupHandle };

function samplerFor(setting: SamplerSetting): Sampler {
  switch (setting.kind) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'ratio': {
      const root = new TraceIdRatioBasedSampler(setting.ratio);
      return setting.parentBased ? new ParentBasedSampler({ root }) : root;
    }
  }
}

function withTimeout(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      diag.warn(`modelmaxx: span flush did not finish within ${timeoutMs} ms; spans may be lost`);
      resolve();
    }, timeoutMs);
    timer.unref();
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        diag.warn('modelmaxx: span flush failed', error);
        resolve();
      },
    );
  });
}

/** Notes whether spans ended since the last flush, so `beforeExit` flushes once and does not loop. */
class DirtyTracker implements SpanProcessor {
  dirty = false;
  onStart(): void {}
  onEnd(_span: ReadableSpan): void {
    this.dirty = true;
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

interface StartedSdk {
  readonly provider: TracerProvider;
  flush(): Promise<void>;
}

function installExitHooks(sdk: StartedSdk, tracker: DirtyTracker): void {
  process.on('beforeExit', () => {
    // The app is done; flushing adds work to the loop, after which beforeExit fires again with
    // nothing new to send, so the process then exits as it would have.
    if (!tracker.dirty) return;
    tracker.dirty = false;
    void sdk.flush();
  });
  const onSigterm = (): void => {
    void sdk.flush().then(() => {
      // Keep the default behaviour (terminate by the signal) unless the app handles SIGTERM itself.
      if (process.listenerCount('SIGTERM') > 1) return;
      process.removeListener('SIGTERM', onSigterm);
      process.kill(process.pid, 'SIGTERM');
    });
  };
  process.on('SIGTERM', onSigterm);
}

function startSdk(
  config: SetupConfig,
  env: Readonly<Record<string, string | undefined>>,
  exporterOverride: SpanExporter | undefined,
): StartedSdk | undefined {
  const otlp = exporterOverride === undefined && config.tracesExporter === 'otlp';
  const url = otlpTracesUrl(env);
  const warner = otlp ? new ExportFailureWarner(url) : undefined;
  const pending = otlp ? new PendingSpans() : undefined;
  let exporter =
    exporterOverride ??
    (config.tracesExporter === 'console'
      ? new ConsoleSpanExporter()
      : new DeferredOtlpExporter(config.protocol, config.exportTimeoutMs, warner));
  if (pending !== undefined) exporter = new SettlingExporter(exporter, pending);
  const tracker = new DirtyTracker();
  const resource = defaultResource()
    .merge(detectResources({ detectors: [hostDetector, processDetector] }))
    .merge(
      resourceFromAttributes({
        'telemetry.distro.name': DISTRO_NAME,
        'telemetry.distro.version': DISTRO_VERSION,
      }),
    )
    // OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win over everything detected.
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new TracerProvider({
    resource,
    sampler: samplerFor(config.sampler),
    spanProcessors: [
      tracker,
      ...(pending === undefined ? [] : [pending]),
      new BatchSpanProcessor({ exporter, exportTimeoutMillis: config.exportTimeoutMs }),
    ],
  });
  if (!trace.setGlobalTracerProvider(provider)) {
    diag.warn('modelmaxx: a global tracer provider appeared while starting ours; using theirs');
    void provider.shutdown();
    return undefined;
  }
  registerContextManagerIfNone();
  const sdk: StartedSdk = {
    provider,
    flush: () => withTimeout(provider.forceFlush(), config.flushTimeoutMs),
  };
  installExitHooks(sdk, tracker);
  if (pending !== undefined) {
    installCrashFlush(pending, {
      url,
      protocol: config.protocol,
      env,
      timeoutMs: config.flushTimeoutMs,
      ...(warner === undefined ? {} : { warner }),
    });
  }
  diag.debug(`modelmaxx: tracing SDK started (${config.tracesExporter}, ${config.protocol})`);
  return sdk;
}

/** The global slot of `@opentelemetry/api` 1.x, shared by every copy of the API in the process. */
const API_GLOBAL_KEY = Symbol.for('opentelemetry.js.api.1');

/** Whether some copy of the API has a global context manager registered. */
function globalContextManagerRegistered(): boolean {
  const slot = (globalThis as Record<symbol, unknown>)[API_GLOBAL_KEY];
  return (
    typeof slot === 'object' && slot !== null && 'context' in slot && slot.context !== undefined
  );
}

/**
 * Registers an `AsyncLocalStorage` context manager unless one is registered already (the app's
 * own SDK keeps its own). Done at set-up time, not when the first span starts our SDK: context the
 * app sets around its first LLM call (`withLlmContext`) must already propagate.
 */
function registerContextManagerIfNone(): void {
  if (globalContextManagerRegistered()) return;
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(contextManager)) contextManager.disable();
}

/** openai and @anthropic-ai/sdk, each patched through the same functions `observe()` relies on. */
function defaultPatchTargets(): PatchTarget[] {
  return INSTRUMENTED_SDKS.map((sdk) => ({
    packageName: sdk.packageName,
    patch: (moduleExports) => sdk.instrument(moduleExports),
  }));
}

function configureFromSetup(config: SetupConfig, tracerProvider: ApiTracerProvider): void {
  const instrumentConfig: InstrumentConfig = { tracerProvider };
  if (config.captureMessageContent !== undefined) {
    instrumentConfig.captureMessageContent = config.captureMessageContent;
  }
  if (config.builtinEvaluators !== undefined) {
    instrumentConfig.builtinEvaluators = config.builtinEvaluators;
  }
  configureInstrumentation(instrumentConfig);
}

function defaultResolveDirectories(): string[] {
  const directories = [process.cwd()];
  const main = process.argv[1];
  if (main !== undefined && main !== '') {
    const mainDirectory = dirname(main);
    if (!directories.includes(mainDirectory)) directories.push(mainDirectory);
  }
  return directories;
}

/**
 * The one implementation behind `register`, `auto` and (through the shared patch) `observe`:
 * reads `OTEL_*` / `MODELMAXX_*`, configures the instrumentation, patches the CJS and the ESM copy
 * of each provider SDK the app has, and prepares an SDK that starts with the first LLM span unless
 * the app registered its own tracer provider by then. Idempotent per process; never throws.
 */
export function setupInstrumentation(options: SetupOptions = {}): SetupHandle {
  const holder = globalThis as GlobalWithHandle;
  const existing = holder[HANDLE_KEY];
  if (existing !== undefined) return existing;

  const env = options.env ?? process.env;
  const logLevel = logLevelFrom(env);
  if (logLevel !== undefined) {
    diag.setLogger(new DiagConsoleLogger(), { logLevel, suppressOverrideMessage: true });
  }
  const config = readSetupConfig(env);
  let sdk: StartedSdk | undefined;
  const tracerProvider = new DeferredTracerProvider(() => {
    if (config.disabled) return undefined;
    if (config.tracesExporter === 'none' && options.exporter === undefined) {
      diag.info('modelmaxx: OTEL_TRACES_EXPORTER=none; not starting a tracing SDK');
      return undefined;
    }
    sdk = startSdk(config, env, options.exporter);
    return sdk?.provider;
  });
  let patched: PatchOutcome[] = [];
  let ready = Promise.resolve();
  if (config.disabled) {
    diag.info('modelmaxx: OTEL_SDK_DISABLED=true; not instrumenting');
  } else {
    try {
      registerContextManagerIfNone();
      configureFromSetup(config, tracerProvider);
      const targets = options.targets ?? defaultPatchTargets();
      const directories = options.resolveFrom ?? defaultResolveDirectories();
      const onLoad =
        options.patchOnLoad === true
          ? patchOnLoad(targets, directories, quietRegisterHooks())
          : { registered: false, outcomes: [] };
      if (onLoad.registered) {
        patched = onLoad.outcomes; // grows as the app loads the SDKs
      } else {
        const result = patchInstalledModules(targets, directories);
        patched = result.outcomes;
        ready = result.pending.then((later) => {
          patched.push(...later);
        });
      }
    } catch (error) {
      diag.error('modelmaxx: instrumentation set-up failed; the app runs uninstrumented', error);
    }
  }
  const handle: SetupHandle = {
    config,
    tracerProvider,
    patched,
    ready,
    sdkProvider: () => sdk?.provider,
    flush: () => sdk?.flush() ?? Promise.resolve(),
  };
  holder[HANDLE_KEY] = handle;
  return handle;
}
