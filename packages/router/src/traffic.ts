/**
 * A user's own recorded traffic as JSONL, one request a line, so a policy can be replayed on
 * the user's own models:
 *
 * ```json
 * {"id": "r1", "task": "support", "prompt": "How do I reset my password?",
 *  "outcomes": {"gpt-4o": {"score": 1, "cost_usd": 0.0021, "response": "…"},
 *               "gpt-4o-mini": {"score": 0, "cost_usd": 0.0001}}}
 * ```
 *
 * - `prompt` (text) or `messages` (chat messages; the user turns are the text, their count
 *   the conversation depth) or `embedding` (numbers) — at least one.
 * - `outcomes`: per model, `score` (0..1) and `cost_usd` (≥ 0), optional `response` (the
 *   answer text, for cascades' answer agreement). Every line has the same models, and either
 *   every line an `embedding` of the same length (one embedder's vectors) or none.
 * - `task` (optional): the app's task label (the routing class); `id` (optional, unique).
 */
import type { RecordedDataset, RecordedPrompt } from './routerbench.js';

interface Outcome {
  readonly score?: unknown;
  readonly cost_usd?: unknown;
  readonly response?: unknown;
}

interface TrafficLine {
  readonly id?: unknown;
  readonly task?: unknown;
  readonly prompt?: unknown;
  readonly messages?: unknown;
  readonly embedding?: unknown;
  readonly outcomes?: unknown;
}

/**
 * True when a JSONL file is to be read as recorded traffic: unless its first non-blank line is
 * an MT-Bench judgement (a JSON object with `question_id`). A first line that is not JSON, or
 * lacks `outcomes`, is then reported by `parseTrafficJsonl` with its line number.
 */
export function isTrafficJsonl(text: string): boolean {
  const first = text.split('\n').find((line) => line.trim() !== '') ?? '';
  try {
    const row = JSON.parse(first) as { question_id?: unknown } | null;
    return typeof row !== 'object' || row === null || !('question_id' in row);
  } catch {
    return true;
  }
}

/** The request's text and conversation depth: `prompt`, or the user turns of `messages`. */
function textOf(row: TrafficLine): { prompt: string; turns: number } {
  if (typeof row.prompt === 'string') return { prompt: row.prompt, turns: 1 };
  if (!Array.isArray(row.messages)) return { prompt: '', turns: 1 };
  const users = (row.messages as { role?: unknown; content?: unknown }[]).filter(
    (message) => message?.role === 'user' && typeof message.content === 'string',
  );
  return {
    prompt: users.map((message) => message.content as string).join('\n\n'),
    turns: Math.max(users.length, 1),
  };
}

function embeddingOf(row: TrafficLine, where: string): Float32Array | undefined {
  if (row.embedding === undefined) return undefined;
  if (
    !Array.isArray(row.embedding) ||
    row.embedding.length === 0 ||
    row.embedding.some((v) => typeof v !== 'number' || !Number.isFinite(v))
  ) {
    throw new Error(`${where}: "embedding" must be a non-empty array of numbers`);
  }
  return Float32Array.from(row.embedding as number[]);
}

/** Each model's score and cost (and answer), in the order of `names`. */
function outcomesOf(outcomes: Record<string, Outcome>, names: readonly string[], where: string) {
  const scores = new Float64Array(names.length);
  const costs = new Float64Array(names.length);
  const responses: string[] = [];
  names.forEach((model, at) => {
    const outcome = outcomes[model];
    if (typeof outcome !== 'object' || outcome === null) {
      throw new Error(`${where}: outcomes.${model} must be an object {score, cost_usd}`);
    }
    if (typeof outcome.score !== 'number' || !(outcome.score >= 0 && outcome.score <= 1)) {
      throw new Error(`${where}: outcomes.${model}.score must be a number from 0 to 1`);
    }
    if (typeof outcome.cost_usd !== 'number' || !(outcome.cost_usd >= 0)) {
      throw new Error(`${where}: outcomes.${model}.cost_usd must be a number ≥ 0`);
    }
    scores[at] = outcome.score;
    costs[at] = outcome.cost_usd;
    responses.push(typeof outcome.response === 'string' ? outcome.response : '');
  });
  return { scores, costs, responses };
}

/**
 * What the lines must share: the models; and every embedding one length (one embedder's
 * vectors; a line may have none, as when the embedder failed in production).
 */
interface FileShape {
  models: string[];
  embedding?: { readonly length: number; readonly line: number };
  ids: Map<string, number>;
}

function checkShape(
  shape: FileShape,
  names: string[],
  embedding: Float32Array | undefined,
  line: number,
  where: string,
): void {
  if (names.join('\n') !== shape.models.join('\n')) {
    throw new Error(
      `${where}: outcomes for ${names.join(', ')}, but earlier lines have ${shape.models.join(', ')}`,
    );
  }
  if (embedding === undefined) return;
  shape.embedding ??= { length: embedding.length, line };
  if (embedding.length !== shape.embedding.length) {
    throw new Error(
      `${where}: an embedding of ${embedding.length} numbers, but line ${shape.embedding.line} has ${shape.embedding.length} (every embedding must come from the same embedder)`,
    );
  }
}

export function parseTrafficJsonl(text: string, source = 'traffic'): RecordedDataset {
  let shape: FileShape | undefined;
  const prompts: RecordedPrompt[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index]!;
    if (line.trim() === '') continue;
    const where = `${source} line ${index + 1}`;
    let row: TrafficLine;
    try {
      row = JSON.parse(line) as TrafficLine;
    } catch (error) {
      throw new Error(`${where}: not JSON (${String(error)})`, { cause: error });
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      throw new Error(`${where}: a line must be a JSON object`);
    }
    if (typeof row.outcomes !== 'object' || row.outcomes === null) {
      throw new Error(`${where}: "outcomes" must be an object of model → {score, cost_usd}`);
    }
    const outcomes = row.outcomes as Record<string, Outcome>;
    const names = Object.keys(outcomes).sort();
    if (names.length === 0) throw new Error(`${where}: "outcomes" names no model`);
    const { prompt, turns } = textOf(row);
    const embedding = embeddingOf(row, where);
    if (prompt === '' && embedding === undefined) {
      throw new Error(`${where}: give "prompt", "messages" or "embedding"`);
    }
    shape ??= { models: names, ids: new Map() };
    checkShape(shape, names, embedding, index + 1, where);
    const id =
      typeof row.id === 'string' || typeof row.id === 'number' ? String(row.id) : undefined;
    if (id !== undefined) {
      const earlier = shape.ids.get(id);
      if (earlier !== undefined) {
        throw new Error(`${where}: id "${id}" is already on line ${earlier} (ids must be unique)`);
      }
      shape.ids.set(id, index + 1);
    }
    prompts.push({
      sampleId: id ?? `${source}.${index}`,
      prompt,
      task: typeof row.task === 'string' && row.task !== '' ? row.task : 'default',
      ...outcomesOf(outcomes, names, where),
      ...(turns > 1 ? { turns } : {}),
      ...(embedding === undefined ? {} : { embedding }),
    });
  }
  if (shape === undefined) throw new Error(`${source}: no requests`);
  return { models: shape.models, prompts, skipped: 0 };
}
