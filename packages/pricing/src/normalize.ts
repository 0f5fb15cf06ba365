/**
 * One rewrite step of `normalizeModelName`. `pattern` uses only syntax that JavaScript and
 * RE2 (ClickHouse `replaceRegexpOne`) read alike; `replacement` is in JavaScript form (`$1`),
 * `sqlReplacement` in ClickHouse form (`\\1`).
 */
export interface ModelNameRewrite {
  readonly pattern: string;
  readonly replacement: string;
  readonly sqlReplacement: string;
  readonly description: string;
}

/**
 * The suffix rewrites of `normalizeModelName`, applied in this order, each once, after
 * lower-casing and keeping only the text after the last `/`. Exported so that SQL (the
 * collector's `llm_prices` join) can apply exactly the same steps.
 */
export const MODEL_NAME_REWRITES: readonly ModelNameRewrite[] = [
  {
    pattern:
      '^(?:(?:us|eu|apac|au|ca|jp|global)\\.)?(?:anthropic|meta|mistral|amazon|cohere|ai21|deepseek|openai|qwen|writer)\\.',
    replacement: '',
    sqlReplacement: '',
    description:
      'Bedrock vendor prefix, with or without a cross-region prefix: `us.anthropic.claude-…` → `claude-…`',
  },
  {
    pattern: '@.*$',
    replacement: '',
    sqlReplacement: '',
    description: 'Vertex AI version: `claude-3-5-sonnet@20240620` → `claude-3-5-sonnet`',
  },
  {
    pattern: ':\\d+$',
    replacement: '',
    sqlReplacement: '',
    description: 'Bedrock revision: `claude-v2:1` → `claude-v2`',
  },
  {
    pattern: '(-\\d{8})-v\\d+$',
    replacement: '$1',
    sqlReplacement: '\\1',
    description:
      'Bedrock version after a date: `claude-3-5-sonnet-20241022-v2` → `claude-3-5-sonnet-20241022`',
  },
  {
    pattern: '-latest$',
    replacement: '',
    sqlReplacement: '',
    description: '`-latest` alias: `claude-3-5-sonnet-latest` → `claude-3-5-sonnet`',
  },
  {
    pattern: '-\\d{4}-\\d{2}-\\d{2}$',
    replacement: '',
    sqlReplacement: '',
    description: 'OpenAI-style dated snapshot: `gpt-4o-2024-08-06` → `gpt-4o`',
  },
  {
    pattern: '-\\d{8}$',
    replacement: '',
    sqlReplacement: '',
    description:
      'Anthropic-style dated snapshot: `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`',
  },
  {
    pattern: '^(gemini-.*)-0\\d\\d$',
    replacement: '$1',
    sqlReplacement: '\\1',
    description: 'Gemini stable version: `gemini-2.0-flash-001` → `gemini-2.0-flash`',
  },
];

const compiledRewrites: readonly { regex: RegExp; replacement: string }[] = MODEL_NAME_REWRITES.map(
  (rewrite) => ({ regex: new RegExp(rewrite.pattern), replacement: rewrite.replacement }),
);

/**
 * Normalises a model id for price matching:
 *
 * 1. trim and lower-case;
 * 2. keep only the text after the last `/` (`openai/gpt-4o` → `gpt-4o`,
 *    `together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo` → `llama-3.3-70b-instruct-turbo`);
 * 3. apply each step of {@link MODEL_NAME_REWRITES} once, in order: Bedrock vendor prefix,
 *    `@…` (Vertex), `:N` (Bedrock revision), `-vN` right after an 8-digit date (Bedrock),
 *    `-latest`, `-YYYY-MM-DD`, `-YYYYMMDD`, and `-0NN` on `gemini-*` models.
 *
 * Four-digit snapshot suffixes (`gpt-4-0613`, `gpt-3.5-turbo-1106`, `mistral-large-2411`) are
 * NOT stripped: their prices often differ from the undated model, so the catalog lists them as
 * models or aliases instead. In ClickHouse the same function is
 * `replaceRegexpOne(…(replaceRegexpOne(lower(trim(m)) after the last '/', p1, r1)…), pN, rN)`
 * with the patterns of {@link MODEL_NAME_REWRITES}.
 */
export function normalizeModelName(model: string): string {
  let name = model.trim().toLowerCase();
  const slash = name.lastIndexOf('/');
  if (slash >= 0) name = name.slice(slash + 1);
  for (const rewrite of compiledRewrites) name = name.replace(rewrite.regex, rewrite.replacement);
  return name;
}

/**
 * Provider spellings → the catalog's provider name: OTel `gen_ai.provider.name` / `gen_ai.system`
 * values, LiteLLM `litellm_provider` values, OpenInference `llm.provider` / `llm.system` values,
 * model-id prefixes. Exported (frozen) so that SQL (the collector's `llm_calls` view) maps the
 * same names; `normalizeProviderName` is the function over it.
 */
export const PROVIDER_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  openai: 'openai',
  'azure.ai.openai': 'openai',
  'az.ai.openai': 'openai',
  azure: 'openai',
  azure_openai: 'openai',
  'azure-openai': 'openai',
  'text-completion-openai': 'openai',
  anthropic: 'anthropic',
  'gcp.gemini': 'google',
  'gcp.gen_ai': 'google',
  gemini: 'google',
  google: 'google',
  google_ai_studio: 'google',
  'gcp.vertex_ai': 'vertex_ai',
  vertex_ai: 'vertex_ai',
  vertexai: 'vertex_ai',
  'vertex_ai-language-models': 'vertex_ai',
  'vertex_ai-anthropic_models': 'vertex_ai',
  'google.vertex': 'vertex_ai',
  'aws.bedrock': 'bedrock',
  bedrock: 'bedrock',
  bedrock_converse: 'bedrock',
  'amazon-bedrock': 'bedrock',
  aws: 'bedrock',
  mistral: 'mistral',
  mistral_ai: 'mistral',
  mistralai: 'mistral',
  deepseek: 'deepseek',
  xai: 'xai',
  x_ai: 'xai',
  'x.ai': 'xai',
  groq: 'groq',
  together: 'together',
  together_ai: 'together',
  togetherai: 'together',
  'together.ai': 'together',
});

/**
 * Normalises a provider name to the catalog's spelling: trims and lower-cases, then maps
 * known spellings (OTel `gen_ai.provider.name` values, LiteLLM `litellm_provider` values,
 * model-id prefixes):
 *
 * - `openai`, `azure.ai.openai` (and the older `az.ai.openai`), `azure`, `azure_openai`,
 *   `azure-openai`, `text-completion-openai` → `openai`
 *   (Azure OpenAI lists the same prices as OpenAI)
 * - `anthropic` → `anthropic`
 * - `gcp.gemini`, `gcp.gen_ai`, `gemini`, `google`, `google_ai_studio` → `google`
 * - `gcp.vertex_ai`, `vertex_ai`, `vertexai`, `vertex_ai-language-models`, `vertex_ai-anthropic_models`,
 *   `google.vertex` → `vertex_ai`
 * - `aws.bedrock`, `bedrock`, `bedrock_converse`, `amazon-bedrock`, `aws` → `bedrock`
 * - `mistral_ai`, `mistral`, `mistralai` → `mistral`
 * - `x_ai`, `xai`, `x.ai` → `xai`
 * - `together_ai`, `together`, `togetherai`, `together.ai` → `together`
 * - a dotted name that is not a key itself (the Vercel AI SDK's `ai.model.provider`:
 *   `openai.chat`, `openai.responses`, `anthropic.messages`, `google.vertex.chat`) → the alias
 *   of its longest leading dotted part that is a key (`openai`, `anthropic`, `google.vertex`)
 * - anything else (`deepseek`, `groq`, `some.new.provider`, …) → itself, trimmed and lower-cased.
 *
 * `vertex_ai` and `bedrock` host several vendors' models; the catalog has no entries under
 * them, so lookups fall back to the model's own vendor (see `PriceCatalog.lookup`).
 */
export function normalizeProviderName(provider: string): string {
  const name = provider.trim().toLowerCase();
  const alias = PROVIDER_ALIASES[name];
  if (alias !== undefined) return alias;
  for (let dot = name.lastIndexOf('.'); dot > 0; dot = name.lastIndexOf('.', dot - 1)) {
    const prefix = PROVIDER_ALIASES[name.slice(0, dot)];
    if (prefix !== undefined) return prefix;
  }
  return name;
}
