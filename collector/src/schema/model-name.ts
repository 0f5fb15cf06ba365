/**
 * `@modelmaxx/pricing`'s model and provider name normalisation as ClickHouse SQL,
 * so the `llm_calls` view prices a span exactly like `costOf` would.
 * Built from the pricing package's own rewrite list (`MODEL_NAME_REWRITES`) and
 * alias table (`PROVIDER_ALIASES`, what `normalizeProviderName` reads); `test/store-model-name.test.ts`
 * compares the SQL with the TypeScript on many names.
 */
import { MODEL_NAME_REWRITES, PROVIDER_ALIASES } from '@modelmaxx/pricing';

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

/** The provider spellings the SQL maps: the keys of `@modelmaxx/pricing`'s `PROVIDER_ALIASES`. */
export const PROVIDER_SPELLINGS: readonly string[] = Object.keys(PROVIDER_ALIASES);

/**
 * `normalizeProviderName(column)` in SQL, generated from `PROVIDER_ALIASES`: the alias of the
 * trimmed, lower-cased name, else of its longest leading dotted part that is a key
 * (`openai.chat` → `openai`), else the name itself.
 */
export function providerNameSqlExpression(column: string): string {
  const base = lowerTrimSqlExpression(column);
  const keys = PROVIDER_SPELLINGS.map(sqlString).join(', ');
  const values = PROVIDER_SPELLINGS.map((name) => sqlString(PROVIDER_ALIASES[name] ?? name)).join(
    ', ',
  );
  const parts = `splitByChar('.', ${base})`;
  const prefixes = `arrayMap(k -> arrayStringConcat(arraySlice(${parts}, 1, k), '.'), arrayReverseSort(range(1, length(${parts}) + 1)))`;
  const key = `arrayFirst(p -> has([${keys}], p), ${prefixes})`;
  return `transform(${key}, [${keys}], [${values}], ${base})`;
}
