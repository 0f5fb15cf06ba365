import { ROOT_CONTEXT, createContextKey, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { withActiveSpan } from '../src/active-span.js';

const span = trace.wrapSpanContext({
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  traceFlags: 1,
});
const other = trace.wrapSpanContext({
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: '00f067aa0ba902b7',
  traceFlags: 1,
});
const KEY = createContextKey('modelmaxx test key');
const OTHER_KEY = createContextKey('modelmaxx other test key');

describe('withActiveSpan', () => {
  it('reads like trace.setSpan(parent, span)', () => {
    const parent = trace.setSpan(ROOT_CONTEXT.setValue(KEY, 'app value'), other);
    const active = withActiveSpan(parent, span);
    expect(trace.getSpan(active)).toBe(span);
    expect(trace.getSpan(parent)).toBe(other);
    expect(active.getValue(KEY)).toBe('app value');
    expect(active.getValue(OTHER_KEY)).toBeUndefined();
  });

  it('stays immutable: setValue and deleteValue give new contexts that keep the span', () => {
    const active = withActiveSpan(ROOT_CONTEXT.setValue(KEY, 'app value'), span);
    const added = active.setValue(OTHER_KEY, 42);
    expect(added.getValue(OTHER_KEY)).toBe(42);
    expect(trace.getSpan(added)).toBe(span);
    expect(added.getValue(KEY)).toBe('app value');
    expect(active.getValue(OTHER_KEY)).toBeUndefined();
    const removed = active.deleteValue(KEY);
    expect(removed.getValue(KEY)).toBeUndefined();
    expect(trace.getSpan(removed)).toBe(span);
    expect(active.getValue(KEY)).toBe('app value');
    // Replacing the active span, as a child span started inside the call does.
    const child = trace.setSpan(active, other);
    expect(trace.getSpan(child)).toBe(other);
    expect(child.getValue(KEY)).toBe('app value');
    expect(trace.getSpan(active)).toBe(span);
    expect(trace.getSpan(trace.deleteSpan(active))).toBeUndefined();
  });
});
