import { diag } from '@opentelemetry/api';

export type Dict = Record<string, unknown>;

export const asDict = (value: unknown): Dict | undefined =>
  typeof value === 'object' && value !== null ? (value as Dict) : undefined;

export const asString = (value: unknown): string | undefined =>
  typeof value === 'string' ? value : undefined;

export const asNumber = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;

export const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** The class name of an error (`RateLimitError`), for `error.type`. */
export function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const name = (error as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof name === 'string' && name !== '' && name !== 'Object') return name;
    const own = (error as { name?: unknown }).name;
    if (typeof own === 'string' && own !== '') return own;
  }
  return '_OTHER';
}

/** Runs one telemetry step; a failure is logged through `diag` and costs only telemetry. */
export function guard<T>(what: string, step: () => T): T | undefined {
  try {
    return step();
  } catch (error) {
    diag.error(`modelmaxx: ${what} failed`, error);
    return undefined;
  }
}

/** Copies `value` into `target[key]` when it is defined. */
export function setIfDefined(target: object, key: string, value: unknown): void {
  if (value !== undefined && value !== null) (target as Record<string, unknown>)[key] = value;
}

/** A method as the SDKs define it: patched methods are called with the SDK object as `this`. */
export type AnyFunction = (this: unknown, ...args: unknown[]) => unknown;

/** Whether `value` is a promise or any other thenable. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}
