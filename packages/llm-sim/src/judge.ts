import { Random, hashParts } from './random.js';
import { checkAnswer, recognizeTask } from './tasks.js';

/**
 * The simulated LLM judge. A request whose last user turn opens with `modelmaxx-judge/v1` (the
 * marker the judges of `@modelmaxx/instrument` put in their prompts) is answered with a verdict
 * instead of a generated answer. The verdict follows the simulator's hidden truth about the
 * judged answer: whether it answers the task in `<question>` correctly (`checkAnswer`, the same
 * check that grades the models' answers), right with probability `accuracy`, and leaning on the
 * configured biases.
 *
 * Prompt layout (sections are `<tag>\n...\n</tag>`):
 *
 *     modelmaxx-judge/v1 pointwise            modelmaxx-judge/v1 pairwise
 *     <rubric>...</rubric>                    <rubric>...</rubric>
 *     <question>...</question>                <question>...</question>
 *     <answer>...</answer>                    <answer_a>...</answer_a>
 *                                             <answer_b>...</answer_b>
 *
 * Reply: pointwise `{ score, label: pass|fail, explanation }`, pairwise
 * `{ winner: A|B|tie, explanation }`, as JSON text, as the structured output the request asks
 * for (`response_format` json_schema, Anthropic `output_format`), or as the arguments of the
 * tool the request forces.
 */
export const JUDGE_PROMPT_MARKER = 'modelmaxx-judge/v1';

export interface SimJudgeConfig {
  /**
   * Probability that a verdict agrees with the truth when no bias applies (default 0.9).
   * Pointwise: pass for a correct answer, fail for a wrong one. Pairwise: the correct answer
   * wins, and two correct (or two wrong) answers tie; a wrong verdict is one of the other two
   * outcomes, equally likely.
   */
  accuracy: number;
  /** Pairwise: probability that the first answer (A) wins whatever the truth (default 0). */
  positionBias: number;
  /**
   * Probability that length decides (default 0). Pairwise: the longer answer wins (when one is
   * at least 10% longer). Pointwise: a fail turns into a pass with this probability times
   * `min(1, answer tokens / 200)`.
   */
  lengthBias: number;
  /** Probability that the reply does not parse / lacks the verdict fields (default 0). */
  malformedRate: number;
}

export const DEFAULT_SIM_JUDGE: SimJudgeConfig = {
  accuracy: 0.9,
  positionBias: 0,
  lengthBias: 0,
  malformedRate: 0,
};

export interface JudgePrompt {
  mode: 'pointwise' | 'pairwise';
  question: string;
  answer: string;
  answerB: string;
}

function section(text: string, tag: string): string | undefined {
  const open = `<${tag}>\n`;
  const start = text.indexOf(open);
  if (start < 0) return undefined;
  const end = text.indexOf(`\n</${tag}>`, start + open.length);
  if (end < 0) return undefined;
  return text.slice(start + open.length, end);
}

/** The judge prompt in a user turn, or undefined when the turn is no judge prompt. */
export function parseJudgePrompt(userText: string): JudgePrompt | undefined {
  const marker = userText.indexOf(JUDGE_PROMPT_MARKER);
  if (marker < 0 || marker > 200) return undefined;
  const pairwise = userText.startsWith('pairwise', marker + JUDGE_PROMPT_MARKER.length + 1);
  const question = section(userText, 'question') ?? '';
  if (pairwise) {
    return {
      mode: 'pairwise',
      question,
      answer: section(userText, 'answer_a') ?? '',
      answerB: section(userText, 'answer_b') ?? '',
    };
  }
  return { mode: 'pointwise', question, answer: section(userText, 'answer') ?? '', answerB: '' };
}

/** Whether an answer is right: the task in the question checks it; an unknown task passes any non-blank answer. */
export function answerIsCorrect(question: string, answer: string): boolean {
  const task = recognizeTask(question);
  if (task === undefined) return answer.trim() !== '';
  return checkAnswer(task, answer);
}

export interface SimVerdict {
  /** The verdict fields (what the reply carries), or undefined for a malformed reply. */
  fields: Record<string, unknown> | undefined;
  /** The true outcome: pointwise `pass`/`fail`, pairwise `A`/`B`/`tie`. */
  truth: string;
}

const tokens = (text: string): number => Math.ceil(text.length / 4);

/** The verdict on one judge prompt; deterministic in (seed, model, prompt text, choice). */
export function judgeVerdict(
  prompt: JudgePrompt,
  config: SimJudgeConfig,
  seedParts: readonly (string | number)[],
): SimVerdict {
  const random = new Random(hashParts('judge', ...seedParts));
  const malformed = random.next() < config.malformedRate;
  if (prompt.mode === 'pointwise') {
    const correct = answerIsCorrect(prompt.question, prompt.answer);
    let passProbability = correct ? config.accuracy : 1 - config.accuracy;
    const lengthFactor = Math.min(1, tokens(prompt.answer) / 200);
    passProbability += (1 - passProbability) * config.lengthBias * lengthFactor;
    const pass = random.next() < passProbability;
    const jitter = random.next();
    const truth = correct ? 'pass' : 'fail';
    if (malformed) return { fields: undefined, truth };
    return {
      truth,
      fields: {
        score: Math.round((pass ? 0.75 + 0.25 * jitter : 0.25 * jitter) * 100) / 100,
        label: pass ? 'pass' : 'fail',
        explanation: pass
          ? 'The answer addresses the question correctly.'
          : 'The answer does not answer the question correctly.',
      },
    };
  }
  const a = answerIsCorrect(prompt.question, prompt.answer);
  const b = answerIsCorrect(prompt.question, prompt.answerB);
  const truth = a === b ? 'tie' : a ? 'A' : 'B';
  let winner: string;
  const lengthA = tokens(prompt.answer);
  const lengthB = tokens(prompt.answerB);
  const longer = lengthA > lengthB * 1.1 ? 'A' : lengthB > lengthA * 1.1 ? 'B' : undefined;
  if (random.next() < config.positionBias) {
    winner = 'A';
  } else if (longer !== undefined && random.next() < config.lengthBias) {
    winner = longer;
  } else if (random.next() < config.accuracy) {
    winner = truth;
  } else {
    const others = ['A', 'B', 'tie'].filter((outcome) => outcome !== truth);
    winner = others[random.next() < 0.5 ? 0 : 1] as string;
  }
  if (malformed) return { fields: undefined, truth };
  return {
    truth,
    fields: {
      winner,
      explanation:
        winner === 'tie'
          ? 'Both answers are equally good.'
          : `Answer ${winner} answers the question better.`,
    },
  };
}

/** Text of a malformed judge reply (no JSON). */
export const MALFORMED_JUDGE_TEXT = 'Verdict: the answer looks fine to me, probably.';

/** Fills a judge reply with `fields`: a hint for `jsonFromSchema`. */
export function verdictHint(
  fields: Record<string, unknown>,
): (key: string, type: string) => unknown {
  return (key) => fields[key];
}

/** Clamps a config patch into range. */
export function mergeJudgeConfig(
  base: SimJudgeConfig,
  patch: Partial<SimJudgeConfig> | undefined,
): SimJudgeConfig {
  const out = { ...base };
  if (patch === undefined) return out;
  for (const key of ['accuracy', 'positionBias', 'lengthBias', 'malformedRate'] as const) {
    const value = patch[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
      throw new RangeError(`llm-sim: judge.${key} must be a number from 0 to 1`);
    }
    out[key] = value;
  }
  return out;
}
