import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { createRandom } from '../src/random.js';

const MODELS = ['big', 'small-a', 'small-b'];

/** A RouterBench-format CSV: Python-list prompts, scores, answers and costs per model. */
function writeCsv(path: string, count: number, seed: number): void {
  const random = createRandom(seed);
  const header = [
    '',
    'sample_id',
    'prompt',
    'eval_name',
    ...MODELS,
    ...MODELS.map((model) => `${model}|model_response`),
    ...MODELS.map((model) => `${model}|total_cost`),
    'oracle_model_to_route_to',
  ];
  const lines = [header.join(',')];
  for (let index = 0; index < count; index += 1) {
    const easy = random() < 0.7;
    const scores = [random() < 0.9 ? 1 : 0, easy ? 1 : 0, easy ? 1 : 0];
    const answers = scores.map((score, model) => (score === 1 ? 'A' : 'BCD'[model]!));
    lines.push(
      [
        String(index),
        `qa.${index}`,
        `"['Pick one, it''s a test:\\nA) x\\nB) y']"`,
        'qa',
        ...scores.map(String),
        ...answers.map((answer) => `"['${answer}']"`),
        '0.01',
        '0.0004',
        '0.0005',
        'big',
      ].join(','),
    );
  }
  writeFileSync(path, lines.join('\n') + '\n');
}

function capture() {
  let text = '';
  return { stream: { write: (chunk: string) => (text += chunk) }, text: () => text };
}

describe('modelmaxx-router replay', () => {
  const dir = mkdtempSync(join(tmpdir(), 'router-cli-'));
  const train = join(dir, 'qa_train.csv');
  const test = join(dir, 'qa_test.csv');
  writeCsv(train, 400, 1);
  writeCsv(test, 200, 2);

  it('prints the replay table and writes one decision per test prompt', async () => {
    const out = capture();
    const err = capture();
    const decisions = join(dir, 'decisions.jsonl');
    const code = await main(
      ['replay', '--train', train, '--test', test, '--decisions', decisions],
      out.stream,
      err.stream,
    );
    expect(err.text()).toBe('');
    expect(code).toBe(0);
    expect(out.text()).toContain(
      '| policy | accuracy | cost (USD) | accuracy vs best | cost vs best |',
    );
    expect(out.text()).toMatch(/\| router \(cascade\) \| /);
    expect(out.text()).toContain('| always big | ');
    const lines = readFileSync(decisions, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { sample_id: string; model: string; calls: string[] });
    expect(lines).toHaveLength(200);
    expect(lines[0]!.sample_id).toBe('qa.0');
    for (const line of lines) {
      expect(Object.keys(line)).toEqual(['sample_id', 'model', 'calls', 'kind', 'reason']);
      expect(line.calls).toContain(line.model);
    }
  });

  it('prints JSON with --json and reports bad arguments and policies', async () => {
    const out = capture();
    expect(
      await main(
        ['replay', '--train', train, '--test', test, '--json'],
        out.stream,
        capture().stream,
      ),
    ).toBe(0);
    const report = JSON.parse(out.text()) as { testPrompts: number; bestModel: string };
    expect(report.testPrompts).toBe(200);
    expect(report.bestModel).toBe('big');

    const err = capture();
    expect(await main(['replay', '--train', train], capture().stream, err.stream)).toBe(2);
    expect(err.text()).toMatch(
      /^give at least one --train and one --test file \(or --data\)\nusage: /,
    );

    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ candidates: [{ model: 'gpt-9' }] }));
    const failed = capture();
    expect(
      await main(
        ['replay', '--train', train, '--test', test, '--policy', policy],
        capture().stream,
        failed.stream,
      ),
    ).toBe(1);
    expect(failed.text()).toBe(
      'replay failed: policy candidate "gpt-9" is not in the data (models: big, small-a, small-b)\n',
    );
  });
});

describe('modelmaxx-router replay --fit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'router-cli-fit-'));
  const train = join(dir, 'qa_train.csv');
  const test = join(dir, 'qa_test.csv');
  writeCsv(train, 200, 3);
  writeCsv(test, 100, 4);

  it('learns the train split as a labelled history and charges its labels', async () => {
    const out = capture();
    const err = capture();
    const args = ['replay', '--train', train, '--test', test, '--predict', '--json'];
    expect(await main([...args, '--fit', '--no-sweep'], out.stream, err.stream)).toBe(0);
    expect(err.text()).toBe('');
    const report = JSON.parse(out.text()) as { history: string; trainCostUsd: number };
    expect(report.history).toBe('fit');
    // every model on every train prompt: 200 × (0.01 + 0.0004 + 0.0005)
    expect(report.trainCostUsd).toBeCloseTo(200 * 0.0109, 9);
    const table = capture();
    expect(
      await main(['replay', '--train', train, '--test', test, '--fit'], table.stream, err.stream),
    ).toBe(0);
    expect(table.text()).toMatch(
      /^train 200 prompts \(fitted offline, labels cost \$2\.180\), test 100 prompts/,
    );
  });
});

describe('modelmaxx-router --help (the real binary)', () => {
  const bin = join(import.meta.dirname, '..', 'bin', 'modelmaxx-router.js');
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [bin, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
      });
    });

  it.each([[['replay', '--help']], [['replay', '-h']], [['--help']]])(
    '%j lists every flag on stdout, exit 0',
    async (args) => {
      const result = await run(args);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Usage: modelmaxx-router replay /);
      for (const flag of [
        '--train',
        '--test',
        '--policy',
        '--fit',
        '--decisions',
        '--json',
        '--seed',
      ]) {
        expect(result.stdout).toContain(flag);
      }
    },
  );

  it('an unknown option is still a usage error (exit 2)', async () => {
    const result = await run(['replay', '--bogus']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^unknown option --bogus\nusage: /);
  });
});
