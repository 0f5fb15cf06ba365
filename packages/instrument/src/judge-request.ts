import {
  JUDGE_TOOL_NAME,
  PAIRWISE_SCHEMA,
  POINTWISE_SCHEMA,
  judgePrompt,
  judgeSystemPrompt,
} from './judge-prompt.js';
import type { JudgeSettings } from './judge-settings.js';
import type { EvaluatorCall } from './types.js';

/** What one judge call is about: the call's question and answer, and in pairwise the reference. */
export interface JudgeInputs {
  question: string;
  answer: string;
  reference: string | undefined;
  /** Pairwise: the call's answer is shown first (A). */
  answerFirst: boolean;
}

/** The answer of a call as the judge sees it: its text, else its tool calls as JSON ('' for none). */
export function answerOf(call: EvaluatorCall): string {
  if (call.outputText !== '') return call.outputText;
  if (call.toolCalls.length === 0) return '';
  return JSON.stringify(call.toolCalls.map(({ name: tool, arguments: args }) => ({ tool, args })));
}

/**
 * The judge call's request body for the judge's provider: system and user prompt, token limit and,
 * with structured output, the verdict schema (OpenAI `json_schema`, Anthropic a forced tool).
 */
export function judgeRequestBody(
  settings: JudgeSettings,
  inputs: JudgeInputs,
): Record<string, unknown> {
  const { mode, structured, maxTokens, model } = settings;
  const prompt = judgePrompt({
    mode,
    rubric: settings.rubric,
    ...inputs,
    maxChars: settings.maxInputChars,
  });
  const system = judgeSystemPrompt(mode, structured);
  const schema = mode === 'pairwise' ? PAIRWISE_SCHEMA : POINTWISE_SCHEMA;
  if (settings.provider === 'openai') {
    return {
      model,
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: prompt },
      ],
      max_completion_tokens: maxTokens,
      ...(structured
        ? {
            response_format: {
              type: 'json_schema',
              json_schema: { name: JUDGE_TOOL_NAME, strict: true, schema },
            },
          }
        : {}),
    };
  }
  return {
    model,
    max_tokens: maxTokens,
    system,
    messages: [{ role: 'user', content: prompt }],
    ...(structured
      ? {
          tools: [
            {
              name: JUDGE_TOOL_NAME,
              description: 'Records the verdict on the answer.',
              input_schema: schema,
            },
          ],
          tool_choice: { type: 'tool', name: JUDGE_TOOL_NAME },
        }
      : {}),
  };
}
