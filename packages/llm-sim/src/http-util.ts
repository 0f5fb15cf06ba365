import type { IncomingMessage, ServerResponse } from 'node:http';

export type ErrorShape = 'openai' | 'anthropic';

/** One SSE frame and the output tokens it carries (for pacing). */
export interface SseFrame {
  text: string;
  tokens: number;
}

export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

export function sseEvent(event: string, payload: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(payload)}\n\n`;
}

const OPENAI_ERROR_TYPES: Record<number, { type: string; code: string | null; message: string }> = {
  400: { type: 'invalid_request_error', code: null, message: 'Invalid request.' },
  401: {
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    message: 'Incorrect API key provided.',
  },
  404: { type: 'invalid_request_error', code: 'model_not_found', message: 'Not found.' },
  429: {
    type: 'requests',
    code: 'rate_limit_exceeded',
    message: 'Rate limit reached for requests. Please try again later.',
  },
  500: {
    type: 'server_error',
    code: null,
    message: 'The server had an error while processing your request. Sorry about that!',
  },
  503: {
    type: 'server_error',
    code: null,
    message: 'The engine is currently overloaded, please try again later.',
  },
  504: { type: 'server_error', code: 'timeout', message: 'Request timed out.' },
};

const ANTHROPIC_ERROR_TYPES: Record<number, { type: string; message: string }> = {
  400: { type: 'invalid_request_error', message: 'Invalid request.' },
  401: { type: 'authentication_error', message: 'invalid x-api-key' },
  403: { type: 'permission_error', message: 'Permission denied.' },
  404: { type: 'not_found_error', message: 'Not found.' },
  413: {
    type: 'request_too_large',
    message: 'Request exceeds the maximum allowed number of bytes.',
  },
  429: { type: 'rate_limit_error', message: 'Number of requests has exceeded your rate limit.' },
  500: { type: 'api_error', message: 'Internal server error' },
  504: { type: 'timeout_error', message: 'Request timed out.' },
  529: { type: 'overloaded_error', message: 'Overloaded' },
};

/** Error body in the provider's shape. */
export function errorBody(
  shape: ErrorShape,
  status: number,
  requestId: string,
  message?: string,
  details?: { param?: string | null; code?: string | null },
): unknown {
  if (shape === 'anthropic') {
    const known = ANTHROPIC_ERROR_TYPES[status] ?? {
      type: status >= 500 ? 'api_error' : 'invalid_request_error',
      message: 'Error',
    };
    return {
      type: 'error',
      error: { type: known.type, message: message ?? known.message },
      request_id: requestId,
    };
  }
  const known = OPENAI_ERROR_TYPES[status] ?? {
    type: status >= 500 ? 'server_error' : 'invalid_request_error',
    code: null,
    message: 'Error',
  };
  return {
    error: {
      message: message ?? known.message,
      type: known.type,
      param: details?.param ?? null,
      code: details && 'code' in details ? (details.code ?? null) : known.code,
    },
  };
}

/** Reads the whole request body as a string. */
export function readBody(request: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new RangeError('request body too large'));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () =>
      resolve(
        chunks.length === 1
          ? (chunks[0] as Buffer).toString('utf8')
          : Buffer.concat(chunks).toString('utf8'),
      ),
    );
    request.on('error', reject);
  });
}

export function writeJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): void {
  if (response.destroyed || response.writableEnded) return;
  const text = JSON.stringify(body);
  response.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}
