import { appendFileSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { openStore } from '../src/store/open-store.js';
import type { ClickHouseStore } from '../src/store/clickhouse-store.js';
import { spanRowsToNative } from '../src/store/span-row-native.js';
import type { SpanRow, WriteResult } from '../src/store/span-store.js';
import { QueueFullError, SpoolFullError } from '../src/writer/overloaded.js';
import { llmSpan, spanRow, tempDir } from './store-fixtures.js';
import { crash, insertOutage, openKillableStore, stopWriter } from './support/store-crash.js';

// One chDB data folder per process: every store in this file opens the same one.
const dir = tempDir('mm-durability-');
const dataDir = join(dir.path, 'data');
const spoolDir = join(dataDir, 'spool');
const open = (options: Parameters<typeof openStore>[0] = {}) =>
  openKillableStore({
    dataDir,
    batch: { maxRows: 50, maxDelayMs: 30 },
    retryMinMs: 20,
    retryMaxMs: 100,
    closeTimeoutMs: 2_000,
    ...options,
  });

afterAll(() => dir.remove());

const countSpans = async (store: ClickHouseStore, service: string) => {
  const [row] = (
    await store.engine.query<{ n: string; distinctSpans: string; calls: string }>(
      `SELECT toString(count()) AS n, toString(uniqExact(SpanId)) AS distinctSpans,
              toString((SELECT count() FROM modelmaxx.llm_calls WHERE ServiceName = {service:String})) AS calls
       FROM modelmaxx.otel_traces WHERE ServiceName = {service:String}`,
      { service },
    )
  ).data;
  return { rows: Number(row?.n), distinct: Number(row?.distinctSpans), calls: Number(row?.calls) };
};

const requests = (service: string, count: number, size: number): SpanRow[][] =>
  Array.from({ length: count }, () =>
    Array.from({ length: size }, (_, index) =>
      index % 2 === 0 ? llmSpan({ service }) : spanRow({ ServiceName: service }),
    ),
  );

/**
 * A whole Native block of one row and one column: well-formed (a spool walk keeps it), but
 * ClickHouse refuses it for good when `value` does not convert to the column's real type.
 */
function nativeBlock(column: string, type: string, value: string): Buffer {
  const text = (part: string) => {
    const bytes = Buffer.from(part);
    return Buffer.concat([Buffer.from([bytes.length]), bytes]);
  };
  return Buffer.concat([Buffer.from([1, 1]), text(column), text(type), text(value)]);
}

describe('durability', () => {
  it('spools while ClickHouse refuses inserts, then replays: nothing lost, nothing twice', async () => {
    const store = await open();
    try {
      await insertOutage(store, true);
      const results: WriteResult[] = [];
      for (const request of requests('outage', 20, 10)) results.push(await store.write(request));
      expect(
        results.every((result) => result.status === 'ok' && result.durability === 'spool'),
      ).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const during = store.metrics();
      expect(during.insertErrors).toBeGreaterThan(0);
      expect(during.stored).toBe(0);
      expect(during.spoolBytes).toBeGreaterThan(0);
      expect(
        readdirSync(spoolDir).filter((name) => name.endsWith('.native')).length,
      ).toBeGreaterThan(1);

      await insertOutage(store, false);
      expect(await store.flush(20_000)).toBe(true);
      expect(await countSpans(store, 'outage')).toEqual({ rows: 200, distinct: 200, calls: 100 });
      expect(store.metrics()).toMatchObject({
        stored: 200,
        spoolBytes: 0,
        spoolSegments: 0,
        dead: 0,
      });
      expect(readdirSync(spoolDir).filter((name) => name.endsWith('.native'))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('replays the spool after a restart, and a segment replayed twice is stored once', async () => {
    const first = await open();
    await insertOutage(first, true);
    for (const request of requests('restart', 12, 5))
      expect((await first.write(request)).status).toBe('ok');
    // Killed before anything reached ClickHouse: only the spool holds the 60 spans.
    await stopWriter(first);
    await insertOutage(first, false);
    await crash(first);
    const segments = readdirSync(spoolDir).filter((name) => name.endsWith('.native'));
    expect(segments.length).toBeGreaterThan(0);
    const copies = segments.map((name) => {
      copyFileSync(join(spoolDir, name), join(dir.path, name));
      return name;
    });

    const second = await open();
    try {
      expect(await second.flush(20_000)).toBe(true);
      expect(second.metrics()).toMatchObject({ replayedSegments: segments.length, stored: 60 });
      expect(await countSpans(second, 'restart')).toEqual({ rows: 60, distinct: 60, calls: 36 });
    } finally {
      await crash(second);
    }
    // As if the process had died after the insert but before deleting the segments.
    for (const name of copies) copyFileSync(join(dir.path, name), join(spoolDir, name));
    const third = await open();
    try {
      expect(await third.flush(20_000)).toBe(true);
      expect(third.metrics()).toMatchObject({ replayedSegments: segments.length, stored: 60 });
      expect(await countSpans(third, 'restart')).toEqual({ rows: 60, distinct: 60, calls: 36 });
    } finally {
      await third.close();
    }
  });

  it('cuts a segment torn by a crash in the middle of a write back to its whole blocks', async () => {
    const first = await open();
    await insertOutage(first, true);
    for (const request of requests('torn', 3, 4))
      expect((await first.write(request)).status).toBe('ok');
    await stopWriter(first);
    await insertOutage(first, false);
    await crash(first);
    const segments = readdirSync(spoolDir)
      .filter((name) => name.endsWith('.native'))
      .sort();
    expect(segments.length).toBeGreaterThan(0);
    // The crash left half of a fourth request's block at the end of the newest segment.
    const torn = spanRowsToNative(requests('torn', 1, 4)[0] ?? []);
    appendFileSync(join(spoolDir, segments.at(-1) ?? ''), torn.subarray(0, torn.length >> 1));
    const second = await open();
    try {
      expect(await second.flush(20_000)).toBe(true);
      expect(second.metrics()).toMatchObject({ stored: 12, dead: 0 });
      expect(await countSpans(second, 'torn')).toEqual({ rows: 12, distinct: 12, calls: 6 });
    } finally {
      await second.close();
    }
  });

  it('cuts damaged segments (a malformed block, a partial block and zeros, zeros) back to their whole blocks on start, quarantines the rest, and inserts the later segments', async () => {
    mkdirSync(spoolDir, { recursive: true });
    const block = (rows: number) => spanRowsToNative(requests('damaged', 1, rows)[0] ?? []);
    const partial = block(2);
    const segments: Record<string, Buffer> = {
      '0000000000000101-00000000000000a1.native': Buffer.concat([
        block(4),
        // A block of 1 column and 2 rows: `Id`, of a type the writer never writes.
        Buffer.concat([
          Buffer.from([1, 2, 2]),
          Buffer.from('Id'),
          Buffer.from([7]),
          Buffer.from('UUID128'),
        ]),
        block(4), // after the malformed block: not reachable, quarantined with it
      ]),
      // What the old writer left on a full disk: a good block, part of one, then zeros.
      '0000000000000102-00000000000000a2.native': Buffer.concat([
        block(4),
        partial.subarray(0, partial.length >> 1),
        Buffer.alloc(4096),
      ]),
      '0000000000000103-00000000000000a3.native': Buffer.concat([block(3), Buffer.alloc(64)]),
      '0000000000000104-00000000000000a4.native': block(5),
    };
    for (const [name, body] of Object.entries(segments)) writeFileSync(join(spoolDir, name), body);
    const store = await open();
    try {
      expect(await store.flush(20_000)).toBe(true);
      expect(store.metrics()).toMatchObject({
        replayedSegments: 4,
        quarantined: 3,
        dead: 0,
        stored: 16,
        spoolBytes: 0,
      });
      expect(await countSpans(store, 'damaged')).toMatchObject({ rows: 16, distinct: 16 });
      const quarantine = readdirSync(join(spoolDir, 'quarantine')).filter((name) =>
        /^00000000000001\d\d-/.test(name),
      );
      expect(quarantine).toHaveLength(3);
    } finally {
      await store.close();
    }
  });

  it('cuts a segment back to its whole blocks when its insert fails on damage found after it was written', async () => {
    const store = await open();
    try {
      await insertOutage(store, true);
      for (const request of requests('damaged-later', 2, 3))
        expect((await store.write(request)).status).toBe('ok');
      // Sealed (and refused by the detached table at least once).
      for (let wait = 0; wait < 100 && store.metrics().insertErrors === 0; wait++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(store.metrics().insertErrors).toBeGreaterThan(0);
      const names = readdirSync(spoolDir)
        .filter((name) => name.endsWith('.native'))
        .sort();
      expect(names.length).toBeGreaterThan(0);
      // Damage after the last whole block, as a bad disk or an old writer would leave it.
      appendFileSync(
        join(spoolDir, names[0] ?? ''),
        Buffer.concat([Buffer.from([1, 5]), Buffer.alloc(300)]),
      );
      const quarantinedBefore = store.metrics().quarantined ?? 0;
      await insertOutage(store, false);
      expect(await store.flush(20_000)).toBe(true);
      expect(store.metrics().quarantined).toBe(quarantinedBefore + 1);
      expect(store.metrics().dead).toBe(0);
      expect(await countSpans(store, 'damaged-later')).toMatchObject({ rows: 6, distinct: 6 });
    } finally {
      await store.close();
    }
  });

  it('says overloaded (with Retry-After) past the spool bound instead of dropping, and keeps what it acknowledged', async () => {
    const store = await open({ maxSpoolBytes: 40_000 });
    try {
      await insertOutage(store, true);
      let acknowledged = 0;
      let overloaded: WriteResult | undefined;
      for (const request of requests('overload', 60, 5)) {
        const result = await store.write(request);
        if (result.status === 'ok') acknowledged += request.length;
        else {
          overloaded = result;
          break;
        }
      }
      expect(overloaded).toMatchObject({ status: 'overloaded' });
      const refusal = overloaded?.status === 'overloaded' ? overloaded.error : undefined;
      expect(refusal).toBeInstanceOf(SpoolFullError);
      expect(refusal?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(acknowledged).toBeGreaterThan(0);
      expect(store.metrics().rejected).toBe(5);
      await insertOutage(store, false);
      expect(await store.flush(20_000)).toBe(true);
      const stored = await countSpans(store, 'overload');
      expect(stored.rows).toBe(acknowledged);
      expect(stored.distinct).toBe(acknowledged);
      // Room again once ClickHouse caught up.
      expect(await store.write(requests('overload', 1, 5)[0] ?? [])).toMatchObject({
        status: 'ok',
      });
    } finally {
      await store.close();
    }
  });

  it('moves a batch ClickHouse cannot parse to spool/dead and carries on with the rest', async () => {
    mkdirSync(spoolDir, { recursive: true });
    const poison = '0000000000000001-0123456789abcdef.native';
    writeFileSync(join(spoolDir, poison), nativeBlock('Timestamp', 'String', 'not a time'));
    const store = await open();
    try {
      expect(await store.write(requests('after-poison', 1, 4)[0] ?? [])).toMatchObject({
        status: 'ok',
      });
      expect(await store.flush(20_000)).toBe(true);
      expect(store.metrics()).toMatchObject({ dead: 1, replayedSegments: 1 });
      expect(readdirSync(join(spoolDir, 'dead'))).toContain(poison);
      expect(await countSpans(store, 'after-poison')).toMatchObject({ rows: 4, distinct: 4 });
    } finally {
      await store.close();
    }
  });

  it('says overloaded (429-style, retry in 1 s) when more is queued than the memory bound', async () => {
    const store = await open({ maxQueuedBytes: 2_000 });
    try {
      const big = [spanRow({ ServiceName: 'queued', SpanAttributes: { blob: 'y'.repeat(5_000) } })];
      const result = await store.write(big);
      expect(result).toMatchObject({ status: 'overloaded' });
      const refusal = result.status === 'overloaded' ? result.error : undefined;
      expect(refusal).toBeInstanceOf(QueueFullError);
      expect(refusal?.retryAfterSeconds).toBe(1);
      expect(await store.write([spanRow({ ServiceName: 'queued' })])).toMatchObject({
        status: 'ok',
      });
    } finally {
      await store.close();
    }
  });

  it('without a spool, acknowledges after the insert and asks to retry while ClickHouse is down', async () => {
    const store = await open({ spoolDir: false });
    try {
      expect(await store.write([spanRow({ ServiceName: 'direct' })])).toEqual({
        status: 'ok',
        durability: 'clickhouse',
      });
      await insertOutage(store, true);
      const result = await store.write([spanRow({ ServiceName: 'direct' })]);
      expect(result).toMatchObject({ status: 'overloaded' });
      await insertOutage(store, false);
      expect(await countSpans(store, 'direct')).toMatchObject({ rows: 1 });
    } finally {
      await store.close();
    }
  });
});
