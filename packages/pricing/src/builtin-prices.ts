import type { PriceEntry } from './types.js';

/*
 * The built-in price catalog: list prices in USD per million tokens, standard tier (not
 * batch, flex or priority), for prompts within the first context tier. Each entry names its
 * source and the latest date at which that source was seen to list the price.
 *
 * How to update: see README.md ("Updating prices"). Keep one entry per price; put older
 * snapshots with the same price in `aliases`, and give a snapshot with a different price its
 * own entry. Dated snapshots (`-2025-08-07`, `-20250929`), `-latest`, `@version` and Bedrock
 * prefixes need no alias: `normalizeModelName` strips them.
 */

const LITELLM = 'LiteLLM model_prices_and_context_window.json (BerriAI/litellm@00035b69)';
const OPENAI = 'https://developers.openai.com/api/docs/pricing';
const ANTHROPIC = 'https://platform.claude.com/docs/en/about-claude/pricing';
const GOOGLE = 'https://ai.google.dev/gemini-api/docs/pricing';
const MISTRAL = 'https://mistral.ai/pricing#api-pricing';
const DEEPSEEK = 'https://api-docs.deepseek.com/quick_start/pricing';
const XAI = 'https://docs.x.ai/developers/models';
const GROQ = 'https://groq.com/pricing';
const TOGETHER = 'https://www.together.ai/pricing';
const ROUTERBENCH =
  "RouterBench (arXiv 2403.12031) list prices, matching the dataset's total_cost columns";

const viaLiteLLM = (page: string): string => `${page} (as listed in ${LITELLM})`;

type Extra = Partial<Pick<PriceEntry, 'aliases' | 'mode' | 'notes' | 'source' | 'date'>> & {
  cacheRead?: number;
  cacheWrite?: number;
  reasoning?: number;
};
type Spec = [model: string, input: number, output: number, extra?: Extra];

function group(provider: string, source: string, date: string, specs: Spec[]): PriceEntry[] {
  return specs.map(([model, input, output, extra]) => {
    const { cacheRead, cacheWrite, reasoning, ...rest } = extra ?? {};
    const entry: PriceEntry = { provider, model, prices: { input, output }, source, date, ...rest };
    if (cacheRead !== undefined) entry.prices.cacheRead = cacheRead;
    if (cacheWrite !== undefined) entry.prices.cacheWrite = cacheWrite;
    if (reasoning !== undefined) entry.prices.reasoning = reasoning;
    return entry;
  });
}

const OPENAI_LONG = 'prompts <= 272k tokens; longer prompts cost 2x input and 1.5x output';

export const BUILTIN_PRICES: readonly PriceEntry[] = Object.freeze([
  // --- OpenAI. Cached input per model; reasoning tokens are billed as output. -----------------
  ...group('openai', viaLiteLLM(OPENAI), '2026-08-19', [
    [
      'gpt-5.6',
      5,
      30,
      { cacheRead: 0.5, cacheWrite: 6.25, aliases: ['gpt-5.6-sol'], notes: OPENAI_LONG },
    ],
    ['gpt-5.6-terra', 2.5, 15, { cacheRead: 0.25, cacheWrite: 3.125, notes: OPENAI_LONG }],
    ['gpt-5.6-luna', 1, 6, { cacheRead: 0.1, cacheWrite: 1.25, notes: OPENAI_LONG }],
  ]),
  ...group('openai', viaLiteLLM(OPENAI), '2026-04-23', [
    ['gpt-5.5', 5, 30, { cacheRead: 0.5, notes: OPENAI_LONG }],
    ['gpt-5.5-pro', 30, 180, { cacheRead: 3, notes: `Responses API only; ${OPENAI_LONG}` }],
    ['gpt-5.4', 2.5, 15, { cacheRead: 0.25, notes: OPENAI_LONG }],
    ['gpt-5.4-pro', 30, 180, { cacheRead: 3, notes: `Responses API only; ${OPENAI_LONG}` }],
    ['gpt-5.4-mini', 0.75, 4.5, { cacheRead: 0.075 }],
    ['gpt-5.4-nano', 0.2, 1.25, { cacheRead: 0.02 }],
    [
      'gpt-5.2',
      1.75,
      14,
      {
        cacheRead: 0.175,
        aliases: ['gpt-5.2-chat-latest', 'gpt-5.2-codex', 'gpt-5.3-chat-latest', 'gpt-5.3-codex'],
      },
    ],
    ['gpt-5.2-pro', 21, 168, { notes: 'Responses API only' }],
    [
      'gpt-5.1',
      1.25,
      10,
      { cacheRead: 0.125, aliases: ['gpt-5.1-chat-latest', 'gpt-5.1-codex', 'gpt-5.1-codex-max'] },
    ],
    [
      'gpt-5',
      1.25,
      10,
      { cacheRead: 0.125, aliases: ['gpt-5-chat-latest', 'gpt-5-chat', 'gpt-5-codex'] },
    ],
    ['gpt-5-pro', 15, 120, { notes: 'Responses API only' }],
    ['gpt-5-mini', 0.25, 2, { cacheRead: 0.025, aliases: ['gpt-5.1-codex-mini'] }],
    ['chatgpt-4o-latest', 5, 15],
  ]),
  ...group('openai', OPENAI, '2025-10-06', [
    ['gpt-5-nano', 0.05, 0.4, { cacheRead: 0.005 }],
    ['gpt-4.1', 2, 8, { cacheRead: 0.5 }],
    ['gpt-4.1-mini', 0.4, 1.6, { cacheRead: 0.1 }],
    ['gpt-4.1-nano', 0.1, 0.4, { cacheRead: 0.025 }],
    ['gpt-4o', 2.5, 10, { cacheRead: 1.25 }],
    ['gpt-4o-2024-05-13', 5, 15, { notes: 'the first gpt-4o snapshot kept its launch price' }],
    ['gpt-4o-mini', 0.15, 0.6, { cacheRead: 0.075 }],
    ['o1', 15, 60, { cacheRead: 7.5, aliases: ['o1-preview'] }],
    ['o1-mini', 1.1, 4.4, { cacheRead: 0.55 }],
    ['o1-pro', 150, 600, { notes: 'Responses API only' }],
    ['o3', 2, 8, { cacheRead: 0.5 }],
    ['o3-pro', 20, 80, { notes: 'Responses API only' }],
    ['o3-mini', 1.1, 4.4, { cacheRead: 0.55 }],
    ['o4-mini', 1.1, 4.4, { cacheRead: 0.275 }],
    ['gpt-4-turbo', 10, 30, { aliases: ['gpt-4-turbo-preview', 'gpt-4-0125-preview'] }],
    ['gpt-4', 30, 60, { aliases: ['gpt-4-0613', 'gpt-4-0314'] }],
    ['gpt-4-32k', 60, 120, { aliases: ['gpt-4-32k-0613'] }],
    ['gpt-3.5-turbo', 0.5, 1.5, { aliases: ['gpt-3.5-turbo-0125'] }],
    ['text-embedding-3-small', 0.02, 0, { mode: 'embedding' }],
    ['text-embedding-3-large', 0.13, 0, { mode: 'embedding' }],
    ['text-embedding-ada-002', 0.1, 0, { mode: 'embedding' }],
  ]),
  // RouterBench's two OpenAI models, at the prices RouterBench used (OpenAI's list price then).
  ...group('openai', ROUTERBENCH, '2024-03-18', [
    ['gpt-4-1106-preview', 10, 30, { aliases: ['gpt-4-1106-vision-preview'] }],
    ['gpt-3.5-turbo-1106', 1, 2],
  ]),

  // --- Anthropic. Cache write = the 5-minute write (1.25x input); cache read = cache hit. -----
  ...group('anthropic', ANTHROPIC, '2026-10-07', [
    [
      'claude-fable-5-1',
      10,
      50,
      { cacheWrite: 12.5, cacheRead: 0.25, aliases: ['claude-fable-5.1'] },
    ],
    ['claude-fable-5', 10, 50, { cacheWrite: 12.5, cacheRead: 1 }],
    ['claude-opus-5-5', 4, 20, { cacheWrite: 5, cacheRead: 0.2, aliases: ['claude-opus-5.5'] }],
    ['claude-opus-5', 5, 25, { cacheWrite: 6.25, cacheRead: 0.5 }],
    ['claude-opus-4-8', 5, 25, { cacheWrite: 6.25, cacheRead: 0.5, aliases: ['claude-opus-4.8'] }],
    ['claude-opus-4-7', 5, 25, { cacheWrite: 6.25, cacheRead: 0.5, aliases: ['claude-opus-4.7'] }],
    ['claude-opus-4-6', 5, 25, { cacheWrite: 6.25, cacheRead: 0.5, aliases: ['claude-opus-4.6'] }],
    ['claude-opus-4-5', 5, 25, { cacheWrite: 6.25, cacheRead: 0.5, aliases: ['claude-opus-4.5'] }],
    [
      'claude-opus-4-1',
      15,
      75,
      { cacheWrite: 18.75, cacheRead: 1.5, aliases: ['claude-opus-4.1'] },
    ],
    [
      'claude-opus-4',
      15,
      75,
      { cacheWrite: 18.75, cacheRead: 1.5, aliases: ['claude-opus-4-0', 'claude-4-opus'] },
    ],
    [
      'claude-sonnet-5-5',
      2,
      10,
      {
        cacheWrite: 2.5,
        cacheRead: 0.1,
        aliases: ['claude-sonnet-5.5'],
        notes: 'cache read cut from 0.2 to 0.1 on 2026-10-07',
      },
    ],
    ['claude-sonnet-5', 2, 10, { cacheWrite: 2.5, cacheRead: 0.2 }],
    [
      'claude-sonnet-4-6',
      3,
      15,
      { cacheWrite: 3.75, cacheRead: 0.3, aliases: ['claude-sonnet-4.6'] },
    ],
    [
      'claude-sonnet-4-5',
      3,
      15,
      {
        cacheWrite: 3.75,
        cacheRead: 0.3,
        aliases: ['claude-sonnet-4.5'],
        notes: 'prompts <= 200k tokens; longer prompts (1M context) cost 6 / 22.5',
      },
    ],
    [
      'claude-sonnet-4',
      3,
      15,
      {
        cacheWrite: 3.75,
        cacheRead: 0.3,
        aliases: ['claude-sonnet-4-0', 'claude-4-sonnet'],
        notes: 'prompts <= 200k tokens; longer prompts (1M context) cost 6 / 22.5',
      },
    ],
    [
      'claude-haiku-5-5',
      0.1,
      0.5,
      {
        cacheWrite: 0.125,
        cacheRead: 0.01,
        aliases: ['claude-haiku-5.5'],
        notes:
          'prompts <= 100k tokens; longer prompts cost 0.5 / 2.5 (cache write 0.625, read 0.05)',
      },
    ],
    ['claude-haiku-4-5', 1, 5, { cacheWrite: 1.25, cacheRead: 0.1, aliases: ['claude-haiku-4.5'] }],
    ['claude-3-5-haiku', 0.8, 4, { cacheWrite: 1, cacheRead: 0.08, aliases: ['claude-3.5-haiku'] }],
    ['claude-3-haiku', 0.25, 1.25, { cacheWrite: 0.3, cacheRead: 0.03 }],
    ['claude-3-opus', 15, 75, { cacheWrite: 18.75, cacheRead: 1.5 }],
  ]),
  ...group('anthropic', ANTHROPIC, '2025-10-15', [
    [
      'claude-3-7-sonnet',
      3,
      15,
      { cacheWrite: 3.75, cacheRead: 0.3, aliases: ['claude-3.7-sonnet'] },
    ],
    [
      'claude-3-5-sonnet',
      3,
      15,
      { cacheWrite: 3.75, cacheRead: 0.3, aliases: ['claude-3.5-sonnet'] },
    ],
  ]),
  // RouterBench's three Claude models (retired), at the prices RouterBench used.
  ...group('anthropic', ROUTERBENCH, '2024-03-18', [
    ['claude-instant-v1', 0.8, 2.4, { aliases: ['claude-instant-1', 'claude-instant-1.2'] }],
    ['claude-v1', 8, 24, { aliases: ['claude-1'] }],
    ['claude-v2', 8, 24, { aliases: ['claude-2', 'claude-2.0', 'claude-2.1', 'claude-v2.1'] }],
  ]),

  // --- Google Gemini API. Tiered models: the <= 200k-token prompt tier. ----------------------
  ...group('google', GOOGLE, '2026-07-21', [
    [
      'gemini-3.6-flash',
      1.5,
      7.5,
      { cacheRead: 0.15, source: `${GOOGLE} (as reported in simstudioai/sim#5812)` },
    ],
    [
      'gemini-3.5-flash-lite',
      0.3,
      2.5,
      { cacheRead: 0.03, source: `${GOOGLE} (as reported in simstudioai/sim#5812)` },
    ],
  ]),
  ...group('google', viaLiteLLM(GOOGLE), '2026-05-19', [
    [
      'gemini-3.5-flash',
      1.5,
      9,
      { cacheRead: 0.15, notes: 'deprecated; Google routes it to gemini-3.6-flash' },
    ],
  ]),
  ...group('google', viaLiteLLM(GOOGLE), '2026-04-19', [
    [
      'gemini-3.1-pro-preview',
      2,
      12,
      { cacheRead: 0.2, notes: '<= 200k-token tier; above: 4 / 18, cache read 0.4' },
    ],
    [
      'gemini-3-pro-preview',
      2,
      12,
      { cacheRead: 0.2, notes: '<= 200k-token tier; above: 4 / 18, cache read 0.4' },
    ],
    [
      'gemini-3-flash-preview',
      0.5,
      3,
      { cacheRead: 0.05, notes: 'text/image/video input; audio input 1.0' },
    ],
    [
      'gemini-3.1-flash-lite',
      0.25,
      1.5,
      { cacheRead: 0.025, aliases: ['gemini-3.1-flash-lite-preview'], notes: 'audio input 0.5' },
    ],
    [
      'gemini-2.5-pro',
      1.25,
      10,
      { cacheRead: 0.125, notes: '<= 200k-token tier; above: 2.5 / 15, cache read 0.25' },
    ],
  ]),
  ...group('google', GOOGLE, '2026-04-19', [
    [
      'gemini-2.5-flash',
      0.3,
      2.5,
      { cacheRead: 0.03, notes: 'text/image/video input; audio input 1.0' },
    ],
    [
      'gemini-2.5-flash-lite',
      0.1,
      0.4,
      { cacheRead: 0.01, notes: 'text/image/video input; audio input 0.3' },
    ],
  ]),
  ...group('google', GOOGLE, '2025-08-07', [
    [
      'gemini-2.0-flash',
      0.1,
      0.4,
      { cacheRead: 0.025, notes: 'text/image/video input; audio input 0.7' },
    ],
    ['gemini-2.0-flash-lite', 0.075, 0.3],
    ['gemini-1.5-pro', 1.25, 5, { notes: '<= 128k-token tier; above: 2.5 / 10' }],
    ['gemini-1.5-flash', 0.075, 0.3, { notes: '<= 128k-token tier; above: 0.15 / 0.6' }],
  ]),

  // --- Mistral: dated model ids only (the `-latest` aliases move between prices). ------------
  ...group('mistral', MISTRAL, '2025-08-07', [
    ['mistral-large-2411', 2, 6, { aliases: ['mistral-large-2407'] }],
    ['mistral-medium-2508', 0.4, 2, { aliases: ['mistral-medium-2505'] }],
    ['mistral-small-2506', 0.1, 0.3, { aliases: ['mistral-small-2503'] }],
    ['codestral-2508', 0.3, 0.9, { aliases: ['codestral-2501'] }],
    ['magistral-medium-2507', 2, 5, { aliases: ['magistral-medium-2506'] }],
    ['magistral-small-2507', 0.5, 1.5, { aliases: ['magistral-small-2506'] }],
    ['ministral-8b-2410', 0.1, 0.1],
    ['ministral-3b-2410', 0.04, 0.04],
    ['open-mistral-nemo', 0.15, 0.15, { aliases: ['open-mistral-nemo-2407'] }],
    ['pixtral-large-2411', 2, 6],
    ['mistral-embed', 0.1, 0, { mode: 'embedding' }],
  ]),

  // --- DeepSeek: cache hit = cacheRead; deepseek-reasoner bills its thinking as output. ------
  ...group('deepseek', viaLiteLLM(DEEPSEEK), '2026-04-23', [
    [
      'deepseek-chat',
      0.28,
      0.42,
      { cacheRead: 0.028, notes: 'cache-miss input 0.28, cache-hit input 0.028' },
    ],
    [
      'deepseek-reasoner',
      0.28,
      0.42,
      { cacheRead: 0.028, notes: 'cache-miss input 0.28, cache-hit input 0.028' },
    ],
  ]),

  // --- xAI ---------------------------------------------------------------------------------------
  ...group('xai', XAI, '2026-09-29', [
    [
      'grok-4.7',
      2,
      6,
      {
        cacheRead: 0.5,
        aliases: ['grok-4-7'],
        notes: 'prompts < 200k tokens; longer prompts cost 4 / 12, cache read 1',
        source: 'https://docs.x.ai/developers/grok-4-7',
      },
    ],
    ['grok-4.6', 2, 6, { cacheRead: 0.5, aliases: ['grok-4-6'], notes: 'prompts < 200k tokens' }],
  ]),
  ...group('xai', XAI, '2026-07-10', [
    [
      'grok-4.5',
      2,
      6,
      { cacheRead: 0.5, aliases: ['grok-4-5'], notes: 'prompts <= 200k tokens; above: 4 input' },
    ],
  ]),
  ...group('xai', XAI, '2026-05-03', [
    [
      'grok-4.3',
      1.25,
      2.5,
      { cacheRead: 0.2, aliases: ['grok-4-3'], notes: 'prompts <= 200k tokens; above: 2.5 input' },
    ],
  ]),
  ...group('xai', XAI, '2025-11-19', [
    [
      'grok-4-1-fast-reasoning',
      0.2,
      0.5,
      { cacheRead: 0.05, aliases: ['grok-4-1-fast', 'grok-4.1-fast'] },
    ],
    ['grok-4-1-fast-non-reasoning', 0.2, 0.5, { cacheRead: 0.05 }],
    ['grok-4-fast-reasoning', 0.2, 0.5, { cacheRead: 0.05, aliases: ['grok-4-fast'] }],
    ['grok-4-fast-non-reasoning', 0.2, 0.5, { cacheRead: 0.05 }],
    [
      'grok-4',
      3,
      15,
      { cacheRead: 0.75, aliases: ['grok-4-0709'], notes: 'prompts <= 128k tokens; above: 6 / 30' },
    ],
    ['grok-code-fast-1', 0.2, 1.5, { cacheRead: 0.02 }],
    ['grok-3', 3, 15, { cacheRead: 0.75 }],
    ['grok-3-mini', 0.3, 0.5, { cacheRead: 0.075 }],
  ]),

  // --- Groq (open models) ------------------------------------------------------------------------
  ...group('groq', GROQ, '2025-09-15', [
    ['llama-3.3-70b-versatile', 0.59, 0.79],
    ['llama-3.1-8b-instant', 0.05, 0.08],
    ['meta-llama/llama-4-maverick-17b-128e-instruct', 0.2, 0.6],
    ['meta-llama/llama-4-scout-17b-16e-instruct', 0.11, 0.34],
    ['openai/gpt-oss-120b', 0.15, 0.6],
    ['openai/gpt-oss-20b', 0.075, 0.3],
    ['qwen/qwen3-32b', 0.29, 0.59],
    ['moonshotai/kimi-k2-instruct-0905', 1, 3, { aliases: ['moonshotai/kimi-k2-instruct'] }],
  ]),

  // --- Together AI (open models) -----------------------------------------------------------------
  ...group('together', TOGETHER, '2025-09-15', [
    ['meta-llama/Llama-3.3-70B-Instruct-Turbo', 0.88, 0.88],
    ['meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo', 0.18, 0.18],
    ['meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo', 0.88, 0.88],
    ['meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo', 3.5, 3.5],
    ['meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8', 0.27, 0.85],
    ['meta-llama/Llama-4-Scout-17B-16E-Instruct', 0.18, 0.59],
    ['deepseek-ai/DeepSeek-V3', 1.25, 1.25],
    ['deepseek-ai/DeepSeek-R1', 3, 7],
    ['Qwen/Qwen2.5-72B-Instruct-Turbo', 1.2, 1.2],
    ['Qwen/Qwen2.5-Coder-32B-Instruct', 0.8, 0.8],
    ['openai/gpt-oss-120b', 0.15, 0.6],
    ['openai/gpt-oss-20b', 0.05, 0.2],
    ['mistralai/Mixtral-8x7B-Instruct-v0.1', 0.6, 0.6],
  ]),
  // RouterBench's open models, served by Together AI at the prices RouterBench used.
  ...group('together', ROUTERBENCH, '2024-03-18', [
    ['WizardLM/WizardLM-13B-V1.2', 0.3, 0.3],
    [
      'meta/code-llama-instruct-34b-chat',
      0.776,
      0.776,
      { aliases: ['codellama/CodeLlama-34b-Instruct-hf'] },
    ],
    ['meta/llama-2-70b-chat', 0.9, 0.9, { aliases: ['meta-llama/Llama-2-70b-chat-hf'] }],
    ['mistralai/mistral-7b-chat', 0.2, 0.2, { aliases: ['mistralai/Mistral-7B-Instruct-v0.1'] }],
    ['mistralai/mixtral-8x7b-chat', 0.6, 0.6],
    ['zero-one-ai/Yi-34B-Chat', 0.8, 0.8],
  ]),
]);
