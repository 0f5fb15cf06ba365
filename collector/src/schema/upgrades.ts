/**
 * What upgrading an existing database takes, beyond the `CREATE … IF NOT EXISTS` statements:
 * the columns later schema versions added to existing tables, and data migrations.
 *
 * To add a column: write it into the table's file in `sql/tables/` (where it goes), bump
 * `SCHEMA_VERSION` in ./schema.ts, add `{ table, column, addedIn: <new version> }` to
 * `COLUMN_ADDITIONS` below, and raise the `replaceBelowVersion` of the views that fill it.
 */
import type { SchemaStatement } from './schema.js';
import { fillSql, type SqlContext } from './sql-template.js';

/** Columns added after version 1, in the order they are added (`AFTER` the column before them in the table's file). */
const COLUMN_ADDITIONS: readonly { table: string; column: string; addedIn: number }[] = [
  // 3: the canonical model (the view that fills it is re-created after).
  { table: 'llm_calls', column: 'Model', addedIn: 3 },
  // 4: app or evaluation (rows stored before read 'app').
  { table: 'llm_calls', column: 'Purpose', addedIn: 4 },
  // 5: route class, model and reference model (rows stored before read '').
  { table: 'llm_calls', column: 'RouteClass', addedIn: 5 },
  { table: 'llm_calls', column: 'RouteModel', addedIn: 5 },
  { table: 'llm_calls', column: 'RouteReferenceModel', addedIn: 5 },
  // 2: the rollups' DDSketch latency states.
  { table: 'llm_rollup_1m', column: 'LatencyMsDD', addedIn: 2 },
  { table: 'llm_rollup_1h', column: 'LatencyMsDD', addedIn: 2 },
];

/** Data migrations: run when the recorded version is below `below`, after the schema statements. */
const DATA_UPGRADES: readonly { file: string; name: string; below: number }[] = [
  { file: 'upgrades/backfill_llm_calls_model.sql', name: 'backfill llm_calls.Model', below: 3 },
  {
    file: 'upgrades/backfill_llm_rollup_1m_latency_dd.sql',
    name: 'backfill llm_rollup_1m.LatencyMsDD',
    below: 2,
  },
];

/** A column's definition in its table's CREATE statement and the column before it. */
function columnDefinition(
  createTable: string,
  table: string,
  column: string,
): { definition: string; after: string } {
  const lines = createTable.split('\n').map((line) => line.trim().replace(/,$/, ''));
  const index = lines.findIndex((line) => line.split(' ')[0] === column);
  const after = lines[index - 1]?.split(' ')[0];
  if (index < 0 || after === undefined || after === 'CREATE') {
    throw new Error(`the CREATE TABLE of ${table} has no column ${column} after another`);
  }
  return { definition: lines[index]!, after };
}

/**
 * `ALTER TABLE … ADD COLUMN IF NOT EXISTS` for each added column (a no-op on a table `CREATE`
 * just made), on the shards' and the `Distributed` table on a cluster; `addedIn` makes `migrate`
 * skip them unless upgrading: even when the column exists, ClickHouse rewrites the table's
 * metadata file, and on a full disk leaves it empty, so that the database no longer opens.
 */
export function columnAdditions(
  context: SqlContext,
  createTable: (table: string) => string,
): SchemaStatement[] {
  const statements: SchemaStatement[] = [];
  const tables = [...new Set(COLUMN_ADDITIONS.map((addition) => addition.table))];
  for (const table of tables) {
    const create = createTable(table);
    const local = context.local(table);
    const targets = local === context.global(table) ? [local] : [local, context.global(table)];
    for (const target of targets) {
      for (const { column, addedIn } of COLUMN_ADDITIONS.filter((a) => a.table === table)) {
        const { definition, after } = columnDefinition(create, table, column);
        statements.push({
          name: `column ${target.slice(context.database.length + 1)}.${column}`,
          sql: `ALTER TABLE ${target}${context.onCluster} ADD COLUMN IF NOT EXISTS ${definition} AFTER ${after}`,
          addedIn,
        });
      }
    }
  }
  return statements;
}

/** The data migrations an upgrade from `fromVersion` runs (none on a new database). */
export function dataUpgrades(context: SqlContext, fromVersion?: number): SchemaStatement[] {
  if (fromVersion === undefined) return [];
  return DATA_UPGRADES.filter((upgrade) => fromVersion < upgrade.below).map((upgrade) => ({
    name: upgrade.name,
    sql: fillSql(upgrade.file, context),
  }));
}
