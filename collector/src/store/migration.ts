/**
 * Schema migration and price loading: what `ClickHouseStore.migrate()` runs. Creates or
 * upgrades the tables, views and dictionaries (`../schema/`), records the schema version,
 * and loads the `llm_prices` rows the `llm_calls` view prices calls with.
 */
import type { PriceRow } from '@modelmaxx/pricing';
import {
  SCHEMA_VERSION,
  schemaStatements,
  tableNames,
  upgradeStatements,
} from '../schema/schema.js';
import type { SchemaOptions, SchemaStatement } from '../schema/schema.js';
import type { ClickHouseEngine } from './engine.js';

/** Fully qualified names of the collector's tables (`tableNames`). */
export type TableNames = ReturnType<typeof tableNames>;

/** The `llm_prices` columns that make a stored row the same row (all but `LoadedAt`). */
const PRICE_IDENTITY = [
  'Provider',
  'KeyKind',
  'Model',
  'Version',
  'InputPerMTok',
  'OutputPerMTok',
  'CacheReadPerMTok',
  'CacheWritePerMTok',
  'ReasoningPerMTok',
  'CatalogModel',
  'Rank',
] as const;

/** A price row's identity as one string (prices and rank compared as numbers). */
const priceIdentity = (row: Record<string, unknown>): string =>
  JSON.stringify(
    PRICE_IDENTITY.map((column) =>
      column === 'Rank' || column.endsWith('PerMTok') ? Number(row[column]) : row[column],
    ),
  );

export class SchemaMigration {
  private readonly engine: ClickHouseEngine;
  private readonly schema: SchemaOptions;
  private readonly tables: TableNames;

  constructor(engine: ClickHouseEngine, schema: SchemaOptions) {
    this.engine = engine;
    this.schema = schema;
    this.tables = tableNames(schema);
  }

  /** Creates or upgrades the schema (idempotent), then loads `priceRows` when given. */
  async migrate(priceRows: readonly PriceRow[] | undefined): Promise<void> {
    const recorded = await this.recordedVersion();
    for (const statement of schemaStatements(this.schema)) {
      if (
        recorded !== undefined &&
        statement.addedIn !== undefined &&
        recorded >= statement.addedIn
      )
        continue;
      await this.dropReplaced(statement, recorded);
      await this.engine.command(statement.sql);
    }
    for (const statement of upgradeStatements(this.schema, recorded))
      await this.engine.command(statement.sql);
    if (recorded !== SCHEMA_VERSION) {
      await this.engine.command(
        `INSERT INTO ${this.tables.migrations} (Version, AppliedAt, Description) VALUES ({version:UInt32}, now64(3), {description:String})`,
        { version: SCHEMA_VERSION, description: `modelmaxx schema v${SCHEMA_VERSION}` },
      );
    }
    if (priceRows !== undefined) await this.loadPrices(priceRows);
    await this.reloadPriceDictionaries();
  }

  /** Drops what a statement replaces when the recorded schema is older than its replacement. */
  private async dropReplaced(statement: SchemaStatement, recorded: number | undefined) {
    if (
      recorded !== undefined &&
      statement.replaceBelowVersion !== undefined &&
      recorded < statement.replaceBelowVersion &&
      statement.dropFirst !== undefined
    ) {
      await this.engine.command(
        `DROP ${statement.dropFirst.kind} IF EXISTS ${statement.dropFirst.name}${this.onCluster()}`,
      );
    }
  }

  /** The `llm_calls` view reads prices through dictionaries; reload them after the prices changed. */
  async reloadPriceDictionaries(): Promise<void> {
    for (const dictionary of [this.tables.priceKeys, this.tables.priceEntries]) {
      await this.engine.command(`SYSTEM RELOAD DICTIONARY ${dictionary}${this.onCluster()}`);
    }
  }

  private onCluster(): string {
    return this.schema.cluster === undefined ? '' : ` ON CLUSTER ${this.schema.cluster}`;
  }

  private async recordedVersion(): Promise<number | undefined> {
    const exists = await this.engine.query<{ present: string | number }>(
      'SELECT count() AS present FROM system.tables WHERE database = {database:String} AND name = {table:String}',
      { database: this.schema.database ?? 'modelmaxx', table: 'schema_migrations' },
    );
    if (Number(exists.data[0]?.present ?? 0) === 0) return undefined;
    const result = await this.engine.query<{ version: string | number | null }>(
      `SELECT max(Version) AS version FROM ${this.tables.migrations}`,
    );
    const version = result.data[0]?.version;
    return version === null || version === undefined || Number(version) === 0
      ? undefined
      : Number(version);
  }

  /** Inserts the price rows that are not stored yet (same key, version and prices). */
  async loadPrices(rows: readonly PriceRow[]): Promise<number> {
    const existing = await this.engine.query<Record<string, unknown>>(
      `SELECT ${PRICE_IDENTITY.join(', ')} FROM ${this.tables.prices} FINAL`,
    );
    const stored = new Set(existing.data.map(priceIdentity));
    const missing = rows.filter(
      (row) => !stored.has(priceIdentity(row as unknown as Record<string, unknown>)),
    );
    if (missing.length === 0) return 0;
    const loadedAt = (Date.now() / 1000).toFixed(3);
    const body = Buffer.from(
      missing.map((row) => JSON.stringify({ ...row, LoadedAt: loadedAt })).join('\n') + '\n',
    );
    await this.engine.insert({ table: this.tables.prices, format: 'JSONEachRow', body });
    await this.reloadPriceDictionaries();
    return missing.length;
  }
}
