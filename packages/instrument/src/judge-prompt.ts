/**
 * The prompts of the LLM judges. The user turn opens with `modelmaxx-judge/v1 <mode>` (the
 * simulator `@modelmaxx/llm-sim` answers prompts with this marker as a judge) and holds the
 * rubric, the question and the answer(s) in `<tag>` sections.
 */
import {
  DEFAULT_JUDGE_RUBRIC,
  JUDGE_PROMPT_MARKER,
  judgePromptSection,
  PAIRWISE_VERDICT_SCHEMA,
} from '@modelmaxx/semconv';

export type JudgeMode = 'pointwise' | 'pairwise';

export { JUDGE_PROMPT_MARKER };
export const JUDGE_TOOL_NAME = 'record_verdict';
export const DEFAULT_RUBRIC = DEFAULT_JUDGE_RUBRIC;

/** OpenAI strict structured output: every property required, no others. */
export const POINTWISE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['score', 'label', 'explanation'],
  properties: {
    score: {
      type: 'number',
      description: 'How well the answer meets the rubric, from 0 (not at all) to 1 (fully).',
    },
    label: { type: 'string', enum: ['pass', 'fail'] },
    explanation: { type: 'string', description: 'One or two sentences: why.' },
  },
} as const;

export const PAIRWISE_SCHEMA = PAIRWISE_VERDICT_SCHEMA;

export function judgeSystemPrompt(mode: JudgeMode, structured: boolean): string {
  const reply =
    mode === 'pointwise'
      ? '{"score": <number from 0 to 1>, "label": "pass" | "fail", "explanation": "<one or two sentences>"}'
      : '{"winner": "A" | "B" | "tie", "explanation": "<one or two sentences>"}';
  const task =
    mode === 'pointwise'
      ? 'You are an impartial evaluator. Judge how well the answer meets the rubric for the question. Pass an answer that meets it, fail one that does not.'
      : 'You are an impartial evaluator. Compare answers A and B to the question against the rubric and say which is better, or tie when they are equally good. The order in which they are shown says nothing about their quality; neither does their length.';
  return structured
    ? `${task} Record your verdict with the fields ${reply}.`
    : `${task} Reply with one JSON object and nothing else: ${reply}`;
}

export interface JudgePromptInput {
  mode: JudgeMode;
  rubric: string | undefined;
  question: string;
  answer: string;
  reference: string | undefined;
  /** Pairwise: the call's answer is A (else B, and the reference is A). */
  answerFirst: boolean;
  maxChars: number;
}

export function judgePrompt(input: JudgePromptInput): string {
  const section = (tag: string, text: string) => judgePromptSection(tag, text, input.maxChars);
  const head = [
    `${JUDGE_PROMPT_MARKER} ${input.mode}`,
    section('rubric', input.rubric ?? DEFAULT_RUBRIC),
    section('question', input.question),
  ];
  if (input.mode === 'pointwise') return [...head, section('answer', input.answer)].join('\n');
  const reference = input.reference ?? '';
  const [a, b] = input.answerFirst ? [input.answer, reference] : [reference, input.answer];
  return [...head, section('answer_a', a), section('answer_b', b)].join('\n');
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const parts: string[] = [];
  for (const part of content as unknown[]) {
    if (typeof part === 'string') parts.push(part);
    else if (typeof part === 'object' && part !== null) {
      const text = (part as { text?: unknown }).text;
      if (typeof text === 'string') parts.push(text);
    }
  }
  return parts.join('\n');
}

/**
 * The question of a call: the text of its last user turn (OpenAI chat `messages`, Responses
 * `input`, Anthropic `messages`), or undefined when there is none.
 */
export function questionOf(request: unknown): string | undefined {
  if (typeof request !== 'object' || request === null) return undefined;
  const body = request as { messages?: unknown; input?: unknown };
  if (typeof body.input === 'string') return body.input === '' ? undefined : body.input;
  const list = Array.isArray(body.messages)
    ? (body.messages as unknown[])
    : Array.isArray(body.input)
      ? (body.input as unknown[])
      : [];
  for (let index = list.length - 1; index >= 0; index -= 1) {
    const message = list[index] as { role?: unknown; content?: unknown } | null;
    if (message?.role !== 'user') continue;
    const text = textOf(message.content);
    if (text.trim() !== '') return text;
  }
  return undefined;
}
