import { describe, expect, it } from 'vitest';
import { formatCsv, formatJsonLines, formatTable } from '../src/format.js';

const result = {
  columns: [
    { name: 'model', type: 'String' },
    { name: 'spend_usd', type: 'Float64' },
    { name: 'calls', type: 'UInt64' },
  ],
  rows: [
    { model: 'gpt-4o', spend_usd: 1.25, calls: 10 },
    { model: 'claude, "haiku"', spend_usd: 0.5, calls: 200 },
  ],
};

describe('output formats', () => {
  it('aligns a table, numbers to the right', () => {
    expect(formatTable(result)).toBe(
      [
        'model            spend_usd  calls',
        '---------------  ---------  -----',
        'gpt-4o                1.25     10',
        'claude, "haiku"        0.5    200',
        '',
      ].join('\n'),
    );
  });

  it('writes one JSON object per row per line', () => {
    const lines = formatJsonLines(result).trimEnd().split('\n');
    expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual(result.rows);
  });

  it('quotes CSV fields that need it (RFC 4180)', () => {
    expect(formatCsv(result)).toBe(
      'model,spend_usd,calls\r\ngpt-4o,1.25,10\r\n"claude, ""haiku""",0.5,200\r\n',
    );
  });

  it('prints nested values as JSON and nulls as empty cells', () => {
    const text = formatCsv({
      columns: [{ name: 'a' }, { name: 'b' }],
      rows: [{ a: ['stop'], b: null }],
    });
    expect(text).toBe('a,b\r\n"[""stop""]",\r\n');
  });
});
