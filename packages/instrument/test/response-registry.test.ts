import { TraceFlags, createTraceState } from '@opentelemetry/api';
import type { SpanContext, Tracer } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { ResponseRegistry } from '../src/response-registry.js';

const tracer = { name: 'tracer' } as unknown as Tracer;
const otherTracer = { name: 'other' } as unknown as Tracer;

function spanContext(index: number): SpanContext {
  return {
    traceId: index.toString(16).padStart(32, '0'),
    spanId: (index + 1).toString(16).padStart(16, 'a'),
    traceFlags: index % 2 === 0 ? TraceFlags.SAMPLED : TraceFlags.NONE,
  };
}

const call = {
  'gen_ai.request.model': 'gpt-4o-mini',
  'gen_ai.provider.name': 'openai',
  'gen_ai.operation.name': 'chat',
  'modelmaxx.task': 'faq',
  'server.port': 443,
};

describe('ResponseRegistry', () => {
  it('gives back the span context, tracer and identity of a remembered call', () => {
    const registry = new ResponseRegistry(4);
    const remembered = { ...spanContext(7), traceState: createTraceState('vendor=1') };
    registry.remember('resp-1', remembered, tracer, call);
    const found = registry.get('resp-1');
    expect(found?.spanContext).toEqual(remembered);
    expect(found?.tracer).toBe(tracer);
    // Only the identity keys (no operation, no server): what a late score names its call by.
    expect(found?.call).toEqual({
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.provider.name': 'openai',
      'modelmaxx.task': 'faq',
    });
    expect(registry.get('resp-unknown')).toBeUndefined();
  });

  it('keeps exactly the last `capacity` responses', () => {
    const registry = new ResponseRegistry(100);
    for (let index = 0; index < 250; index += 1) {
      registry.remember(`resp-${index}`, spanContext(index), tracer, call);
    }
    expect(registry.size).toBe(100);
    expect(registry.get('resp-149')).toBeUndefined();
    for (let index = 150; index < 250; index += 1) {
      expect(registry.get(`resp-${index}`)?.spanContext).toEqual(spanContext(index));
    }
  });

  it('moves a response remembered again to the newest slot; another span with the id makes it ambiguous', () => {
    const registry = new ResponseRegistry(3);
    registry.remember('a', spanContext(1), tracer, call);
    registry.remember('b', spanContext(2), tracer, call);
    registry.remember('a', spanContext(3), otherTracer, undefined);
    registry.remember('c', spanContext(4), tracer, call);
    registry.remember('d', spanContext(5), tracer, call);
    // 'b' was the oldest; 'a' survived because it was remembered again.
    expect(registry.get('b')).toBeUndefined();
    // Two calls (two tracers: two services) got the id 'a': the id alone names neither.
    expect(registry.get('a')).toEqual({
      spanContext: spanContext(3),
      tracer: otherTracer,
      call: {},
      ambiguous: true,
    });
    expect(registry.size).toBe(3);
  });

  it('the same span remembered again stays unambiguous; ambiguity ends with eviction', () => {
    const registry = new ResponseRegistry(2);
    registry.remember('a', spanContext(1), tracer, call);
    registry.remember('a', spanContext(1), tracer, call);
    expect(registry.get('a')?.ambiguous).toBeUndefined();
    registry.remember('a', spanContext(2), tracer, call);
    expect(registry.get('a')?.ambiguous).toBe(true);
    registry.remember('b', spanContext(3), tracer, call);
    registry.remember('c', spanContext(4), tracer, call);
    expect(registry.get('a')).toBeUndefined();
    registry.remember('a', spanContext(5), tracer, call);
    expect(registry.get('a')?.spanContext).toEqual(spanContext(5));
    expect(registry.get('a')?.ambiguous).toBeUndefined();
  });

  it('does not keep span ids that are not 16/8 bytes of hex', () => {
    const registry = new ResponseRegistry(3);
    registry.remember('short', { ...spanContext(1), traceId: 'abc' }, tracer, call);
    registry.remember('not-hex', { ...spanContext(1), spanId: 'zzzzzzzzzzzzzzzz' }, tracer, call);
    registry.remember('fine', spanContext(2), tracer, call);
    expect(registry.get('short')).toBeUndefined();
    expect(registry.get('not-hex')).toBeUndefined();
    expect(registry.get('fine')?.spanContext).toEqual(spanContext(2));
    expect(registry.size).toBe(1);
  });
});
