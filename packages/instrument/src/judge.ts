import { ROOT_CONTEXT, context, diag } from '@opentelemetry/api';
import type { Attributes } from '@opentelemetry/api';
import {
  ATTR_MODELMAXX_EVALUATION_NAME,
  ATTR_MODELMAXX_EVALUATION_ROLE,
  ATTR_MODELMAXX_EVALUATION_TARGET_RESPONSE_ID,
  ATTR_MODELMAXX_EVALUATION_TARGET_SPAN_ID,
  ATTR_MODELMAXX_EVALUATION_TARGET_TRACE_ID,
  EVALUATION_ROLE_VALUE_JUDGE,
} from '@modelmaxx/semconv';
import { ROUTE_CONTEXT_KEY } from './context.js';
import { parseVerdict, verdictScore } from './judge-parse.js';
import { questionOf } from './judge-prompt.js';
import { JudgeQueue } from './judge-queue.js';
import { JudgeRecorder } from './judge-record.js';
import { answerOf, judgeRequestBody } from './judge-request.js';
import type { JudgeInputs } from './judge-request.js';
import { judgeSettings } from './judge-settings.js';
import type { JudgeSettings } from './judge-settings.js';
import { JudgeSpend } from './judge-spend.js';
import type { JudgeEvaluator, JudgeOptions, JudgeStats } from './judge-types.js';
import type { EvaluatorCall } from './types.js';

/** Request bodies the judges sent: their own calls are never judged. */
const judgeBodies = new WeakSet<object>();

/** Counts of what a judge did, but for those its queue and spend cap keep. */
type Counts = Omit<JudgeStats, 'spentUsd' | 'unpricedCalls' | 'queued' | 'running'>;

/**
 * One judge: takes the calls it is offered (sampling, queue), and judges each later: spend cap,
 * inputs, the judge call, its cost, the verdict, the result.
 */
class Judge {
  readonly counts: Counts = {
    offered: 0,
    notSampled: 0,
    dropped: 0,
    overBudget: 0,
    skipped: 0,
    judgeCalls: 0,
    scored: 0,
    callErrors: 0,
    parseErrors: 0,
  };
  readonly settings: JudgeSettings;
  readonly queue: JudgeQueue<EvaluatorCall>;
  readonly spend: JudgeSpend;
  private readonly recorder: JudgeRecorder;

  constructor(settings: JudgeSettings) {
    this.settings = settings;
    this.queue = new JudgeQueue(settings.queueSize, settings.concurrency, (call) =>
      this.judgeOne(call),
    );
    this.spend = new JudgeSpend(settings);
    this.recorder = new JudgeRecorder(settings);
  }

  /** Decides at once (and cheaply) whether `call` is judged; never throws. */
  offer(call: EvaluatorCall): void {
    try {
      this.counts.offered += 1;
      if (call.operation !== 'chat') return;
      if (
        typeof call.request === 'object' &&
        call.request !== null &&
        judgeBodies.has(call.request)
      )
        return;
      if (!this.settings.sampler.sampled(call, this.settings.random)) {
        this.counts.notSampled += 1;
        return;
      }
      if (!this.queue.offer(call)) this.counts.dropped += 1;
    } catch (error) {
      diag.error('modelmaxx: judge could not take a call', error);
    }
  }

  stats(): JudgeStats {
    return {
      ...this.counts,
      spentUsd: this.spend.spentUsd,
      unpricedCalls: this.spend.unpricedCalls,
      queued: this.queue.queued,
      running: this.queue.running,
    };
  }

  private async judgeOne(call: EvaluatorCall): Promise<void> {
    if (this.spend.overBudget()) {
      this.counts.overBudget += 1;
      return;
    }
    const inputs = await this.inputsOf(call);
    if (inputs === undefined) {
      this.counts.skipped += 1;
      return;
    }
    const body = judgeRequestBody(this.settings, inputs);
    judgeBodies.add(body);
    this.counts.judgeCalls += 1;
    let response: unknown;
    try {
      response = await this.callJudge(call, body);
    } catch (error) {
      this.counts.callErrors += 1;
      const message = error instanceof Error ? error.message : String(error);
      this.recorder.error(call, `judge call failed: ${message.slice(0, 500)}`);
      return;
    }
    this.spend.charge(response);
    const verdict = parseVerdict(this.settings.provider, this.settings.mode, response);
    if (verdict.kind === 'error') {
      this.counts.parseErrors += 1;
      this.recorder.error(call, `judge reply is no verdict: ${verdict.reason}`);
      return;
    }
    const { score, label } = verdictScore(verdict, inputs.answerFirst);
    this.counts.scored += 1;
    this.recorder.score(
      call,
      { score, label, explanation: verdict.explanation },
      inputs.answerFirst,
    );
  }

  /** The question, the answer and (pairwise) the reference and order; undefined when one is missing. */
  private async inputsOf(call: EvaluatorCall): Promise<JudgeInputs | undefined> {
    const question = questionOf(call.request);
    const answer = answerOf(call);
    if (question === undefined || answer === '') return undefined;
    if (this.settings.mode !== 'pairwise') {
      return { question, answer, reference: undefined, answerFirst: true };
    }
    let reference: string | undefined;
    try {
      reference = await this.settings.reference?.(call);
    } catch (error) {
      diag.warn('modelmaxx: judge reference() threw; call not judged', error);
    }
    if (typeof reference !== 'string' || reference === '') return undefined;
    const { order, random } = this.settings;
    const answerFirst =
      order === 'answer-first' ? true : order === 'answer-second' ? false : random() < 0.5;
    return { question, answer, reference, answerFirst };
  }

  /**
   * The judge call, in a trace of its own (the app's trace carries only the result), with the
   * evaluation marks that the instrumentation copies onto the judge's call span.
   */
  private callJudge(call: EvaluatorCall, body: Record<string, unknown>): Promise<unknown> {
    const marks: Attributes = {
      [ATTR_MODELMAXX_EVALUATION_ROLE]: EVALUATION_ROLE_VALUE_JUDGE,
      [ATTR_MODELMAXX_EVALUATION_NAME]: this.settings.name,
      [ATTR_MODELMAXX_EVALUATION_TARGET_TRACE_ID]: call.spanContext.traceId,
      [ATTR_MODELMAXX_EVALUATION_TARGET_SPAN_ID]: call.spanContext.spanId,
    };
    if (call.responseId !== undefined)
      marks[ATTR_MODELMAXX_EVALUATION_TARGET_RESPONSE_ID] = call.responseId;
    const { create, timeoutMs } = this.settings;
    return context.with(ROOT_CONTEXT.setValue(ROUTE_CONTEXT_KEY, marks), () =>
      create(body, { timeout: timeoutMs, maxRetries: 0 }),
    );
  }
}

/**
 * An LLM judge as an evaluator: pass it in `evaluators` (of `observe()`, `configureInstrumentation`
 * or `register`'s config). For each successful chat call it is offered, it decides at once (and
 * cheaply) whether to judge it; the judging itself runs later, after the app has its response,
 * on a bounded queue with bounded concurrency. It never delays or fails the app's call.
 *
 * Results are `gen_ai.evaluation.result` events with `modelmaxx.evaluation.source = judge` on a
 * short `evaluate <name>` span, child of the evaluated call's span (the late-score path).
 * Pointwise: score 0..1 and label pass/fail. Pairwise (with `reference`): 1 win, 0.5 tie, 0 loss.
 * A judge call that fails, or whose reply is no verdict, is recorded as an evaluation event
 * without a score (label `judge_error`), never as a score.
 */
export function judge(options: JudgeOptions): JudgeEvaluator {
  const one = new Judge(judgeSettings(options));
  const evaluator = ((call: EvaluatorCall): undefined => {
    one.offer(call);
    return undefined;
  }) as JudgeEvaluator;
  Object.defineProperties(evaluator, {
    evaluationName: { value: one.settings.name, enumerable: true },
    mode: { value: one.settings.mode, enumerable: true },
    stats: { value: (): JudgeStats => one.stats() },
    idle: { value: (): Promise<void> => one.queue.idle() },
  });
  return evaluator;
}
