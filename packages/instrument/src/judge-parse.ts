import { JUDGE_TOOL_NAME } from './judge-prompt.js';
import type { JudgeMode } from './judge-prompt.js';

/** A judge reply read as a verdict, or why it is none. */
export type JudgeVerdict =
  | { kind: 'pointwise'; score: number; label: string; explanation: string | undefined }
  | { kind: 'pairwise'; winner: 'A' | 'B' | 'tie'; explanation: string | undefined }
  | { kind: 'error'; reason: string };

const FENCE = /^```(?:json)?\s*([\s\S]*?)\s*```$/;

function parseJsonText(text: string): unknown {
  const trimmed = text.trim();
  const fenced = FENCE.exec(trimmed);
  return JSON.parse(fenced?.[1] ?? trimmed) as unknown;
}

/** The verdict object of a reply: the forced tool's input (Anthropic), else the JSON text. */
function verdictObject(provider: 'openai' | 'anthropic', response: unknown): unknown {
  if (provider === 'anthropic') {
    const content = (response as { content?: unknown } | null)?.content;
    if (!Array.isArray(content)) throw new Error('the reply has no content');
    const tool = (content as { type?: unknown; name?: unknown; input?: unknown }[]).find(
      (block) => block.type === 'tool_use' && block.name === JUDGE_TOOL_NAME,
    );
    if (tool !== undefined) return tool.input;
    const text = (content as { type?: unknown; text?: unknown }[])
      .filter((block) => block.type === 'text' && typeof block.text === 'string')
      .map((block) => block.text as string)
      .join('');
    return parseJsonText(text);
  }
  const choice = (
    response as { choices?: { message?: { content?: unknown; refusal?: unknown } }[] }
  )?.choices?.[0];
  const message = choice?.message;
  if (typeof message?.refusal === 'string' && message.refusal !== '') {
    throw new Error(`the judge refused: ${message.refusal}`);
  }
  if (typeof message?.content !== 'string') throw new Error('the reply has no text');
  return parseJsonText(message.content);
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/** Reads a judge reply; anything that is not a well-formed verdict is an error, never a score. */
export function parseVerdict(
  provider: 'openai' | 'anthropic',
  mode: JudgeMode,
  response: unknown,
): JudgeVerdict {
  let value: unknown;
  try {
    value = verdictObject(provider, response);
  } catch (error) {
    return { kind: 'error', reason: error instanceof Error ? error.message : String(error) };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'error', reason: `not a JSON object: ${describe(value)}` };
  }
  const record = value as Record<string, unknown>;
  const explanation = typeof record['explanation'] === 'string' ? record['explanation'] : undefined;
  if (mode === 'pairwise') {
    const raw = record['winner'];
    const winner =
      typeof raw === 'string'
        ? raw.trim().toLowerCase() === 'tie'
          ? 'tie'
          : raw.trim().toUpperCase()
        : undefined;
    if (winner !== 'A' && winner !== 'B' && winner !== 'tie') {
      return { kind: 'error', reason: `winner must be "A", "B" or "tie": ${describe(value)}` };
    }
    return { kind: 'pairwise', winner, explanation };
  }
  const score = record['score'];
  if (typeof score !== 'number' || !Number.isFinite(score) || score < 0 || score > 1) {
    return { kind: 'error', reason: `score must be a number from 0 to 1: ${describe(value)}` };
  }
  const rawLabel = record['label'];
  if (rawLabel !== undefined && rawLabel !== 'pass' && rawLabel !== 'fail') {
    return { kind: 'error', reason: `label must be "pass" or "fail": ${describe(value)}` };
  }
  const label = rawLabel ?? (score >= 0.5 ? 'pass' : 'fail');
  return { kind: 'pointwise', score, label, explanation };
}

/** A verdict as a score and label: pointwise as the judge said; pairwise 1 win, 0.5 tie, 0 loss. */
export function verdictScore(
  verdict: Exclude<JudgeVerdict, { kind: 'error' }>,
  answerFirst: boolean,
): { score: number; label: string } {
  if (verdict.kind === 'pointwise') return { score: verdict.score, label: verdict.label };
  if (verdict.winner === 'tie') return { score: 0.5, label: 'tie' };
  return verdict.winner === (answerFirst ? 'A' : 'B')
    ? { score: 1, label: 'win' }
    : { score: 0, label: 'loss' };
}
