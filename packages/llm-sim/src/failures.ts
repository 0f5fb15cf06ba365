import type { Directives } from './directives.js';
import type { ErrorShape } from './http-util.js';
import type { ModelState } from './model-registry.js';
import type { SimModelConfig } from './models.js';
import { hashString } from './random.js';

/** A failure to answer with: an HTTP error status, or a timeout held for `timeout` ms. */
export type Failure = { status: number } | { timeout: number };

export interface FailureSettings {
  failureScale: number;
  timeoutHoldMs: number;
  /** How often each request body has been failed by a `times` directive. */
  failTimes: Map<number, number>;
}

/** Failures: directives first, then the model's random rates. */
export function pickFailure(
  directives: Directives,
  state: ModelState,
  rawBody: string,
  settings: FailureSettings,
): Failure | undefined {
  if (directives.status !== undefined || directives.timeout) {
    if (directives.times !== undefined) {
      const key = hashString(rawBody);
      const count = settings.failTimes.get(key) ?? 0;
      settings.failTimes.set(key, count + 1);
      if (count >= directives.times) return undefined;
    }
    return directives.timeout
      ? { timeout: directives.timeoutMs ?? settings.timeoutHoldMs }
      : { status: directives.status as number };
  }
  if (settings.failureScale <= 0 && !state.failureExplicit) return undefined;
  const scale = state.failureExplicit ? 1 : settings.failureScale;
  const draw = state.random.next();
  const { rate429, rate500, rateTimeout } = state.config.failure;
  if (draw < rate429 * scale) return { status: 429 };
  if (draw < (rate429 + rate500) * scale) return { status: 500 };
  if (draw < (rate429 + rate500 + rateTimeout) * scale) return { timeout: settings.timeoutHoldMs };
  return undefined;
}

/** Retry-after and rate-limit headers of an error status, in the provider's spelling. */
export function failureHeaders(
  status: number,
  directives: Directives,
  model: SimModelConfig,
  shape: ErrorShape,
): Record<string, string> {
  const headers: Record<string, string> = {};
  if (directives.retryAfter === undefined && status !== 429 && status !== 503 && status !== 529)
    return headers;
  const retryAfter = directives.retryAfter ?? model.failure.retryAfterSeconds;
  headers['retry-after'] = String(retryAfter);
  if (shape === 'anthropic') {
    headers['anthropic-ratelimit-requests-limit'] = '1000';
    headers['anthropic-ratelimit-requests-remaining'] = '0';
    headers['anthropic-ratelimit-requests-reset'] = new Date(
      Date.now() + retryAfter * 1000,
    ).toISOString();
  } else {
    headers['x-ratelimit-limit-requests'] = '10000';
    headers['x-ratelimit-remaining-requests'] = '0';
    headers['x-ratelimit-reset-requests'] = `${retryAfter}s`;
  }
  return headers;
}

/** OpenAI's wording of a rate limit; other errors keep the default message of their status. */
export function failureMessage(
  status: number,
  directives: Directives,
  model: SimModelConfig,
  shape: ErrorShape,
): string | undefined {
  if (status !== 429 || shape !== 'openai') return undefined;
  const retryAfter = directives.retryAfter ?? model.failure.retryAfterSeconds;
  return `Rate limit reached for ${model.name} in organization org-sim on requests per min (RPM): Limit 10000, Used 10000, Requested 1. Please try again in ${retryAfter}s.`;
}

/** The error a provider sends inside an open stream. */
export function streamErrorFrame(path: string, sequence: number): string {
  if (path === '/v1/messages') {
    return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })}\n\n`;
  }
  const message = 'The server had an error while processing your request. Sorry about that!';
  if (path === '/v1/responses') {
    return `event: error\ndata: ${JSON.stringify({ type: 'error', code: 'server_error', message, param: null, sequence_number: sequence })}\n\n`;
  }
  return `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code: null } })}\n\n`;
}
