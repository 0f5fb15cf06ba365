/**
 * A cascade's `check` in the gateway's config: the declarative counterpart of the routed client's
 * `check` function (a config cannot hold a function). With `cascade.voters`, an agreed answer of
 * the lead voter that fails the check escalates as a disagreement does (`runPlan`'s `check`).
 * Every condition given must hold: `json` (the answer text parses as JSON), `nonEmpty` (text or
 * a tool call), `finishReason` (the answer's, as a chat finish reason), `regex` (the text matches).
 */
import { z } from 'zod';
import { asDict } from './usage.js';
import { finishOfStop } from './translate/responses.js';
import { finishOfResponse } from './translate/responses-answers.js';
import type { Wire } from './usage.js';

const FINISH_REASONS = ['stop', 'length', 'tool_calls', 'content_filter'] as const;

function compiled(pattern: string, flags: string | undefined, context: z.RefinementCtx) {
  try {
    return new RegExp(pattern, flags);
  } catch (error) {
    context.addIssue({
      code: 'custom',
      message: `not a regular expression: ${(error as Error).message}`,
    });
    return z.NEVER;
  }
}

const CascadeCheckSchema = z
  .strictObject({
    /** The answer text (a ```json fence around it allowed) parses as JSON. */
    json: z.boolean().optional(),
    /** The answer has text (not only whitespace) or a tool call. */
    nonEmpty: z.boolean().optional(),
    /** The answer's finish reason (OpenAI chat's names, whatever the wire) is one of these. */
    finishReason: z
      .union([z.enum(FINISH_REASONS), z.array(z.enum(FINISH_REASONS)).min(1)])
      .optional(),
    /** The answer text matches: a JavaScript regular expression, or `{ pattern, flags }`. */
    regex: z
      .union([z.string(), z.strictObject({ pattern: z.string(), flags: z.string().optional() })])
      .transform((value, context) =>
        typeof value === 'string'
          ? compiled(value, undefined, context)
          : compiled(value.pattern, value.flags, context),
      )
      .optional(),
  })
  .refine((check) => Object.values(check).some((value) => value !== undefined && value !== false), {
    message: 'a check needs at least one of json, nonEmpty, finishReason, regex',
  });
export type CascadeCheck = z.output<typeof CascadeCheckSchema>;

/** Where the checks sit in a config: `policies[i].cascade.check` (the router's schema drops it). */
const PolicyChecksSchema = z.looseObject({
  policies: z
    .array(
      z.looseObject({
        cascade: z
          .looseObject({ enabled: z.unknown().optional(), check: CascadeCheckSchema.optional() })
          .optional(),
      }),
    )
    .optional(),
});

/**
 * The checks of a config's policies by policy name (`names[i]` is policy i's), or the problems
 * (`policies.0.cascade.check.regex: …`) for the config's error.
 */
export function cascadeChecksOf(
  input: unknown,
  names: readonly string[],
): { checks: Map<string, CascadeCheck> } | { issues: z.core.$ZodIssue[] } {
  const parsed = PolicyChecksSchema.safeParse(input ?? {});
  if (!parsed.success) return { issues: parsed.error.issues };
  const checks = new Map<string, CascadeCheck>();
  for (const [index, policy] of (parsed.data.policies ?? []).entries()) {
    const check = policy.cascade?.check;
    if (check === undefined) continue;
    if (policy.cascade?.enabled !== true) {
      const message = 'a cascade check needs cascade.enabled (it judges a cascade voter answer)';
      return {
        issues: [
          { code: 'custom', path: ['policies', index, 'cascade', 'check'], message, input: check },
        ],
      };
    }
    checks.set(names[index]!, check);
  }
  return { checks };
}

type Dict = Record<string, unknown>;
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** What a check (and a voter comparison) reads of a whole JSON answer in the app's format. */
export interface AnswerRead {
  readonly text: string;
  /** As a chat finish reason (`stop`, `length`, `tool_calls`, `content_filter`). */
  readonly finishReason: string | undefined;
  readonly toolCalls: number;
}

function chatAnswer(root: Dict): AnswerRead {
  const choice = asDict(list(root['choices'])[0]);
  const message = asDict(choice?.['message']);
  const content = message?.['content'];
  const reason = choice?.['finish_reason'];
  return {
    text: typeof content === 'string' ? content : '',
    finishReason: typeof reason === 'string' ? reason : undefined,
    toolCalls: list(message?.['tool_calls']).length,
  };
}

function messagesAnswer(root: Dict): AnswerRead {
  let text = '';
  let toolCalls = 0;
  for (const block of list(root['content'])) {
    const entry = asDict(block);
    if (entry?.['type'] === 'text' && typeof entry['text'] === 'string') text += entry['text'];
    if (entry?.['type'] === 'tool_use') toolCalls += 1;
  }
  return { text, finishReason: finishOfStop(root['stop_reason']) ?? undefined, toolCalls };
}

function responsesAnswer(root: Dict): AnswerRead {
  let text = '';
  let toolCalls = 0;
  for (const item of list(root['output'])) {
    const entry = asDict(item);
    if (entry?.['type'] === 'function_call') toolCalls += 1;
    for (const part of list(entry?.['content'])) {
      const dict = asDict(part);
      if (dict?.['type'] === 'output_text' && typeof dict['text'] === 'string')
        text += dict['text'];
    }
  }
  return { text, finishReason: finishOfResponse(root, toolCalls), toolCalls };
}

/** The text, finish reason and tool calls of a complete JSON answer in the app's format. */
export function readAnswer(wire: Wire, body: unknown): AnswerRead {
  const root = asDict(body);
  if (root === undefined) return { text: '', finishReason: undefined, toolCalls: 0 };
  if (wire === 'chat') return chatAnswer(root);
  if (wire === 'messages') return messagesAnswer(root);
  return responsesAnswer(root);
}

function parsesAsJson(text: string): boolean {
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n?```$/.exec(text.trim());
  try {
    JSON.parse(fenced?.[1] ?? text);
    return true;
  } catch {
    return false;
  }
}

/** Whether an answer passes the check (every condition it gives). */
export function passesCheck(check: CascadeCheck, answer: AnswerRead): boolean {
  if (check.nonEmpty === true && answer.text.trim() === '' && answer.toolCalls === 0) return false;
  if (check.json === true && !parsesAsJson(answer.text)) return false;
  if (check.finishReason !== undefined) {
    const wanted = Array.isArray(check.finishReason) ? check.finishReason : [check.finishReason];
    if (answer.finishReason === undefined || !(wanted as string[]).includes(answer.finishReason))
      return false;
  }
  if (check.regex !== undefined) {
    check.regex.lastIndex = 0;
    if (!check.regex.test(answer.text)) return false;
  }
  return true;
}
