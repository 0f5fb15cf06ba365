/**
 * The `modelmaxx` command: the composition root that wires the collector,
 * the router, the instrumentation and llm-sim together.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { openStore, schemaStatements, serve } from '@modelmaxx/collector';
import { demoCommand } from './demo-command.js';
import { formatResult, OUTPUT_FORMATS } from './format.js';
import type { OutputFormat } from './format.js';
import { openSource, QueryFailedError, UsageError } from './query-source.js';
import { baselinePriceSql, parseBaseline, parseGroup, parseSince, reportSql } from './report.js';

const USAGE = `Usage: modelmaxx <command> [options]

Commands:
  serve                 run the collector (OTLP/HTTP on 127.0.0.1:4318, embedded ClickHouse)
      --port N  --host H  --data DIR (default ./.modelmaxx)  --clickhouse-url URL
  sql "<query>"         read-only SQL against a collector (--url, default http://127.0.0.1:4318)
                        or a data folder (--data DIR); --format table|json|csv
  report                spend / calls / tokens / p95 latency / errors / quality / share of spend
      --since 24h  --by model|provider|service|task|feature|user  --baseline MODEL (savings against
                        sending the same tokens to MODEL)  --url URL | --data DIR  --format
  migrate               create or upgrade the schema
      --clickhouse-url URL | --data DIR  --database NAME  --cluster NAME  --print (only print the DDL)
  demo                  simulated traffic (3 services, router, evaluators, feedback) into a collector;
                        starts one in-process (--data, default ./.modelmaxx) when none answers at --url
      --url URL (default http://127.0.0.1:4318)  --requests N (default 300)  --seed N  --exit

Tokens: MODELMAXX_READ_TOKEN (sql, report), MODELMAXX_INGEST_TOKEN / MODELMAXX_READ_TOKEN (serve).
`;

interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
}

const defaultIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: T,
  allowPositionals: boolean,
) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function parseFormat(text: string | undefined): OutputFormat {
  const format = text ?? 'table';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(
      `--format takes ${OUTPUT_FORMATS.join(', ')}; got ${JSON.stringify(format)}`,
    );
  }
  return format as OutputFormat;
}

const sourceOptions = {
  url: { type: 'string' },
  data: { type: 'string' },
  format: { type: 'string' },
  'max-rows': { type: 'string' },
} as const;

async function runQuery(
  sql: string,
  values: {
    url?: string | undefined;
    data?: string | undefined;
    format?: string | undefined;
    'max-rows'?: string | undefined;
  },
  io: Io,
): Promise<number> {
  const format = parseFormat(values.format);
  const maxRows = values['max-rows'] === undefined ? undefined : Number(values['max-rows']);
  if (maxRows !== undefined && (!Number.isInteger(maxRows) || maxRows <= 0)) {
    throw new UsageError('--max-rows takes a positive whole number');
  }
  const source = await openSource({
    url: values.url,
    data: values.data,
    token: io.env['MODELMAXX_READ_TOKEN'],
    ...(maxRows === undefined ? {} : { maxRows }),
  });
  try {
    const result = await source.query(sql);
    io.stdout(formatResult(result, format));
    if (result.truncated) io.stderr(`modelmaxx: result cut at ${result.rows.length} rows\n`);
    return 0;
  } finally {
    await source.close();
  }
}

async function sqlCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, sourceOptions, true);
  if (positionals.length !== 1) throw new UsageError('modelmaxx sql takes one query, in quotes');
  return runQuery(positionals[0] ?? '', values, io);
}

async function reportCommand(args: string[], io: Io): Promise<number> {
  const { values } = parse(
    args,
    {
      ...sourceOptions,
      since: { type: 'string' },
      by: { type: 'string' },
      database: { type: 'string' },
      baseline: { type: 'string' },
    },
    false,
  );
  const baseline = values.baseline === undefined ? undefined : parseBaseline(values.baseline);
  const sql = reportSql({
    by: parseGroup(values.by ?? 'model'),
    sinceSeconds: parseSince(values.since ?? '24h'),
    ...(values.database === undefined ? {} : { database: values.database }),
    ...(baseline === undefined ? {} : { baseline }),
  });
  if (baseline !== undefined) {
    // An unknown baseline would make every savings figure empty: say so instead.
    const source = await openSource({
      url: values.url,
      data: values.data,
      token: io.env['MODELMAXX_READ_TOKEN'],
    });
    try {
      const price = await source.query(baselinePriceSql(baseline, values.database));
      if (price.rows.length === 0) {
        throw new UsageError(`--baseline: no catalog price for model "${baseline}" in llm_prices`);
      }
    } finally {
      await source.close();
    }
  }
  return runQuery(sql, values, io);
}

async function migrateCommand(args: string[], io: Io): Promise<number> {
  const { values } = parse(
    args,
    {
      'clickhouse-url': { type: 'string' },
      data: { type: 'string' },
      database: { type: 'string' },
      cluster: { type: 'string' },
      print: { type: 'boolean' },
    },
    false,
  );
  const schema = {
    ...(values.database === undefined ? {} : { database: values.database }),
    ...(values.cluster === undefined ? {} : { cluster: values.cluster }),
  };
  if (values.print === true) {
    for (const statement of schemaStatements(schema))
      io.stdout(`-- ${statement.name}\n${statement.sql};\n\n`);
    return 0;
  }
  const clickhouseUrl = values['clickhouse-url'] ?? io.env['MODELMAXX_CLICKHOUSE_URL'];
  const username = io.env['MODELMAXX_CLICKHOUSE_USER'];
  const password = io.env['MODELMAXX_CLICKHOUSE_PASSWORD'];
  const store = await openStore({
    ...schema,
    ...(clickhouseUrl === undefined ? {} : { clickhouseUrl }),
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(values.data === undefined ? {} : { dataDir: join(values.data, 'data') }),
    spoolDir: false,
  });
  await store.close();
  io.stdout(
    `modelmaxx: schema is up to date${clickhouseUrl === undefined ? ` in ${values.data ?? './.modelmaxx'}` : ` on ${clickhouseUrl}`}\n`,
  );
  return 0;
}

async function serveCommand(args: string[], io: Io): Promise<number> {
  // The collector parses its own flags (--port, --host, --data, --clickhouse-url, …),
  // logs through pino and exits on SIGTERM/SIGINT after draining.
  await serve({ argv: args, env: io.env });
  return 0;
}

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  serve: serveCommand,
  sql: sqlCommand,
  report: reportCommand,
  migrate: migrateCommand,
  demo: demoCommand,
};

/** Runs one command line; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runCli(argv: string[], io: Io = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.stdout(USAGE);
    return command === undefined ? 2 : 0;
  }
  const run = COMMANDS[command];
  if (run === undefined) {
    io.stderr(`modelmaxx: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`modelmaxx ${command}: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    if (error instanceof QueryFailedError) {
      io.stderr(`${error.message}\n`);
      return 1;
    }
    io.stderr(`modelmaxx ${command}: ${(error as Error).message}\n`);
    return 1;
  }
}
