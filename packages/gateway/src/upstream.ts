/**
 * One HTTP call to an upstream on kept-alive sockets: the path and auth headers of its kind, the
 * app's headers that may travel (never its credentials), a timeout to the response headers, and
 * an abort when the app goes away.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Upstream } from './config.js';
import type { Wire } from './usage.js';

// Node's defaults otherwise (no limit on sockets, 256 kept free): the agent copies its options
// into every request's (Agent#addRequest), into a dictionary-mode object, property by property.
const httpAgent = new HttpAgent({ keepAlive: true });
const httpsAgent = new HttpsAgent({ keepAlive: true });

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
  readonly secure: boolean;
  readonly hostname: string;
  readonly port: number;
  readonly path: string;
  /** The `host` header: the host and a port other than the scheme's default. */
  readonly host: string;
}

const parsedTargets = new Map<string, ParsedTarget>();

/** The request options of an upstream URL, parsed once (URL parsing per request is not free). */
function targetOf(url: string): ParsedTarget {
  let target = parsedTargets.get(url);
  if (target === undefined) {
    const parsed = new URL(url);
    const secure = parsed.protocol === 'https:';
    target = {
      secure,
      hostname: parsed.hostname.replace(/^\[|\]$/g, ''),
      port: parsed.port === '' ? (secure ? 443 : 80) : Number(parsed.port),
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

export interface UpstreamCall {
  readonly request: ClientRequest;
  readonly response: Promise<IncomingMessage>;
}

/**
 * The upstream request's headers as name/value pairs: node:http writes such a list as it is, where
 * an object goes through `setHeader` one header at a time (a map kept per request). With a list,
 * `host` is ours to send.
 */
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
  // No `protocol`: the agent's. Each option is copied three times per request by node:http.
  const request = (target.secure ? httpsRequest : httpRequest)({
    hostname: target.hostname,
    port: target.port,
    path: target.path,
    method: 'POST',
    headers: upstreamHeaders(upstream, target, wire, body.length, appHeaders, traceparent),
    agent: target.secure ? httpsAgent : httpAgent,
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    const timer = setTimeout(() => {
      request.destroy(
        new UpstreamTimeoutError(`upstream ${upstream.name} did not answer within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    request.once('response', (message) => {
      clearTimeout(timer);
      resolve(message);
    });
    request.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error instanceof UpstreamTimeoutError) reject(error);
      else {
        // The message names the upstream, never its URL's credentials or the key.
        reject(
          new UpstreamConnectionError(
            `upstream ${upstream.name} unreachable: ${error.code ?? error.message}`,
            error.code,
          ),
        );
      }
    });
  });
  // Settled through `response`; no unhandled rejection when the caller stopped listening.
  response.catch(() => undefined);
  request.end(body);
  return { request, response };
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
