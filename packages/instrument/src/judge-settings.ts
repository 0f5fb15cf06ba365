import type { TracerProvider } from '@opentelemetry/api';
import type { PriceCatalog } from '@modelmaxx/pricing';
import type { JudgeMode } from './judge-prompt.js';
import type { JudgeOptions, JudgeSample } from './judge-types.js';
import type { EvaluatorCall } from './types.js';

export type JudgeProvider = 'openai' | 'anthropic';
type Create = (body: Record<string, unknown>, options: Record<string, unknown>) => Promise<unknown>;

/** A judge's options checked, with every default filled in. */
export interface JudgeSettings {
  readonly provider: JudgeProvider;
  /** The judge client's `create` (chat completions or messages), bound to its resource. */
  readonly create: Create;
  readonly model: string;
  readonly mode: JudgeMode;
  readonly name: string;
  readonly rubric: string | undefined;
  readonly reference: JudgeOptions['reference'];
  readonly sampler: JudgeSampler;
  readonly maxUsdPerHour: number | undefined;
  readonly maxUsdPerDay: number | undefined;
  readonly queueSize: number;
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly structured: boolean;
  readonly maxTokens: number;
  readonly maxInputChars: number;
  readonly order: 'random' | 'answer-first' | 'answer-second';
  readonly tracerProvider: TracerProvider | undefined;
  readonly catalog: PriceCatalog | undefined;
  readonly random: () => number;
  readonly now: () => number;
}

function checkRate(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new RangeError(`judge(): ${what} must be a number from 0 to 1`);
  }
  return value;
}

function checkPositive(value: unknown, what: string, integer: boolean): void {
  if (value === undefined) return;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value <= 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw new RangeError(`judge(): ${what} must be a positive ${integer ? 'integer' : 'number'}`);
  }
}

/** Which calls are judged: the share for a call's task, else its feature, else the overall rate. */
export class JudgeSampler {
  private readonly rate: number;
  private readonly byTask = new Map<string, number>();
  private readonly byFeature = new Map<string, number>();

  constructor(sample: JudgeSample | undefined) {
    this.rate = checkRate(sample?.rate ?? 1, 'sample.rate');
    for (const [key, value] of Object.entries(sample?.byTask ?? {}))
      this.byTask.set(key, checkRate(value, `sample.byTask.${key}`));
    for (const [key, value] of Object.entries(sample?.byFeature ?? {}))
      this.byFeature.set(key, checkRate(value, `sample.byFeature.${key}`));
  }

  /** Whether `call` is judged, drawing from `random` when its share is below 1. */
  sampled(call: EvaluatorCall, random: () => number): boolean {
    const share = this.shareOf(call);
    return share >= 1 || random() < share;
  }

  private shareOf(call: EvaluatorCall): number {
    if (call.task !== undefined) {
      const value = this.byTask.get(call.task);
      if (value !== undefined) return value;
    }
    if (call.feature !== undefined) {
      const value = this.byFeature.get(call.feature);
      if (value !== undefined) return value;
    }
    return this.rate;
  }
}

function clientKind(client: unknown): { provider: JudgeProvider; create: Create } {
  const record = client as Record<string, Record<string, unknown> | undefined> | null;
  const completions = (record?.['chat'] as Record<string, Record<string, unknown>> | undefined)?.[
    'completions'
  ];
  if (typeof completions?.['create'] === 'function') {
    const create = completions['create'] as Create;
    return {
      provider: 'openai',
      create: (body, options) => create.call(completions, body, options),
    };
  }
  const messages = record?.['messages'];
  if (typeof messages?.['create'] === 'function') {
    const create = messages['create'] as Create;
    return {
      provider: 'anthropic',
      create: (body, options) => create.call(messages, body, options),
    };
  }
  throw new TypeError(
    'judge(): client must be an openai client (chat.completions.create) or an @anthropic-ai/sdk client (messages.create)',
  );
}

/** Checks `judge()`'s options (a `TypeError` / `RangeError` saying which one is wrong) and fills in the defaults. */
export function judgeSettings(options: JudgeOptions): JudgeSettings {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('judge(): options must be an object');
  }
  const { provider, create } = clientKind(options.client);
  if (typeof options.model !== 'string' || options.model === '') {
    throw new TypeError('judge(): model must be a non-empty string');
  }
  const mode: JudgeMode = options.reference === undefined ? 'pointwise' : 'pairwise';
  if (options.reference !== undefined && typeof options.reference !== 'function') {
    throw new TypeError('judge(): reference must be a function of the call');
  }
  const sampler = new JudgeSampler(options.sample);
  checkPositive(options.maxUsdPerHour, 'maxUsdPerHour', false);
  checkPositive(options.maxUsdPerDay, 'maxUsdPerDay', false);
  checkPositive(options.queueSize, 'queueSize', true);
  checkPositive(options.concurrency, 'concurrency', true);
  checkPositive(options.timeoutMs, 'timeoutMs', false);
  checkPositive(options.maxTokens, 'maxTokens', true);
  checkPositive(options.maxInputChars, 'maxInputChars', true);
  return {
    provider,
    create,
    model: options.model,
    mode,
    name: options.name ?? (mode === 'pairwise' ? 'modelmaxx.judge.pairwise' : 'modelmaxx.judge'),
    rubric: options.rubric,
    reference: options.reference,
    sampler,
    maxUsdPerHour: options.maxUsdPerHour,
    maxUsdPerDay: options.maxUsdPerDay,
    queueSize: options.queueSize ?? 100,
    concurrency: options.concurrency ?? 2,
    timeoutMs: options.timeoutMs ?? 30_000,
    structured: options.structuredOutput ?? true,
    maxTokens: options.maxTokens ?? 512,
    maxInputChars: options.maxInputChars ?? 8000,
    order: options.order ?? 'random',
    tracerProvider: options.tracerProvider,
    catalog: options.catalog,
    random: options.random ?? Math.random,
    now: options.now ?? Date.now,
  };
}
