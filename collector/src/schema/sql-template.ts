/**
 * The loader of the schema's SQL files (`./sql/`): reads a file and fills in its placeholders.
 *
 * | placeholder                  | filled with                                                                |
 * | ---------------------------- | -------------------------------------------------------------------------- |
 * | `{{database}}`               | the database name                                                          |
 * | `{{on_cluster}}`             | ` ON CLUSTER <cluster>`, or nothing on a single node                       |
 * | `{{table}}`                  | (table files) the table created: `<name>_local` for a sharded table on a cluster |
 * | `{{bucket}}`                 | (`tables/llm_rollup.sql`) the rollup's time column, `Minute` or `Hour`     |
 * | `{{local:<table>}}`          | `<database>.<table>`, `<database>.<table>_local` for a sharded one on a cluster |
 * | `{{engine:<Engine>(<args>)}}` | the engine as written; `Replicated<Engine>(<path>, <replica>, <args>)` on a cluster |
 * | `{{ttl:<expression>}}`       | `TTL <expression> + toIntervalDay(<ttlDays>)`, or nothing                  |
 * | `{{dedup_window}}`           | `, non_replicated_deduplication_window = 10000` on a single node           |
 * | `{{latency_dd_parameters}}`  | the rollups' `quantilesDD` parameters                                      |
 * | `{{provider_name:<expr>}}`, `{{model_name:<expr>}}`, `{{lower_trim:<expr>}}` | `@modelmaxx/pricing`'s name normalisation as SQL (./model-name.ts) |
 *
 * A placeholder alone on its line that fills to nothing takes its line with it; the file's
 * leading `--` comment is not part of the statement. Every `SpanAttributes['…']` /
 * `EventAttributes['…']` key a file reads must be a name `@modelmaxx/semconv` exports, so the
 * attribute names keep one source.
 */
import { readFileSync } from 'node:fs';
import * as semconv from '@modelmaxx/semconv';
import {
  lowerTrimSqlExpression,
  modelNameSqlExpression,
  providerNameSqlExpression,
} from './model-name.js';

/** Relative accuracy and levels of the rollups' `LatencyMsDD` state. */
export const LATENCY_DD_PARAMETERS = '0.01, 0.5, 0.95, 0.99';

/**
 * `src/schema/sql/` of this package, from `src/schema/` (the workspace, tests) and from
 * `dist/schema/` alike: tsc does not copy `.sql` files, and the published package ships `src`.
 */
const SQL_DIR = new URL('../../src/schema/sql/', import.meta.url);

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkIdentifier(value: string, what: string): string {
  if (!IDENTIFIER.test(value)) {
    throw new Error(`${what} must match ${IDENTIFIER.source}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Names and settings a statement is filled in with. */
export interface SqlContext {
  database: string;
  cluster: string | undefined;
  /** ` ON CLUSTER <cluster>`, or `''`. */
  onCluster: string;
  ttlDays: number | undefined;
  /** The name of the table that holds rows on this node (`_local` on a cluster for sharded tables). */
  local(table: string): string;
  /** The name queries and inserts use. */
  global(table: string): string;
}

export function sqlContext(
  options: { database?: string; cluster?: string; ttlDays?: number },
  shardedTables: ReadonlySet<string>,
): SqlContext {
  const database = checkIdentifier(options.database ?? 'modelmaxx', 'database');
  const cluster =
    options.cluster === undefined ? undefined : checkIdentifier(options.cluster, 'cluster');
  return {
    database,
    cluster,
    onCluster: cluster === undefined ? '' : ` ON CLUSTER ${cluster}`,
    ttlDays: options.ttlDays,
    local: (table) =>
      cluster !== undefined && shardedTables.has(table)
        ? `${database}.${table}_local`
        : `${database}.${table}`,
    global: (table) => `${database}.${table}`,
  };
}

/** The table a table file creates. */
export interface TableTarget {
  /** `otel_traces`, or `otel_traces_local` for the shards' table on a cluster. */
  name: string;
  sharded: boolean;
  /** `{{bucket}}` of the rollups' shared file: `Minute` or `Hour`. */
  bucket?: string;
}

const SEMCONV_NAMES: ReadonlySet<string> = new Set(
  (Object.values(semconv) as unknown[]).filter(
    (value): value is string => typeof value === 'string',
  ),
);
const ATTRIBUTE_KEY = /\b(?:SpanAttributes|EventAttributes)\['([^'\\]*)'\]/g;
const LEADING_COMMENT = /^(?:--[^\n]*\n)+/;

const files = new Map<string, string>();

/** A file's statement (its leading comment cut off), read once; attribute names checked. */
function readSqlFile(file: string): string {
  let text = files.get(file);
  if (text === undefined) {
    text = readFileSync(new URL(file, SQL_DIR), 'utf8').replace(LEADING_COMMENT, '').trimEnd();
    for (const [, key] of text.matchAll(ATTRIBUTE_KEY)) {
      if (!SEMCONV_NAMES.has(key!)) {
        throw new Error(
          `schema file ${file} reads attribute '${key}', which @modelmaxx/semconv does not name`,
        );
      }
    }
    files.set(file, text);
  }
  return text;
}

function engine(argument: string, target: TableTarget | undefined, context: SqlContext): string {
  const match = /^(\w+)\((.*)\)$/.exec(argument);
  if (match === null || target === undefined) throw new Error(`bad {{engine:${argument}}}`);
  if (context.cluster === undefined) return argument;
  const [, kind, engineArguments] = match;
  const extra = engineArguments === '' ? '' : `, ${engineArguments}`;
  // Small tables every node needs in full (prices for the views' joins): one replication group.
  const replication = target.sharded
    ? `'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'`
    : `'/clickhouse/tables/all/{database}/{table}', '{shard}-{replica}'`;
  return `Replicated${kind}(${replication}${extra})`;
}

function ttl(expression: string, context: SqlContext): string {
  const days = context.ttlDays;
  if (days === undefined || days <= 0) return '';
  if (!Number.isInteger(days)) throw new Error('ttlDays must be a whole number of days');
  return `TTL ${expression} + toIntervalDay(${days})`;
}

/**
 * Inserts carry `insert_deduplication_token`, so a batch replayed after a crash is stored once,
 * in the table and in every view's target (replicated tables deduplicate by default; single-node
 * ones need a window).
 */
function dedupWindow(context: SqlContext): string {
  return context.cluster === undefined ? ', non_replicated_deduplication_window = 10000' : '';
}

function placeholder(
  name: string,
  argument: string | undefined,
  context: SqlContext,
  target: TableTarget | undefined,
): string | undefined {
  if (argument === undefined) {
    if (name === 'database') return context.database;
    if (name === 'on_cluster') return context.onCluster;
    if (name === 'table' && target !== undefined) return target.name;
    if (name === 'bucket') return target?.bucket;
    if (name === 'dedup_window') return dedupWindow(context);
    if (name === 'latency_dd_parameters') return LATENCY_DD_PARAMETERS;
    return undefined;
  }
  if (name === 'local') return context.local(checkIdentifier(argument, 'table'));
  if (name === 'engine') return engine(argument, target, context);
  if (name === 'ttl') return ttl(argument, context);
  if (name === 'provider_name') return providerNameSqlExpression(argument);
  if (name === 'model_name') return modelNameSqlExpression(argument);
  if (name === 'lower_trim') return lowerTrimSqlExpression(argument);
  return undefined;
}

const PLACEHOLDER = /\{\{(\w+)(?::([^]*?))?\}\}/g;
const PLACEHOLDER_LINE = /^([ \t]*)\{\{(\w+)(?::([^\n]*?))?\}\}[ \t]*\n/gm;

/**
 * The statement in `file` (relative to `sql/`, e.g. `tables/llm_calls.sql`) with its
 * placeholders filled in; `target` for a table file.
 */
export function fillSql(file: string, context: SqlContext, target?: TableTarget): string {
  const fill = (whole: string, name: string, argument: string | undefined): string => {
    const value = placeholder(name, argument, context, target);
    if (value === undefined) throw new Error(`schema file ${file}: unknown placeholder ${whole}`);
    return value;
  };
  return readSqlFile(file)
    .replace(
      PLACEHOLDER_LINE,
      (whole, indent: string, name: string, argument: string | undefined) => {
        const value = fill(whole.trim(), name, argument);
        return value === '' ? '' : `${indent}${value}\n`;
      },
    )
    .replace(PLACEHOLDER, fill);
}
