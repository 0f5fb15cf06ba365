/** Prices in USD per 1,000,000 tokens. */
export interface TokenPrices {
  /** Uncached input (prompt) tokens. */
  input: number;
  /** Output (completion) tokens. */
  output: number;
  /** Input tokens read from the prompt cache (OpenAI "cached input", Anthropic "cache read"). Defaults to `input`. */
  cacheRead?: number;
  /** Input tokens written to the prompt cache (Anthropic 5-minute cache write). Defaults to `input`. */
  cacheWrite?: number;
  /** Reasoning (thinking) output tokens, when billed differently from `output`. Defaults to `output`. */
  reasoning?: number;
}

export interface PriceEntry {
  /** Normalised provider name (see `normalizeProviderName`), e.g. `openai`, `anthropic`, `google`, `groq`, `together`. */
  provider: string;
  /** The provider's model id, e.g. `gpt-4o`, `claude-sonnet-4-5`, `meta-llama/Llama-3.3-70B-Instruct-Turbo`. */
  model: string;
  /** Other ids that name exactly this price (older snapshots with the same price, OpenRouter-style spellings). */
  aliases?: string[];
  prices: TokenPrices;
  /** Where the price comes from: a URL or a document name. */
  source: string;
  /** Date (YYYY-MM-DD) at which the price was valid at `source`. */
  date: string;
  /** `chat` (default) or `embedding` (embeddings have no output price). */
  mode?: 'chat' | 'embedding';
  /** Free-text caveats, e.g. which tier of a tiered price was taken. */
  notes?: string;
}

/**
 * Token counts in OTel GenAI semantics: `inputTokens` INCLUDES `cacheReadTokens` and
 * `cacheWriteTokens`; `outputTokens` INCLUDES `reasoningTokens`.
 */
export interface TokenUsage {
  inputTokens?: number | undefined;
  outputTokens?: number | undefined;
  cacheReadTokens?: number | undefined;
  cacheWriteTokens?: number | undefined;
  reasoningTokens?: number | undefined;
}

/** USD per part; the parts add up to `amount`. `input` is the uncached input only, `output` excludes reasoning. */
export interface CostBreakdown {
  input: number;
  cacheRead: number;
  cacheWrite: number;
  output: number;
  reasoning: number;
}

export type CostResult =
  | {
      known: true;
      amount: number;
      currency: 'USD';
      breakdown: CostBreakdown;
      provider: string;
      /** The catalog model that was matched (e.g. `gpt-4o` for `gpt-4o-2024-08-06`). */
      model: string;
      /** Catalog version (goes into `modelmaxx.pricing.version`). */
      version: string;
      entry: PriceEntry;
    }
  | { known: false; reason: string };
