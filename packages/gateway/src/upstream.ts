/**
 * One HTTP call to an upstream on kept-alive connections: the path and auth headers of its kind,
 * the app's headers that may travel (never its credentials), a timeout to the response headers,
 * and an abort when the app goes away.
 *
 * The calls go through undici's Pool (one per upstream origin, http or https; dispatch with a
 * handler, ./upstream-answer.ts): 14% fewer instructions per gateway request than node:http's
 * client (453k -> 391k, spans off; 27% in a bare proxy: docs/gateway-measurements.md,
 * The floor and the upstream client). undici's own timeouts are off: the header
 * timeout is the gateway's (below), the body's the relay's idle timeout.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { Upstream } from './config.js';
import type { GatewayLogger } from './context.js';
import type { Wire } from './usage.js';
import { UpstreamAnswer, mergedHeaders } from './upstream-answer.js';

export { UpstreamAnswer } from './upstream-answer.js';

/**
 * The wire format an upstream of this kind is called in for an app's wire format: its own, or
 * a chat format (translated, ./translate/: the other provider's, or Chat Completions for
 * Responses on an upstream without that API); undefined when it has none (embeddings on
 * Anthropic, which has no embeddings API).
 */
export function upstreamWireOf(upstream: Upstream, wire: Wire): Wire | undefined {
  if (upstream.kind === 'anthropic') return wire === 'embeddings' ? undefined : 'messages';
  if (wire === 'responses') return upstream.responsesApi === 'native' ? wire : 'chat';
  return wire === 'messages' ? 'chat' : wire;
}

/** The URL an upstream of this kind serves a wire format on. */
export function upstreamUrl(upstream: Upstream, wire: Wire): string {
  if (upstream.kind === 'anthropic') return `${upstream.baseURL}/v1/messages`;
  if (wire === 'chat') return `${upstream.baseURL}/chat/completions`;
  if (wire === 'responses') return `${upstream.baseURL}/responses`;
  return `${upstream.baseURL}/embeddings`;
}

/** Request headers of the app that are not forwarded (credentials, hop-by-hop, ours). */
const DROPPED = new Set([
  'x-api-key',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
]);

/** App headers that travel: provider versions and betas, and `x-*` (e.g. test directives). */
export function forwardedHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    if (typeof value !== 'string') continue;
    if (
      name === 'anthropic-version' ||
      name === 'anthropic-beta' ||
      name === 'openai-beta' ||
      name === 'idempotency-key' ||
      (name.startsWith('x-') &&
        !DROPPED.has(name) &&
        !name.startsWith('x-modelmaxx-') &&
        !name.startsWith('x-stainless-'))
    ) {
      out[name] = value;
    }
  }
  return out;
}

interface ParsedTarget {
  /** The pool of the URL's origin. */
  readonly pool: Pool;
  readonly path: string;
  /** The `host` header: the host and a port other than the scheme's default. */
  readonly host: string;
}

const parsedTargets = new Map<string, ParsedTarget>();
/** One pool per origin, for the process's life (idle connections do not keep it alive). */
const pools = new Map<string, Pool>();

function poolOf(origin: string): Pool {
  let pool = pools.get(origin);
  if (pool === undefined) {
    pool = new Pool(origin, { headersTimeout: 0, bodyTimeout: 0 });
    pools.set(origin, pool);
  }
  return pool;
}

/** The request options of an upstream URL, parsed once (URL parsing per request is not free). */
function targetOf(url: string): ParsedTarget {
  let target = parsedTargets.get(url);
  if (target === undefined) {
    const parsed = new URL(url);
    target = {
      pool: poolOf(parsed.origin),
      path: `${parsed.pathname}${parsed.search}`,
      host: parsed.host,
    };
    if (parsedTargets.size > 1000) parsedTargets.clear();
    parsedTargets.set(url, target);
  }
  return target;
}

export class UpstreamTimeoutError extends Error {
  override readonly name = 'UpstreamTimeoutError';
}

export class UpstreamConnectionError extends Error {
  override readonly name = 'UpstreamConnectionError';
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined) {
    super(message);
    this.code = code;
  }
}

/** The upstream request's headers as name/value pairs (undici takes such a list as it is). */
function upstreamHeaders(
  upstream: Upstream,
  target: ParsedTarget,
  wire: Wire,
  length: number,
  appHeaders: Record<string, string>,
  traceparent: string | undefined,
): string[] {
  const headers = [
    'host',
    target.host,
    'content-type',
    'application/json',
    'content-length',
    String(length),
    'accept',
    wire === 'embeddings' ? 'application/json' : 'application/json, text/event-stream',
    'user-agent',
    'modelmaxx-gateway',
  ];
  for (const name in appHeaders) headers.push(name, appHeaders[name]!);
  if (traceparent !== undefined) headers.push('traceparent', traceparent);
  if (upstream.kind === 'anthropic') {
    if (appHeaders['anthropic-version'] === undefined) {
      headers.push('anthropic-version', '2023-06-01');
    }
    if (upstream.key !== undefined) {
      headers.push('x-api-key', upstream.key);
      if (wire !== 'messages') headers.push('authorization', `Bearer ${upstream.key}`);
    }
  } else if (upstream.key !== undefined) {
    headers.push('authorization', `Bearer ${upstream.key}`);
  }
  return headers;
}

/**
 * One upstream call, its undici dispatch handler: `response` settles with the answer at its
 * headers, or fails (UpstreamTimeoutError when they take longer than the timeout,
 * UpstreamConnectionError when the upstream cannot be reached or the call is aborted).
 */
export class UpstreamCall implements Dispatcher.DispatchHandlers {
  readonly response: Promise<UpstreamAnswer>;
  readonly upstream: Upstream;
  readonly timeoutMs: number;
  private resolve!: (answer: UpstreamAnswer) => void;
  private reject!: (error: Error) => void;
  private timer: NodeJS.Timeout | undefined;
  /** undici's abort of the request, once it started it. */
  private stop: ((reason: Error) => void) | undefined;
  private answer: UpstreamAnswer | undefined;
  /** Why the call was stopped before undici started it, if it was. */
  private stopped: Error | undefined;
  private settled = false;
  /** undici is done with the call (the answer ended or failed): nothing left to abort. */
  private done = false;
  /**
   * The request (its body whole) was written to the upstream's connection: the provider may have
   * it, and bill it, whatever becomes of the answer. False for a connection refused or a call
   * stopped before.
   */
  sent = false;

  constructor(upstream: Upstream, timeoutMs: number) {
    this.upstream = upstream;
    this.timeoutMs = timeoutMs;
    this.response = new Promise<UpstreamAnswer>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Settled through `response`; no unhandled rejection when the caller stopped listening.
    this.response.catch(() => undefined);
    this.timer = setTimeout(timeUp, timeoutMs, this);
  }

  /** Stops the call (the app went away, the headers timed out, the body went silent). */
  abort(reason: Error = new AbortedError()): void {
    if (this.done) return;
    if (this.stop === undefined) this.stopped ??= reason;
    else this.stop(reason);
    // Before the headers, the caller learns at once (undici may still be connecting).
    this.fail(reason);
  }

  onConnect(abort: () => void): void {
    // undici 5 types its abort without the reason it takes (client.js: `err || new
    // RequestAbortedError()`).
    this.stop = abort as (reason: Error) => void;
    if (this.stopped !== undefined) this.stop(this.stopped);
  }

  /** undici wrote the request's last byte (a handler hook its 5.x types leave out). */
  onRequestSent(): void {
    this.sent = true;
  }

  onHeaders(statusCode: number, headers: Buffer[] | string[] | null): boolean {
    // 1xx (informational) heads precede the answer's, as node:http's 'information'.
    if (statusCode < 200 || this.settled) return true;
    this.settled = true;
    clearTimeout(this.timer);
    this.answer = new UpstreamAnswer(
      statusCode,
      mergedHeaders(headers ?? []),
      stopAnswer.bind(this),
    );
    this.resolve(this.answer);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.answer?.push(chunk);
    return true;
  }

  onComplete(): void {
    this.done = true;
    this.answer?.end();
  }

  onError(error: Error): void {
    this.done = true;
    if (this.answer !== undefined) this.answer.fail(error);
    else this.fail(error);
  }

  /** Before the headers: the call's failure, as the gateway names it. */
  private fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    if (error instanceof UpstreamTimeoutError) {
      this.reject(error);
      return;
    }
    // The message names the upstream, never its URL's credentials or the key.
    const code = (error as NodeJS.ErrnoException).code;
    this.reject(
      new UpstreamConnectionError(
        `upstream ${this.upstream.name} unreachable: ${code ?? error.message}`,
        code,
      ),
    );
  }
}

/** An abort by the gateway (the app gone, a body gone silent), as node:http names it. */
class AbortedError extends Error {
  readonly code = 'ECONNRESET';
  constructor() {
    super('aborted');
  }
}

/** The header timeout's callback (a function of the module's: no closure per call). */
function timeUp(call: UpstreamCall): void {
  const name = call.upstream.name;
  call.abort(
    new UpstreamTimeoutError(`upstream ${name} did not answer within ${call.timeoutMs} ms`),
  );
}

function stopAnswer(this: UpstreamCall): void {
  this.abort();
}

export function callUpstream(
  upstream: Upstream,
  url: string,
  wire: Wire,
  body: Buffer,
  appHeaders: Record<string, string>,
  traceparent: string | undefined,
  timeoutMs: number,
): UpstreamCall {
  const target = targetOf(url);
  const call = new UpstreamCall(upstream, timeoutMs);
  const headers = upstreamHeaders(upstream, target, wire, body.length, appHeaders, traceparent);
  target.pool.dispatch({ path: target.path, method: 'POST', headers, body }, call);
  return call;
}

/** Response headers the app gets back: type, retry hints, request ids, rate-limit state. */
export function returnedHeaders(
  headers: IncomingHttpHeaders,
  keepLength: boolean,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (
      name === 'content-type' ||
      name === 'retry-after' ||
      name === 'retry-after-ms' ||
      name === 'x-request-id' ||
      name === 'request-id' ||
      name === 'openai-processing-ms' ||
      name.startsWith('x-ratelimit-') ||
      name.startsWith('anthropic-ratelimit-') ||
      (keepLength && name === 'content-length')
    ) {
      out[name] = value;
    }
  }
  return out;
}

/** `retry-after` (seconds or an HTTP date) / `retry-after-ms` in ms, when given. */
export function retryAfterMs(headers: IncomingHttpHeaders, now: number): number | undefined {
  const ms = Number(headers['retry-after-ms']);
  if (headers['retry-after-ms'] !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers['retry-after'];
  if (typeof value !== 'string') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Upstreams already said to answer 401/403 for want of a key (once each: not per request). */
const warnedNoKey = new WeakSet<Upstream>();

/**
 * An upstream without a key refusing the call (401 / 403): most likely its key env var is not set,
 * while the app sent its own key (which the gateway never forwards), so the upstream's "no API
 * key" error puzzles the app's developer. Said once in the gateway's log.
 */
export function warnIfNoKey(log: GatewayLogger, upstream: Upstream, status: number): void {
  if ((status !== 401 && status !== 403) || upstream.key !== undefined) return;
  if (warnedNoKey.has(upstream)) return;
  warnedNoKey.add(upstream);
  log.warn(
    `upstream "${upstream.name}" answered ${status} and the gateway has no key for it: set ${upstream.keyEnv} (the app's own Authorization / x-api-key is never forwarded upstream)`,
    { upstream: upstream.name, status },
  );
}
