/**
 * The figures of two docs/sql-cookbook.md queries, checked against spans with known costs,
 * times and cache tokens on a real collector (embedded ClickHouse): the projected month divides
 * by the time the data covers, and cache savings are net of the cache-write premium.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import { otlpChatSpan, postOtlpSpans } from '../../../test/support/otlp-json.js';
import { httpSource } from '../src/query-source.js';

const cookbook = readFileSync(
  join(import.meta.dirname, '..', '..', '..', 'docs', 'sql-cookbook.md'),
  'utf8',
);

/** The ```sql blocks under `heading`, in order. */
function blocksUnder(heading: string): string[] {
  const blocks: string[] = [];
  let current = '';
  const pattern = /^(#{1,6}) (.+)$|^```sql\n([\s\S]*?)^```$/gm;
  for (const match of cookbook.matchAll(pattern)) {
    if (match[2] !== undefined) current = match[2];
    else if (match[3] !== undefined && current === heading) blocks.push(match[3].trim());
  }
  return blocks;
}

const MINUTE_MS = 60_000;
const now = Date.now();
// Two days of data that end an hour ago (minute-aligned, as the per-minute rollup keeps it).
const first = Math.floor((now - 48 * 3_600_000) / MINUTE_MS) * MINUTE_MS;
const last = Math.floor((now - 3_600_000) / MINUTE_MS) * MINUTE_MS;

interface SpanSpec {
  id: number;
  atMs: number;
  provider: string;
  model: string;
  cost: number;
  input: number;
  cacheRead?: number;
  cacheWrite?: number;
}

function span(spec: SpanSpec) {
  return otlpChatSpan({
    id: spec.id,
    model: spec.model,
    provider: spec.provider,
    startMs: spec.atMs + 1000,
    durationMs: 200,
    inputTokens: spec.input,
    outputTokens: 10,
    ...(spec.cacheRead === undefined ? {} : { cacheReadTokens: spec.cacheRead }),
    ...(spec.cacheWrite === undefined ? {} : { cacheWriteTokens: spec.cacheWrite }),
    cost: spec.cost,
  });
}

const SPANS: SpanSpec[] = [
  { id: 1, atMs: first, provider: 'openai', model: 'gpt-4o-mini', cost: 1.5, input: 100 },
  { id: 2, atMs: last, provider: 'openai', model: 'gpt-4o-mini', cost: 2.25, input: 100 },
  // claude-sonnet-4-5: input 3, cache read 0.30, cache write 3.75 USD per million tokens.
  {
    id: 3,
    atMs: last,
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    cost: 0.25,
    input: 400_000,
    cacheRead: 100_000,
    cacheWrite: 200_000,
  },
];

describe('docs/sql-cookbook.md figures', () => {
  let dataDir: string;
  let collector: RunningCollector;

  const query = async (sql: string) => {
    const source = httpSource(collector.url, undefined);
    try {
      return await source.query(sql);
    } finally {
      await source.close();
    }
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'mm-docs-figures-'));
    collector = await startCollector({ config: { port: 0, dataDir } });
    expect(await postOtlpSpans(collector.url, SPANS.map(span))).toBe(200);
    // Acknowledged once durable; wait until ClickHouse (and the rollup) has every call.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const counted = await query(
        'SELECT (SELECT count() FROM llm_calls) AS calls, (SELECT sum(Calls) FROM llm_rollup_1m) AS rolled',
      );
      const row = counted.rows[0] ?? {};
      if (Number(row['calls']) >= SPANS.length && Number(row['rolled']) >= SPANS.length) break;
      if (Date.now() > deadline) throw new Error('the spans did not arrive in ClickHouse');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }, 90_000);

  afterAll(async () => {
    await collector?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the projected month divides by the days the data covers, not by 7', async () => {
    const blocks = blocksUnder('Spend per minute and projected month');
    const projection = blocks.find((sql) => sql.includes('projected_30d_usd'));
    expect(projection).toBeDefined();
    const result = await query(projection!);
    expect(result.rows).toHaveLength(1);
    const row = result.rows[0]!;
    const spend = 1.5 + 2.25 + 0.25;
    const observedDays = (last - first + MINUTE_MS) / 86_400_000; // 47 h and one minute
    expect(Number(row['spend_usd'])).toBeCloseTo(spend, 9);
    expect(Number(row['observed_days'])).toBeCloseTo(observedDays, 6);
    expect(Number(row['projected_30d_usd'])).toBeCloseTo((spend / observedDays) * 30, 2);
  });

  it('cache savings are net of the cache-write premium', async () => {
    const [savings] = blocksUnder('Cache savings');
    expect(savings).toBeDefined();
    const result = await query(savings!);
    const row = result.rows.find((candidate) => candidate['model'] === 'claude-sonnet-4-5');
    expect(row).toBeDefined();
    const readSaving = (100_000 * (3 - 0.3)) / 1e6; // 0.27
    const writePremium = (200_000 * (3.75 - 3)) / 1e6; // 0.15
    expect(Number(row!['net_saved_usd'])).toBeCloseTo(readSaving - writePremium, 9);
    // gpt-4o-mini wrote no cache (and its catalog entry has no write premium): nothing netted.
    const mini = result.rows.find((candidate) => candidate['model'] === 'gpt-4o-mini');
    expect(Number(mini?.['net_saved_usd'] ?? 0)).toBe(0);
  });
});
