/**
 * An app's request as the pipeline reads it: the JSON body (an object with a `model`), the
 * modelmaxx headers, whether it streams and hides the usage chunk, the estimates budgets need,
 * the body each upstream gets, and the chat as the router's classifier reads it.
 */
import type { IncomingMessage } from 'node:http';
import type { ClassifiableRequest } from '@modelmaxx/router';
import type { GatewayConfig } from './config.js';
import { RequestError, header, readBody } from './http.js';
import type { Endpoint } from './http.js';
import { asDict, tokensOfLength } from './usage.js';
import type { Wire } from './usage.js';

export interface GatewayRequest {
  readonly endpoint: Endpoint;
  readonly wire: Wire;
  /** The body as the app sent it (forwarded as is when nothing in it changes). */
  readonly raw: Buffer;
  readonly body: Record<string, unknown>;
  /** The `model` the app asked for: a real model or `route:<policy>`. */
  readonly requested: string;
  readonly stream: boolean;
  /** A chat stream whose app did not ask for usage: the gateway asks, and hides that chunk. */
  readonly hideUsage: boolean;
  readonly task: string | undefined;
  readonly feature: string | undefined;
  /** `x-modelmaxx-user`, else the body's `user`. */
  readonly endUser: string | undefined;
  /** When the request arrived (ms since the epoch). */
  readonly at: number;
}

function parseObject(raw: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    const reason = raw.length === 0 ? 'the body is empty' : (error as Error).message;
    throw new RequestError(
      400,
      'invalid_request_error',
      `the request body is not valid JSON (${reason}); send a JSON object`,
    );
  }
  const body = asDict(parsed);
  if (body !== undefined) return body;
  throw new RequestError(
    400,
    'invalid_request_error',
    `the request body is not a JSON object (got ${describe(parsed)})`,
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `a string: ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value === 'number' ? 'a number' : `a ${typeof value}`}: ${String(value)}`;
}

function invalid(field: string, expected: string, value: unknown): RequestError {
  return new RequestError(
    400,
    'invalid_request_error',
    `"${field}" must be ${expected}; got ${describe(value)}`,
    'invalid_type',
    field,
  );
}

function missing(field: string, message: string): RequestError {
  return new RequestError(
    400,
    'invalid_request_error',
    message,
    'missing_required_parameter',
    field,
  );
}

/**
 * The fields the gateway itself reads (streaming, the token limit budgets estimate from, the
 * messages it translates) must have their types: a wrong one is a 400 naming the field, the same
 * whether the model's upstream speaks the app's format or is translated (a translation would
 * otherwise drop it silently: `"stream": "yes"` answered unstreamed, `"max_tokens": "ten"` as 4096).
 */
function checkFields(body: Record<string, unknown>, wire: Wire): void {
  const stream = body['stream'];
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') {
    throw invalid('stream', 'a boolean (true or false)', stream);
  }
  for (const key of ['max_tokens', 'max_completion_tokens', 'max_output_tokens']) {
    const value = body[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw invalid(key, 'a whole number from 1', value);
    }
  }
  if (wire === 'chat' || wire === 'messages') {
    const messages = body['messages'];
    if (messages === undefined || messages === null) {
      throw missing('messages', '"messages" (an array of messages) is required');
    }
    if (!Array.isArray(messages)) throw invalid('messages', 'an array of messages', messages);
    const index = messages.findIndex((message) => asDict(message) === undefined);
    if (index >= 0) {
      throw invalid(`messages[${index}]`, 'a message object (role, content)', messages[index]);
    }
  }
  // Anthropic's API requires it; translated to an OpenAI-style model it would not be, so a
  // `route:` request without it would answer or 400 depending on the candidate picked.
  if (wire === 'messages' && (body['max_tokens'] === undefined || body['max_tokens'] === null)) {
    throw missing(
      'max_tokens',
      '"max_tokens" (a whole number from 1) is required on /v1/messages, as in Anthropic\'s API',
    );
  }
  const input = body['input'];
  if (wire === 'responses' && input !== undefined && input !== null) {
    if (typeof input !== 'string' && !Array.isArray(input)) {
      throw invalid('input', 'a string or an array of input items', input);
    }
    const index = Array.isArray(input) ? input.findIndex((item) => asDict(item) === undefined) : -1;
    if (index >= 0) throw invalid(`input[${index}]`, 'an input item object', input[index]);
  }
}

/** Reads and checks the body (bounded, a JSON object with a string `model`). */
export async function readGatewayRequest(
  request: IncomingMessage,
  endpoint: Endpoint,
  limits: Pick<GatewayConfig, 'maxBodyBytes' | 'bodyTimeoutMs'>,
  at: () => number,
): Promise<GatewayRequest> {
  const { wire } = endpoint;
  const raw = await readBody(request, limits.maxBodyBytes, limits.bodyTimeoutMs);
  const body = parseObject(raw);
  const requested = body['model'];
  if (typeof requested !== 'string' || requested === '') {
    throw new RequestError(
      400,
      'invalid_request_error',
      requested === undefined || requested === null || requested === ''
        ? '"model" (a string) is required'
        : `"model" must be a string; got ${describe(requested)}`,
      undefined,
      'model',
    );
  }
  checkFields(body, wire);
  const stream = body['stream'] === true;
  const userField = body['user'];
  const includeUsage =
    wire === 'chat' &&
    stream &&
    (body['stream_options'] as { include_usage?: unknown } | undefined)?.include_usage === true;
  return {
    endpoint,
    wire,
    raw,
    body,
    requested,
    stream,
    hideUsage: wire === 'chat' && stream && !includeUsage,
    task: header(request, 'x-modelmaxx-task'),
    feature: header(request, 'x-modelmaxx-feature'),
    endUser:
      header(request, 'x-modelmaxx-user') ??
      (typeof userField === 'string' && userField !== '' ? userField : undefined),
    at: at(),
  };
}

/** The body an upstream gets: its own model name, and usage asked for on hidden-usage streams. */
export function upstreamBody(request: GatewayRequest, model: string): Buffer {
  if (model === request.requested && !request.hideUsage) return request.raw;
  const copy: Record<string, unknown> = { ...request.body, model };
  if (request.hideUsage) {
    copy['stream_options'] = {
      ...(request.body['stream_options'] as object | undefined),
      include_usage: true,
    };
  }
  return Buffer.from(JSON.stringify(copy));
}

/** Input tokens (≈ body bytes ÷ 4) and output tokens (the max asked for, else 4096), for budgets. */
export function estimatedTokens(request: GatewayRequest): { input: number; output: number } {
  const input = tokensOfLength(request.raw.length);
  if (request.wire === 'embeddings') return { input, output: 0 };
  for (const key of ['max_completion_tokens', 'max_tokens', 'max_output_tokens']) {
    const value = request.body[key];
    if (typeof value === 'number' && value > 0) return { input, output: value };
  }
  return { input, output: 4096 };
}

/** A chat body as the classifier reads it, whatever the wire. */
export function classifiable(request: GatewayRequest): ClassifiableRequest {
  type Message = { role?: string; content?: unknown };
  const { wire, body, task } = request;
  let messages: readonly Message[] = [];
  if (wire === 'responses') {
    const input = body['input'];
    messages =
      typeof input === 'string'
        ? [{ role: 'user', content: input }]
        : Array.isArray(input)
          ? (input as Message[])
          : [];
  } else if (wire === 'embeddings') {
    const input = body['input'];
    messages = [{ role: 'user', content: typeof input === 'string' ? input : '' }];
  } else if (Array.isArray(body['messages'])) {
    messages = body['messages'] as Message[];
  }
  const classified: { -readonly [K in keyof ClassifiableRequest]: ClassifiableRequest[K] } = {
    messages,
  };
  if (Array.isArray(body['tools'])) classified.tools = body['tools'] as unknown[];
  const format = body['response_format'];
  if (typeof format === 'object' && format !== null) {
    classified.response_format = format as { type?: string };
  }
  if (task !== undefined) classified.task = task;
  return classified;
}
