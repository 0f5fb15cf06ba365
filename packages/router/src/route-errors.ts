/** The routed client's errors, and which SDK errors are worth a fallback. */
import { diag } from '@opentelemetry/api';
import type { RouteAttempt } from './router-types.js';

const warned = new Set<string>();

/**
 * A wiring mistake in `createRouter` (e.g. per-request routing without `score`): on the
 * OpenTelemetry diag logger and, once per message and process, as a Node warning on stderr, so
 * an app without a diag logger (`OTEL_LOG_LEVEL`) sees it too.
 */
export function configWarning(message: string): void {
  diag.warn(message);
  if (warned.has(message)) return;
  warned.add(message);
  process.emitWarning(message, { code: 'MODELMAXX_ROUTER_CONFIG' });
}

/** Every allowed candidate failed or was cooling down. */
export class AllCandidatesFailedError extends Error {
  override readonly name = 'AllCandidatesFailedError';
  readonly attempts: readonly RouteAttempt[];
  constructor(message: string, attempts: readonly RouteAttempt[], options?: ErrorOptions) {
    super(message, options);
    this.attempts = attempts;
  }
}

export class RouterConfigError extends Error {
  override readonly name = 'RouterConfigError';
}

export type FailureClass = { status: 'retryable'; retryAfterMs?: number } | { status: 'failed' };

/** Classifies an SDK error: 429, 5xx, timeouts and connection errors are worth a fallback. */
export function classifyError(error: unknown): FailureClass {
  if (error === null || typeof error !== 'object') return { status: 'failed' };
  const status = (error as { status?: unknown }).status;
  const name = `${String((error as { name?: unknown }).name)} ${error.constructor.name}`;
  if (typeof status === 'number' && (status === 429 || status === 408 || status >= 500)) {
    const headers = (error as { headers?: unknown }).headers;
    let retryAfter: string | null | undefined;
    if (headers instanceof Headers) retryAfter = headers.get('retry-after');
    else if (headers !== null && typeof headers === 'object') {
      retryAfter = (headers as Record<string, string | undefined>)['retry-after'];
    }
    const seconds = retryAfter === null || retryAfter === undefined ? NaN : Number(retryAfter);
    return Number.isFinite(seconds)
      ? { status: 'retryable', retryAfterMs: seconds * 1000 }
      : { status: 'retryable' };
  }
  if (
    status === undefined &&
    /Timeout|Connection|AbortError/.test(name) &&
    !/UserAbort/.test(name)
  ) {
    return { status: 'retryable' };
  }
  return { status: 'failed' };
}
