/**
 * `llm_calls.Purpose`: an LLM judge's call (`modelmaxx.evaluation.role` on its span) is stored
 * and priced like any call, as `evaluation`; the rollups behind `/api/stats` and the dashboard
 * count only the app's calls. Upgrading a version 3 schema adds the column (`app` for the rows
 * already there).
 */
import { StatsQuerySchema } from '@modelmaxx/semconv/schemas';
import { describe, expect, it } from 'vitest';
import { OTEL_TRACES_INSERT_COLUMNS, SCHEMA_VERSION } from '../src/schema/schema.js';
import { spanRowsToNative } from '../src/store/span-row-native.js';
import { llmSpan } from './store-fixtures.js';
import type { ClickHouseStore } from '../src/store/clickhouse-store.js';
import { useTestStore } from './support/test-store.js';

const db = useTestStore('mm-purpose-', { batch: { maxDelayMs: 20 } });

async function waitFor(sql: string, count: number): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const rows = await db.query(sql);
    if (rows.length >= count || Date.now() > deadline) return rows;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('llm_calls.Purpose', () => {
  it('a judge call is evaluation work: stored and priced, out of /api/stats', async () => {
    const app = llmSpan({ service: 'purpose', model: 'gpt-4o', costUsd: 0.01, task: 'qa' });
    const judge = llmSpan({
      service: 'purpose',
      model: 'gpt-4o-mini',
      costUsd: 0.002,
      extra: {
        'modelmaxx.evaluation.role': 'judge',
        'modelmaxx.evaluation.target.span_id': app.SpanId,
      },
    });
    expect(await db.store.write([app, judge])).toMatchObject({ status: 'ok' });
    const rows = await waitFor(
      `SELECT SpanId, Purpose, CostUSD FROM modelmaxx.llm_calls WHERE ServiceName = 'purpose' ORDER BY Purpose`,
      2,
    );
    expect(rows).toEqual([
      { SpanId: app.SpanId, Purpose: 'app', CostUSD: 0.01 },
      { SpanId: judge.SpanId, Purpose: 'evaluation', CostUSD: 0.002 },
    ]);
    const stats = await db.store.stats(
      StatsQuerySchema.parse({ window: '1h', service: 'purpose', quality: 'false' }),
    );
    // Before: gpt-4o-mini with 1 call and $0.002 among the app's models.
    expect(stats.rows.map((row) => [row.model, row.calls, row.costUsd])).toEqual([
      ['gpt-4o', 1, 0.01],
    ]);
  });

  it('upgrades a version 3 schema: the column is added, rows stored before are app', async () => {
    const database = 'upgrade_v3_purpose';
    const old = new (db.store.constructor as new (options: unknown) => ClickHouseStore)({
      engine: db.store.engine,
      database,
      priceRows: [],
    });
    await old.migrate();
    // What version 3 had: llm_calls without Purpose, its view and the rollup's not knowing it.
    await db.store.engine.command(`DROP VIEW ${database}.llm_calls_mv`);
    await db.store.engine.command(`DROP VIEW ${database}.llm_rollup_1m_calls_mv`);
    await db.store.engine.command(`ALTER TABLE ${database}.llm_calls DROP COLUMN Purpose`);
    await db.store.engine.command(`TRUNCATE TABLE ${database}.schema_migrations`);
    await db.store.engine.command(
      `INSERT INTO ${database}.schema_migrations VALUES (3, now64(3), 'modelmaxx schema v3')`,
    );
    await db.store.engine.command(
      `INSERT INTO ${database}.llm_calls (Timestamp, TraceId, SpanId, RequestModel, StatusCode, CostSource)
       VALUES (now64(9), 't', 'before', 'gpt-4o', 'Unset', 'unknown')`,
    );
    const upgraded = new (db.store.constructor as new (options: unknown) => ClickHouseStore)({
      engine: db.store.engine,
      database,
      priceRows: [],
    });
    await upgraded.migrate();
    expect(
      await db.query(`SELECT max(Version) AS version FROM ${database}.schema_migrations`),
    ).toEqual([{ version: SCHEMA_VERSION }]);
    const judge = llmSpan({ extra: { 'modelmaxx.evaluation.role': 'judge' } });
    await db.store.engine.insert({
      table: `${database}.otel_traces`,
      columns: OTEL_TRACES_INSERT_COLUMNS,
      format: 'Native',
      body: spanRowsToNative([judge]),
    });
    expect(
      await db.query(
        `SELECT SpanId, Purpose FROM ${database}.llm_calls ORDER BY SpanId = 'before'`,
      ),
    ).toEqual([
      { SpanId: judge.SpanId, Purpose: 'evaluation' },
      { SpanId: 'before', Purpose: 'app' },
    ]);
  });
});
