/**
 * Executes an engine decision's plan of several calls (cascade voters, a third voter, probes)
 * over any way of calling a model: the routed client's SDK calls, the gateway's upstream calls.
 * The same steps, checks and escalation rules for both, so the same policy and the same
 * observations give the same decisions.
 */
import { cascadeReason } from './candidate-choice.js';
import type { Decision, EngineOutcome, RoutingEngine, Step } from './engine.js';

/** How a plan's calls are made: in parallel, each outcome pushed to the plan's `outcomes`. */
export interface PlanCaller<A> {
  /** Calls the models in parallel; the answers of those that answered (failed ones absent). */
  call(models: readonly string[], role: string): Promise<ReadonlyMap<string, A>>;
  /** The app's check of the lead voter's answer: false escalates like a disagreement. */
  readonly check?: ((answer: A) => boolean) | undefined;
}

/** How a plan ended; `exclude`: the models it called (answered or failed), not to be tried again. */
export type PlanEnd<A> =
  | {
      readonly kind: 'answered';
      readonly model: string;
      readonly reason: string;
      readonly answer: A;
    }
  | {
      /** Call `model` next (with the attempt loop's fallbacks); `exclude` may not be tried. */
      readonly kind: 'escalate';
      readonly model: string;
      readonly reason: string;
      readonly exclude: readonly string[];
    }
  /** The answering call failed: fall back like a single call. */
  | { readonly kind: 'failed'; readonly exclude: readonly string[] };

/** A plan of several calls: the decision has more than one first call, or an escalation. */
export const isPlan = (decision: Decision): boolean =>
  decision.first.length > 1 || decision.escalateTo !== undefined;

/**
 * Runs the plan up to its answer or its escalation (which the caller makes through its attempt
 * loop). No per-call fallback; a failed voter counts as a disagreement. `outcomes` is the
 * request's list the caller's `call` pushes to (the engine's `next` reads it).
 */
export async function runPlan<A>(
  engine: RoutingEngine,
  decision: Decision,
  outcomes: readonly EngineOutcome[],
  caller: PlanCaller<A>,
): Promise<PlanEnd<A>> {
  const answers = new Map<string, A>();
  /** Every model the plan called, answered or failed: none is tried again for this request. */
  const called = new Set<string>();
  const role =
    decision.escalateTo === undefined
      ? decision.reason
      : `cascade voter (${decision.first.join(' and ')})`;
  let accepted = true;
  let voterFailed = false;
  let step: Step = engine.next(decision, outcomes);
  while (!step.done) {
    if (
      decision.escalateTo !== undefined &&
      step.call.length === 1 &&
      step.call[0] === decision.escalateTo
    ) {
      break; // the escalation goes through the attempt loop
    }
    for (const model of step.call) called.add(model);
    const answered = await caller.call(step.call, role);
    for (const [model, answer] of answered) answers.set(model, answer);
    if (answered.size < step.call.length) voterFailed = true;
    const lead = answers.get(decision.first[0]!);
    if (decision.escalateTo !== undefined && lead !== undefined && caller.check) {
      accepted = caller.check(lead);
    }
    step = engine.next(decision, outcomes, accepted);
  }
  if (step.done) {
    const answer = answers.get(step.answeredBy);
    if (answer === undefined) return { kind: 'failed', exclude: [...called] };
    const reason = cascadeReason(decision, step.answeredBy);
    return { kind: 'answered', model: step.answeredBy, reason, answer };
  }
  const reason = !accepted
    ? 'cascade escalated: the check failed'
    : voterFailed
      ? 'cascade escalated: a voter failed'
      : 'cascade escalated: the voters disagree';
  const exclude = [...called, ...decision.first];
  if (decision.third !== undefined) exclude.push(decision.third);
  return { kind: 'escalate', model: decision.escalateTo!, reason, exclude };
}
