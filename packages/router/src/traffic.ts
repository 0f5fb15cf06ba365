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
 *   answer text, for cascades' answer agreement). Every line has the same models.
 * - `task` (optional): the app's task label (the routing class); `id` (optional).
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

/** True when a JSONL file looks like recorded traffic (an `outcomes` object on its first line). */
export function isTrafficJsonl(text: string): boolean {
  const first = text.slice(0, text.indexOf('\n') < 0 ? undefined : text.indexOf('\n'));
  try {
    const row = JSON.parse(first) as TrafficLine;
    return typeof row.outcomes === 'object' && row.outcomes !== null;
  } catch {
    return false;
  }
}

export function parseTrafficJsonl(text: string, source = 'traffic'): RecordedDataset {
  let models: string[] | undefined;
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
    if (typeof row.outcomes !== 'object' || row.outcomes === null) {
      throw new Error(`${where}: "outcomes" must be an object of model → {score, cost_usd}`);
    }
    const outcomes = row.outcomes as Record<string, Outcome>;
    const names = Object.keys(outcomes).sort();
    if (models === undefined) models = names;
    else if (names.join('\n') !== models.join('\n')) {
      throw new Error(
        `${where}: outcomes for ${names.join(', ')}, but earlier lines have ${models.join(', ')}`,
      );
    }
    let prompt = '';
    let turns = 1;
    if (typeof row.prompt === 'string') prompt = row.prompt;
    else if (Array.isArray(row.messages)) {
      const users = (row.messages as { role?: unknown; content?: unknown }[]).filter(
        (message) => message?.role === 'user' && typeof message.content === 'string',
      );
      prompt = users.map((message) => message.content as string).join('\n\n');
      turns = Math.max(users.length, 1);
    }
    let embedding: Float32Array | undefined;
    if (row.embedding !== undefined) {
      if (!Array.isArray(row.embedding) || row.embedding.some((v) => typeof v !== 'number')) {
        throw new Error(`${where}: "embedding" must be an array of numbers`);
      }
      embedding = Float32Array.from(row.embedding as number[]);
    }
    if (prompt === '' && embedding === undefined) {
      throw new Error(`${where}: give "prompt", "messages" or "embedding"`);
    }
    const scores = new Float64Array(names.length);
    const costs = new Float64Array(names.length);
    const responses: string[] = [];
    names.forEach((model, at) => {
      const outcome = outcomes[model]!;
      if (typeof outcome.score !== 'number' || outcome.score < 0 || outcome.score > 1) {
        throw new Error(`${where}: outcomes.${model}.score must be a number from 0 to 1`);
      }
      if (typeof outcome.cost_usd !== 'number' || outcome.cost_usd < 0) {
        throw new Error(`${where}: outcomes.${model}.cost_usd must be a number ≥ 0`);
      }
      scores[at] = outcome.score;
      costs[at] = outcome.cost_usd;
      responses.push(typeof outcome.response === 'string' ? outcome.response : '');
    });
    prompts.push({
      sampleId:
        typeof row.id === 'string' || typeof row.id === 'number'
          ? String(row.id)
          : `${source}.${index}`,
      prompt,
      task: typeof row.task === 'string' && row.task !== '' ? row.task : 'default',
      scores,
      costs,
      responses,
      ...(turns > 1 ? { turns } : {}),
      ...(embedding === undefined ? {} : { embedding }),
    });
  }
  if (models === undefined) throw new Error(`${source}: no requests`);
  return { models, prompts, skipped: 0 };
}
