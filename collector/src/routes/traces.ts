/**
 * `POST /v1/traces`: OTLP/HTTP trace export (protobuf or JSON, optionally gzip).
 * Valid spans go to the store; invalid ones are rejected individually and
 * reported as `partialSuccess`. The reply uses the request's encoding.
 */
import { performance } from 'node:perf_hooks';
import { Router, type Request } from 'express';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { OverloadedError, UnsupportedMediaTypeError } from '../errors.js';
import type { CollectorMetrics } from '../metrics.js';
import { decodeTraceRequestJson } from '../otlp/decode-json.js';
import { decodeTraceRequestProtobufToNative } from '../otlp/decode-protobuf.js';
import { CONTENT_TYPES, encodeExportResponse, type OtlpEncoding } from '../otlp/encode-response.js';
import { rejectionMessage } from '../otlp/to-span-rows.js';
import type { SpanStore } from '../store/span-store.js';
import { mediaTypeOf, readBody } from './read-body.js';

const PROTOBUF_TYPES = new Set(['application/x-protobuf', 'application/protobuf']);

/** The OTLP encoding of a request; throws 415 for anything else. */
export function otlpEncodingOf(request: Request): OtlpEncoding {
  const mediaType = mediaTypeOf(request);
  if (PROTOBUF_TYPES.has(mediaType)) return 'protobuf';
  if (mediaType === 'application/json') return 'json';
  throw new UnsupportedMediaTypeError(
    `unsupported Content-Type "${mediaType || '(none)'}": OTLP/HTTP takes application/x-protobuf or application/json`,
  );
}

/** The encoding for an error reply: the request's when it is OTLP, JSON otherwise. */
export function replyEncodingOf(request: Request): OtlpEncoding {
  return PROTOBUF_TYPES.has(mediaTypeOf(request)) ? 'protobuf' : 'json';
}

export interface TracesRouteOptions {
  config: Config;
  store: SpanStore;
  logger: Logger;
  metrics: CollectorMetrics;
}

export function tracesRouter({ config, store, logger, metrics }: TracesRouteOptions): Router {
  const router = Router();
  let inFlight = 0;
  router.post('/v1/traces', async (request, response) => {
    const encoding = otlpEncodingOf(request);
    if (inFlight >= config.maxConcurrentRequests) {
      throw new OverloadedError(
        `more than ${config.maxConcurrentRequests} export requests in progress`,
        429,
        1,
      );
    }
    inFlight += 1;
    try {
      const body = await readBody(request, config.maxBodyBytes);
      // Protobuf goes straight to a Native block; JSON through rows (encoded by the store).
      const decoded =
        encoding === 'protobuf'
          ? decodeTraceRequestProtobufToNative(body)
          : decodeTraceRequestJson(body);
      const spans = 'rows' in decoded ? decoded.rows.length : decoded.spans;
      metrics.spansReceived += spans + decoded.rejectedSpans;
      metrics.spansRejected += decoded.rejectedSpans;
      if (decoded.rejectedSpans > 0) {
        logger.warn(
          { rejectedSpans: decoded.rejectedSpans, problems: decoded.problems },
          'rejected OTLP spans',
        );
      }
      if (spans > 0) {
        const started = performance.now();
        const result =
          'rows' in decoded
            ? await store.write(decoded.rows)
            : await store.writeNative(decoded.block, spans);
        metrics.observeWrite((performance.now() - started) / 1000);
        if (result.status === 'overloaded') {
          metrics.spansRefused += spans;
          // A full spool means ClickHouse has been behind for a while (503); a
          // full queue is a burst (429). A writer that does not set `limit`:
          // judged from its reason.
          const spoolFull =
            result.limit === 'spool' ||
            (result.limit === undefined && /\bspool\b/i.test(result.reason));
          throw new OverloadedError(
            `the collector cannot take more spans right now: ${result.reason}`,
            spoolFull ? 503 : 429,
            result.retryAfterSeconds,
          );
        }
        if (result.status === 'failed') {
          metrics.spansRefused += spans;
          logger.error({ err: result.error }, 'storing spans failed');
          throw new OverloadedError(`storing spans failed: ${result.error.message}`, 503, 5, {
            cause: result.error,
          });
        }
        metrics.spansAccepted += spans;
      }
      response
        .status(200)
        .type(CONTENT_TYPES[encoding])
        .send(
          encodeExportResponse(
            encoding,
            decoded.rejectedSpans,
            decoded.rejectedSpans > 0 ? rejectionMessage(decoded) : '',
          ),
        );
    } finally {
      inFlight -= 1;
    }
  });
  return router;
}
