/**
 * Bearer-token guards: the ingest token for `/v1/*`, the read token for `/api/*`
 * and `/metrics`. A guard without a token lets everything through (loopback
 * default); `assertSafeToListen` in `config.ts` makes tokens mandatory beyond
 * loopback. Tokens are compared in constant time.
 *
 * Cross-site guards for the tokenless loopback default (a web page in the user's
 * browser can reach 127.0.0.1): a `Host` allow-list against DNS rebinding, an `Origin`
 * check, and `application/json` only for POSTs under `/api` without a read token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { isLoopbackHost } from './config.js';
import {
  ForbiddenError,
  MisdirectedRequestError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from './errors.js';

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

/** A `Host` authority split into its lower-cased name (IPv6 in brackets) and port. */
interface Authority {
  name: string;
  /** Absent when the header or entry gave none. */
  port?: number;
}

function parseAuthority(value: string): Authority | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(value.trim());
  if (match === null) return undefined;
  // A trailing dot is the same DNS name (`localhost.`).
  const name = match[1]!.toLowerCase().replace(/\.$/, '');
  return match[2] === undefined ? { name } : { name, port: Number(match[2]) };
}

/** The loopback names a browser can use for this collector. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/**
 * Which `Host` (and `Origin`) authorities this collector answers for. On the tokenless
 * loopback default a web page must not reach it under a name of its own (DNS rebinding:
 * `evil.example` re-resolved to 127.0.0.1 makes the browser treat the collector as
 * same-origin with the attacker's page), so by default only `localhost`, `127.0.0.1`,
 * `[::1]` and the bound host, with the port the request came in on, are accepted, plus
 * `allowedHosts` (`name` for any port, `name:port`, `*` for any host). The check is on
 * while listening on loopback, or beyond it when `allowedHosts` names hosts (beyond
 * loopback both tokens are mandatory, and a page cannot present them).
 */
export class HostPolicy {
  /** False when every `Host` is accepted. */
  readonly checksHost: boolean;
  private readonly defaults: Set<string>;
  private readonly allowed: Authority[];

  constructor(config: { host: string; allowedHosts?: readonly string[] }) {
    const configured = config.allowedHosts ?? [];
    const any = configured.includes('*');
    this.checksHost = !any && (isLoopbackHost(config.host) || configured.length > 0);
    const bound = config.host.toLowerCase();
    this.defaults = new Set(LOOPBACK_NAMES);
    if (bound !== '0.0.0.0' && bound !== '::' && bound !== '[::]' && bound !== '') {
      this.defaults.add(bound.includes(':') && !bound.startsWith('[') ? `[${bound}]` : bound);
    }
    this.allowed = configured
      .filter((entry) => entry !== '*')
      .map((entry) => parseAuthority(entry))
      .filter((entry): entry is Authority => entry !== undefined);
  }

  /**
   * True for an authority (`name[:port]`) this collector answers for. `localPort` is the
   * port the request came in on; `defaultPort` the scheme's (80 for a `Host` header).
   */
  allows(value: string, localPort: number | undefined, defaultPort = 80): boolean {
    const authority = parseAuthority(value);
    if (authority === undefined) return false;
    const port = authority.port ?? defaultPort;
    if (this.defaults.has(authority.name) && port === localPort) return true;
    return this.allowed.some(
      (entry) => entry.name === authority.name && (entry.port === undefined || entry.port === port),
    );
  }

  /**
   * True when an `Origin` header is one this collector's own pages (or an allowed host)
   * send: the same authority as the request's `Host`, or an allowed one. `null`, other
   * schemes and unparsable values are foreign.
   */
  allowsOrigin(origin: string, host: string | undefined, localPort: number | undefined): boolean {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.host === '') return false;
    const defaultPort = url.protocol === 'https:' ? 443 : 80;
    const originAuthority = parseAuthority(url.host);
    const hostAuthority = host === undefined ? undefined : parseAuthority(host);
    if (
      originAuthority !== undefined &&
      hostAuthority !== undefined &&
      originAuthority.name === hostAuthority.name &&
      (originAuthority.port ?? defaultPort) === (hostAuthority.port ?? defaultPort)
    ) {
      return true;
    }
    return this.allows(url.host, localPort, defaultPort);
  }
}

/**
 * Refuses what a web page on another site could make a browser send: a `Host` this
 * collector does not answer for (421, DNS rebinding; see `HostPolicy`) and an `Origin`
 * that is not the collector's own (403; browsers send `Origin` on every POST and on
 * cross-origin fetches, OTLP exporters and the CLI send none).
 */
export function requireSameSite(policy: HostPolicy): RequestHandler {
  return (request: Request, _response: Response, next: NextFunction) => {
    const host = request.headers.host;
    const localPort = request.socket.localPort;
    if (policy.checksHost && host !== undefined && !policy.allows(host, localPort)) {
      next(
        new MisdirectedRequestError(
          `this collector does not answer for Host ${JSON.stringify(host)}; use http://127.0.0.1:${localPort}, or list the name in MODELMAXX_ALLOWED_HOSTS`,
        ),
      );
      return;
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !policy.allowsOrigin(origin, host, localPort)) {
      next(
        new ForbiddenError(
          `cross-site request refused: Origin ${JSON.stringify(origin)} is not this collector (list its host in MODELMAXX_ALLOWED_HOSTS to allow it)`,
        ),
      );
      return;
    }
    next();
  };
}

/** Content types a page on any site can POST without a CORS preflight (a form, a `no-cors` fetch). */
const CORS_SAFELISTED_TYPES = new Set([
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data',
]);

/**
 * Without a read token, a POST under `/api` must carry a content type a web page cannot
 * send without a CORS preflight (that this collector never grants), i.e. `application/json`:
 * a second line behind `requireSameSite` for browsers that omit `Origin`.
 */
export function requireNonSimpleBody(token: string | undefined): RequestHandler {
  if (token !== undefined) return (_request, _response, next) => next();
  return (request: Request, _response: Response, next: NextFunction) => {
    if (request.method !== 'POST') {
      next();
      return;
    }
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (CORS_SAFELISTED_TYPES.has(type) || type === '') {
      next(
        new UnsupportedMediaTypeError(
          `without a read token this endpoint takes application/json only (${type || 'no content type'} is what any web page can send)`,
        ),
      );
      return;
    }
    next();
  };
}
