/** Totals of recorded outcomes: a model's score and cost over prompts, and the best and cheapest. */
import type { RecordedPrompt } from './routerbench.js';

/** Total score and cost of one model over prompts. */
export function totals(prompts: readonly RecordedPrompt[], model: number) {
  let score = 0;
  let cost = 0;
  for (const prompt of prompts) {
    score += prompt.scores[model]!;
    cost += prompt.costs[model]!;
  }
  return { score, cost };
}

/** The best (highest total score) and cheapest (lowest total cost) model of `all`; the first wins a tie. */
export function bestAndCheapest(all: readonly { score: number; cost: number }[]): {
  best: number;
  cheapest: number;
} {
  let best = 0;
  let cheapest = 0;
  all.forEach((entry, model) => {
    if (entry.score > all[best]!.score) best = model;
    if (entry.cost < all[cheapest]!.cost) cheapest = model;
  });
  return { best, cheapest };
}
