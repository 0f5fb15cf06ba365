/**
 * A spooled batch that ClickHouse has no room for as one part (NOT_ENOUGH_SPACE, code 243) is
 * retried in small blocks; the choice is kept in the segment's file name, so that a restart
 * after some of those blocks went in inserts the same blocks again and ClickHouse drops the
 * ones it has (each block is deduplicated by the batch token plus its index). The real
 * embedded ClickHouse stores the rows; only the first insert's answer is made a 243.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClickHouseError } from '../src/store/engine.js';
import type { InsertOptions } from '../src/store/engine.js';
import type { ClickHouseStore } from '../src/store/clickhouse-store.js';
import { SMALL_BLOCK_ROWS } from '../src/writer/options.js';
import { spanRow, tempDir } from './store-fixtures.js';
import { crash, openKillableStore } from './support/store-crash.js';

const dir = tempDir('mm-small-blocks-');
afterAll(() => dir.remove());

/** More than three small blocks, written 100 rows a request. */
const ROWS = 6300;
const SERVICE = 'small-blocks';

const open = (): Promise<ClickHouseStore> =>
  openKillableStore({
    dataDir: join(dir.path, 'data'),
    spoolDir: join(dir.path, 'spool'),
    // One segment for everything written below, sealed by flush().
    batch: { maxRows: 1_000_000, maxBytes: 1024 ** 3, maxDelayMs: 3_600_000 },
    retryMinMs: 20,
    retryMaxMs: 50,
  });

const stored = async (store: ClickHouseStore) => {
  const result = await store.engine.query<{ rows: string; spans: string }>(
    `SELECT count() AS rows, uniqExact(SpanId) AS spans FROM modelmaxx.otel_traces WHERE ServiceName = {service:String}`,
    { service: SERVICE },
  );
  return { rows: Number(result.data[0]?.rows), spans: Number(result.data[0]?.spans) };
};

const spoolFiles = () =>
  readdirSync(join(dir.path, 'spool')).filter((name) => /\.(native|tsv)$/.test(name));

describe('a batch ClickHouse has no room for', () => {
  it('goes in as small blocks, exactly once, also after a crash between its blocks', async () => {
    const first = await open();
    const engine = first.engine;
    const realInsert = engine.insert.bind(engine);
    const seen: { smallBlocks: boolean }[] = [];
    let answered = 0;
    engine.insert = async (options: InsertOptions) => {
      const small = options.settings?.['max_insert_block_size'] === SMALL_BLOCK_ROWS;
      seen.push({ smallBlocks: small });
      answered += 1;
      if (answered === 1) {
        throw new ClickHouseError('Cannot reserve 119.09 MiB, not enough space', 243);
      }
      if (answered === 2) {
        // The small blocks go in for real, but the answer is lost (as when the process dies
        // right after the insert): the segment stays in the spool.
        await realInsert(options);
      }
      throw new ClickHouseError('connection lost', undefined);
    };
    const writes = [];
    for (let index = 0; index < ROWS; index += 100) {
      writes.push(
        first.write(Array.from({ length: 100 }, () => spanRow({ ServiceName: SERVICE }))),
      );
    }
    expect((await Promise.all(writes)).every((result) => result.status === 'ok')).toBe(true);
    void first.flush(1_000);
    const deadline = Date.now() + 30_000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await crash(first);
    // Tried whole (refused for room), then in small blocks (stored, answer lost).
    expect(seen.slice(0, 2)).toEqual([{ smallBlocks: false }, { smallBlocks: true }]);
    expect(seen.every((attempt, index) => index === 0 || attempt.smallBlocks)).toBe(true);
    expect(spoolFiles()).toEqual([expect.stringMatching(/\.small\.native$/)]);

    const second = await open();
    try {
      expect(await second.flush(30_000)).toBe(true);
      // Every row once: the blocks that went in before the crash were deduplicated.
      expect(await stored(second)).toEqual({ rows: ROWS, spans: ROWS });
      expect(spoolFiles()).toEqual([]);
    } finally {
      await second.close();
    }
  }, 120_000);
});
