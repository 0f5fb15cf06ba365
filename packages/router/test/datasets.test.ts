import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { curveOf, pgrAt, routingMetrics } from '../src/metrics.js';
import type { CurvePoint } from '../src/metrics.js';
import { parseJudgePrompt, parseMtBenchJsonl } from '../src/mtbench.js';
import { createRandom } from '../src/random.js';
import { loadRecorded, splitDataset } from '../src/recorded.js';
import { runReplay } from '../src/replay.js';
import type { RecordedDataset } from '../src/routerbench.js';
import { parseTrafficJsonl } from '../src/traffic.js';

const WEAK = 'mistralai/Mixtral-8x7B-Instruct-v0.1';
const STRONG = 'gpt-4-1106-preview';
const ROUTELLM = new URL('../../../../shared/data/routellm/', import.meta.url).pathname;
const HAS_ROUTELLM = existsSync(ROUTELLM);

function capture() {
  let text = '';
  return { stream: { write: (chunk: string) => (text += chunk) }, text: () => text };
}

const judgement = (id: number, model: string, turn: number, score: number, answer: string) =>
  JSON.stringify({
    question_id: id,
    model,
    turn,
    score,
    judge: ['gpt-4', 'single-v1'],
    user_prompt:
      turn === 1
        ? `[Instruction]\nJudge it.\n\n[Question]\nQuestion ${id}?\n\n[The Start of Assistant's Answer]\n${answer}\n[The End of Assistant's Answer]`
        : `<|The Start of Assistant A's Conversation with User|>\n\n### User:\nQuestion ${id}?\n\n### Assistant A:\nfirst answer\n\n### User:\nFollow-up ${id}\n\n### Assistant A:\n${answer}\n\n<|The End of Assistant A's Conversation with User|>`,
  });

describe('MT-Bench judgements', () => {
  it('turns judgements into prompts per question and turn, scores / 10, weak model first', () => {
    const text = [
      judgement(81, STRONG, 1, 9, 'strong one'),
      judgement(81, WEAK, 1, 6, 'weak one'),
      judgement(81, STRONG, 2, 10, 'strong two'),
      judgement(81, WEAK, 2, 3, 'weak two'),
      judgement(82, STRONG, 1, -1, 'judge failed'),
      judgement(82, WEAK, 1, 5, 'x'),
    ].join('\n');
    const data = parseMtBenchJsonl(text);
    expect(data.models).toEqual([WEAK, STRONG]);
    expect(data.skipped).toBe(1);
    expect(data.prompts.map((prompt) => prompt.sampleId)).toEqual(['mtbench.81.1', 'mtbench.81.2']);
    const [one, two] = data.prompts;
    expect(one!.prompt).toBe('Question 81?');
    expect([...one!.scores]).toEqual([0.6, 0.9]);
    expect(two!.prompt).toBe('Question 81?\n\nFollow-up 81');
    expect(two!.turns).toBe(2);
    expect(two!.responses).toEqual(['weak two', 'strong two']);
    // turn 2 pays for the whole conversation as input
    expect(two!.costs[1]!).toBeGreaterThan(one!.costs[1]!);
    expect(parseJudgePrompt(JSON.parse(judgement(1, WEAK, 1, 5, 'a')).user_prompt, 1)).toEqual({
      users: ['Question 1?'],
      answers: ['a'],
    });
    expect(() => parseMtBenchJsonl('{"question_id": 1}')).toThrow(
      'MT-Bench line 1: needs question_id, model, turn (1 or 2), score and user_prompt',
    );
  });

  it.skipIf(!HAS_ROUTELLM)('reads the real file: 80 questions, two turns, two models', () => {
    const data = loadRecorded([join(ROUTELLM, 'mtb_judgements.jsonl')]);
    expect(data.models).toEqual([WEAK, STRONG]);
    expect(data.prompts.length + data.skipped).toBe(160);
    expect(data.prompts.every((prompt) => prompt.prompt.length > 0)).toBe(true);
    // the split keeps both turns of a question on one side
    const { train, test } = splitDataset(data, 3);
    const questions = (set: RecordedDataset) =>
      new Set(set.prompts.map((prompt) => prompt.sampleId.split('.')[1]));
    const overlap = [...questions(train)].filter((id) => questions(test).has(id));
    expect(overlap).toEqual([]);
    expect(Math.abs(train.prompts.length - test.prompts.length)).toBeLessThanOrEqual(2);
    // each seed of the benches (1-5) is its own split: with FNV-1a alone, 1 and 3 were equal
    const splits = [1, 2, 3, 4, 5].map((seed) =>
      splitDataset(data, seed)
        .train.prompts.map((prompt) => prompt.sampleId)
        .join(),
    );
    expect(new Set(splits).size).toBe(5);
  });
});

describe('recorded traffic JSONL', () => {
  const line = (id: number, task: string, a: number, b: number) =>
    JSON.stringify({
      id: `r${id}`,
      task,
      prompt: `request ${id}`,
      outcomes: {
        big: { score: a, cost_usd: 0.01, response: 'A' },
        small: { score: b, cost_usd: 0.001 },
      },
    });

  it('reads prompts or messages, outcomes per model, and says which line is wrong', () => {
    const data = parseTrafficJsonl(
      [
        line(1, 'support', 1, 0),
        JSON.stringify({
          messages: [
            { role: 'user', content: 'hi' },
            { role: 'assistant', content: 'hello' },
            { role: 'user', content: 'again' },
          ],
          embedding: [0.1, 0.2],
          outcomes: { small: { score: 0.5, cost_usd: 0 }, big: { score: 1, cost_usd: 0.02 } },
        }),
      ].join('\n'),
      'mine.jsonl',
    );
    expect(data.models).toEqual(['big', 'small']);
    expect(data.prompts[0]!.task).toBe('support');
    expect(data.prompts[1]).toMatchObject({ prompt: 'hi\n\nagain', turns: 2, task: 'default' });
    expect([...data.prompts[1]!.scores]).toEqual([1, 0.5]);
    expect(data.prompts[1]!.embedding).toBeInstanceOf(Float32Array);
    expect(() =>
      parseTrafficJsonl(
        `${line(1, 't', 1, 0)}\n{"prompt": "x", "outcomes": {"big": {"score": 2, "cost_usd": 0}, "small": {"score": 0, "cost_usd": 0}}}`,
      ),
    ).toThrow('traffic line 2: outcomes.big.score must be a number from 0 to 1');
    expect(() =>
      parseTrafficJsonl(
        `${line(1, 't', 1, 0)}\n{"prompt": "x", "outcomes": {"big": {"score": 1, "cost_usd": 0}}}`,
      ),
    ).toThrow('traffic line 2: outcomes for big, but earlier lines have big, small');
  });

  it('replays a policy on the user traffic from the CLI, split by --data, with curves in --json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'router-traffic-'));
    const file = join(dir, 'traffic.jsonl');
    const random = createRandom(4);
    const lines: string[] = [];
    for (let index = 0; index < 400; index += 1) {
      const hard = random() < 0.4;
      lines.push(
        JSON.stringify({
          id: `r${index}`,
          prompt: hard
            ? `prove the theorem about primes number ${index}`
            : `say hello to guest ${index}`,
          outcomes: {
            big: { score: random() < 0.95 ? 1 : 0, cost_usd: 0.01 },
            small: {
              score: hard ? (random() < 0.2 ? 1 : 0) : random() < 0.95 ? 1 : 0,
              cost_usd: 0.0005,
            },
          },
        }),
      );
    }
    writeFileSync(file, lines.join('\n') + '\n');
    const out = capture();
    const err = capture();
    const code = await main(
      ['replay', '--data', file, '--predict', '--json', '--seed', '2'],
      out.stream,
      err.stream,
    );
    expect(err.text()).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(out.text()) as {
      testPrompts: number;
      metrics: {
        router: { apgr: number; points: unknown[] };
        random: { apgr: number };
        staticTable: { apgr: number };
      };
    };
    expect(report.testPrompts).toBe(200);
    expect(report.metrics.random.apgr).toBeCloseTo(0.5, 9);
    // one class: the static table can do no better than the random mix
    expect(report.metrics.staticTable.apgr).toBeCloseTo(0.5, 9);
    // the request text tells hard from easy
    expect(report.metrics.router.apgr).toBeGreaterThan(0.7);
    expect(report.metrics.router.points.length).toBeGreaterThan(5);
  });
});

describe('metrics', () => {
  const point = (x: number, pgr: number): CurvePoint => ({
    knob: null,
    accuracy: 0,
    costUsd: 0,
    costVsBest: x,
    strongShare: x,
    x,
    pgr,
  });

  it('APGR is the area under PGR over the strong share; CPT interpolates', () => {
    const curve = curveOf([point(0, 0), point(0.2, 0.6), point(1, 1)], 0);
    // 0.2 * 0.3 + 0.8 * 0.8 = 0.7
    expect(curve.apgr).toBeCloseTo(0.7, 12);
    expect(curve.cpt50).toBeCloseTo(0.2 * (0.5 / 0.6), 12);
    expect(curve.cpt80).toBeCloseTo(0.2 + 0.8 * 0.5, 12);
    expect(pgrAt(curve, 0.6)).toBeCloseTo(0.8, 12);
    expect(curveOf([point(0, 0), point(1, 1)], 0).apgr).toBeCloseTo(0.5, 12);
  });

  it('no policy costs more than always-best on a small set (warm-up scales with the data)', () => {
    const random = createRandom(8);
    const make = (count: number, prefix: string): RecordedDataset => ({
      models: ['weak', 'strong'],
      skipped: 0,
      prompts: Array.from({ length: count }, (_, index) => ({
        sampleId: `${prefix}.${index}`,
        prompt: `question ${index} of ${prefix}`,
        task: 'small',
        scores: Float64Array.from([random() < 0.7 ? 1 : 0, random() < 0.9 ? 1 : 0]),
        costs: Float64Array.from([0.0003, 0.01]),
        responses: ['', ''],
      })),
    });
    const train = make(40, 'train');
    const test = make(40, 'test');
    for (const policy of [
      undefined,
      { candidates: [{ model: 'weak' }, { model: 'strong' }], predictor: { enabled: true } },
      {
        candidates: [{ model: 'weak' }, { model: 'strong' }],
        goal: { costPenalty: 0.1 },
        cascade: { enabled: true, warmupProbes: 150 },
      },
    ]) {
      const report = runReplay(train, test, {
        ...(policy === undefined ? {} : { policy }),
        seed: 1,
      });
      expect(report.router.costVsBest).toBeLessThanOrEqual(1);
    }
    const metrics = routingMetrics(train, test, {
      policy: {
        candidates: [{ model: 'weak' }, { model: 'strong' }],
        predictor: { enabled: true },
      },
      seed: 1,
    });
    for (const entry of metrics.router.points)
      expect(entry.costVsBest).toBeLessThanOrEqual(1.000001);
  });
});

describe('warm-up per class', () => {
  it('never probes on the measured split, even for a class the train split barely has', () => {
    const random = createRandom(3);
    const make = (counts: Record<string, number>, prefix: string): RecordedDataset => ({
      models: ['weak', 'strong'],
      skipped: 0,
      prompts: Object.entries(counts).flatMap(([task, count]) =>
        Array.from({ length: count }, (_, index) => ({
          sampleId: `${prefix}.${task}.${index}`,
          prompt: `${task} question ${index}`,
          task,
          scores: Float64Array.from([random() < 0.6 ? 1 : 0, random() < 0.9 ? 1 : 0]),
          costs: Float64Array.from([0.0003, 0.01]),
          responses: ['', ''],
        })),
      ),
    });
    // the mean train class has 204 prompts, class "b" only 8: a warm-up of 50 capped by the
    // mean would go on for 42 measured prompts of "b"
    const train = make({ a: 400, b: 8 }, 'train');
    const test = make({ b: 100, c: 20 }, 'test');
    for (const policy of [
      {
        candidates: [{ model: 'weak' }, { model: 'strong' }],
        predictor: { enabled: true, warmup: 50 },
      },
      {
        candidates: [{ model: 'weak' }, { model: 'strong' }, { model: 'strong-2' }],
        cascade: { enabled: true, warmupProbes: 50 },
      },
    ]) {
      const data = (set: RecordedDataset): RecordedDataset =>
        policy.candidates.length === 2
          ? set
          : {
              ...set,
              models: ['weak', 'strong', 'strong-2'],
              prompts: set.prompts.map((prompt) => ({
                ...prompt,
                scores: Float64Array.from([...prompt.scores, prompt.scores[1]!]),
                costs: Float64Array.from([...prompt.costs, 0.02]),
                responses: ['A', 'A', 'A'],
              })),
            };
      const report = runReplay(data(train), data(test), { policy, seed: 2 });
      const kinds = new Set(report.decisions.map((decision) => decision.kind));
      expect(kinds.has('warmup')).toBe(false);
      expect(report.decisions.filter((decision) => decision.kind === 'probe').length).toBeLessThan(
        10,
      );
    }
  });
});

describe('modelmaxx-router --help', () => {
  it('exits 0 and lists every flag', async () => {
    for (const args of [['replay', '--help'], ['--help']]) {
      const out = capture();
      expect(await main(args, out.stream, capture().stream)).toBe(0);
      for (const flag of [
        '--train',
        '--test',
        '--data',
        '--split',
        '--policy',
        '--predict',
        '--class',
        '--interval-ms',
        '--sweep',
        '--no-sweep',
        '--knobs',
        '--seed',
        '--decisions',
        '--json',
        '--help',
      ]) {
        expect(out.text()).toContain(flag);
      }
    }
    const err = capture();
    expect(await main(['replay', '--class', 'domain'], capture().stream, err.stream)).toBe(2);
    expect(err.text()).toMatch(/^--class is "task" or "request", not "domain"/);
  });

  it.skipIf(!HAS_ROUTELLM)(
    'replays MMLU domains from the real files (two small domains)',
    async () => {
      const files = readdirSync(join(ROUTELLM, 'mmlu'))
        .filter((file) => /anatomy|astronomy/.test(file))
        .map((file) => join(ROUTELLM, 'mmlu', file));
      const out = capture();
      const code = await main(
        ['replay', '--data', ...files, '--predict', '--json', '--knobs', '0,0.1,0.3,1'],
        out.stream,
        capture().stream,
      );
      expect(code).toBe(0);
      const report = JSON.parse(out.text()) as {
        metrics: { router: { points: unknown[] }; strongModel: string };
      };
      expect(report.metrics.strongModel).toBe(STRONG);
      expect(report.metrics.router.points).toHaveLength(6);
    },
  );
});
