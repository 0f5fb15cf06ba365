import type { Attributes, Tracer } from '@opentelemetry/api';
import {
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_MODELMAXX_EVALUATION_POSITION,
  ATTR_MODELMAXX_FEATURE,
  ATTR_MODELMAXX_TASK,
  evaluationEventAttributes,
} from '@modelmaxx/semconv';
import { INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION, resolveConfig } from './config.js';
import { emitLateEvaluation, evaluationAttributes } from './evaluators.js';
import { rememberedResponse } from './feedback.js';
import type { JudgeSettings } from './judge-settings.js';
import type { EvaluatorCall } from './types.js';

/**
 * Records a judge's results: `gen_ai.evaluation.result` events with
 * `modelmaxx.evaluation.source = judge` on a short `evaluate <name>` span, child of the evaluated
 * call's span, made with that call's tracer where it is known.
 */
export class JudgeRecorder {
  private readonly settings: JudgeSettings;

  constructor(settings: JudgeSettings) {
    this.settings = settings;
  }

  /** A score (pairwise: with the position the call's answer was shown in). */
  score(
    call: EvaluatorCall,
    result: { score: number; label: string; explanation: string | undefined },
    answerFirst: boolean,
  ): void {
    const { name, mode } = this.settings;
    const attributes = evaluationAttributes(
      {
        name,
        score: result.score,
        label: result.label,
        ...(result.explanation === undefined ? {} : { explanation: result.explanation }),
      },
      'judge',
      call.responseId,
    );
    if (mode === 'pairwise')
      attributes[ATTR_MODELMAXX_EVALUATION_POSITION] = answerFirst ? 'first' : 'second';
    this.emit(call, attributes);
  }

  /** A judge error: an evaluation event without a score. */
  error(call: EvaluatorCall, explanation: string): void {
    const attributes = evaluationEventAttributes({
      name: this.settings.name,
      label: 'judge_error',
      explanation,
      source: 'judge',
      responseId: call.responseId,
    });
    this.emit(call, attributes);
  }

  private emit(call: EvaluatorCall, attributes: Attributes): void {
    emitLateEvaluation(
      this.tracerFor(call),
      'evaluate',
      call.spanContext,
      attributes,
      this.settings.name,
      scoredCall(call),
    );
  }

  /** The evaluated call's own tracer when it is remembered, else the configured or global one. */
  private tracerFor(call: EvaluatorCall): Tracer {
    if (call.responseId !== undefined) {
      const remembered = rememberedResponse(call.responseId);
      if (remembered !== undefined && remembered.spanContext.spanId === call.spanContext.spanId) {
        return remembered.tracer;
      }
    }
    return (
      this.settings.tracerProvider?.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION) ??
      resolveConfig(undefined).tracer
    );
  }
}

/** What the result span says about the evaluated call. */
function scoredCall(call: EvaluatorCall): Attributes {
  const attributes: Attributes = { [ATTR_GEN_AI_PROVIDER_NAME]: call.provider };
  const model = call.requestModel ?? call.responseModel;
  if (model !== undefined) attributes[ATTR_GEN_AI_REQUEST_MODEL] = model;
  if (call.task !== undefined) attributes[ATTR_MODELMAXX_TASK] = call.task;
  if (call.feature !== undefined) attributes[ATTR_MODELMAXX_FEATURE] = call.feature;
  return attributes;
}
