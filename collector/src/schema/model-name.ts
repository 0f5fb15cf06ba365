/**
 * `@modelmaxx/pricing`'s model and provider name normalisation as ClickHouse SQL,
 * so the `llm_calls` view prices a span exactly like `costOf` would.
 * Built from the pricing package's own rewrite list (`MODEL_NAME_REWRITES`) and
 * alias function (`normalizeProviderName`); `test/store-model-name.test.ts`
 * compares the SQL with the TypeScript on many names.
 */
import { MODEL_NAME_REWRITES, normalizeProviderName } from '@modelmaxx/pricing';

/** A ClickHouse string literal (single quotes, backslash escapes). Only for constants of ours. */
export function sqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** `trim` + lower-case, like JavaScript's `trim().toLowerCase()` for the names we see. */
export function lowerTrimSqlExpression(column: string): string {
  return `lowerUTF8(replaceRegexpAll(${column}, '^\\\\s+|\\\\s+$', ''))`;
}

/** `normalizeModelName(column)` in SQL. */
export function modelNameSqlExpression(column: string): string {
  let expression = `arrayElement(splitByChar('/', ${lowerTrimSqlExpression(column)}), -1)`;
  for (const rewrite of MODEL_NAME_REWRITES) {
    expression = `replaceRegexpOne(${expression}, ${sqlString(rewrite.pattern)}, ${sqlString(rewrite.sqlReplacement)})`;
  }
  return expression;
}

/**
 * Provider spellings the SQL maps (to whatever `normalizeProviderName` says);
 * any other name is trimmed and lower-cased, as `normalizeProviderName` does.
 */
export const PROVIDER_SPELLINGS = [
  'openai',
  'azure.ai.openai',
  'az.ai.openai',
  'azure',
  'azure_openai',
  'text-completion-openai',
  'anthropic',
  'gcp.gemini',
  'gcp.gen_ai',
  'gemini',
  'google',
  'google_ai_studio',
  'gcp.vertex_ai',
  'vertex_ai',
  'vertexai',
  'vertex_ai-language-models',
  'vertex_ai-anthropic_models',
  'aws.bedrock',
  'bedrock',
  'bedrock_converse',
  'mistral',
  'mistral_ai',
  'mistralai',
  'deepseek',
  'xai',
  'x_ai',
  'x.ai',
  'groq',
  'together',
  'together_ai',
  'togetherai',
  'together.ai',
  'cohere',
  'ibm.watsonx.ai',
  'perplexity',
] as const;

/** `normalizeProviderName(column)` in SQL. */
export function providerNameSqlExpression(column: string): string {
  const base = lowerTrimSqlExpression(column);
  const changed = PROVIDER_SPELLINGS.filter((name) => normalizeProviderName(name) !== name);
  if (changed.length === 0) return base;
  const from = changed.map(sqlString).join(', ');
  const to = changed.map((name) => sqlString(normalizeProviderName(name))).join(', ');
  return `transform(${base}, [${from}], [${to}], ${base})`;
}
