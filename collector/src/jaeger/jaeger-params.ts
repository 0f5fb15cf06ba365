/**
 * The query parameters of Jaeger's HTTP APIs, read into what `JaegerQueries` takes: v1's
 * search (`service`, `operation`, `tags`/`tag`, `start`/`end` in µs or `lookback`,
 * `minDuration`/`maxDuration`, `limit`), v1's dependency window (`endTs`, `lookback` in ms),
 * and v3's `query.*` search (RFC 3339 times, `query.attributes`). Anything malformed is a
 * `JaegerQueryError` (400).
 */
import type { Request } from 'express';
import { JaegerQueryError, parseGoDuration, parseTags } from './jaeger-query.js';
import type { TraceSearch } from './jaeger-query.js';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 1500;
const DEFAULT_LOOKBACK_NS = 3600n * 1_000_000_000n;
const DEFAULT_DEPENDENCIES_LOOKBACK_NS = 24n * DEFAULT_LOOKBACK_NS;

type Query = Request['query'];

/** The last value of a parameter given once or repeated; `JaegerQueryError` for a nested one. */
export function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    if (value.length === 0) return undefined;
    value = value[value.length - 1];
  }
  if (typeof value !== 'string') throw new JaegerQueryError(`invalid ${name}`);
  return value;
}

/** A parameter that must be present and not empty. */
export function required(value: unknown, name: string): string {
  const text = single(value, name);
  if (text === undefined || text === '')
    throw new JaegerQueryError(`parameter "${name}" is required`);
  return text;
}

function integer(value: string | undefined, name: string): bigint | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^[0-9]+$/.test(value))
    throw new JaegerQueryError(`invalid ${name} ${JSON.stringify(value)}`);
  return BigInt(value);
}

function limitOf(value: string | undefined): number {
  const parsed = integer(value, 'limit');
  if (parsed === undefined || parsed === 0n) return DEFAULT_LIMIT;
  return Number(parsed > BigInt(MAX_LIMIT) ? BigInt(MAX_LIMIT) : parsed);
}

function rfc3339Nanos(value: string | undefined, name: string): bigint | undefined {
  if (value === undefined || value === '') return undefined;
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(
    value,
  );
  const ms = match === null ? Number.NaN : Date.parse(`${match[1]}${match[3]}`);
  if (match === null || !Number.isFinite(ms)) {
    throw new JaegerQueryError(`invalid ${name} ${JSON.stringify(value)}, want RFC 3339`);
  }
  const fraction = (match[2] ?? '').padEnd(9, '0');
  return BigInt(ms) * 1_000_000n + BigInt(fraction);
}

/** The optional parts of a search: operation and duration bounds, when given and not empty. */
function searchFilters(
  operation: string | undefined,
  minDuration: string | undefined,
  maxDuration: string | undefined,
): Pick<TraceSearch, 'operation' | 'minDurationNs' | 'maxDurationNs'> {
  const given = (value: string | undefined): value is string => value !== undefined && value !== '';
  return {
    ...(given(operation) ? { operation } : {}),
    ...(given(minDuration) ? { minDurationNs: parseGoDuration(minDuration) } : {}),
    ...(given(maxDuration) ? { maxDurationNs: parseGoDuration(maxDuration) } : {}),
  };
}

/** v1 `/api/traces` search; the window defaults to the hour before `end` (or now). */
export function v1TraceSearch(query: Query, nowNs: bigint): TraceSearch {
  const service = required(query.service, 'service');
  const endUs = integer(single(query.end, 'end'), 'end');
  const startUs = integer(single(query.start, 'start'), 'start');
  const endNs = endUs === undefined ? nowNs : endUs * 1000n;
  const lookback = single(query.lookback, 'lookback');
  const startNs =
    startUs !== undefined
      ? startUs * 1000n
      : endNs -
        (lookback === undefined || lookback === '' || lookback === 'custom'
          ? DEFAULT_LOOKBACK_NS
          : parseGoDuration(lookback));
  const search: TraceSearch = {
    service,
    tags: parseTags(query.tags, query.tag),
    startNs,
    endNs,
    limit: limitOf(single(query.limit, 'limit')),
    ...searchFilters(
      single(query.operation, 'operation'),
      single(query.minDuration, 'minDuration'),
      single(query.maxDuration, 'maxDuration'),
    ),
  };
  if (startNs > endNs) throw new JaegerQueryError('start is after end');
  return search;
}

/** v1 `/api/dependencies` window in nanoseconds: `lookback` ms (default a day) before `endTs`. */
export function dependencyWindow(query: Query, nowNs: bigint): { startNs: bigint; endNs: bigint } {
  const endMs = integer(single(query.endTs, 'endTs'), 'endTs');
  const lookbackMs = integer(single(query.lookback, 'lookback'), 'lookback');
  const endNs = endMs === undefined ? nowNs : endMs * 1_000_000n;
  const lookbackNs =
    lookbackMs === undefined ? DEFAULT_DEPENDENCIES_LOOKBACK_NS : lookbackMs * 1_000_000n;
  return { startNs: endNs - lookbackNs, endNs };
}

/** v3 `query.attributes` (JSON or logfmt) and `query.attributes[key]=value`. */
function v3Attributes(query: Query): Record<string, string> {
  const attributes = parseTags(query['query.attributes'], undefined);
  for (const [key, value] of Object.entries(query)) {
    const match = /^query\.attributes\[(.+)\]$/.exec(key);
    if (match?.[1] !== undefined) attributes[match[1]] = String(single(value, key) ?? '');
  }
  return attributes;
}

/** v3 `/api/v3/trace-summaries` search (`query.*` parameters). */
export function v3TraceSearch(query: Query, nowNs: bigint): TraceSearch {
  const get = (name: string) => single(query[`query.${name}`], `query.${name}`);
  const service = required(query['query.serviceName'], 'query.serviceName');
  const endNs = rfc3339Nanos(get('startTimeMax'), 'query.startTimeMax') ?? nowNs;
  const startNs =
    rfc3339Nanos(get('startTimeMin'), 'query.startTimeMin') ?? endNs - DEFAULT_LOOKBACK_NS;
  const search: TraceSearch = {
    service,
    tags: v3Attributes(query),
    startNs,
    endNs,
    limit: limitOf(get('searchDepth')),
    ...searchFilters(get('operationName'), get('durationMin'), get('durationMax')),
  };
  if (startNs > endNs) {
    throw new JaegerQueryError('query.startTimeMin is after query.startTimeMax');
  }
  return search;
}
