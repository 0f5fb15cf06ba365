import { diag } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { OtlpProtocol } from './env.js';

/**
 * The OTLP/HTTP exporter for the configured protocol, loaded with `import()` when our SDK starts:
 * only the encoding in use is loaded, and never any when the app brings its own SDK. Spans
 * handed over before it is ready wait for it. Endpoint, headers and compression are read from
 * `OTEL_EXPORTER_OTLP_[TRACES_]*` by the exporter itself.
 */
export class DeferredOtlpExporter implements SpanExporter {
  readonly #exporter: Promise<SpanExporter | undefined>;

  constructor(protocol: OtlpProtocol, timeoutMillis: number) {
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
    void this.#exporter.then((exporter) => {
      if (exporter === undefined) {
        resultCallback({ code: ExportResultCode.FAILED, error: new Error('no OTLP exporter') });
        return;
      }
      exporter.export(spans, resultCallback);
    });
  }

  async shutdown(): Promise<void> {
    await (await this.#exporter)?.shutdown();
  }

  async forceFlush(): Promise<void> {
    await (await this.#exporter)?.forceFlush?.();
  }
}
