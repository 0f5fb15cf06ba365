/**
 * Errors the HTTP layer maps onto status codes (one express error handler in
 * `app.ts` does the mapping, by class). Each carries its `status` and the fields
 * a caller branches on; its `name` is its class's name (for logs).
 */

/** An error with the HTTP status it is answered with. */
export abstract class HttpError extends Error {
  abstract readonly status: number;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The body could not be decoded (malformed protobuf, JSON or gzip, wrong shape): 400. */
export class MalformedPayloadError extends HttpError {
  readonly status = 400;
}

/** The body (compressed or inflated) is larger than the limit: 413. */
export class PayloadTooLargeError extends HttpError {
  readonly status = 413;
  readonly limitBytes: number;
  constructor(message: string, limitBytes: number, options?: ErrorOptions) {
    super(message, options);
    this.limitBytes = limitBytes;
  }
}

/** The request body did not arrive within the time allowed: 408 (the connection is closed). */
export class RequestTimeoutError extends HttpError {
  readonly status = 408;
}

/** Content-Type or Content-Encoding the endpoint does not take: 415. */
export class UnsupportedMediaTypeError extends HttpError {
  readonly status = 415;
}

/** Missing or wrong bearer token: 401. */
export class UnauthorizedError extends HttpError {
  readonly status = 401;
}

/** A request a web page on another site could have sent (foreign `Origin`): 403. */
export class ForbiddenError extends HttpError {
  readonly status = 403;
}

/** A `Host` header naming a host this collector does not answer for (DNS rebinding): 421. */
export class MisdirectedRequestError extends HttpError {
  readonly status = 421;
}

/** The collector cannot take more right now: 429 (overloaded) or 503 (storage failing), with `Retry-After`. */
export class OverloadedError extends HttpError {
  readonly status: 429 | 503;
  readonly retryAfterSeconds: number;
  constructor(
    message: string,
    status: 429 | 503,
    retryAfterSeconds: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A valid request the store refused (e.g. a ClickHouse error in `/api/sql`): 400 with its message. */
export class QueryRejectedError extends HttpError {
  readonly status = 400;
}

/** Configuration that would be unsafe or cannot work (e.g. listening beyond loopback without tokens). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function isHttpError(error: unknown): error is HttpError {
  return error instanceof HttpError;
}
