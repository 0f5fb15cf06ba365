/**
 * Bearer-token guards: the ingest token for `/v1/*`, the read token for `/api/*`
 * and `/metrics`. A guard without a token lets everything through (loopback
 * default); `assertSafeToListen` in `config.ts` makes tokens mandatory beyond
 * loopback. Tokens are compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { UnauthorizedError } from './errors.js';

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** Constant-time comparison (hashing first makes the lengths equal). */
export function tokensMatch(expected: string, given: string): boolean {
  return timingSafeEqual(digest(expected), digest(given));
}

/** The token of an `Authorization: Bearer <token>` header, if any. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1];
}

export function requireToken(token: string | undefined, what: 'ingest' | 'read'): RequestHandler {
  if (token === undefined) return (_request, _response, next) => next();
  return (request: Request, _response: Response, next: NextFunction) => {
    const given = bearerToken(request.headers.authorization);
    if (given === undefined) {
      next(new UnauthorizedError(`missing bearer token (Authorization: Bearer <${what} token>)`));
    } else if (!tokensMatch(token, given)) {
      next(new UnauthorizedError(`wrong ${what} token`));
    } else next();
  };
}
