/** Which candidate a routed request tries next, after the engine's first decision. */
import { chooseModel } from './decision.js';
import type { Choice, WeightTable } from './decision.js';
import type { Decision } from './engine.js';
import type { Policy } from './policy.js';
import type { RandomSource } from './random.js';

/** The engine decision's first call as a choice (undefined when every candidate is excluded). */
export function choiceOf(decision: Decision, classKey: string): Choice | undefined {
  if (decision.first.length === 0) return undefined;
  return { model: decision.first[0]!, weight: decision.weight, reason: decision.reason, classKey };
}

/** Why a cascade plan stopped with `answeredBy`'s answer. */
export function cascadeReason(decision: Decision, answeredBy: string): string {
  if (decision.escalateTo === undefined) return decision.reason;
  return answeredBy === decision.third
    ? `cascade: ${decision.third} matches a voter`
    : `cascade: ${decision.first.join(' and ')} agree`;
}

/**
 * The next model to try. First attempt: by weight. Fallbacks: the policy's chain, then the
 * remaining candidates by weight, then by quality; never a candidate the policy makes
 * ineligible (e.g. over the latency SLO), never one cooling down or already tried.
 */
export function nextChoice(
  policy: Policy,
  random: RandomSource,
  table: WeightTable,
  classKey: string,
  exclude: ReadonlySet<string>,
  attempt: number,
): Choice | undefined {
  const choice = chooseModel(table, classKey, random, exclude);
  if (attempt === 1 && choice !== undefined) return choice;
  const entry = table.classes.get(classKey) ?? table.fallbackClass;
  const allowed = entry.weights.filter((weight) => weight.eligible && !exclude.has(weight.model));
  const chained = policy.fallback.chain
    ?.map((model) => allowed.find((weight) => weight.model === model))
    .find((weight) => weight !== undefined);
  if (chained !== undefined) {
    return {
      model: chained.model,
      weight: chained.weight,
      reason: `fallback chain: ${chained.reason}`,
      classKey: entry.classKey,
    };
  }
  if (choice !== undefined) return { ...choice, reason: `fallback: ${choice.reason}` };
  const best = [...allowed].sort((a, b) => b.quality - a.quality)[0];
  if (best === undefined) return undefined;
  return {
    model: best.model,
    weight: best.weight,
    reason: `fallback by quality: ${best.reason}`,
    classKey: entry.classKey,
  };
}
