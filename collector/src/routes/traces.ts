/**
 * `POST /v1/traces`: OTLP/HTTP trace export (protobuf or JSON, optionally gzip).
 * Valid spans go to the store; invalid ones are rejected individually and
 * reported as `partialSuccess`. The reply uses the request's encoding.
 *
 * Limits (see `Config`): the body must arrive within `ingestBodyTimeoutSeconds`
 * (408) and within `maxBodyBytes` on the wire and inflated (413); bodies still
 * arriving hold at most `maxBufferedBodyBytes` together (429); a request takes
 * one of `maxConcurrentRequests` slots once its body is in (429 when none is
 * free) and is decoded on a decode thread with the span-count and length limits.
 */
import { performance } from 'node:perf_hooks';
import { Router, type Request } from 'express';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import {
  OverloadedError,
  PayloadTooLargeError,
  RequestTimeoutError,
  UnsupportedMediaTypeError,
} from '../errors.js';
import type { CollectorMetrics } from '../metrics.js';
import { DecodePool } from '../otlp/decode-pool.js';
import { CONTENT_TYPES, encodeExportResponse, type OtlpEncoding } from '../otlp/encode-response.js';
import { rejectionMessage, type DecodeLimits, type EncodedTraces } from '../otlp/to-span-rows.js';
import type { SpanStore } from '../store/span-store.js';
import { SpoolFullError } from '../writer/overloaded.js';
import { BodyBudget, inflateBody, mediaTypeOf, readRawBody, type RawBody } from './read-body.js';

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
  const limits: DecodeLimits = {
    maxSpans: config.maxSpansPerRequest,
    maxNameBytes: config.maxNameBytes,
    maxValueBytes: config.maxAttributeValueBytes,
    maxContentBytes: config.maxContentValueBytes,
  };
  const pool = DecodePool.shared(config.decodeThreads);
  const budget = new BodyBudget(config.maxBufferedBodyBytes);
  const bodyTimeoutMs = config.ingestBodyTimeoutSeconds * 1000;
  // A slot is taken once the body has arrived: a slow sender holds its socket and
  // the bytes it sent (within `budget`), never a slot.
  let inFlight = 0;
  router.post('/v1/traces', async (request, response) => {
    const encoding = otlpEncodingOf(request);
    let raw: RawBody;
    metrics.ingestBodiesReading += 1;
    try {
      raw = await readRawBody(request, config.maxBodyBytes, { timeoutMs: bodyTimeoutMs, budget });
    } catch (error) {
      refused(error);
      // The rest of the body is not read: close the connection after answering.
      response.setHeader('Connection', 'close');
      throw error;
    } finally {
      metrics.ingestBodiesReading -= 1;
    }
    if (inFlight >= config.maxConcurrentRequests) {
      metrics.refuseRequest('concurrency');
      throw new OverloadedError(
        `more than ${config.maxConcurrentRequests} export requests in progress`,
        429,
        1,
      );
    }
    inFlight += 1;
    metrics.ingestInProgress = inFlight;
    try {
      let decoded: EncodedTraces;
      try {
        const body = await inflateBody(raw, config.maxBodyBytes);
        // Off the event loop: protobuf straight to a Native block, JSON through rows.
        decoded = await pool.decode(encoding, body, limits);
      } catch (error) {
        refused(error);
        throw error;
      }
      const spans = decoded.spans;
      metrics.spansReceived += spans + decoded.rejectedSpans;
      metrics.spansRejected += decoded.rejectedSpans;
      metrics.valuesTruncated += decoded.truncatedValues;
      if (decoded.rejectedSpans > 0) {
        logger.warn(
          { rejectedSpans: decoded.rejectedSpans, problems: decoded.problems },
          'rejected OTLP spans',
        );
      }
      if (spans > 0) {
        const started = performance.now();
        const result = await store.writeNative(decoded.block, spans);
        metrics.observeWrite((performance.now() - started) / 1000);
        if (result.status === 'overloaded') {
          metrics.spansRefused += spans;
          // A full spool means ClickHouse has been behind for a while (503); a
          // full queue is a burst (429).
          const { error } = result;
          throw new OverloadedError(
            `the collector cannot take more spans right now: ${error.message}`,
            error instanceof SpoolFullError ? 503 : 429,
            error.retryAfterSeconds,
            { cause: error },
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
      metrics.ingestInProgress = inFlight;
    }
  });

  /** Counts a request refused before its spans were known. */
  function refused(error: unknown): void {
    if (error instanceof PayloadTooLargeError) metrics.refuseRequest('too_large');
    else if (error instanceof RequestTimeoutError) metrics.refuseRequest('body_timeout');
    else if (error instanceof OverloadedError) metrics.refuseRequest('buffered_bytes');
  }
  return router;
}
