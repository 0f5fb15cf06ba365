import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import { otlpChatSpan, postOtlpSpans } from '../../../test/support/otlp-json.js';
import { formatUsd } from '../src/format.js';
import { jsonLines, modelmaxx } from './support/run-cli.js';

// `modelmaxx report` through the real binary against a collector on embedded ClickHouse.

let sequence = 0;
/** One chat span; `cost` undefined leaves pricing to the collector's catalog. */
function chatSpan(model: string, cost: number | undefined) {
  sequence += 1;
  return otlpChatSpan({
    id: sequence,
    model,
    responseModel: model,
    startMs: Date.now() - 5000,
    durationMs: 100,
    inputTokens: 10,
    outputTokens: 2,
    ...(cost === undefined ? {} : { cost }),
  });
}

describe('formatUsd', () => {
  it.each([
    [0, '0'],
    [0.0000069499999999999995, '0.00000695'],
    [0.000008249999999999999, '0.00000825'],
    [0.0462, '0.0462'],
    [0.5, '0.5'],
    [0.99999, '1'],
    [1.23456, '1.23'],
    [1234.5, '1234.50'],
    [8.25e-9, '0.00000000825'],
  ])('%d → %s', (value, text) => {
    expect(formatUsd(value)).toBe(text);
  });
});

describe('modelmaxx report money', () => {
  let collector: RunningCollector;
  /** `modelmaxx report` over the last hour of the test's collector. */
  const report = (...args: string[]) =>
    modelmaxx(['report', '--since', '1h', '--url', collector.url, ...args]);
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'modelmaxx-report-money-'));
    collector = await startCollector({ config: { port: 0, dataDir } });
    const spans = [
      // 0.00000575 + 0.0000012 is 0.0000069499999999999995 in floating point.
      chatSpan('tiny-model', 0.00000575),
      chatSpan('tiny-model', 0.0000012),
      chatSpan('big-model', 1.23456),
      // No cost on the span and no catalog price: unpriced.
      chatSpan('house-model-x', undefined),
      chatSpan('house-model-x', undefined),
    ];
    expect(await postOtlpSpans(collector.url, spans)).toBe(200);
  }, 60_000);

  afterAll(async () => {
    await collector?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the table shows amounts without float noise, and "unpriced" rather than 0', async () => {
    const result = await report();
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    const header = lines[0]!.split(/\s+/);
    const rows = Object.fromEntries(
      lines.slice(2).map((line) => {
        const cells = line.trim().split(/\s+/);
        return [cells[0], Object.fromEntries(header.map((name, index) => [name, cells[index]]))];
      }),
    );
    expect(rows['big-model']?.['spend_usd']).toBe('1.23');
    expect(rows['tiny-model']?.['spend_usd']).toBe('0.00000695');
    expect(rows['house-model-x']?.['spend_usd']).toBe('unpriced');
    expect(rows['house-model-x']?.['unpriced_calls']).toBe('2');
    // Unpriced groups come last.
    expect(lines.at(-1)).toMatch(/^house-model-x /);
    expect(result.stdout).not.toMatch(/\d\.\d*9999/);
  });

  it('json keeps numbers (cleaned of float noise), null where unpriced', async () => {
    const result = await report('--format', 'json');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('"spend_usd":0.00000695,');
    const rows = jsonLines<Record<string, unknown>>(result.stdout);
    const byModel = Object.fromEntries(rows.map((row) => [row['model'], row]));
    expect(byModel['tiny-model']?.['spend_usd']).toBe(0.00000695);
    expect(byModel['big-model']?.['spend_usd']).toBe(1.23456);
    expect(byModel['house-model-x']).toMatchObject({
      spend_usd: null,
      spend_share: null,
      unpriced_calls: 2,
    });
  });

  it('--baseline: no savings claimed for an unpriced group', async () => {
    const result = await report('--baseline', 'gpt-4o', '--format', 'json');
    expect(result.stderr).toBe('');
    const rows = jsonLines<Record<string, unknown>>(result.stdout);
    const unpriced = rows.find((row) => row['model'] === 'house-model-x');
    expect(unpriced?.['savings']).toBeNull();
    expect(typeof unpriced?.['baseline_usd']).toBe('number');
  });
});
