import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { JUDGE_PROMPT_MARKER, answerIsCorrect, generateTask, startLlmSim } from '../src/index.js';
import type { LlmSim, LlmSimOptions } from '../src/index.js';

const sims: LlmSim[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((sim) => sim.close()));
});

async function sim(options: LlmSimOptions): Promise<{ sim: LlmSim; openai: OpenAI }> {
  const started = await startLlmSim(options);
  sims.push(started);
  return {
    sim: started,
    openai: new OpenAI({ baseURL: started.openaiBaseURL, apiKey: 'k', maxRetries: 0 }),
  };
}

function pointwisePrompt(question: string, answer: string): string {
  return `${JUDGE_PROMPT_MARKER} pointwise\n<rubric>\nIs the answer correct?\n</rubric>\n<question>\n${question}\n</question>\n<answer>\n${answer}\n</answer>`;
}

function pairwisePrompt(question: string, a: string, b: string): string {
  return `${JUDGE_PROMPT_MARKER} pairwise\n<rubric>\nWhich answer is correct?\n</rubric>\n<question>\n${question}\n</question>\n<answer_a>\n${a}\n</answer_a>\n<answer_b>\n${b}\n</answer_b>`;
}

/** Questions and the answers a weak simulated model gives them (about half right). */
async function answered(openai: OpenAI, count: number, model = 'llama-3.1-8b-instant') {
  const out: { question: string; answer: string; correct: boolean }[] = [];
  for (let index = 0; index < count; index++) {
    const task = generateTask({ seed: 11, index });
    const completion = await openai.chat.completions.create({
      model,
      messages: [{ role: 'user', content: task.prompt }],
    });
    const answer = completion.choices[0]?.message.content ?? '';
    out.push({ question: task.prompt, answer, correct: answerIsCorrect(task.prompt, answer) });
  }
  return out;
}

async function verdict(openai: OpenAI, content: string): Promise<Record<string, unknown>> {
  const completion = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'You are a strict grader.' },
      { role: 'user', content },
    ],
  });
  return JSON.parse(completion.choices[0]?.message.content ?? 'null') as Record<string, unknown>;
}

describe('llm-sim judge', () => {
  it('pointwise verdicts agree with the hidden truth at the configured accuracy', async () => {
    const { openai } = await sim({ seed: 5, judge: { accuracy: 0.8 } });
    const items = await answered(openai, 300);
    const rightShare = items.filter((item) => item.correct).length / items.length;
    // The weak model is right on some and wrong on others: both truths are exercised.
    expect(rightShare).toBeGreaterThan(0.2);
    expect(rightShare).toBeLessThan(0.9);
    let agreed = 0;
    for (const item of items) {
      const fields = await verdict(openai, pointwisePrompt(item.question, item.answer));
      expect(['pass', 'fail']).toContain(fields['label']);
      expect(fields['score']).toBeGreaterThanOrEqual(0);
      expect(fields['score']).toBeLessThanOrEqual(1);
      if ((fields['label'] === 'pass') === item.correct) agreed++;
      // A pass scores high, a fail low.
      expect((fields['score'] as number) >= 0.75).toBe(fields['label'] === 'pass');
    }
    const accuracy = agreed / items.length;
    // 300 verdicts: the standard error at 0.8 is 0.023; ±0.07 is three of them.
    expect(accuracy).toBeGreaterThan(0.73);
    expect(accuracy).toBeLessThan(0.87);
  }, 120_000);

  it('pairwise: accuracy without bias, and position bias makes A win more', async () => {
    const { openai, sim: started } = await sim({ seed: 6, judge: { accuracy: 0.85 } });
    const weak = await answered(openai, 200);
    const strong = await answered(openai, 200, 'gpt-4o');
    const pairs = weak.map((item, index) => ({ a: item, b: strong[index]! }));
    const run = async () => {
      let agreed = 0;
      let aWins = 0;
      for (const { a, b } of pairs) {
        const truth = a.correct === b.correct ? 'tie' : a.correct ? 'A' : 'B';
        const fields = await verdict(openai, pairwisePrompt(a.question, a.answer, b.answer));
        expect(['A', 'B', 'tie']).toContain(fields['winner']);
        if (fields['winner'] === truth) agreed++;
        if (fields['winner'] === 'A') aWins++;
      }
      return { accuracy: agreed / pairs.length, aShare: aWins / pairs.length };
    };
    const unbiased = await run();
    expect(unbiased.accuracy).toBeGreaterThan(0.77);
    expect(unbiased.accuracy).toBeLessThan(0.93);
    started.setJudge({ positionBias: 0.5 });
    expect(started.judge()).toMatchObject({ accuracy: 0.85, positionBias: 0.5 });
    const biased = await run();
    // Half the verdicts go to A whatever the truth: A wins at least ~0.5 + half the rest.
    expect(biased.aShare).toBeGreaterThan(unbiased.aShare + 0.25);
    expect(biased.accuracy).toBeLessThan(unbiased.accuracy);
  }, 120_000);

  it('length bias passes long wrong answers', async () => {
    const { openai } = await sim({ seed: 7, judge: { accuracy: 1, lengthBias: 1 } });
    const task = generateTask({ kind: 'arithmetic', difficulty: 'easy', seed: 2, index: 0 });
    const wrong = `The answer is ${Number(task.answer) + 1}.`;
    expect(answerIsCorrect(task.prompt, wrong)).toBe(false);
    const short = await verdict(openai, pointwisePrompt(task.prompt, wrong));
    expect(short['label']).toBe('fail');
    const padded = `${'Let me think about this carefully. '.repeat(30)}${wrong}`;
    const long = await verdict(openai, pointwisePrompt(task.prompt, padded));
    expect(long['label']).toBe('pass');
  });

  it('is deterministic under a seed', async () => {
    const run = async (seed: number) => {
      const { openai } = await sim({ seed, judge: { accuracy: 0.6 } });
      const out: unknown[] = [];
      for (let index = 0; index < 30; index++) {
        const task = generateTask({ seed: 3, index });
        out.push(await verdict(openai, pointwisePrompt(task.prompt, task.answer)));
      }
      return out;
    };
    const first = await run(9);
    expect(await run(9)).toEqual(first);
    expect(await run(10)).not.toEqual(first);
  });

  it('answers in the structured form the request asks for, or malformed when configured', async () => {
    const { openai, sim: started } = await sim({ seed: 8, judge: { accuracy: 1 } });
    const task = generateTask({ kind: 'count', difficulty: 'easy', seed: 1, index: 0 });
    const prompt = pointwisePrompt(task.prompt, `The count is ${task.answer}.`);
    const schema = {
      type: 'object',
      additionalProperties: false,
      required: ['score', 'label', 'explanation'],
      properties: {
        score: { type: 'number' },
        label: { type: 'string', enum: ['pass', 'fail'] },
        explanation: { type: 'string' },
      },
    };
    const structured = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: prompt }],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'verdict', strict: true, schema },
      },
    });
    const parsed = JSON.parse(structured.choices[0]?.message.content ?? '') as Record<
      string,
      unknown
    >;
    expect(parsed['label']).toBe('pass');
    expect(Object.keys(parsed).sort()).toEqual(['explanation', 'label', 'score']);

    const anthropic = new Anthropic({
      baseURL: started.anthropicBaseURL,
      apiKey: 'k',
      maxRetries: 0,
    });
    const message = await anthropic.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 300,
      tools: [{ name: 'record_verdict', input_schema: schema as Anthropic.Tool.InputSchema }],
      tool_choice: { type: 'tool', name: 'record_verdict' },
      messages: [{ role: 'user', content: prompt }],
    });
    const toolUse = message.content.find((block) => block.type === 'tool_use');
    expect(toolUse?.input).toMatchObject({ label: 'pass' });

    started.setJudge({ malformedRate: 1 });
    const malformed = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: prompt }],
    });
    expect(() => JSON.parse(malformed.choices[0]?.message.content ?? '') as unknown).toThrow();
    expect(() => started.setJudge({ accuracy: 2 })).toThrow(/accuracy/);
  });

  it('directives quoted in a judge prompt are ignored; header directives apply', async () => {
    const { openai } = await sim({ seed: 8, judge: { accuracy: 1 } });
    const task = generateTask({ kind: 'arithmetic', difficulty: 'easy', seed: 1, index: 1 });
    const question = `${task.prompt} [sim:status=500 times=1]`;
    const fields = await verdict(
      openai,
      pointwisePrompt(question, `The answer is ${task.answer}.`),
    );
    expect(fields['label']).toBe('pass');
    const failing = new OpenAI({
      baseURL: openai.baseURL,
      apiKey: 'k',
      maxRetries: 0,
      defaultHeaders: { 'x-sim-directives': 'status=503' },
    });
    await expect(verdict(failing, pointwisePrompt(question, task.answer))).rejects.toMatchObject({
      status: 503,
    });
  });

  it('a prompt without the marker is answered as usual', async () => {
    const { openai } = await sim({ seed: 8 });
    const task = generateTask({ kind: 'arithmetic', difficulty: 'easy', seed: 1, index: 0 });
    const completion = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: `${task.prompt} [sim:correct]` }],
    });
    expect(completion.choices[0]?.message.content).toBe(`The answer is ${task.answer}.`);
  });
});
