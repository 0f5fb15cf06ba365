import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/open-store.js';
import type { ClickHouseStore } from '../src/store/clickhouse-store.js';
import { llmSpan, spanRow, tempDir } from './store-fixtures.js';

const dir = tempDir('mm-smoke-');
let store: ClickHouseStore;

beforeAll(async () => {
  store = await openStore({ dataDir: dir.path, batch: { maxDelayMs: 20 } });
});
afterAll(async () => {
  await store.close();
  dir.remove();
});

describe('embedded store (smoke)', () => {
  it('acknowledges from the spool, then stores spans, LLM calls and stats', async () => {
    const result = await store.write([
      spanRow(),
      llmSpan({ costUsd: 0.5, durationMs: 100 }),
      llmSpan({ durationMs: 300 }),
    ]);
    expect(result).toEqual({ status: 'ok', durability: 'spool' });
    expect(await store.flush()).toBe(true);
    const traces = await store.engine.query<{ n: string }>(
      'SELECT toString(count()) AS n FROM modelmaxx.otel_traces',
    );
    expect(traces.data[0]?.n).toBe('3');
    const stats = await store.stats({ window: '1h', groupBy: ['model'] });
    expect(stats.rows).toHaveLength(1);
    expect(stats.rows[0]).toMatchObject({ model: 'gpt-4o-mini', calls: 2, errors: 0 });
    expect(store.metrics()).toMatchObject({ received: 3, stored: 3, spooled: 3, batches: 1 });
  });
});
