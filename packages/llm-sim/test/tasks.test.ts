import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TASK_DIFFICULTIES,
  TASK_KINDS,
  checkAnswer,
  generateTask,
  recognizeTask,
  startLlmSim,
} from '../src/index.js';
import type { LlmSim } from '../src/index.js';

describe('tasks', () => {
  it('generates deterministic, recognisable tasks with known answers', () => {
    expect(generateTask({ kind: 'arithmetic', difficulty: 'easy', seed: 1, index: 4 })).toEqual(
      generateTask({ kind: 'arithmetic', difficulty: 'easy', seed: 1, index: 4 }),
    );
    for (const kind of TASK_KINDS) {
      for (const difficulty of TASK_DIFFICULTIES) {
        for (let index = 0; index < 20; index++) {
          const task = generateTask({ kind, difficulty, seed: 2, index });
          expect(task.kind).toBe(kind);
          expect(task.difficulty).toBe(difficulty);
          expect(recognizeTask(task.prompt)).toEqual(task);
        }
      }
    }
  });

  it('knows the answers', () => {
    expect(recognizeTask('What is 37 * 48?')?.answer).toBe('1776');
    expect(recognizeTask('What is (12 * 10 + 5) * 3 - 100?')).toMatchObject({
      difficulty: 'hard',
      answer: '275',
    });
    expect(recognizeTask('Reverse the word "stone".')?.answer).toBe('enots');
    expect(
      recognizeTask('How many times does the letter "r" appear in "strawberry"?')?.answer,
    ).toBe('3');
    expect(
      recognizeTask('Extract the name and age as JSON from: "Dana is 41 years old."')?.answer,
    ).toBe('{"name":"Dana","age":41}');
    expect(recognizeTask('Write me a poem')).toBeUndefined();
  });

  it('checks answers in prose and JSON', () => {
    expect(checkAnswer('What is 37 * 48?', 'The answer is 1776.')).toBe(true);
    expect(checkAnswer('What is 37 * 48?', '37 * 48 = 1777')).toBe(false);
    expect(checkAnswer('What is 37 * 48?', '{"result": 1776}')).toBe(true);
    expect(checkAnswer('Reverse the word "stone".', 'It is "enots".')).toBe(true);
    expect(checkAnswer('Reverse the word "stone".', 'enost')).toBe(false);
    const json = 'Extract the name and age as JSON from: "Dana is 41 years old."';
    expect(checkAnswer(json, '```json\n{"name": "Dana", "age": 41}\n```')).toBe(true);
    expect(checkAnswer(json, '{"name": "Dana", "age": "41"}')).toBe(false);
    expect(checkAnswer('Write me a poem', 'anything')).toBe(false);
    expect(checkAnswer('What is 2 + 2?', null)).toBe(false);
  });
});

describe('simulated quality', () => {
  let sim: LlmSim;
  let client: OpenAI;
  beforeAll(async () => {
    sim = await startLlmSim({ seed: 42 });
    client = new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 });
  });
  afterAll(async () => {
    await sim.close();
  });

  async function score(model: string, count: number): Promise<number> {
    let correct = 0;
    for (let index = 0; index < count; index++) {
      const task = generateTask({ seed: 100, index });
      const completion = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: task.prompt }],
      });
      if (checkAnswer(task, completion.choices[0]?.message.content)) correct++;
    }
    return correct;
  }

  it('a strong model answers more of 200 tasks correctly than a weak one, close to its profile', async () => {
    const strong = await score('o3-mini', 200);
    const weak = await score('llama-3.1-8b-instant', 200);
    const expected = (name: string): number => {
      const model = sim.models().find((entry) => entry.name === name);
      if (!model) throw new Error(name);
      let sum = 0;
      for (let index = 0; index < 200; index++) {
        const task = generateTask({ seed: 100, index });
        sum += model.quality[task.kind][task.difficulty];
      }
      return sum;
    };
    expect(strong).toBeGreaterThan(weak + 40);
    // Within ~4 standard deviations of the expectation (Bernoulli sums over 200 tasks).
    expect(Math.abs(strong - expected('o3-mini'))).toBeLessThan(20);
    expect(Math.abs(weak - expected('llama-3.1-8b-instant'))).toBeLessThan(30);
    expect(sim.stats()['o3-mini']).toMatchObject({
      requests: 200,
      correct: strong,
      wrong: 200 - strong,
    });
  });

  it('answers the same prompt the same way every time, and quality drifts with setModel', async () => {
    const task = generateTask({ kind: 'arithmetic', difficulty: 'hard', seed: 7, index: 1 });
    const ask = () =>
      client.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: task.prompt }] })
        .then((completion) => completion.choices[0]?.message.content);
    const first = await ask();
    expect(await ask()).toBe(first);
    sim.setModel('gpt-4o-mini', { quality: { arithmetic: { hard: 0 } } });
    expect(checkAnswer(task, await ask())).toBe(false);
    sim.setModel('gpt-4o-mini', { quality: { arithmetic: { hard: 1 } } });
    expect(checkAnswer(task, await ask())).toBe(true);
  });
});
