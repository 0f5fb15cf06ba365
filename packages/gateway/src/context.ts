/**
 * What every step of the request pipeline shares: the config, the access layer, the clock, the
 * log, the tracer, the counters and the resolved targets.
 */
import type { ShadowDispatcher } from '@modelmaxx/router';
import type { GatewayAccess } from './access/types.js';
import type { GatewayConfig } from './config.js';
import type { Targets } from './targets.js';
import type { SpanRecorder } from './tracer.js';

export interface GatewayLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface GatewayMetrics {
  requests: number;
  inFlight: number;
  rejectedBusy: number;
  upstreamErrors: number;
  fallbacks: number;
  clientAborts: number;
  costDisagreements: number;
}

export interface GatewayContext {
  readonly config: GatewayConfig;
  readonly access: GatewayAccess;
  /** An access layer was given: budgets need each candidate's cost estimate. */
  readonly estimates: boolean;
  readonly now: () => number;
  readonly log: GatewayLogger;
  readonly tracer: SpanRecorder | undefined;
  readonly metrics: GatewayMetrics;
  readonly targets: Targets;
  /** Shadow comparisons per policy (./shadow.ts), for the policies that enable them. */
  readonly shadows: ReadonlyMap<string, ShadowDispatcher>;
  /** The requests being answered (each settles its admission), which `close` waits for. */
  readonly running: Set<Promise<void>>;
  /** `close` was called: new requests are refused. */
  closing: boolean;
}

/** The app's side of a request: whether it went away, and how to stop the upstream call then. */
export interface ClientState {
  aborted: boolean;
  abort?: () => void;
}

/** Warnings and errors to stderr; info dropped. */
export const stderrLogger: GatewayLogger = {
  info: () => undefined,
  warn: (message, fields) =>
    process.stderr.write(`modelmaxx gateway: ${message} ${JSON.stringify(fields ?? {})}\n`),
  error: (message, fields) =>
    process.stderr.write(`modelmaxx gateway: ${message} ${JSON.stringify(fields ?? {})}\n`),
};
