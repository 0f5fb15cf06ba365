/**
 * Every ```sql block of docs/sql-cookbook.md runs through a collector's read-only
 * `/api/sql` over a real embedded ClickHouse filled by the demo's traffic: no
 * error, and at least one row each.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import { runDemo } from '../src/demo.js';
import { httpSource } from '../src/query-source.js';

const cookbook = readFileSync(
  join(import.meta.dirname, '..', '..', '..', 'docs', 'sql-cookbook.md'),
  'utf8',
);

/** The ```sql blocks, with the heading they are under. */
function sqlBlocks(markdown: string): { heading: string; sql: string }[] {
  const blocks: { heading: string; sql: string }[] = [];
  let heading = '';
  const pattern = /^(#{1,6}) (.+)$|^```sql\n([\s\S]*?)^```$/gm;
  for (const match of markdown.matchAll(pattern)) {
    if (match[2] !== undefined) heading = match[2];
    else if (match[3] !== undefined) blocks.push({ heading, sql: match[3].trim() });
  }
  return blocks;
}

const blocks = sqlBlocks(cookbook);

describe('docs/sql-cookbook.md', () => {
  let dataDir: string;
  let collector: RunningCollector;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'mm-docs-sql-'));
    collector = await startCollector({ config: { port: 0, dataDir } });
    await runDemo({ url: collector.url, requests: 90, exit: true, seed: 5, stdout: () => {} });
  }, 90_000);

  afterAll(async () => {
    await collector?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('has the queries the page promises', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(12);
    const headings = new Set(blocks.map((block) => block.heading));
    for (const heading of [
      'Top spenders: users, services, features',
      'Cost per feature per day',
      'Cache savings',
      'Cost of failures',
      'Quality per dollar',
    ]) {
      expect(headings).toContain(heading);
    }
  });

  it('spend by model counts a dated snapshot, its alias and their failed calls under one model', async () => {
    const block = blocks.find((item) => item.heading === 'Spend by model, last 24 hours');
    expect(block).toBeDefined();
    const source = httpSource(collector.url, undefined);
    try {
      const result = await source.query(block?.sql ?? '');
      const models = result.rows.map((row) => String(row['model']));
      // The demo's models answer with dated snapshots (gpt-4o → gpt-4o-2024-08-06): none is a group.
      expect(models.filter((model) => /-\d{4}-\d{2}-\d{2}$|-\d{8}$/.test(model))).toEqual([]);
      expect(new Set(models).size).toBe(models.length);
      const total = await source.query('SELECT count() AS calls FROM modelmaxx.llm_calls');
      const sum = result.rows.reduce((acc, row) => acc + Number(row['calls']), 0);
      expect(sum).toBe(Number(total.rows[0]?.['calls']));
    } finally {
      await source.close();
    }
  });

  it.each(blocks.map((block, index) => [`${index + 1}: ${block.heading}`, block.sql] as const))(
    'query %s runs and returns rows',
    async (_name, sql) => {
      const source = httpSource(collector.url, undefined);
      try {
        const result = await source.query(sql);
        expect(result.columns.length).toBeGreaterThan(0);
        expect(result.rows.length).toBeGreaterThan(0);
      } finally {
        await source.close();
      }
    },
  );
});
