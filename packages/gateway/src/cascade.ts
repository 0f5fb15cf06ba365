/**
 * A cascade plan behind the gateway (non-streamed requests): the engine decision's calls made
 * by the router's own plan executor (`runPlan`: the same order of calls, checks and escalation
 * rules as the routed client), each call with its own span and cost, its answer read in full
 * and held; the answer the plan settles on is then sent to the app. An escalation, or an
 * answering call that failed, goes on in the exchange's attempt loop (with its fallbacks). The
 * policy's `cascade.check` (./cascade-check.ts) judges the lead voter's answer as the routed
 * client's `check` does.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { normalizeAnswer, runPlan } from '@modelmaxx/router';
import type { Decision, PlanEnd } from '@modelmaxx/router';
import { passesCheck, readAnswer } from './cascade-check.js';
import type { AnswerRead } from './cascade-check.js';
import type { GatewayRequest } from './request.js';
import type { Routing } from './routing.js';
import type { Resolution } from './targets.js';
import type { Wire } from './usage.js';

/** An answer read in full (a stand-in for the app's response), sent only if the plan settles on it. */
export class HeldAnswer {
  status = 502;
  headers: OutgoingHttpHeaders = {};
  headersSent = false;
  destroyed = false;
  private readonly chunks: Buffer[] = [];

  writeHead(status: number, headers: OutgoingHttpHeaders): this {
    this.status = status;
    this.headers = headers;
    this.headersSent = true;
    return this;
  }

  write(chunk: Buffer | string): boolean {
    this.chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    return true;
  }

  end(chunk?: Buffer | string): this {
    if (chunk !== undefined) this.write(chunk);
    return this;
  }

  destroy(): this {
    this.destroyed = true;
    return this;
  }

  body(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** The held answer as the app's response. */
  sendTo(response: ServerResponse): void {
    const body = this.body();
    response.writeHead(this.status, { ...this.headers, 'content-length': body.length });
    response.end(body);
  }
}

/** A held answer as a check reads it (undefined when it is not JSON). */
function readHeld(wire: Wire, held: HeldAnswer): AnswerRead | undefined {
  try {
    return readAnswer(wire, JSON.parse(held.body().toString('utf8')) as unknown);
  } catch {
    return undefined;
  }
}

/** The normalized answer of a held answer (for voter agreement), undefined when none. */
export function heldAnswerOf(wire: Wire, held: HeldAnswer): string | undefined {
  const answer = readHeld(wire, held);
  return answer === undefined ? undefined : normalizeAnswer(answer.text);
}

/**
 * How one plan call went: its held answer and cost, or its failure and what it was accounted at
 * (an estimate when the upstream had the request but its answer never came whole; else 0).
 */
export type PlanCallResult =
  | { readonly held: HeldAnswer; readonly costUsd: number }
  | {
      readonly retryable: boolean;
      readonly cooldownMs: number | undefined;
      readonly costUsd: number;
    };

/** One plan call through the exchange (span, upstream, cost); `number` counts the plan's calls. */
export type PlanCall = (model: string, role: string, number: number) => Promise<PlanCallResult>;

/**
 * Runs the request's plan with the router's executor, its calls through `call`; each step's
 * outcomes are recorded in the order of its models once the step is over, as the routed client
 * records them (answers normalized for voter agreement, failures cooling their model down).
 */
export async function runGatewayPlan(
  routing: Routing,
  decision: Decision,
  wire: Wire,
  now: () => number,
  call: PlanCall,
): Promise<PlanEnd<HeldAnswer>> {
  const { engine, check } = routing.policy!;
  return runPlan<HeldAnswer>(engine, decision, routing.outcomes, {
    check:
      check === undefined
        ? undefined
        : (held) => {
            const answer = readHeld(wire, held);
            return answer !== undefined && passesCheck(check, answer);
          },
    call: async (models, role) => {
      const numbered = models.map((model) => ({ model, number: (routing.planCalls += 1) }));
      const results = await Promise.all(
        numbered.map(({ model, number }) => call(model, role, number)),
      );
      const answers = new Map<string, HeldAnswer>();
      const time = now();
      for (const [index, result] of results.entries()) {
        const model = models[index]!;
        if ('held' in result) {
          const answer = heldAnswerOf(wire, result.held);
          routing.outcomes.push({ model, costUsd: result.costUsd, answer });
          answers.set(model, result.held);
        } else {
          const { retryable, costUsd } = result;
          routing.coolDown(model, result.cooldownMs, time, { retryable, costUsd });
        }
      }
      return answers;
    },
  });
}

/**
 * A non-streamed request to a cascade policy may call several candidates (voters, a third, the
 * escalation, each at most once but for a fallback): each candidate's estimate becomes the sum
 * of all of them, so admission reserves enough for the whole plan.
 */
export function planEstimates(
  resolution: Resolution,
  request: GatewayRequest,
  estimates: Record<string, number>,
): void {
  const policy = resolution.policy?.policy;
  if (policy?.cascade.enabled !== true || request.stream || request.wire === 'embeddings') return;
  let total = 0;
  for (const model of resolution.candidates) total += estimates[model] ?? 0;
  for (const model of resolution.candidates) estimates[model] = total;
}
