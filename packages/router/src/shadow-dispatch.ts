/**
 * Shadow dispatch for the routed client: after the app has its answer, a sampled share of
 * routed calls is asked again of the reference model and judged pairwise, in the background
 * (bounded queue, hourly/daily spend caps). The verdict is recorded on the routed call's trace
 * (the late-score path), learned by the engine and the sampling monitor, and reported.
 */
import { ROOT_CONTEXT, context, diag, trace } from '@opentelemetry/api';
import type { Attributes, SpanContext, Tracer } from '@opentelemetry/api';
import {
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_MODELMAXX_EVALUATION_NAME,
  ATTR_MODELMAXX_EVALUATION_ROLE,
  ATTR_MODELMAXX_EVALUATION_TARGET_RESPONSE_ID,
  ATTR_MODELMAXX_EVALUATION_TARGET_SPAN_ID,
  ATTR_MODELMAXX_EVALUATION_TARGET_TRACE_ID,
  ATTR_MODELMAXX_ROUTE_CLASS,
  ATTR_MODELMAXX_ROUTE_MODEL,
  ATTR_MODELMAXX_ROUTE_POLICY,
  ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL,
  ATTR_MODELMAXX_TASK,
  EVALUATION_ROLE_VALUE_JUDGE,
  EVALUATION_ROLE_VALUE_SHADOW,
  EVENT_GEN_AI_EVALUATION_RESULT,
  evaluationEventAttributes,
} from '@modelmaxx/semconv';
import { LLM_CONTEXT_KEY, ROUTE_ATTRIBUTES_KEY } from './candidate-call.js';
import type { CandidateClients } from './candidate-call.js';
import type { Decision, RoutingEngine } from './engine.js';
import { configWarning } from './route-errors.js';
import type { Candidate, Policy } from './policy.js';
import type { RandomSource } from './random.js';
import { ShadowMonitor, ShadowQueue, SpendWindow } from './shadow.js';
import { VerdictCosts } from './shadow-allocation.js';
import { ReferenceCache } from './shadow-references.js';
import type { PairwiseJudge, ShadowVerdict } from './shadow.js';
import { priceOf } from './spend.js';
import type {
  ChatCompletion,
  ChatParams,
  RouterOptions,
  ShadowResult,
  ShadowStats,
} from './router-types.js';

/** The evaluation name of shadow verdicts (`llm_scores.Name`). */
export const SHADOW_EVALUATION_NAME = 'modelmaxx.shadow';

/** A routed call offered for shadowing, as the route loop knows it. */
export interface ShadowOffer {
  readonly model: string;
  readonly classKey: string;
  readonly decision: Decision;
  readonly params: ChatParams;
  readonly completion: ChatCompletion;
  readonly routeSpan: SpanContext;
  readonly llmContext: unknown;
  readonly task: string | undefined;
  /** Sent to this model by `explore()`: always shadowed (the call is there for its verdict). */
  readonly explored?: boolean;
}

/**
 * One comparison: `model`'s answer against the reference's. A reference shadow (a cheaper model
 * answered the app, `answer`): the reference is called. A counterfactual shadow (the reference
 * answered the app, `referenceAnswer`): `model` is called in its place.
 */
interface ShadowJob extends Omit<ShadowOffer, 'completion'> {
  readonly question: string;
  readonly answer?: string;
  readonly referenceAnswer?: ChatCompletion;
  readonly responseId?: string;
}

type ShadowOutcome = Omit<
  ShadowResult,
  'policy' | 'classKey' | 'model' | 'referenceModel' | 'traceId'
>;

/** The text of a completion's first choice ('' without one). */
function contentOf(completion: ChatCompletion): string {
  return completion.choices?.[0]?.message?.content ?? '';
}

/** What a failed shadow or judge call says it cost (its error's `costUsd`), else 0. */
const thrownCost = (thrown: unknown): number =>
  Math.max(0, Number((thrown as { costUsd?: unknown } | null)?.costUsd) || 0);

/** The text of the request's last user turn. */
function lastUserText(params: ChatParams): string {
  for (let index = params.messages.length - 1; index >= 0; index -= 1) {
    const message = params.messages[index]!;
    if (message.role !== 'user') continue;
    const content = message.content;
    if (typeof content === 'string') return content;
    return content
      .map((part) => (part.type === 'text' ? part.text : ''))
      .filter((text) => text !== '')
      .join('\n');
  }
  return '';
}

export interface ShadowDispatchOptions {
  readonly policy: Policy;
  readonly engine: RoutingEngine;
  readonly clients: CandidateClients;
  readonly candidates: ReadonlyMap<string, Candidate>;
  readonly referenceModel: string;
  readonly tracer: Tracer;
  readonly random: RandomSource;
  readonly now: () => number;
  readonly judge: PairwiseJudge | undefined;
  readonly onShadow: RouterOptions['onShadow'];
  /** A stop-rule state shared with other routers of the policy (default: a new one). */
  readonly monitor?: ShadowMonitor;
}

export class ShadowDispatcher {
  /** Shadows are on: the policy enables them and a judge is given. */
  readonly enabled: boolean;
  private readonly options: ShadowDispatchOptions;
  private readonly settings: Policy['shadow'];
  private readonly monitor: ShadowMonitor;
  private readonly queue: ShadowQueue;
  private readonly window = new SpendWindow();
  private readonly references: ReferenceCache;
  private readonly costs = new VerdictCosts();
  private readonly counts = {
    offered: 0,
    notSampled: 0,
    dropped: 0,
    overBudget: 0,
    shadowCalls: 0,
    candidateCalls: 0,
    referencesReused: 0,
    shadowErrors: 0,
    judged: 0,
    judgeErrors: 0,
    shadowUsd: 0,
    judgeUsd: 0,
  };

  constructor(options: ShadowDispatchOptions) {
    const { policy } = options;
    this.options = options;
    this.settings = policy.shadow;
    this.enabled = this.settings.enabled && options.judge !== undefined;
    if (this.settings.enabled && options.judge === undefined) {
      configWarning(
        `modelmaxx router: policy "${policy.name}" enables shadow comparisons but createRouter has no judge: no shadows`,
      );
    }
    this.monitor = options.monitor ?? new ShadowMonitor(policy);
    this.queue = new ShadowQueue(this.settings.queueSize, this.settings.concurrency);
    this.references = new ReferenceCache(this.settings.referenceCache);
  }

  stats(): ShadowStats {
    return {
      referenceModel: this.options.referenceModel,
      ...this.counts,
      queued: this.queue.queued,
      running: this.queue.inFlight,
      estimates: this.monitor.estimates(),
    };
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * A cheaper candidate to send this call to instead of the reference the engine chose, or
   * undefined: the first candidate (policy order), not excluded, with an exploring share for the
   * class (`ShadowMonitor.exploreShare`), with that probability. Without
   * it, a class the engine moves to the reference after a few unlucky verdicts gets no more
   * cheap calls, hence no more shadows, and the wrong estimate is never corrected.
   */
  private explore(
    classKey: string,
    chosen: string,
    exclude: ReadonlySet<string>,
  ): string | undefined {
    if (!this.enabled || chosen !== this.options.referenceModel) return undefined;
    if (this.settings.explore <= 0 || this.window.over(this.options.now(), this.settings)) {
      return undefined;
    }
    const margin = this.options.policy.goal.qualityMargin;
    for (const model of this.options.candidates.keys()) {
      if (model === chosen || exclude.has(model)) continue;
      const share = this.monitor.exploreShare(classKey, model, margin, this.settings.explore);
      if (share <= 0) continue;
      return this.options.random() < share ? model : undefined;
    }
    return undefined;
  }

  /**
   * The engine's choice for one call, or the exploring one that replaces it (`explore`), with
   * the reason the route records; the routed client and the gateway both ask here.
   */
  exploreChoice<C extends { readonly model: string; readonly reason: string }>(
    classKey: string,
    choice: C,
    exclude: ReadonlySet<string>,
  ): C {
    const model = this.explore(classKey, choice.model, exclude);
    if (model === undefined) return choice;
    const reason = `shadow exploration: ${model}'s estimate for the class is still open (engine: ${choice.reason})`;
    return { ...choice, model, reason };
  }

  /**
   * After the app has its answer: shadow this call? (never throws, never waits) A call a cheaper
   * model answered is compared with the reference's answer; a call the reference answered
   * (`counterfactual`) with each cheaper candidate's, at that candidate's rate for the class.
   * Either way a class is sampled at the same rate whatever the engine routed it to.
   */
  offer(offer: ShadowOffer): void {
    try {
      if (!this.enabled) return;
      const { referenceModel } = this.options;
      if (offer.model !== referenceModel) {
        this.monitor.observe(offer.classKey, offer.model);
        this.sample(offer, offer.model, offer.explored === true);
        return;
      }
      this.monitor.observe(offer.classKey, undefined);
      if (!this.settings.counterfactual) return;
      const { completion, params } = offer;
      // The reference's answer, free: a later shadow of the same request can reuse it.
      this.references.set(this.references.keyOf(referenceModel, params), completion);
      for (const model of this.options.candidates.keys()) {
        if (model !== referenceModel) this.sample(offer, model, false);
      }
    } catch (error) {
      diag.warn(`modelmaxx router: could not queue a shadow comparison: ${String(error)}`);
    }
  }

  /** Queues the comparison of `model` with the reference on this call, at the class's rate. */
  private sample(offer: ShadowOffer, model: string, always: boolean): void {
    const { counts } = this;
    counts.offered += 1;
    let rate = always ? 1 : this.monitor.rate(offer.classKey, model);
    if (!always && model === offer.model && this.costAware(offer)) {
      rate *= this.costs.referenceFactor();
    }
    if (!(this.options.random() < rate)) {
      counts.notSampled += 1;
      return;
    }
    if (this.window.over(this.options.now(), this.settings)) {
      counts.overBudget += 1;
      return;
    }
    const question = lastUserText(offer.params);
    const { completion, ...rest } = offer;
    const answer = contentOf(completion);
    if (question === '' || answer === '') {
      counts.notSampled += 1;
      return;
    }
    const job: ShadowJob = {
      ...rest,
      model,
      question,
      ...(model === offer.model ? { answer } : { referenceAnswer: completion }),
      ...(typeof completion.id === 'string' ? { responseId: completion.id } : {}),
    };
    if (!this.queue.offer(() => this.run(job))) counts.dropped += 1;
  }

  /**
   * Whether this call's verdict would need a reference call that a counterfactual shadow could
   * spare (`allocation: 'total'`, `counterfactual`, no kept reference answer): its rate is then
   * scaled by the verdict costs (`VerdictCosts`).
   */
  private costAware(offer: ShadowOffer): boolean {
    const { allocation, counterfactual } = this.settings;
    if (allocation !== 'total' || !counterfactual) return false;
    return !this.references.has(this.references.keyOf(this.options.referenceModel, offer.params));
  }

  /** Runs one shadow comparison: the reference answer, the judge, the record, the learning. */
  private async run(job: ShadowJob): Promise<void> {
    if (this.window.over(this.options.now(), this.settings)) {
      this.counts.overBudget += 1;
      return;
    }
    const answers = await this.answers(job);
    if (answers === undefined) return;
    const { answer, reference, shadowCostUsd } = answers;
    const { counts } = this;
    const responseId = job.responseId === undefined ? {} : { responseId: job.responseId };
    counts.shadowUsd += shadowCostUsd;
    this.window.add(this.options.now(), shadowCostUsd);
    const { verdict, error } = await this.judge(job, answer, reference);
    const judgeCostUsd = verdict?.costUsd ?? 0;
    counts.judgeUsd += judgeCostUsd;
    if (job.answer === undefined) this.costs.add('candidate', shadowCostUsd + judgeCostUsd);
    else if (shadowCostUsd > 0) this.costs.add('reference', shadowCostUsd + judgeCostUsd);
    this.window.add(this.options.now(), judgeCostUsd);
    this.recordVerdict(job, verdict, error);
    if (verdict === undefined) counts.judgeErrors += 1;
    else this.learn(job, verdict);
    this.report(job, {
      label: verdict?.label ?? 'judge_error',
      ...(verdict === undefined ? { error: error ?? 'no verdict' } : { score: verdict.score }),
      shadowCostUsd,
      judgeCostUsd,
      ...responseId,
    });
  }

  /**
   * The two answers to compare and what the shadow call cost: for a reference shadow, a kept
   * reference answer to the same request (`referenceCache`, free) or a reference call; for a
   * counterfactual one, a call to the job's model. Undefined when the call failed.
   */
  private async answers(
    job: ShadowJob,
  ): Promise<{ answer: string; reference: string; shadowCostUsd: number } | undefined> {
    const { counts } = this;
    const { referenceModel } = this.options;
    const key = this.references.keyOf(referenceModel, job.params);
    const kept = job.referenceAnswer ?? this.references.get(key);
    if (job.answer !== undefined && kept !== undefined) {
      counts.referencesReused += 1;
      return { answer: job.answer, reference: contentOf(kept), shadowCostUsd: 0 };
    }
    const called = job.answer === undefined ? job.model : referenceModel;
    if (job.answer === undefined) counts.candidateCalls += 1;
    else counts.shadowCalls += 1;
    try {
      const completion = await this.callModel(job, called);
      const shadowCostUsd = priceOf(this.options.candidates.get(called)!, completion) ?? 0;
      if (job.answer === undefined) {
        return { answer: contentOf(completion), reference: contentOf(kept!), shadowCostUsd };
      }
      this.references.set(key, completion);
      return { answer: job.answer, reference: contentOf(completion), shadowCostUsd };
    } catch (error) {
      counts.shadowErrors += 1;
      const shadowCostUsd = thrownCost(error); // A call cut after it was sent (an estimate).
      counts.shadowUsd += shadowCostUsd;
      this.window.add(this.options.now(), shadowCostUsd);
      this.report(job, {
        label: 'shadow_error',
        error: `${called === referenceModel ? 'reference' : 'candidate'} call failed: ${String(error)}`,
        shadowCostUsd,
        judgeCostUsd: 0,
        ...(job.responseId === undefined ? {} : { responseId: job.responseId }),
      });
      return undefined;
    }
  }

  /** The shadow call: `model`'s answer to the same request (not streamed, no retries). */
  private async callModel(job: ShadowJob, model: string): Promise<ChatCompletion> {
    const candidate = this.options.candidates.get(model)!;
    const { stream: _stream, stream_options: _options, ...plain } = job.params;
    return (await context.with(this.evaluationContext(job, EVALUATION_ROLE_VALUE_SHADOW), () =>
      this.options.clients.call(candidate, plain as ChatParams, {
        timeout: this.settings.timeoutMs,
        maxRetries: 0,
      }),
    )) as ChatCompletion;
  }

  /** The judge's verdict on the routed answer against the reference's; an error instead. */
  private async judge(
    job: ShadowJob,
    answer: string,
    reference: string,
  ): Promise<{ verdict?: ShadowVerdict; error?: string }> {
    const { policy, referenceModel } = this.options;
    try {
      const verdict = await context.with(
        this.evaluationContext(job, EVALUATION_ROLE_VALUE_JUDGE),
        () =>
          this.options.judge!({
            question: job.question,
            answer,
            reference,
            model: job.model,
            referenceModel,
            classKey: job.classKey,
            policy: policy.name,
          }),
      );
      if (
        verdict !== undefined &&
        (!Number.isFinite(verdict.score) || verdict.score < 0 || verdict.score > 1)
      ) {
        return { error: `judge score ${String(verdict.score)} is not in [0, 1]` };
      }
      return verdict === undefined ? {} : { verdict };
    } catch (thrown) {
      this.counts.judgeUsd += thrownCost(thrown);
      this.window.add(this.options.now(), thrownCost(thrown));
      return { error: thrown instanceof Error ? thrown.message : String(thrown) };
    }
  }

  /** The engine and the sampling monitor learn the verdict. */
  private learn(job: ShadowJob, verdict: ShadowVerdict): void {
    this.counts.judged += 1;
    this.options.engine.score(
      job.decision,
      [
        { model: job.model, score: verdict.score },
        { model: this.options.referenceModel, score: 1 - verdict.score },
      ],
      this.options.now(),
    );
    this.monitor.add(job.classKey, job.model, 2 * verdict.score - 1);
  }

  /** Calls `onShadow` (an app's error is logged, not thrown). */
  private report(job: ShadowJob, outcome: ShadowOutcome): void {
    try {
      this.options.onShadow?.({
        policy: this.options.policy.name,
        classKey: job.classKey,
        model: job.model,
        referenceModel: this.options.referenceModel,
        traceId: job.routeSpan.traceId,
        ...(job.answer === undefined ? { counterfactual: true } : {}),
        ...outcome,
      });
    } catch (error) {
      diag.warn(`modelmaxx router: onShadow threw: ${String(error)}`);
    }
  }

  /** A trace of its own (the app's trace gets only the verdict), with the app's task/feature. */
  private evaluationContext(job: ShadowJob, role: string) {
    return ROOT_CONTEXT.setValue(LLM_CONTEXT_KEY, job.llmContext).setValue(
      ROUTE_ATTRIBUTES_KEY,
      this.evaluationMarks(job, role),
    );
  }

  /** The route attributes of a shadow or judge call: what it evaluates, and for which route. */
  private evaluationMarks(job: ShadowJob, role: string): Attributes {
    const { policy, referenceModel } = this.options;
    return {
      [ATTR_MODELMAXX_EVALUATION_ROLE]: role,
      [ATTR_MODELMAXX_EVALUATION_NAME]: SHADOW_EVALUATION_NAME,
      [ATTR_MODELMAXX_EVALUATION_TARGET_TRACE_ID]: job.routeSpan.traceId,
      [ATTR_MODELMAXX_EVALUATION_TARGET_SPAN_ID]: job.routeSpan.spanId,
      ...(job.responseId === undefined
        ? {}
        : { [ATTR_MODELMAXX_EVALUATION_TARGET_RESPONSE_ID]: job.responseId }),
      [ATTR_MODELMAXX_ROUTE_POLICY]: policy.name,
      [ATTR_MODELMAXX_ROUTE_CLASS]: job.classKey,
      [ATTR_MODELMAXX_ROUTE_MODEL]: job.model,
      // The shadow call is the reference model's (the ledger's shadow spend); a judge call has none.
      ...(role === EVALUATION_ROLE_VALUE_SHADOW
        ? { [ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL]: referenceModel }
        : {}),
    };
  }

  /** Records a shadow verdict (or judge error) on the routed call: the late-score path. */
  private recordVerdict(
    job: ShadowJob,
    verdict: ShadowVerdict | undefined,
    error: string | undefined,
  ): void {
    const { policy, referenceModel } = this.options;
    const attributes: Attributes = {
      ...evaluationEventAttributes({
        name: SHADOW_EVALUATION_NAME,
        source: 'judge',
        responseId: job.responseId,
        ...(verdict === undefined
          ? { label: 'judge_error', explanation: (error ?? 'no verdict').slice(0, 500) }
          : {
              score: verdict.score,
              label: verdict.label,
              explanation: verdict.explanation?.slice(0, 500),
            }),
      }),
      [ATTR_GEN_AI_REQUEST_MODEL]: job.model,
      [ATTR_GEN_AI_PROVIDER_NAME]: this.options.candidates.get(job.model)!.provider,
      [ATTR_MODELMAXX_ROUTE_POLICY]: policy.name,
      [ATTR_MODELMAXX_ROUTE_CLASS]: job.classKey,
      [ATTR_MODELMAXX_ROUTE_REFERENCE_MODEL]: referenceModel,
    };
    if (job.task !== undefined) attributes[ATTR_MODELMAXX_TASK] = job.task;
    // A short span, child of the route span (in the app's trace), holding the result event.
    const parent = trace.setSpanContext(ROOT_CONTEXT, job.routeSpan);
    const span = this.options.tracer.startSpan(`evaluate ${SHADOW_EVALUATION_NAME}`, {}, parent);
    span.addEvent(EVENT_GEN_AI_EVALUATION_RESULT, attributes);
    span.end();
  }
}
