import { diag } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { OtlpProtocol } from './env.js';

type Env = Readonly<Record<string, string | undefined>>;

const DEFAULT_TRACES_URL = 'http://localhost:4318/v1/traces';

function envString(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The URL the OTLP/HTTP trace exporter posts to, by the exporter's own rules:
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`,
 * else `http://localhost:4318/v1/traces`. Only used to name the endpoint in warnings and for the
 * crash flush; the exporter reads the variables itself.
 */
export function otlpTracesUrl(env: Env = process.env): string {
  const specific = envString(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (specific !== undefined) {
    try {
      return new URL(specific).toString();
    } catch {
      return DEFAULT_TRACES_URL;
    }
  }
  const base = envString(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (base !== undefined) {
    try {
      new URL(base);
      return `${base.endsWith('/') ? base : `${base}/`}v1/traces`;
    } catch {
      return DEFAULT_TRACES_URL;
    }
  }
  return DEFAULT_TRACES_URL;
}

interface ExportFailure {
  /** What kind of failure: one warning per kind and process. */
  kind: string;
  /** Why, in a few words, with the likely fix. */
  reason: string;
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED:
    'connection refused (is the collector running? start it with `npx modelmaxx serve`)',
  ENOTFOUND: 'host not found (check OTEL_EXPORTER_OTLP_ENDPOINT)',
  EAI_AGAIN: 'host name lookup failed (check OTEL_EXPORTER_OTLP_ENDPOINT)',
  ECONNRESET: 'connection reset by the server',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  EPIPE: 'connection closed by the server',
};

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // Node's happy-eyeballs connect reports an AggregateError of per-address errors.
  const nested = (error as { errors?: unknown }).errors;
  if (Array.isArray(nested)) {
    for (const inner of nested) {
      const innerCode = errorCode(inner);
      if (innerCode !== undefined) return innerCode;
    }
  }
  return undefined;
}

function httpReason(status: number, message: string, url: string): string {
  const text = `${status}${message === '' ? '' : ` ${message}`}`;
  if (status === 404) {
    return url.includes('/v1/traces/v1/traces')
      ? `${text} (OTEL_EXPORTER_OTLP_ENDPOINT must be the collector's base URL, e.g. http://127.0.0.1:4318, without /v1/traces)`
      : `${text} (is OTEL_EXPORTER_OTLP_ENDPOINT the collector's base URL, without /v1/traces?)`;
  }
  if (status === 401 || status === 403) {
    return `${text} (the collector wants its ingest token: OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer <token>")`;
  }
  if (status === 413) return `${text} (the batch is larger than the collector accepts)`;
  if (status === 415)
    return `${text} (the endpoint does not take OTLP; is it a modelmaxx collector?)`;
  return text;
}

/** Sorts an export error into a kind and a one-line reason. */
export function classifyExportError(error: unknown, url: string): ExportFailure {
  const code = errorCode(error);
  if (code !== undefined && Object.hasOwn(NETWORK_REASONS, code)) {
    return { kind: code, reason: NETWORK_REASONS[code] ?? code };
  }
  const message = error instanceof Error ? error.message : String(error ?? 'unknown error');
  // OTLPExporterError carries the HTTP status as a numeric `code`.
  const status = (error as { code?: unknown } | undefined)?.code;
  if (typeof status === 'number' && status >= 100 && status < 600) {
    return { kind: `http-${status}`, reason: httpReason(status, message, url) };
  }
  if (message === 'Request timed out') {
    return { kind: 'timeout', reason: 'no answer in time (collector overloaded or unreachable?)' };
  }
  if (message === 'Export failed with retryable status') {
    return {
      kind: 'retryable',
      reason: 'the collector answered 429/502/503/504 until the retries ran out (overloaded?)',
    };
  }
  if (code !== undefined) return { kind: code, reason: `${code}: ${message}` };
  return { kind: message.slice(0, 80), reason: message.split('\n')[0]?.slice(0, 200) ?? message };
}

/**
 * One short stderr line per kind of export failure and process, naming the endpoint and the
 * reason, so spans lost to a stopped collector or a wrong endpoint are not lost without a word.
 * Independent of `OTEL_LOG_LEVEL`, which keeps ruling OTel's own `diag` output.
 */
export class ExportFailureWarner {
  readonly #url: string;
  readonly #write: (line: string) => void;
  readonly #seen = new Set<string>();

  constructor(url: string, write: (line: string) => void = (line) => process.stderr.write(line)) {
    this.#url = url;
    this.#write = write;
  }

  get url(): string {
    return this.#url;
  }

  failed(error: unknown): void {
    try {
      const { kind, reason } = classifyExportError(error, this.#url);
      if (this.#seen.has(kind)) return;
      this.#seen.add(kind);
      this.#write(`modelmaxx: spans not exported to ${this.#url}: ${reason}\n`);
    } catch {
      // Telemetry never breaks the app, not even its warnings.
    }
  }
}

/**
 * The OTLP/HTTP exporter for the configured protocol, loaded with `import()` when our SDK starts:
 * only the encoding in use is loaded, and never any when the app brings its own SDK. Spans
 * handed over before it is ready wait for it. Endpoint, headers and compression are read from
 * `OTEL_EXPORTER_OTLP_[TRACES_]*` by the exporter itself. Failed exports are reported through
 * `warner` (once per kind of failure).
 */
export class DeferredOtlpExporter implements SpanExporter {
  readonly #exporter: Promise<SpanExporter | undefined>;
  readonly #warner: ExportFailureWarner | undefined;

  constructor(protocol: OtlpProtocol, timeoutMillis: number, warner?: ExportFailureWarner) {
    this.#warner = warner;
    const options = { timeoutMillis };
    const created: Promise<SpanExporter> =
      protocol === 'http/json'
        ? import('@opentelemetry/exporter-trace-otlp-http').then(
            (module) => new module.OTLPTraceExporter(options),
          )
        : import('@opentelemetry/exporter-trace-otlp-proto').then(
            (module) => new module.OTLPTraceExporter(options),
          );
    this.#exporter = created.catch((error: unknown) => {
      diag.error('modelmaxx: could not create the OTLP exporter; spans are dropped', error);
      return undefined;
    });
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const done = (result: ExportResult): void => {
      if (result.code === ExportResultCode.FAILED) this.#warner?.failed(result.error);
      resultCallback(result);
    };
    void this.#exporter.then((exporter) => {
      if (exporter === undefined) {
        done({ code: ExportResultCode.FAILED, error: new Error('no OTLP exporter') });
        return;
      }
      exporter.export(spans, done);
    });
  }

  async shutdown(): Promise<void> {
    await (await this.#exporter)?.shutdown();
  }

  async forceFlush(): Promise<void> {
    await (await this.#exporter)?.forceFlush?.();
  }
}
