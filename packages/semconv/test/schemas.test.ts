import { describe, expect, it } from 'vitest';
import { FeedbackSchema, StatsQuerySchema } from '@modelmaxx/semconv/schemas';

describe('FeedbackSchema', () => {
  it('accepts a score linked by response id and defaults the source to feedback', () => {
    const parsed = FeedbackSchema.parse({ responseId: 'chatcmpl-1', name: 'thumbs', score: 1 });
    expect(parsed).toEqual({
      responseId: 'chatcmpl-1',
      name: 'thumbs',
      score: 1,
      source: 'feedback',
    });
  });

  it('lower-cases trace and span ids', () => {
    const parsed = FeedbackSchema.parse({
      traceId: 'ABCDEF0123456789ABCDEF0123456789',
      spanId: '0123456789ABCDEF',
      name: 'judge',
      score: 0.5,
      source: 'judge',
    });
    expect(parsed.traceId).toBe('abcdef0123456789abcdef0123456789');
    expect(parsed.spanId).toBe('0123456789abcdef');
  });

  it('says which response is missing when neither link is given', () => {
    const result = FeedbackSchema.safeParse({ name: 'thumbs', score: 1 });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(/responseId, or traceId/);
  });

  it('rejects a malformed trace id and a non-finite score', () => {
    expect(FeedbackSchema.safeParse({ traceId: 'xyz', name: 'a', score: 1 }).success).toBe(false);
    expect(FeedbackSchema.safeParse({ responseId: 'r', name: 'a', score: Infinity }).success).toBe(
      false,
    );
  });
});

describe('StatsQuerySchema', () => {
  it('always groups by model and removes duplicates', () => {
    expect(StatsQuerySchema.parse({ groupBy: 'task,model,task' })).toEqual({
      window: '1h',
      groupBy: ['model', 'task'],
    });
  });

  it('rejects unknown group keys and malformed windows', () => {
    expect(StatsQuerySchema.safeParse({ groupBy: 'colour' }).success).toBe(false);
    expect(StatsQuerySchema.safeParse({ window: 'yesterday' }).success).toBe(false);
  });
});
