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
import { Router, type Request, type Response } from 'express';
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

export function tracesRouter(options: TracesRouteOptions): Router {
  const router = Router();
  const receiver = new TracesReceiver(options);
  router.post('/v1/traces', (request, response) => receiver.receive(request, response));
  return router;
}

/** The steps of one export request: read the body, take a slot, decode, store, answer. */
class TracesReceiver {
  private readonly config: Config;
  private readonly store: SpanStore;
  private readonly logger: Logger;
  private readonly metrics: CollectorMetrics;
  private readonly limits: DecodeLimits;
  private readonly pool: DecodePool;
  private readonly budget: BodyBudget;
  // A slot is taken once the body has arrived: a slow sender holds its socket and
  // the bytes it sent (within `budget`), never a slot.
  private inFlight = 0;

  constructor({ config, store, logger, metrics }: TracesRouteOptions) {
    this.config = config;
    this.store = store;
    this.logger = logger;
    this.metrics = metrics;
    this.limits = {
      maxSpans: config.maxSpansPerRequest,
      maxNameBytes: config.maxNameBytes,
      maxValueBytes: config.maxAttributeValueBytes,
      maxContentBytes: config.maxContentValueBytes,
    };
    this.pool = DecodePool.shared(config.decodeThreads);
    this.budget = new BodyBudget(config.maxBufferedBodyBytes);
  }

  async receive(request: Request, response: Response): Promise<void> {
    const encoding = otlpEncodingOf(request);
    const raw = await this.readBody(request, response);
    if (this.inFlight >= this.config.maxConcurrentRequests) {
      this.metrics.refuseRequest('concurrency');
      throw new OverloadedError(
        `more than ${this.config.maxConcurrentRequests} export requests in progress`,
        429,
        1,
      );
    }
    this.inFlight += 1;
    this.metrics.ingestInProgress = this.inFlight;
    try {
      const decoded = await this.decode(encoding, raw);
      this.count(decoded);
      if (decoded.spans > 0) await this.storeSpans(decoded);
      const rejected = decoded.rejectedSpans;
      response
        .status(200)
        .type(CONTENT_TYPES[encoding])
        .send(
          encodeExportResponse(encoding, rejected, rejected > 0 ? rejectionMessage(decoded) : ''),
        );
    } finally {
      this.inFlight -= 1;
      this.metrics.ingestInProgress = this.inFlight;
    }
  }

  private async readBody(request: Request, response: Response): Promise<RawBody> {
    this.metrics.ingestBodiesReading += 1;
    try {
      return await readRawBody(request, this.config.maxBodyBytes, {
        timeoutMs: this.config.ingestBodyTimeoutSeconds * 1000,
        budget: this.budget,
      });
    } catch (error) {
      this.refused(error);
      // The rest of the body is not read: close the connection after answering.
      response.setHeader('Connection', 'close');
      throw error;
    } finally {
      this.metrics.ingestBodiesReading -= 1;
    }
  }

  /** Inflates and decodes off the event loop: protobuf straight to a Native block, JSON through rows. */
  private async decode(encoding: OtlpEncoding, raw: RawBody): Promise<EncodedTraces> {
    try {
      const body = await inflateBody(raw, this.config.maxBodyBytes);
      return await this.pool.decode(encoding, body, this.limits);
    } catch (error) {
      this.refused(error);
      throw error;
    }
  }

  private count(decoded: EncodedTraces): void {
    this.metrics.spansReceived += decoded.spans + decoded.rejectedSpans;
    this.metrics.spansRejected += decoded.rejectedSpans;
    this.metrics.valuesTruncated += decoded.truncatedValues;
    if (decoded.rejectedSpans > 0) {
      this.logger.warn(
        { rejectedSpans: decoded.rejectedSpans, problems: decoded.problems },
        'rejected OTLP spans',
      );
    }
  }

  /** Hands the spans to the store; a refusal becomes the error the HTTP layer answers. */
  private async storeSpans(decoded: EncodedTraces): Promise<void> {
    const spans = decoded.spans;
    const started = performance.now();
    const result = await this.store.writeNative(decoded.block, spans);
    this.metrics.observeWrite((performance.now() - started) / 1000);
    if (result.status === 'ok') {
      this.metrics.spansAccepted += spans;
      return;
    }
    this.metrics.spansRefused += spans;
    if (result.status === 'overloaded') {
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
    this.logger.error({ err: result.error }, 'storing spans failed');
    throw new OverloadedError(`storing spans failed: ${result.error.message}`, 503, 5, {
      cause: result.error,
    });
  }

  /** Counts a request refused before its spans were known. */
  private refused(error: unknown): void {
    if (error instanceof PayloadTooLargeError) this.metrics.refuseRequest('too_large');
    else if (error instanceof RequestTimeoutError) this.metrics.refuseRequest('body_timeout');
    else if (error instanceof OverloadedError) this.metrics.refuseRequest('buffered_bytes');
  }
}
