import { ROOT_CONTEXT, diag, trace } from '@opentelemetry/api';
import type { Attributes, Span, SpanContext, Tracer } from '@opentelemetry/api';
import {
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_MODELMAXX_FEATURE,
  ATTR_MODELMAXX_TASK,
  EVALUATION_NAME_EMPTY_OUTPUT,
  EVALUATION_NAME_FINISH_LENGTH,
  EVALUATION_NAME_INVALID_JSON,
  EVALUATION_NAME_INVALID_TOOL_ARGUMENTS,
  EVALUATION_NAME_REFUSAL,
  EVENT_GEN_AI_EVALUATION_RESULT,
  evaluationEventAttributes,
} from '@modelmaxx/semconv';
import type { EvaluationSource } from '@modelmaxx/semconv';
import type { EvaluationResult, EvaluatorCall } from './types.js';

const LENGTH_REASONS = new Set(['length', 'max_tokens', 'max_output_tokens']);
const REFUSAL_TEXT =
  /^\s*(i['’]m sorry,? but i can(?:not|['’]t)|i am sorry,? but i can(?:not|['’]t)|i can(?:not|['’]t) (?:help|assist) with (?:that|this)|sorry,? (?:but )?i can(?:not|['’]t) (?:help|assist))/i;

/**
 * A passed built-in check: no explanation (the check's name says what passed, and a fixed
 * sentence repeated on every call would only take room in every span and in `llm_scores`).
 */
const pass = (name: string): EvaluationResult => Object.freeze({ name, score: 1, label: 'pass' });
const fail = (name: string, explanation: string): EvaluationResult => ({
  name,
  score: 0,
  label: 'fail',
  explanation,
});

// The pass results never change: made once, not per call.
const PASS_FINISH_LENGTH = pass(EVALUATION_NAME_FINISH_LENGTH);
const PASS_EMPTY_OUTPUT = pass(EVALUATION_NAME_EMPTY_OUTPUT);
const PASS_REFUSAL = pass(EVALUATION_NAME_REFUSAL);
const PASS_INVALID_JSON = pass(EVALUATION_NAME_INVALID_JSON);
const PASS_INVALID_TOOL_ARGUMENTS = pass(EVALUATION_NAME_INVALID_TOOL_ARGUMENTS);

/** What the built-in checks look at: the finished call's output. */
export type BuiltinInput = Pick<EvaluatorCall, 'outputText' | 'finishReasons' | 'toolCalls'>;

/** Whether some text opens like a refusal; only short texts are checked. */
function readsAsRefusal(text: string): boolean {
  return text.length < 400 && REFUSAL_TEXT.test(text);
}

function isBlank(text: string): boolean {
  // The usual output opens with a printable ASCII character: no need to trim a copy of it.
  const first = text.charCodeAt(0);
  if (first > 32 && first < 127) return false;
  return text.trim() === '';
}

/**
 * The built-in checks for one finished call. Each applies only where it means something:
 * JSON validity only when JSON output was requested, tool arguments only when tools were called.
 */
export function builtinEvaluations(
  call: BuiltinInput,
  options: { operation: string; jsonRequested: boolean; refusal: string | undefined },
): EvaluationResult[] {
  if (options.operation !== 'chat') return [];
  const results: EvaluationResult[] = [];
  let lengthReason: string | undefined;
  for (const reason of call.finishReasons) {
    if (LENGTH_REASONS.has(reason)) {
      lengthReason = reason;
      break;
    }
  }
  results.push(
    lengthReason !== undefined
      ? fail(
          EVALUATION_NAME_FINISH_LENGTH,
          `finish reason was ${lengthReason}: the output was cut off`,
        )
      : PASS_FINISH_LENGTH,
  );
  const empty = call.toolCalls.length === 0 && isBlank(call.outputText);
  results.push(
    empty
      ? fail(EVALUATION_NAME_EMPTY_OUTPUT, 'the response has no text and no tool calls')
      : PASS_EMPTY_OUTPUT,
  );
  if (options.refusal !== undefined) {
    results.push(fail(EVALUATION_NAME_REFUSAL, 'the provider marked the response as a refusal'));
  } else if (readsAsRefusal(call.outputText)) {
    results.push(fail(EVALUATION_NAME_REFUSAL, 'the response text reads as a refusal'));
  } else {
    results.push(PASS_REFUSAL);
  }
  if (options.jsonRequested) {
    try {
      JSON.parse(call.outputText);
      results.push(PASS_INVALID_JSON);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      results.push(
        fail(
          EVALUATION_NAME_INVALID_JSON,
          `JSON output was requested but the output does not parse: ${reason}`,
        ),
      );
    }
  }
  if (call.toolCalls.length > 0) {
    const bad = call.toolCalls.filter((toolCall) => !argumentsParse(toolCall.arguments));
    results.push(
      bad.length > 0
        ? fail(
            EVALUATION_NAME_INVALID_TOOL_ARGUMENTS,
            `arguments of ${bad.map((toolCall) => toolCall.name ?? '?').join(', ')} do not parse as a JSON object`,
          )
        : PASS_INVALID_TOOL_ARGUMENTS,
    );
  }
  return results;
}

function argumentsParse(args: unknown): boolean {
  if (typeof args === 'object' && args !== null && !Array.isArray(args)) return true;
  if (typeof args !== 'string') return false;
  try {
    const parsed: unknown = JSON.parse(args);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
  } catch {
    return false;
  }
}

/** The attributes of one `gen_ai.evaluation.result` event. */
export function evaluationAttributes(
  result: EvaluationResult,
  source: EvaluationSource | undefined,
  responseId: string | undefined,
): Attributes {
  return evaluationEventAttributes({ ...result, source, responseId });
}

/** The event attributes of the passed built-in checks, made once (the SDK copies what it keeps). */
const PASS_EVENT_ATTRIBUTES = new Map<EvaluationResult, Attributes>(
  [
    PASS_FINISH_LENGTH,
    PASS_EMPTY_OUTPUT,
    PASS_REFUSAL,
    PASS_INVALID_JSON,
    PASS_INVALID_TOOL_ARGUMENTS,
  ].map((result) => [result, Object.freeze(evaluationAttributes(result, undefined, undefined))]),
);

/**
 * The attributes of an in-process evaluator's event on the evaluated span itself: no
 * `gen_ai.response.id` (the span carries it) and no `modelmaxx.evaluation.source` (an evaluation
 * event on an LLM call span is the call's own evaluator: `evaluator`, the value the collector
 * reads when it is absent). Late results, feedback and judges keep both.
 */
export function spanEvaluationAttributes(result: EvaluationResult): Attributes {
  return PASS_EVENT_ATTRIBUTES.get(result) ?? evaluationAttributes(result, undefined, undefined);
}

export function isValidResult(value: unknown): value is EvaluationResult {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<EvaluationResult>;
  return (
    typeof candidate.name === 'string' &&
    candidate.name !== '' &&
    typeof candidate.score === 'number' &&
    Number.isFinite(candidate.score)
  );
}

export function normalizeResults(value: unknown): EvaluationResult[] {
  const list = Array.isArray(value) ? (value as unknown[]) : value === undefined ? [] : [value];
  const valid: EvaluationResult[] = [];
  for (const item of list) {
    if (isValidResult(item)) valid.push(item);
    else
      diag.warn('modelmaxx: evaluator returned something that is not an EvaluationResult; ignored');
  }
  return valid;
}

/**
 * Records a result that arrives after the evaluated span ended: a short span
 * `evaluate <name>` (or `feedback <name>`), child of the evaluated span and linked to it,
 * carrying the `gen_ai.evaluation.result` event.
 */
export function emitLateEvaluation(
  tracer: Tracer,
  prefix: 'evaluate' | 'feedback',
  parent: SpanContext | undefined,
  attributes: Attributes,
  name: string,
  scoredCall?: Attributes,
): void {
  const parentContext =
    parent !== undefined && trace.isSpanContextValid(parent)
      ? trace.setSpanContext(ROOT_CONTEXT, parent)
      : ROOT_CONTEXT;
  const links =
    parent !== undefined && trace.isSpanContextValid(parent) ? [{ context: parent }] : [];
  const span: Span = tracer.startSpan(`${prefix} ${name}`, { attributes, links }, parentContext);
  // The event (never the span: it is no LLM call) names the scored call's model, provider,
  // task and feature, so the collector counts the score for that call.
  span.addEvent(
    EVENT_GEN_AI_EVALUATION_RESULT,
    scoredCall === undefined ? attributes : { ...attributes, ...scoredCallAttributes(scoredCall) },
  );
  span.end();
}

/** The attributes that name a scored call (model, provider, task, feature). */
export const SCORED_CALL_KEYS = [
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_MODELMAXX_TASK,
  ATTR_MODELMAXX_FEATURE,
] as const;

/** The identity of a scored call, picked from its span's start attributes. */
function scoredCallAttributes(call: Attributes): Attributes {
  const picked: Attributes = {};
  for (const key of SCORED_CALL_KEYS) if (call[key] !== undefined) picked[key] = call[key];
  return picked;
}
