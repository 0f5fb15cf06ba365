/**
 * `@modelmaxx/pricing`'s model and provider name normalisation as ClickHouse SQL,
 * so the `llm_calls` view prices a span exactly like `costOf` would.
 * Built from the pricing package's own rewrite list (`MODEL_NAME_REWRITES`) and
 * alias table (`PROVIDER_ALIASES`, what `normalizeProviderName` reads); `test/store-calls.test.ts`
 * ("normalise exactly like @modelmaxx/pricing") compares the SQL with the TypeScript on every catalog
 * model and every alias spelling.
 */
import { MODEL_NAME_REWRITES, PROVIDER_ALIASES } from '@modelmaxx/pricing';

/** A ClickHouse string literal (single quotes, backslash escapes). Only for constants of ours. */
function sqlString(value: string): string {
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
const PROVIDER_SPELLINGS: readonly string[] = Object.keys(PROVIDER_ALIASES);

/** How many trailing dotted segments the SQL drops at most (`google.vertex.chat` needs one). */
const PROVIDER_PREFIX_DEPTH = 3;

/**
 * `normalizeProviderName(column)` in SQL, generated from `PROVIDER_ALIASES`: the alias of the
 * trimmed, lower-cased name, else of its longest leading dotted part that is a key
 * (`openai.chat` → `openai`; the SQL drops up to three trailing segments, the TypeScript any
 * number: provider ids have at most three dots), else the name itself. No lambdas, so it runs
 * once per distinct name of a LowCardinality column.
 */
export function providerNameSqlExpression(column: string): string {
  const base = lowerTrimSqlExpression(column);
  const keys = `[${PROVIDER_SPELLINGS.map(sqlString).join(', ')}]`;
  const values = `[${PROVIDER_SPELLINGS.map((name) => sqlString(PROVIDER_ALIASES[name] ?? name)).join(', ')}]`;
  const candidates = [base];
  for (let depth = 1; depth <= PROVIDER_PREFIX_DEPTH; depth++) {
    candidates.push(`replaceRegexpOne(${candidates[depth - 1]}, '\\.[^.]*$', '')`);
  }
  let expression = base;
  for (const candidate of candidates.reverse()) {
    expression = `transform(${candidate}, ${keys}, ${values}, ${expression})`;
  }
  return expression;
}
