/**
 * The store opens its writer once: writes that race the first `start()` (a store used
 * without `openStore`, which starts it before returning) share one `BatchWriter` instead of
 * each replaying the spool with a writer of its own. Counted through the `openWriter` option
 * over the real writer and the real embedded ClickHouse.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChdbEngine } from '../src/store/chdb-engine.js';
import { ClickHouseStore } from '../src/store/clickhouse-store.js';
import { BatchWriter } from '../src/writer/batch-writer.js';
import { llmSpan, spanRow, tempDir } from './store-fixtures.js';

const dir = tempDir('mm-writer-start-');
afterAll(() => dir.remove());

describe('the store writer', () => {
  it('is opened once when the first writes race its start', async () => {
    let opened = 0;
    const store = new ClickHouseStore({
      engine: new ChdbEngine(join(dir.path, 'data')),
      spoolDir: join(dir.path, 'spool'),
      batch: { maxDelayMs: 20 },
      priceRows: [],
      openWriter: async (options) => {
        opened += 1;
        return BatchWriter.open(options);
      },
    });
    try {
      await store.migrate();
      const results = await Promise.all([
        store.write([spanRow()]),
        store.write([llmSpan()]),
        store.write([spanRow(), spanRow()]),
      ]);
      expect(results).toEqual(Array(3).fill({ status: 'ok', durability: 'spool' }));
      expect(opened).toBe(1);
      expect(await store.flush(30_000)).toBe(true);
      const stored = await store.query<{ n: string }>(
        'SELECT toString(count()) AS n FROM modelmaxx.otel_traces',
      );
      expect(stored.data[0]?.n).toBe('4');
    } finally {
      await store.close();
    }
  });
});
