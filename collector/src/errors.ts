/**
 * Errors the HTTP layer maps onto status codes (one express error handler in
 * `app.ts` does the mapping). Each has a literal `name` and the fields a caller
 * branches on.
 */

/** The body could not be decoded (malformed protobuf, JSON or gzip, wrong shape): 400. */
export class MalformedPayloadError extends Error {
  override readonly name = 'MalformedPayloadError';
  readonly status = 400;
}

/** The body (compressed or inflated) is larger than the limit: 413. */
export class PayloadTooLargeError extends Error {
  override readonly name = 'PayloadTooLargeError';
  readonly status = 413;
  readonly limitBytes: number;
  constructor(message: string, limitBytes: number, options?: ErrorOptions) {
    super(message, options);
    this.limitBytes = limitBytes;
  }
}

/** The request body did not arrive within the time allowed: 408 (the connection is closed). */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
  readonly status = 408;
}

/** Content-Type or Content-Encoding the endpoint does not take: 415. */
export class UnsupportedMediaTypeError extends Error {
  override readonly name = 'UnsupportedMediaTypeError';
  readonly status = 415;
}

/** Missing or wrong bearer token: 401. */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
  readonly status = 401;
}

/** A request a web page on another site could have sent (foreign `Origin`): 403. */
export class ForbiddenError extends Error {
  override readonly name = 'ForbiddenError';
  readonly status = 403;
}

/** A `Host` header naming a host this collector does not answer for (DNS rebinding): 421. */
export class MisdirectedRequestError extends Error {
  override readonly name = 'MisdirectedRequestError';
  readonly status = 421;
}

/** The collector cannot take more right now: 429 (overloaded) or 503 (storage failing), with `Retry-After`. */
export class OverloadedError extends Error {
  override readonly name = 'OverloadedError';
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
export class QueryRejectedError extends Error {
  override readonly name = 'QueryRejectedError';
  readonly status = 400;
}

/** Configuration that would be unsafe or cannot work (e.g. listening beyond loopback without tokens). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export type HttpError =
  | MalformedPayloadError
  | PayloadTooLargeError
  | RequestTimeoutError
  | UnsupportedMediaTypeError
  | UnauthorizedError
  | ForbiddenError
  | MisdirectedRequestError
  | OverloadedError
  | QueryRejectedError;

export function isHttpError(error: unknown): error is HttpError {
  return (
    error instanceof MalformedPayloadError ||
    error instanceof PayloadTooLargeError ||
    error instanceof RequestTimeoutError ||
    error instanceof UnsupportedMediaTypeError ||
    error instanceof UnauthorizedError ||
    error instanceof ForbiddenError ||
    error instanceof MisdirectedRequestError ||
    error instanceof OverloadedError ||
    error instanceof QueryRejectedError
  );
}
