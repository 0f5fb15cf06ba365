/**
 * Loader for MT-Bench judgements (RouteLLM's `mtb_judgements.jsonl`): per question, turn and
 * model, a GPT-4 judge's score 1-10. Each (question, turn) becomes one recorded prompt: the
 * user turns so far as its text (conversation depth = turn), score / 10 per model, the answer
 * of the judged turn as the response, costs from 4-characters-a-token estimates and list prices.
 */
import { ROUTELLM_PRICES } from './routellm.js';
import type { RecordedDataset, RecordedPrompt } from './routerbench.js';

interface Judgement {
  readonly question_id: number;
  readonly model: string;
  readonly turn: number;
  readonly score: number;
  readonly user_prompt: string;
}

const tokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

function between(text: string, start: string, end: string): string | undefined {
  const from = text.indexOf(start);
  if (from < 0) return undefined;
  const to = text.indexOf(end, from + start.length);
  return text.slice(from + start.length, to < 0 ? undefined : to).trim();
}

/** The user turns, the assistant answers and the judged answer of one judge prompt. */
export function parseJudgePrompt(
  prompt: string,
  turn: number,
): { users: string[]; answers: string[] } {
  if (turn === 1) {
    const question =
      between(prompt, '[Question]\n', '\n\n[The Start of') ??
      between(prompt, '[Question]\n', '[The Start of');
    const answer = between(
      prompt,
      "[The Start of Assistant's Answer]\n",
      "[The End of Assistant's Answer]",
    );
    if (question === undefined || answer === undefined) {
      throw new Error('a turn-1 judgement without [Question] or the assistant answer');
    }
    return { users: [question], answers: [answer] };
  }
  const conversation = between(
    prompt,
    "<|The Start of Assistant A's Conversation with User|>",
    "<|The End of Assistant A's Conversation with User|>",
  );
  if (conversation === undefined) throw new Error('a turn-2 judgement without the conversation');
  const users: string[] = [];
  const answers: string[] = [];
  for (const part of conversation.split(/\n### (?=User:|Assistant A:)/)) {
    const text = part.replace(/^\s*### /, '');
    if (text.startsWith('User:')) users.push(text.slice(5).trim());
    else if (text.startsWith('Assistant A:')) answers.push(text.slice(12).trim());
  }
  return { users, answers };
}

/** Parses MT-Bench judgements (JSONL) into a two-model recorded data set, task `mtbench`. */
export function parseMtBenchJsonl(text: string, task = 'mtbench'): RecordedDataset {
  const byPrompt = new Map<
    string,
    Map<string, { score: number; users: string[]; answers: string[] }>
  >();
  const models: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    let row: Judgement;
    try {
      row = JSON.parse(line) as Judgement;
    } catch (error) {
      throw new Error(`MT-Bench line ${index + 1}: not JSON (${String(error)})`, { cause: error });
    }
    if (
      typeof row.question_id !== 'number' ||
      typeof row.model !== 'string' ||
      (row.turn !== 1 && row.turn !== 2) ||
      typeof row.score !== 'number' ||
      typeof row.user_prompt !== 'string'
    ) {
      throw new Error(
        `MT-Bench line ${index + 1}: needs question_id, model, turn (1 or 2), score and user_prompt`,
      );
    }
    if (ROUTELLM_PRICES[row.model] === undefined) {
      throw new Error(`MT-Bench line ${index + 1}: no list price for model "${row.model}"`);
    }
    if (!models.includes(row.model)) models.push(row.model);
    const key = `${row.question_id}.${row.turn}`;
    let entry = byPrompt.get(key);
    if (entry === undefined) byPrompt.set(key, (entry = new Map()));
    entry.set(row.model, { score: row.score, ...parseJudgePrompt(row.user_prompt, row.turn) });
  });
  // RouteLLM's column order: the weak model first.
  models.sort((a, b) => ROUTELLM_PRICES[a]!.output - ROUTELLM_PRICES[b]!.output);
  const prompts: RecordedPrompt[] = [];
  let skipped = 0;
  for (const [key, entry] of byPrompt) {
    const scores = models.map((model) => entry.get(model)?.score);
    if (scores.some((score) => score === undefined || score < 0)) {
      skipped += 1; // a model without a judgement (or the judge failed: score -1)
      continue;
    }
    const turn = Number(key.split('.')[1]);
    const first = entry.get(models[0]!)!;
    const users = first.users.slice(0, turn);
    prompts.push({
      sampleId: `${task}.${key}`,
      prompt: users.join('\n\n'),
      task,
      turns: turn,
      scores: Float64Array.from(scores, (score) => score! / 10),
      costs: Float64Array.from(models, (model) => {
        const judged = entry.get(model)!;
        const price = ROUTELLM_PRICES[model]!;
        const answer = judged.answers[turn - 1] ?? '';
        const context = [...users, ...judged.answers.slice(0, turn - 1)].join('\n\n');
        return (tokens(context) * price.input + tokens(answer) * price.output) / 1e6;
      }),
      responses: models.map((model) => entry.get(model)!.answers[turn - 1] ?? ''),
    });
  }
  prompts.sort((a, b) => a.sampleId.localeCompare(b.sampleId, 'en', { numeric: true }));
  return { models, prompts, skipped };
}
