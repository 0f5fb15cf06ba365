/**
 * The `modelmaxx` command: the composition root that wires the collector,
 * the router, the instrumentation and llm-sim together.
 */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { openStore, schemaStatements, serve } from '@modelmaxx/collector';
import { ALERTS_HELP, alertsCommand } from './alerts-command.js';
import { demoCommand } from './demo-command.js';
import { SAVINGS_HELP, savingsCommand } from './savings-command.js';
import {
  GATEWAY_HELP,
  SERVE_GATEWAY_HELP,
  gatewayCommand,
  serveWithGateway,
  splitServeArgs,
} from './gateway-command.js';
import { formatResult, OUTPUT_FORMATS } from './format.js';
import type { OutputFormat } from './format.js';
import {
  collectorUrl,
  openDataFolder,
  openSource,
  QueryFailedError,
  UsageError,
} from './query-source.js';
import {
  baselinePriceSql,
  parseBaseline,
  parseGroup,
  parseSince,
  presentReport,
  reportSql,
} from './report.js';
import type { QueryResult } from './query-source.js';

const USAGE = `Usage: modelmaxx <command> [options]      (modelmaxx <command> --help for its options)

Commands:
  serve                 run the collector (OTLP/HTTP on 127.0.0.1:4318, embedded ClickHouse)
      --port N  --host H  --data DIR (default ./.modelmaxx)  --clickhouse-url URL  --database NAME
      --max-body-bytes N  --log-level LEVEL
      --gateway  --upstream NAME=URL  --config FILE (the gateway on the same port, see gateway)
  gateway               OpenAI/Anthropic-compatible gateway alone (127.0.0.1:4000, spans over OTLP)
      --upstream NAME=URL (repeatable)  --config FILE  --host H  --port N  --service-name NAME
  sql "<query>"         read-only SQL against a collector (--url, default http://127.0.0.1:4318)
                        or a data folder (--data DIR); --format table|json|csv  --max-rows N
  report                spend / calls / tokens / p95 latency / errors / quality / share of spend
      --since 24h  --by model|provider|service|task|feature|user|team|key|app  --baseline MODEL (savings against
                        sending the same tokens to MODEL)  --url URL | --data DIR  --format  --database
  savings               what routing saved against each policy's reference model, net of shadow and
                        judge spend, with the quality difference and its 95% interval
      --window 24h  --by policy,class,feature,model  --url URL | --data DIR  --format
  migrate               create or upgrade the schema
      --clickhouse-url URL | --data DIR  --database NAME  --cluster NAME  --print (only print the DDL)
  demo                  simulated traffic (3 services, router, evaluators, feedback) into a collector;
                        starts one in-process (--data, default ./.modelmaxx) when none answers at --url
      --url URL (default http://127.0.0.1:4318)  --requests N (default 300)  --seed N  --exit
  alerts test           send a sample alert to the gateway config's webhooks
      --config FILE  --webhook URL (repeatable)  --attempts N

Environment: MODELMAXX_URL (the collector for sql, report, savings, demo when --url is not given),
MODELMAXX_READ_TOKEN (sql, report, savings), MODELMAXX_INGEST_TOKEN / MODELMAXX_READ_TOKEN (serve, demo).
Exit codes: 0 ok, 1 failed, 2 usage error.
`;

const URL_HELP = `  --url URL             the collector to ask (its read-only /api/sql); default $MODELMAXX_URL,
                        else http://127.0.0.1:4318
  --data DIR            or read a data folder directly (embedded ClickHouse; only while no
                        collector holds it)`;

/** `modelmaxx <command> --help`: every flag of the command. */
export const COMMAND_HELP: Record<string, string> = {
  alerts: ALERTS_HELP,
  savings: SAVINGS_HELP,
  serve: `Usage: modelmaxx serve [options]

Runs the collector: OTLP/HTTP spans in on /v1/traces, stored in ClickHouse (embedded chDB in
--data, or a server with --clickhouse-url); the dashboard on /, SQL on /api/sql.

Options (flag, or environment variable):
  --host H              MODELMAXX_HOST; default 127.0.0.1 (other hosts need both tokens)
  --port N              MODELMAXX_PORT; default 4318 (0: any free port)
  --data DIR            MODELMAXX_DATA_DIR; default ./.modelmaxx (ClickHouse files and the spool)
  --clickhouse-url URL  MODELMAXX_CLICKHOUSE_URL; a ClickHouse server instead of the embedded one
                        (MODELMAXX_CLICKHOUSE_USER, MODELMAXX_CLICKHOUSE_PASSWORD)
  --database NAME       MODELMAXX_DATABASE; default modelmaxx
  --max-body-bytes N    MODELMAXX_MAX_BODY_BYTES; largest request body, default 16 MiB
  --log-level LEVEL     MODELMAXX_LOG_LEVEL; fatal, error, warn, info (default), debug, trace, silent
${SERVE_GATEWAY_HELP}
  -h, --help            this text

Environment only: MODELMAXX_INGEST_TOKEN (bearer token for /v1/traces), MODELMAXX_READ_TOKEN
(for /api/*), MODELMAXX_MAX_CONCURRENT_REQUESTS (64), MODELMAXX_SQL_MAX_ROWS (10000),
MODELMAXX_SQL_MAX_EXECUTION_SECONDS (10).

Apps send spans with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (the base URL: the
exporter appends /v1/traces). Stops on SIGTERM / Ctrl-C after draining. Exit codes: 0 stopped,
1 failed, 2 bad configuration.
`,
  sql: `Usage: modelmaxx sql "<query>" [options]

Runs one read-only query (SELECT / WITH) and prints the result; tables are in the modelmaxx
database (llm_calls, llm_scores, otel_traces, llm_prices, rollups).

Options:
${URL_HELP}
  --format F            table (default), json (one object a line) or csv
  --max-rows N          cut the result at N rows (default 100000)
  -h, --help            this text

Environment: MODELMAXX_URL, MODELMAXX_READ_TOKEN (the collector's read token).
Exit codes: 0 ok, 1 the query or the collector failed, 2 usage error.
`,
  report: `Usage: modelmaxx report [options]

Spend, calls, unpriced calls, tokens, p95 latency, error rate, mean quality and share of spend per
group over a window, from llm_calls and llm_scores. In the table, money is rounded to cents from
$1 up and to three significant digits below; a group whose calls have no price says "unpriced".
json and csv keep the amounts as numbers (null when unpriced).

Options:
  --since D             window: a number and s, m, h, d or w (default 24h)
  --by G                model (default), provider, service, task, feature or user; the gateway's
                        team, key (id) or app (calls not made through it: an empty group)
  --baseline MODEL      add baseline_usd (the same tokens at MODEL's catalog prices) and savings
  --database NAME       default modelmaxx
${URL_HELP}
  --format F            table (default), json or csv
  --max-rows N          cut the result at N rows (default 100000)
  -h, --help            this text

Environment: MODELMAXX_URL, MODELMAXX_READ_TOKEN.
Exit codes: 0 ok, 1 the query or the collector failed, 2 usage error.
`,
  migrate: `Usage: modelmaxx migrate [options]

Creates or upgrades the schema (idempotent), in a data folder or on a ClickHouse server.

Options:
  --data DIR            the embedded ClickHouse of this data folder (default ./.modelmaxx)
  --clickhouse-url URL  a ClickHouse server instead (or MODELMAXX_CLICKHOUSE_URL; user and password
                        from MODELMAXX_CLICKHOUSE_USER, MODELMAXX_CLICKHOUSE_PASSWORD)
  --database NAME       default modelmaxx
  --cluster NAME        ON CLUSTER schema (replicated tables and Distributed tables)
  --print               only print the DDL, touch nothing
  -h, --help            this text

Exit codes: 0 ok, 1 failed, 2 usage error.
`,
  gateway: GATEWAY_HELP,
  demo: `Usage: modelmaxx demo [options]

Sends simulated traffic (3 services, router, evaluators, feedback) from llm-sim through the
instrumentation into a collector; starts one in this process when none answers at --url.

Options:
  --url URL             the collector (default $MODELMAXX_URL, else http://127.0.0.1:4318)
  --data DIR            data folder of the collector started here (default ./.modelmaxx)
  --requests N          requests to send (default 300)
  --seed N              random seed (default 1)
  --exit                exit after the traffic even when the collector runs here
  -h, --help            this text

Environment: MODELMAXX_URL, MODELMAXX_INGEST_TOKEN, MODELMAXX_READ_TOKEN.
Exit codes: 0 ok, 1 no call stored, 2 usage error.
`,
};

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

/** `--data DIR`, or the collector of `--url` / `MODELMAXX_URL` (checked); both flags is an error. */
function sourceOf(
  values: { url?: string | undefined; data?: string | undefined },
  io: Io,
): { url?: string; data?: string; token: string | undefined } {
  const token = io.env['MODELMAXX_READ_TOKEN'];
  if (values.data !== undefined) {
    if (values.url !== undefined) throw new UsageError('give --url or --data, not both');
    return { data: values.data, token };
  }
  return { url: collectorUrl(values.url, io.env), token };
}

async function runQuery(
  sql: string,
  values: {
    url?: string | undefined;
    data?: string | undefined;
    format?: string | undefined;
    'max-rows'?: string | undefined;
  },
  io: Io,
  present: (result: QueryResult, format: OutputFormat) => QueryResult = (result) => result,
): Promise<number> {
  const format = parseFormat(values.format);
  const maxRows = values['max-rows'] === undefined ? undefined : Number(values['max-rows']);
  if (maxRows !== undefined && (!Number.isInteger(maxRows) || maxRows <= 0)) {
    throw new UsageError('--max-rows takes a positive whole number');
  }
  const source = await openSource({
    ...sourceOf(values, io),
    ...(maxRows === undefined ? {} : { maxRows }),
  });
  try {
    const result = await source.query(sql);
    io.stdout(formatResult(present(result, format), format));
    if (result.truncated) {
      const limit =
        result.truncatedBy === 'maxResultBytes'
          ? ' (the size limit of a result, MODELMAXX_SQL_MAX_RESULT_BYTES)'
          : '';
      io.stderr(`modelmaxx: result cut at ${result.rows.length} rows${limit}\n`);
    }
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
    const source = await openSource(sourceOf(values, io));
    try {
      const price = await source.query(baselinePriceSql(baseline, values.database));
      if (price.rows.length === 0) {
        throw new UsageError(`--baseline: no catalog price for model "${baseline}" in llm_prices`);
      }
    } finally {
      await source.close();
    }
  }
  return runQuery(sql, values, io, presentReport);
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
  const store =
    clickhouseUrl === undefined
      ? await openDataFolder(values.data ?? './.modelmaxx', { ...schema, spoolDir: false })
      : await openStore({
          ...schema,
          clickhouseUrl,
          ...(username === undefined ? {} : { username }),
          ...(password === undefined ? {} : { password }),
          spoolDir: false,
        });
  await store.close();
  io.stdout(
    `modelmaxx: schema is up to date${clickhouseUrl === undefined ? ` in ${values.data ?? './.modelmaxx'}` : ` on ${clickhouseUrl}`}\n`,
  );
  return 0;
}

async function serveCommand(args: string[], io: Io): Promise<number> {
  const split = splitServeArgs(args);
  if (split.gateway) return serveWithGateway(split, io);
  // Unlike --config (exit 2), the variable may be set for another process sharing the environment.
  if ((io.env['MODELMAXX_GATEWAY_CONFIG'] ?? '') !== '') {
    io.stderr(
      'modelmaxx serve: warning: MODELMAXX_GATEWAY_CONFIG is set but ignored: it configures the gateway, which serve runs only with --gateway (this is the collector alone)\n',
    );
  }
  // The collector parses its own flags (--port, --host, --data, --clickhouse-url, …),
  // logs through pino and exits on SIGTERM/SIGINT after draining.
  await serve({ argv: args, env: io.env });
  return 0;
}

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  serve: serveCommand,
  gateway: gatewayCommand,
  sql: sqlCommand,
  report: reportCommand,
  savings: savingsCommand,
  migrate: migrateCommand,
  demo: demoCommand,
  alerts: alertsCommand,
};

/** Runs one command line; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runCli(argv: string[], io: Io = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'help' && rest[0] !== undefined && COMMAND_HELP[rest[0]] !== undefined) {
    io.stdout(COMMAND_HELP[rest[0]] ?? '');
    return 0;
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.stdout(USAGE);
    return command === undefined ? 2 : 0;
  }
  const run = COMMANDS[command];
  const help = COMMAND_HELP[command];
  // `gateway keys … --help` is the keys subcommand's own help (keysCommand prints it).
  const ownHelp = command === 'gateway' && rest[0] === 'keys';
  if (
    run !== undefined &&
    help !== undefined &&
    !ownHelp &&
    rest.some((arg) => arg === '--help' || arg === '-h')
  ) {
    io.stdout(help);
    return 0;
  }
  if (run === undefined) {
    io.stderr(`modelmaxx: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(
        `modelmaxx ${command}: ${error.message}\n(modelmaxx ${command} --help lists the options)\n`,
      );
      return 2;
    }
    if (error instanceof QueryFailedError) {
      io.stderr(`modelmaxx ${command}: ${error.message}\n`);
      return 1;
    }
    io.stderr(`modelmaxx ${command}: ${(error as Error).message}\n`);
    return 1;
  }
}
