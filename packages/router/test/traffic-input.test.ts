/**
 * Bad input to `modelmaxx-router replay`: every error names the file and the line, and a file
 * that reads cleanly loses none of its requests.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'router-input-'));

function outcomes(hard: boolean) {
  return {
    big: { score: 1, cost_usd: 0.01, response: 'A' },
    small: { score: hard ? 0 : 1, cost_usd: 0.0005, response: hard ? 'B' : 'A' },
  };
}

/** 40 good lines: text (`prompt` or `messages`) or, with `embedded`, precomputed embeddings. */
function goodLines(embedded = false): string[] {
  return Array.from({ length: 40 }, (_, index) => {
    const hard = index % 3 === 0;
    const request = embedded
      ? { embedding: [hard ? 1 : 0, hard ? 0 : 1, index / 40] }
      : index % 5 === 0
        ? {
            messages: [
              { role: 'user', content: 'hi' },
              { role: 'assistant', content: 'hello' },
              { role: 'user', content: `refund order ${index}` },
            ],
          }
        : { prompt: hard ? `compute 17 * ${index} + 3` : `say hello to ${index}` };
    return JSON.stringify({
      id: `r${index}`,
      task: 'support',
      ...request,
      outcomes: outcomes(hard),
    });
  });
}

function write(name: string, lines: readonly string[]): string {
  const file = join(dir, name);
  writeFileSync(file, lines.length === 0 ? '' : lines.join('\n') + '\n');
  return file;
}

/** `lines` with `bad` put in as line 6 (of 41). */
function withBadLine(name: string, bad: string, embedded = false): string {
  const lines = goodLines(embedded);
  return write(name, [...lines.slice(0, 5), bad, ...lines.slice(5)]);
}

async function replay(...args: string[]) {
  let out = '';
  let err = '';
  const code = await main(
    ['replay', ...args],
    { write: (text: string) => (out += text) },
    { write: (text: string) => (err += text) },
  );
  return { code, out, err };
}

const request = (extra: object) =>
  JSON.stringify({ id: 'bad', prompt: 'x', outcomes: outcomes(false), ...extra });

describe('replay input errors name the file and the line', () => {
  it('reads text and embedding traffic without losing a line', async () => {
    for (const [name, embedded] of [
      ['text.jsonl', false],
      ['embedded.jsonl', true],
    ] as const) {
      const file = write(name, goodLines(embedded));
      const decisions = join(dir, `${name}.decisions.jsonl`);
      const run = await replay('--data', file, '--predict', '--decisions', decisions, '--json');
      expect(run.err).toBe('');
      expect(run.code).toBe(0);
      const report = JSON.parse(run.out) as { trainPrompts: number; testPrompts: number };
      expect(report.trainPrompts + report.testPrompts).toBe(40);
      const lines = readFileSync(decisions, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(report.testPrompts);
    }
  });

  it.each([
    ['malformed.jsonl', '{"id": "x", "prompt": "hi", "outcomes": {', 'line 6: not JSON'],
    [
      'unknown-model.jsonl',
      request({ outcomes: { ...outcomes(false), 'gpt-5': { score: 1, cost_usd: 0 } } }),
      'line 6: outcomes for big, gpt-5, small, but earlier lines have big, small',
    ],
    [
      'missing-cost.jsonl',
      request({ outcomes: { big: { score: 1 }, small: { score: 1, cost_usd: 0 } } }),
      'line 6: outcomes.big.cost_usd must be a number ≥ 0',
    ],
    [
      'outcome-not-object.jsonl',
      request({ outcomes: { big: 1, small: { score: 1, cost_usd: 0 } } }),
      'line 6: outcomes.big must be an object {score, cost_usd}',
    ],
    ['no-outcomes.jsonl', JSON.stringify({ prompt: 'x' }), 'line 6: "outcomes" must be an object'],
    [
      'no-text.jsonl',
      JSON.stringify({ outcomes: outcomes(false) }),
      'line 6: give "prompt", "messages" or "embedding"',
    ],
    ['duplicate-id.jsonl', request({ id: 'r4' }), 'line 6: id "r4" is already on line 5'],
    ['array.jsonl', '[1, 2]', 'line 6: a line must be a JSON object'],
  ])('%s', async (name, bad, message) => {
    const run = await replay('--data', withBadLine(name, bad), '--no-sweep');
    expect(run.code).toBe(1);
    expect(run.out).toBe('');
    expect(run.err).toContain(`replay failed: ${name} ${message}`);
  });

  it('an embedding from another embedder (another length) is an error; none is not', async () => {
    const other = JSON.stringify({ embedding: [1, 0], outcomes: outcomes(false) });
    const run = await replay('--data', withBadLine('dims.jsonl', other, true), '--no-sweep');
    expect(run.code).toBe(1);
    expect(run.err).toContain(
      'dims.jsonl line 6: an embedding of 2 numbers, but line 1 has 3 (every embedding must come from the same embedder)',
    );
    // a line without an embedding (the embedder failed when it was recorded) is read
    const plain = withBadLine('some-text.jsonl', request({ id: 'plain' }), true);
    expect((await replay('--data', plain, '--no-sweep')).code).toBe(0);
  });

  it('a bad first line is reported as traffic, not as an MT-Bench judgement', async () => {
    const lines = goodLines();
    const malformed = write('first.jsonl', ['', '{"prompt": "x", "outcomes": {', ...lines]);
    expect((await replay('--data', malformed)).err).toContain('first.jsonl line 2: not JSON');
    const typo = write(
      'typo.jsonl',
      lines.map((line) => line.replace('"outcomes"', '"outcome"')),
    );
    expect((await replay('--data', typo)).err).toContain(
      'typo.jsonl line 1: "outcomes" must be an object',
    );
    // a blank first line does not stop the file being read
    const blank = write('blank-first.jsonl', ['', ...lines]);
    expect((await replay('--data', blank, '--no-sweep')).code).toBe(0);
  });

  it('an empty file (or only blank lines) is named, not a policy error', async () => {
    for (const [name, lines] of [
      ['empty.jsonl', []],
      ['blank.jsonl', ['', '  ']],
      ['empty_test.csv', []],
    ] as const) {
      const run = await replay(
        '--train',
        write('train.jsonl', goodLines()),
        '--test',
        write(name, lines),
      );
      expect(run.code).toBe(1);
      expect(run.err).toBe(`replay failed: ${name}: empty file (no requests)\n`);
    }
  });

  it('a CSV error names the file; skipped rows are reported, not dropped silently', async () => {
    const text = write('notes.csv', ['hello', 'world']);
    expect((await replay('--data', text)).err).toContain(
      'replay failed: notes.csv: not a RouteLLM CSV: the header has no prompt column',
    );
    const header = 'sample_id,prompt,eval_name,big,small,big|total_cost,small|total_cost';
    const rows = Array.from(
      { length: 20 },
      (_, index) => `qa.${index},"['q ${index}']",qa,1,${index % 2},0.01,0.001`,
    );
    const csv = write('qa.csv', [
      header,
      ...rows,
      'qa.20,"[\'q\']",qa,,1,0.01,0.001',
      'qa.21,short',
    ]);
    const run = await replay('--data', csv, '--no-sweep', '--json');
    expect(run.code).toBe(0);
    expect(run.err).toBe(
      `note: ${csv}: 2 rows skipped (a model's score missing or the row incomplete)\n`,
    );
    const report = JSON.parse(run.out) as { trainPrompts: number; testPrompts: number };
    expect(report.trainPrompts + report.testPrompts).toBe(20);
    // a score that is not a number was read as NaN: the report said "NaN%"
    const nan = write('nan.csv', [header, ...rows, 'qa.20,"[\'q\']",qa,abc,1,0.01,0.001']);
    expect((await replay('--data', nan)).err).toBe(
      'replay failed: nan.csv: row 21 (sample_id qa.20): big: score "abc" (0..1), cost "0.01" (≥ 0)\n',
    );
  });

  it('train and test files with different models name both', async () => {
    const train = write('train-models.jsonl', goodLines());
    const other = goodLines().map((line) => line.replaceAll('"small"', '"tiny"'));
    const test = write('test-models.jsonl', other);
    const run = await replay('--train', train, '--test', test);
    expect(run.code).toBe(1);
    expect(run.err).toBe(
      `replay failed: the --train files (${train}) have models big, small, the --test files (${test}) big, tiny\n`,
    );
  });

  it('--decisions that cannot be written fails before the replay; bad data keeps an old file', async () => {
    const data = write('for-decisions.jsonl', goodLines());
    const missing = join(dir, 'no-such-dir', 'decisions.jsonl');
    const run = await replay('--data', data, '--decisions', missing);
    expect(run.code).toBe(1);
    expect(run.out).toBe('');
    expect(run.err).toMatch(
      /^replay failed: --decisions .*no-such-dir\/decisions\.jsonl: cannot write into .*no-such-dir \(ENOENT/,
    );
    const kept = join(dir, 'kept.jsonl');
    writeFileSync(kept, 'earlier run\n');
    const bad = withBadLine('bad-for-decisions.jsonl', '{"prompt": ');
    expect((await replay('--data', bad, '--decisions', kept)).code).toBe(1);
    expect(readFileSync(kept, 'utf8')).toBe('earlier run\n');
  });
});
