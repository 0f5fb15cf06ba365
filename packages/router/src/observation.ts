/** What the engine learns from the calls made for one routed request (bandit feedback). */
import { normalizeAnswer } from './answer.js';
import type { EngineOutcome } from './engine.js';
import type { Candidate } from './policy.js';
import type { ChatCompletion, ChatParams, RouterOptions } from './router-types.js';
import type { BudgetTracker } from './spend.js';

/**
 * The outcome of one completed call: its cost (the app's `cost()`, else the price of its
 * usage, which is added to the budget period), the app's `score()` and the normalized answer
 * (for voter agreement). A streamed call gives its cost only.
 */
export function completedOutcome(
  candidate: Candidate,
  result: unknown,
  params: ChatParams,
  budget: BudgetTracker,
  options: Pick<RouterOptions, 'cost' | 'score'>,
): EngineOutcome {
  const model = candidate.model;
  const spent = budget.record(candidate, result);
  const streamed = params.stream === true;
  const completion = result as ChatCompletion;
  const costUsd = streamed ? spent : (options.cost?.(completion, params, model) ?? spent);
  const score = streamed ? undefined : options.score?.(completion, params, model);
  const answer = streamed
    ? undefined
    : normalizeAnswer(completion.choices?.[0]?.message?.content ?? '');
  return {
    model,
    costUsd,
    ...(score === undefined ? {} : { score }),
    ...(answer === undefined ? {} : { answer }),
  };
}

/** The outcome of a failed call: counted, charged nothing. */
export const failedOutcome = (model: string): EngineOutcome => ({
  model,
  costUsd: 0,
  failed: true,
});
