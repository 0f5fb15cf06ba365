import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import { costOf } from '@modelmaxx/pricing';
import { otlpChatSpan, postOtlpSpans } from '../../../test/support/otlp-json.js';
import { jsonLines, modelmaxx } from './support/run-cli.js';

/** One chat span with cost (100 input and 20 output tokens), as the instrumentation sends it. */
const chatSpan = (id: number, model: string, cost: number) =>
  otlpChatSpan({
    id,
    model,
    responseModel: model,
    cost,
    attributes: { 'modelmaxx.feature': 'search' },
  });

describe('modelmaxx command', () => {
  let collector: RunningCollector;
  let dataDir: string;
  const readToken = 'read-secret';
  /** `modelmaxx ...args` against the test's collector, with the read token. */
  const ask = (...args: string[]) =>
    modelmaxx([...args, '--url', collector.url], { MODELMAXX_READ_TOKEN: readToken });
  /** `ask(...args, '--format', 'json')`, which must succeed without stderr: its rows. */
  const askJson = async (...args: string[]) => {
    const result = await ask(...args, '--format', 'json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return jsonLines<Record<string, number | string>>(result.stdout);
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'modelmaxx-cli-'));
    collector = await startCollector({
      config: { port: 0, dataDir, readToken },
    });
    const spans = [
      chatSpan(1, 'gpt-4o', 0.003),
      chatSpan(2, 'gpt-4o', 0.001),
      chatSpan(3, 'gpt-4o-mini', 0.0001),
    ];
    expect(await postOtlpSpans(collector.url, spans)).toBe(200);
  });

  afterAll(async () => {
    await collector?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs SQL against a collector in the modelmaxx database and prints JSON lines', async () => {
    const rows = await askJson(
      'sql',
      'SELECT RequestModel, count() AS calls FROM llm_calls GROUP BY RequestModel ORDER BY RequestModel',
    );
    expect(rows).toEqual([
      { RequestModel: 'gpt-4o', calls: 2 },
      { RequestModel: 'gpt-4o-mini', calls: 1 },
    ]);
  });

  it('prints CSV', async () => {
    const result = await ask('sql', "SELECT 'a,b' AS text, 1 AS one", '--format', 'csv');
    expect(result.stdout).toBe('text,one\r\n"a,b",1\r\n');
  });

  it("exits non-zero with ClickHouse's message when the query fails", async () => {
    const result = await ask('sql', 'SELECT no_such_column FROM llm_calls');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/UNKNOWN_IDENTIFIER|no_such_column/);
    expect(result.stdout).toBe('');
  });

  it('answers DESCRIBE and SHOW read-only', async () => {
    const describe = await ask('sql', 'DESCRIBE TABLE llm_calls', '--format', 'csv');
    expect(describe.stderr).toBe('');
    expect(describe.code).toBe(0);
    expect(describe.stdout).toMatch(/^name,type,/);
    expect(describe.stdout).toMatch(/\r\nCostUSD,/);
    const tables = await ask('sql', 'SHOW TABLES');
    expect(tables.code).toBe(0);
    expect(tables.stdout).toMatch(/\botel_traces\b/);
  });

  it('refuses writes', async () => {
    const result = await ask('sql', 'DROP TABLE llm_calls');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/only SELECT, DESCRIBE, SHOW and EXISTS/);
  });

  it('needs the read token', async () => {
    const result = await modelmaxx(['sql', 'SELECT 1', '--url', collector.url]);
    expect(result.code).toBe(1);
    expect(result.stderr).not.toBe('');
  });

  it('reports spend by model with shares that add up', async () => {
    const rows = await askJson('report', '--since', '1h', '--by', 'model');
    expect(rows.map((row) => row['model'])).toEqual(['gpt-4o', 'gpt-4o-mini']);
    expect(rows[0]).toMatchObject({
      spend_usd: 0.004,
      calls: 2,
      unpriced_calls: 0,
      input_tokens: 200,
      output_tokens: 40,
      error_rate: 0,
    });
    expect(Number(rows[0]?.['spend_share']) + Number(rows[1]?.['spend_share'])).toBeCloseTo(1, 3);
  });

  it('prints savings against a baseline model priced from llm_prices', async () => {
    const [row] = await askJson(
      'report',
      '--since',
      '1h',
      '--by',
      'service',
      '--baseline',
      'gpt-4o',
    );
    // 300 input and 60 output tokens at gpt-4o's catalog prices, against the 0.0041 USD spent.
    const price = costOf({
      provider: 'openai',
      model: 'gpt-4o',
      usage: { inputTokens: 300, outputTokens: 60 },
    });
    expect(price.known).toBe(true);
    const baseline = price.known ? price.amount : NaN;
    expect(row?.['baseline_usd']).toBeCloseTo(baseline, 6);
    expect(row?.['savings']).toBeCloseTo(1 - 0.0041 / baseline, 3);
  });

  it('refuses a baseline the catalog has no price for', async () => {
    const unknown = await ask('report', '--baseline', 'no-such-model');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no catalog price for model "no-such-model"/);
    const injected = await modelmaxx([
      'report',
      '--baseline',
      "gpt-4o' OR 1=1",
      '--url',
      collector.url,
    ]);
    expect(injected.code).toBe(2);
    expect(injected.stderr).toMatch(/--baseline takes a model name/);
  });

  it('rejects a bad --since and --by with usage text (exit 2)', async () => {
    const since = await modelmaxx(['report', '--since', 'yesterday', '--url', collector.url]);
    expect(since.code).toBe(2);
    expect(since.stderr).toMatch(/--since takes a number and a unit/);
    const by = await modelmaxx(['report', '--by', 'colour', '--url', collector.url]);
    expect(by.code).toBe(2);
    expect(by.stderr).toMatch(/--by takes one of/);
  });

  it('prints the cluster DDL', async () => {
    const result = await modelmaxx(['migrate', '--print', '--cluster', 'prod']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/ON CLUSTER prod/);
    expect(result.stdout).toMatch(/ReplicatedMergeTree/);
    expect(result.stdout).toMatch(/Distributed\(/);
  });

  it('migrates and queries a data folder directly', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'modelmaxx-cli-data-'));
    try {
      const migrate = await modelmaxx(['migrate', '--data', folder]);
      expect(migrate.stderr).toBe('');
      expect(migrate.code).toBe(0);
      const query = await modelmaxx([
        'sql',
        'SELECT count() AS calls FROM llm_calls',
        '--data',
        folder,
      ]);
      expect(query.code).toBe(0);
      expect(query.stdout).toBe('calls\n-----\n    0\n');
      const create = await modelmaxx(['sql', 'SHOW CREATE TABLE llm_scores', '--data', folder]);
      expect(create.code).toBe(0);
      expect(create.stdout).toMatch(/CREATE TABLE modelmaxx\.llm_scores/);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
