/**
 * `SpanStore` over a `ClickHouseEngine` (embedded chDB or a server), composed of one part per
 * job: schema migration and prices (`migration.ts`), the writer lifecycle (`span-writer.ts`),
 * feedback (`feedback.ts`), stats (`stats.ts`) and the read-only ad-hoc SQL gate
 * (`sql-gate.ts`). All SQL is built from fixed text, whitelisted identifiers and
 * `{name:Type}` query parameters.
 */
import type { PriceRow } from '@modelmaxx/pricing';
import type { Feedback, StatsQuery, StatsResponse } from '@modelmaxx/semconv/schemas';
import { tableNames } from '../schema/schema.js';
import type { SchemaOptions } from '../schema/schema.js';
import type { ClickHouseEngine, ClickHouseSettings, QueryResult } from './engine.js';
import { FeedbackScores } from './feedback.js';
import { SchemaMigration } from './migration.js';
import { SpanWriter } from './span-writer.js';
import type { SpanWriterOptions } from './span-writer.js';
import type {
  FeedbackOutcome,
  Readiness,
  SpanRow,
  SpanStore,
  SqlOptions,
  SqlResult,
  WriteResult,
} from './span-store.js';
import { ReadOnlySql } from './sql-gate.js';
import { StatsQueries } from './stats.js';

export interface ClickHouseStoreOptions extends SchemaOptions, SpanWriterOptions {
  engine: ClickHouseEngine;
  /** Rows for `llm_prices`, loaded by `migrate()` (see `llmPriceRows` of `@modelmaxx/pricing`). */
  priceRows?: readonly PriceRow[];
}

export class ClickHouseStore implements SpanStore {
  readonly engine: ClickHouseEngine;
  readonly database: string;
  private readonly priceRows: readonly PriceRow[] | undefined;
  private readonly migration: SchemaMigration;
  private readonly writer: SpanWriter;
  private readonly feedback: FeedbackScores;
  private readonly statsQueries: StatsQueries;
  private readonly sql: ReadOnlySql;

  constructor(options: ClickHouseStoreOptions) {
    const tables = tableNames(options);
    this.engine = options.engine;
    this.database = options.database ?? 'modelmaxx';
    this.priceRows = options.priceRows;
    this.migration = new SchemaMigration(this.engine, options);
    this.writer = new SpanWriter(this.engine, tables.traces, options);
    this.feedback = new FeedbackScores(this.engine, tables, this.writer);
    this.statsQueries = new StatsQueries(this.engine, tables);
    this.sql = new ReadOnlySql(this.engine, this.database);
  }

  /** Creates or upgrades the schema and loads the price rows; call before `start()`. */
  migrate(): Promise<void> {
    return this.migration.migrate(this.priceRows);
  }

  /** Starts the writer (and replays the spool). Call after `migrate()`. */
  async start(): Promise<void> {
    await this.writer.start();
  }

  write(rows: SpanRow[]): Promise<WriteResult> {
    return this.writer.write(rows);
  }

  writeNative(block: Buffer, rows: number): Promise<WriteResult> {
    return this.writer.writeNative(block, rows);
  }

  /** Waits until every acknowledged span is in ClickHouse (or `timeoutMs` passed). */
  flush(timeoutMs?: number): Promise<boolean> {
    return this.writer.flush(timeoutMs);
  }

  insertFeedback(feedback: Feedback): Promise<FeedbackOutcome> {
    return this.feedback.insert(feedback);
  }

  query<Row = Record<string, unknown>>(
    sql: string,
    params?: Record<string, unknown>,
    settings?: ClickHouseSettings,
  ): Promise<QueryResult<Row>> {
    return this.engine.query<Row>(sql, params, settings);
  }

  stats(query: StatsQuery): Promise<StatsResponse> {
    return this.statsQueries.stats(query);
  }

  querySql(sql: string, options: SqlOptions): Promise<SqlResult> {
    return this.sql.query(sql, options);
  }

  /** Ad-hoc queries running and waiting in the SQL lane now. */
  sqlQueue(): { running: number; waiting: number } {
    return this.sql.queue();
  }

  metrics(): Record<string, number> {
    return this.writer.metrics();
  }

  readiness(): Promise<Readiness> {
    return this.writer.readiness();
  }

  async close(): Promise<void> {
    await this.writer.close();
    await this.engine.close();
  }
}
