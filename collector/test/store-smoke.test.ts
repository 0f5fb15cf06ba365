import { describe, expect, it } from 'vitest';
import { llmSpan, spanRow } from './store-fixtures.js';
import { useTestStore } from './support/test-store.js';

const db = useTestStore('mm-smoke-', { batch: { maxDelayMs: 20 } });

describe('embedded store (smoke)', () => {
  it('acknowledges from the spool, then stores spans, LLM calls and stats', async () => {
    const result = await db.store.write([
      spanRow(),
      llmSpan({ costUsd: 0.5, durationMs: 100 }),
      llmSpan({ durationMs: 300 }),
    ]);
    expect(result).toEqual({ status: 'ok', durability: 'spool' });
    expect(await db.store.flush()).toBe(true);
    const traces = await db.store.engine.query<{ n: string }>(
      'SELECT toString(count()) AS n FROM modelmaxx.otel_traces',
    );
    expect(traces.data[0]?.n).toBe('3');
    const stats = await db.store.stats({ window: '1h', groupBy: ['model'] });
    expect(stats.rows).toHaveLength(1);
    expect(stats.rows[0]).toMatchObject({ model: 'gpt-4o-mini', calls: 2, errors: 0 });
    expect(db.store.metrics()).toMatchObject({ received: 3, stored: 3, spooled: 3, batches: 1 });
  });
});
