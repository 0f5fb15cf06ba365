/**
 * The gateway's HTTP surface: its endpoints, the bounded body read, and errors in the shape of the
 * endpoint's API (OpenAI's `{ error: { message, type, param, code } }`, Anthropic's
 * `{ type: 'error', error: { type, message } }` on `/v1/messages`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Wire } from './usage.js';

export interface Endpoint {
  readonly path: string;
  readonly wire: Wire;
  readonly operation: 'chat' | 'embeddings';
}

export const ENDPOINTS = new Map<string, Endpoint>(
  (
    [
      ['/v1/chat/completions', 'chat', 'chat'],
      ['/v1/responses', 'responses', 'chat'],
      ['/v1/embeddings', 'embeddings', 'embeddings'],
      ['/v1/messages', 'messages', 'chat'],
    ] as const
  ).map(([path, wire, operation]) => [path, { path, wire, operation }]),
);

/** A request the gateway refuses: the status and error type it answers with. */
export class RequestError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | undefined;
  /** The request field at fault (OpenAI's `param`). */
  readonly param: string | undefined;
  /** Headers of the error answer (`connection: close` when the request's body is left unread). */
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    status: number,
    type: string,
    message: string,
    code?: string,
    param?: string,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
    this.headers = headers;
  }
}

/** A request header's value when it is a non-empty string. */
export function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Reads the body up to `limit` bytes within `timeoutMs`; a larger one is refused without reading
 * it all (413), a slower one too (408, the connection then closed: its request slot is freed).
 */
export function readBody(
  request: IncomingMessage,
  limit: number,
  timeoutMs: number,
): Promise<Buffer> {
  const tooLarge = () =>
    new RequestError(413, 'invalid_request_error', `request body over ${limit} bytes`);
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (error: RequestError) => {
      clearTimeout(timer);
      request.removeAllListeners('data');
      request.resume();
      reject(error);
    };
    const timer = setTimeout(() => {
      const message = `request body not received within ${timeoutMs} ms (${size} bytes came; limits.bodyTimeoutMs)`;
      const type = 'invalid_request_error';
      const close = { connection: 'close' };
      stop(new RequestError(408, type, message, 'request_timeout', undefined, close));
    }, timeoutMs);
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stop(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    request.once('end', () => {
      clearTimeout(timer);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    request.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** `fields` go into the error object beside `type` and `message` (machine-readable details). */
function errorBody(
  wire: Wire | undefined,
  type: string,
  message: string,
  code?: string,
  fields?: Readonly<Record<string, unknown>>,
): string {
  if (wire === 'messages') {
    return JSON.stringify({ type: 'error', error: { type, message, ...fields } });
  }
  return JSON.stringify({ error: { message, type, param: null, code: code ?? null, ...fields } });
}

/** An error answer in the endpoint's shape; a response already under way is cut instead. */
export function sendError(
  response: ServerResponse,
  wire: Wire | undefined,
  status: number,
  type: string,
  message: string,
  extra: Record<string, string> = {},
  code?: string,
  fields?: Readonly<Record<string, unknown>>,
): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const body = errorBody(wire, type, message, code, fields);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...extra,
  });
  response.end(body);
}

/** A JSON answer with its length, in one write. */
export function sendJson(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
}
