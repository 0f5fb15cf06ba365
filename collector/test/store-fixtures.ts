/** Span rows for the store and writer tests, shaped like the OTLP decoder's output. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SpanRow } from '../src/store/span-store.js';

export const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/** Nanoseconds since the epoch for `ms` milliseconds since the epoch, plus `extraNanos`. */
export const nanos = (ms: number, extraNanos = 0) =>
  (BigInt(Math.floor(ms)) * 1_000_000n + BigInt(extraNanos)).toString();

export function spanRow(overrides: Partial<SpanRow> = {}): SpanRow {
  return {
    Timestamp: nanos(Date.now() - 1000, 123_456),
    TraceId: hex(16),
    SpanId: hex(8),
    ParentSpanId: '',
    TraceState: '',
    SpanName: 'GET /',
    SpanKind: 'Server',
    ServiceName: 'shop',
    ResourceAttributes: { 'service.name': 'shop' },
    ScopeName: 'test',
    ScopeVersion: '1.0.0',
    SpanAttributes: {},
    Duration: '1500000',
    StatusCode: 'Unset',
    StatusMessage: '',
    Events: { Timestamp: [], Name: [], Attributes: [] },
    Links: { TraceId: [], SpanId: [], TraceState: [], Attributes: [] },
    ...overrides,
  };
}

export interface LlmSpanOptions {
  model?: string;
  responseModel?: string;
  provider?: string;
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheWrite?: number;
  reasoning?: number;
  costUsd?: number;
  durationMs?: number;
  task?: string;
  feature?: string;
  service?: string;
  error?: string;
  responseId?: string;
  extra?: Record<string, string>;
  timestampMs?: number;
}

export function llmSpan(options: LlmSpanOptions = {}): SpanRow {
  const model = options.model ?? 'gpt-4o-mini';
  const attributes: Record<string, string> = {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': options.provider ?? 'openai',
    'gen_ai.request.model': model,
    'gen_ai.response.model': options.responseModel ?? model,
    'gen_ai.response.id': options.responseId ?? `chatcmpl-${hex(6)}`,
    'gen_ai.usage.input_tokens': String(options.input ?? 100),
    'gen_ai.usage.output_tokens': String(options.output ?? 20),
    'gen_ai.response.finish_reasons': '["stop"]',
    ...(options.cacheRead === undefined
      ? {}
      : { 'gen_ai.usage.cache_read.input_tokens': String(options.cacheRead) }),
    ...(options.cacheWrite === undefined
      ? {}
      : { 'gen_ai.usage.cache_creation.input_tokens': String(options.cacheWrite) }),
    ...(options.reasoning === undefined
      ? {}
      : { 'gen_ai.usage.reasoning.output_tokens': String(options.reasoning) }),
    ...(options.costUsd === undefined
      ? {}
      : {
          'gen_ai.usage.cost.amount': String(options.costUsd),
          'gen_ai.usage.cost.currency': 'USD',
          'gen_ai.usage.cost.source': 'local',
        }),
    ...(options.task === undefined ? {} : { 'modelmaxx.task': options.task }),
    ...(options.feature === undefined ? {} : { 'modelmaxx.feature': options.feature }),
    ...(options.error === undefined ? {} : { 'error.type': options.error }),
    ...options.extra,
  };
  const service = options.service ?? 'shop';
  return spanRow({
    ...(options.timestampMs === undefined ? {} : { Timestamp: nanos(options.timestampMs) }),
    SpanName: `chat ${model}`,
    SpanKind: 'Client',
    ServiceName: service,
    ResourceAttributes: { 'service.name': service },
    SpanAttributes: attributes,
    Duration: String(Math.round((options.durationMs ?? 800) * 1_000_000)),
    StatusCode: options.error === undefined ? 'Unset' : 'Error',
  });
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
