import { diag } from '@opentelemetry/api';
import { costOf } from '@modelmaxx/pricing';
import type { JudgeProvider, JudgeSettings } from './judge-settings.js';
import type { TokenUsage } from './types.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const MINUTE_MS = 60_000;

/** Spend per minute over the last day: the hour and day sums of a rolling window. */
class SpendWindow {
  private readonly minutes = new Map<number, number>();

  add(now: number, usd: number): void {
    const minute = Math.floor(now / MINUTE_MS);
    this.minutes.set(minute, (this.minutes.get(minute) ?? 0) + usd);
    const oldest = minute - DAY_MS / MINUTE_MS;
    for (const key of this.minutes.keys()) if (key <= oldest) this.minutes.delete(key);
  }

  since(now: number, ms: number): number {
    const first = Math.floor((now - ms) / MINUTE_MS);
    let sum = 0;
    for (const [minute, usd] of this.minutes) if (minute > first) sum += usd;
    return sum;
  }
}

/** Token usage of a judge reply (OpenAI chat or Anthropic messages shape). */
function usageOf(provider: JudgeProvider, response: unknown): TokenUsage | undefined {
  const usage = (response as { usage?: Record<string, unknown> } | null)?.usage;
  if (typeof usage !== 'object' || usage === null) return undefined;
  const number = (value: unknown): number => (typeof value === 'number' ? value : 0);
  if (provider === 'openai') {
    const details = usage['prompt_tokens_details'] as Record<string, unknown> | null | undefined;
    const out = usage['completion_tokens_details'] as Record<string, unknown> | null | undefined;
    return {
      inputTokens: number(usage['prompt_tokens']),
      outputTokens: number(usage['completion_tokens']),
      cacheReadTokens: number(details?.['cached_tokens']),
      reasoningTokens: number(out?.['reasoning_tokens']),
    };
  }
  const read = number(usage['cache_read_input_tokens']);
  const write = number(usage['cache_creation_input_tokens']);
  return {
    inputTokens: number(usage['input_tokens']) + read + write,
    outputTokens: number(usage['output_tokens']),
    cacheReadTokens: read,
    cacheWriteTokens: write,
  };
}

/**
 * The judge's spend cap: what its calls cost (`costOf` on their usage) over a rolling hour and
 * day, against `maxUsdPerHour` / `maxUsdPerDay`.
 */
export class JudgeSpend {
  /** USD spent on judge calls. */
  spentUsd = 0;
  /** Judge calls whose cost is unknown (no price for the model, or no usage). */
  unpricedCalls = 0;
  private readonly window = new SpendWindow();
  private warnedUnpriced = false;
  private readonly settings: JudgeSettings;

  constructor(settings: JudgeSettings) {
    this.settings = settings;
  }

  /** Whether the cap is reached now: the call waiting is not judged. */
  overBudget(): boolean {
    const { maxUsdPerHour, maxUsdPerDay } = this.settings;
    if (maxUsdPerHour === undefined && maxUsdPerDay === undefined) return false;
    const at = this.settings.now();
    if (maxUsdPerHour !== undefined && this.window.since(at, HOUR_MS) >= maxUsdPerHour) return true;
    return maxUsdPerDay !== undefined && this.window.since(at, DAY_MS) >= maxUsdPerDay;
  }

  /** Counts one judge reply's cost; an unpriced reply is counted apart (with one warning under a cap). */
  charge(response: unknown): void {
    const { provider, model, catalog } = this.settings;
    const usage = usageOf(provider, response);
    const responseModel = (response as { model?: unknown } | null)?.model;
    const cost =
      usage === undefined
        ? undefined
        : costOf(
            { provider, model: typeof responseModel === 'string' ? responseModel : model, usage },
            catalog === undefined ? undefined : { catalog },
          );
    if (cost?.known === true) {
      this.spentUsd += cost.amount;
      this.window.add(this.settings.now(), cost.amount);
      return;
    }
    this.unpricedCalls += 1;
    const capped =
      this.settings.maxUsdPerHour !== undefined || this.settings.maxUsdPerDay !== undefined;
    if (!this.warnedUnpriced && capped) {
      this.warnedUnpriced = true;
      diag.warn(
        `modelmaxx: judge ${this.settings.name}: the cost of a call to ${model} is unknown (${cost?.known === false ? cost.reason : 'no usage'}); the spend cap cannot count it`,
      );
    }
  }
}
