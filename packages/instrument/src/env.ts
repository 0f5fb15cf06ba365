import { diag } from '@opentelemetry/api';
import type { DiagLogLevel } from '@opentelemetry/api';
import { diagLogLevelFromString } from '@opentelemetry/core';

/** OTLP wire encodings the zero-code set-up can export with. */
export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** `OTEL_TRACES_EXPORTER`: where our SDK sends spans. */
export type TracesExporterSetting = 'otlp' | 'console' | 'none';

/** Sampling as read from `OTEL_TRACES_SAMPLER` / `MODELMAXX_SAMPLE_RATIO`. */
export type SamplerSetting =
  | { kind: 'always_on' }
  | { kind: 'always_off' }
  | { kind: 'ratio'; ratio: number; parentBased: boolean }
  | { kind: 'parentbased_always_on' }
  | { kind: 'parentbased_always_off' };

/**
 * What the zero-code set-up (`register`, `auto`) reads from the environment.
 * Endpoint, headers, timeout and compression of the exporter are read by the
 * OTel OTLP exporter itself (`OTEL_EXPORTER_OTLP_[TRACES_]*`), so they are not
 * repeated here; service name and resource attributes go through the
 * resources package's `envDetector`; the price override file (`MODELMAXX_PRICES`) is read by the
 * instrumentation's default catalog.
 */
export interface SetupConfig {
  /** `OTEL_SDK_DISABLED=true`: patch nothing, start nothing. */
  readonly disabled: boolean;
  /** `OTEL_TRACES_EXPORTER`: `otlp` (default), `console` (spans printed to stdout), `none` (our SDK never starts). */
  readonly tracesExporter: TracesExporterSetting;
  /** `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf`. */
  readonly protocol: OtlpProtocol;
  /** Upper bound on the flush at exit and on SIGTERM (`MODELMAXX_FLUSH_TIMEOUT_MS`, default 2000). */
  readonly flushTimeoutMs: number;
  /** Exporter request timeout: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT`, else the flush timeout. */
  readonly exportTimeoutMs: number;
  /** `MODELMAXX_EVALUATORS=none` turns the built-in evaluators off, `builtin` on; undefined = library default (on). */
  readonly builtinEvaluators: boolean | undefined;
  /** `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`; undefined = library default (off). */
  readonly captureMessageContent: boolean | undefined;
  readonly sampler: SamplerSetting;
  /** `OTEL_LOG_LEVEL` (`none`, `error`, `warn`, `info`, `debug`, `verbose`, `all`): where `diag` goes to the console. */
  readonly logLevel: DiagLogLevel | undefined;
}

export const DEFAULT_FLUSH_TIMEOUT_MS = 2000;

type Env = Readonly<Record<string, string | undefined>>;

function stringFrom(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/** OTel's boolean rule: only a case-insensitive `true` is true; anything else but empty warns. */
export function booleanFrom(env: Env, name: string): boolean | undefined {
  const value = stringFrom(env, name)?.toLowerCase();
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value !== 'false') diag.warn(`modelmaxx: ${name}=${value} is not true or false; using false`);
  return false;
}

function positiveIntegerFrom(env: Env, name: string): number | undefined {
  const raw = stringFrom(env, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (Number.isFinite(value) && value > 0) return Math.round(value);
  diag.warn(`modelmaxx: ${name}=${raw} is not a positive number; ignoring it`);
  return undefined;
}

function protocolFrom(env: Env): OtlpProtocol {
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const value = stringFrom(env, name)?.toLowerCase();
    if (value === undefined) continue;
    if (value === 'http/protobuf' || value === 'http/json') return value;
    diag.warn(
      `modelmaxx: ${name}=${value} is not supported (http/protobuf, http/json); using http/protobuf`,
    );
    return 'http/protobuf';
  }
  return 'http/protobuf';
}

function tracesExporterFrom(env: Env): TracesExporterSetting {
  const raw = stringFrom(env, 'OTEL_TRACES_EXPORTER')?.toLowerCase();
  if (raw === undefined) return 'otlp';
  // A list is allowed by the spec; we send to the first exporter we support.
  for (const name of raw.split(',').map((part) => part.trim())) {
    if (name === 'otlp' || name === 'console' || name === 'none') return name;
  }
  diag.warn(
    `modelmaxx: OTEL_TRACES_EXPORTER=${raw} is not supported (otlp, console, none); using otlp`,
  );
  return 'otlp';
}

function ratioFrom(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (Number.isFinite(value) && value >= 0 && value <= 1) return value;
  diag.warn(`modelmaxx: ${name}=${raw} is not a ratio in [0, 1]; ignoring it`);
  return undefined;
}

function samplerFrom(env: Env): SamplerSetting {
  const modelmaxxRatio = ratioFrom(
    stringFrom(env, 'MODELMAXX_SAMPLE_RATIO'),
    'MODELMAXX_SAMPLE_RATIO',
  );
  if (modelmaxxRatio !== undefined)
    return { kind: 'ratio', ratio: modelmaxxRatio, parentBased: true };
  const sampler = stringFrom(env, 'OTEL_TRACES_SAMPLER')?.toLowerCase();
  const argument = ratioFrom(stringFrom(env, 'OTEL_TRACES_SAMPLER_ARG'), 'OTEL_TRACES_SAMPLER_ARG');
  switch (sampler) {
    case undefined:
    case 'parentbased_always_on':
      return { kind: 'parentbased_always_on' };
    case 'always_on':
      return { kind: 'always_on' };
    case 'always_off':
      return { kind: 'always_off' };
    case 'parentbased_always_off':
      return { kind: 'parentbased_always_off' };
    case 'traceidratio':
      return { kind: 'ratio', ratio: argument ?? 1, parentBased: false };
    case 'parentbased_traceidratio':
      return { kind: 'ratio', ratio: argument ?? 1, parentBased: true };
    default:
      diag.warn(
        `modelmaxx: OTEL_TRACES_SAMPLER=${sampler} is not supported; using parentbased_always_on`,
      );
      return { kind: 'parentbased_always_on' };
  }
}

function builtinEvaluatorsFrom(env: Env): boolean | undefined {
  const raw = stringFrom(env, 'MODELMAXX_EVALUATORS')?.toLowerCase();
  if (raw === undefined) return undefined;
  if (raw === 'none') return false;
  if (raw === 'builtin') return true;
  diag.warn(`modelmaxx: MODELMAXX_EVALUATORS=${raw} is not builtin or none; using builtin`);
  return true;
}

/** `OTEL_LOG_LEVEL`, read first so that the warnings about the other variables can be seen. */
export function logLevelFrom(env: Env = process.env): DiagLogLevel | undefined {
  return diagLogLevelFromString(stringFrom(env, 'OTEL_LOG_LEVEL'));
}

/** Reads the zero-code set-up's configuration; never throws (bad values warn through `diag` and fall back). */
export function readSetupConfig(env: Env = process.env): SetupConfig {
  const flushTimeoutMs =
    positiveIntegerFrom(env, 'MODELMAXX_FLUSH_TIMEOUT_MS') ?? DEFAULT_FLUSH_TIMEOUT_MS;
  const exportTimeoutMs =
    positiveIntegerFrom(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') ??
    positiveIntegerFrom(env, 'OTEL_EXPORTER_OTLP_TIMEOUT') ??
    flushTimeoutMs;
  return {
    disabled: booleanFrom(env, 'OTEL_SDK_DISABLED') ?? false,
    tracesExporter: tracesExporterFrom(env),
    protocol: protocolFrom(env),
    flushTimeoutMs,
    exportTimeoutMs,
    builtinEvaluators: builtinEvaluatorsFrom(env),
    captureMessageContent: booleanFrom(env, 'OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT'),
    sampler: samplerFrom(env),
    logLevel: logLevelFrom(env),
  };
}
