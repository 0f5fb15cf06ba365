/**
 * Model and provider name normalisation, twice: once in TypeScript (used when the
 * price catalog is loaded into `llm_prices`) and once as a ClickHouse SQL
 * expression (used by the `llm_calls` materialized view to find a span's price).
 * Both must agree on every name; `test/store-model-name.test.ts` checks that they
 * do, and that they agree with `@modelmaxx/pricing`'s `normalizeModelName`.
 *
 * Rules (applied in order, on the lower-cased, trimmed name):
 * 1. drop a routing prefix up to the last `/` (`openai/gpt-4o`, `models/gemini-1.5-pro`);
 * 2. drop a Bedrock vendor prefix (`anthropic.`, `meta.`, `amazon.`, `cohere.`, `mistral.`, `ai21.`)
 *    and a region prefix before it (`us.`, `eu.`, `apac.`);
 * 3. drop a Bedrock version suffix (`-v1:0`, `-v2`, `:0`);
 * 4. drop a dated snapshot suffix: `-2024-08-06`, `-20240620`, `@20240620`, `-0613`, `-latest`.
 */

const ROUTING_PREFIX = /^.*\//;
const BEDROCK_PREFIX =
  /^(?:(?:us|eu|apac|global)\.)?(?:anthropic|meta|amazon|cohere|mistral|ai21|deepseek|openai)\./;
const BEDROCK_VERSION = /(?:-v\d+(?::\d+)?|:\d+)$/;
const SNAPSHOT_SUFFIX = /(?:[-@]\d{4}-\d{2}-\d{2}|[-@]\d{8}|-\d{4}|-latest)$/;

export function normalizeModelNameForSql(model: string): string {
  let name = model.trim().toLowerCase();
  name = name.replace(ROUTING_PREFIX, '');
  name = name.replace(BEDROCK_PREFIX, '');
  name = name.replace(BEDROCK_VERSION, '');
  name = name.replace(SNAPSHOT_SUFFIX, '');
  return name;
}

export function normalizeProviderNameForSql(provider: string): string {
  const name = provider.trim().toLowerCase();
  return PROVIDER_ALIASES[name] ?? name;
}

/** Provider spellings seen in `gen_ai.provider.name` / `gen_ai.system` mapped to one key. */
const PROVIDER_ALIASES: Record<string, string> = {
  'az.ai.openai': 'azure.ai.openai',
  azure_openai: 'azure.ai.openai',
  'aws.bedrock': 'aws.bedrock',
  bedrock: 'aws.bedrock',
  'gcp.vertex_ai': 'gcp.vertex_ai',
  vertex_ai: 'gcp.vertex_ai',
  'gcp.gemini': 'gcp.gemini',
  gemini: 'gcp.gemini',
  google: 'gcp.gemini',
  mistral: 'mistral_ai',
  mistralai: 'mistral_ai',
  'x.ai': 'x_ai',
  xai: 'x_ai',
};

/** ClickHouse's re2 dialect of the same patterns (no lookarounds needed). */
export function modelNameSqlExpression(column: string): string {
  const steps: [RegExp, string][] = [
    [ROUTING_PREFIX, ''],
    [BEDROCK_PREFIX, ''],
    [BEDROCK_VERSION, ''],
    [SNAPSHOT_SUFFIX, ''],
  ];
  let expression = `lower(trimBoth(${column}))`;
  for (const [pattern] of steps) {
    expression = `replaceRegexpOne(${expression}, ${sqlString(pattern.source)}, '')`;
  }
  return expression;
}

export function providerNameSqlExpression(column: string): string {
  const keys = Object.keys(PROVIDER_ALIASES);
  const values = keys.map((key) => PROVIDER_ALIASES[key] ?? key);
  const base = `lower(trimBoth(${column}))`;
  return `transform(${base}, [${keys.map(sqlString).join(', ')}], [${values.map(sqlString).join(', ')}], ${base})`;
}

/** A ClickHouse string literal (single quotes, backslash escapes). Only for constants of ours. */
export function sqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
