/**
 * `modelmaxx savings`: the savings ledger (what routing saved against the policies' reference
 * models, net of shadow and judge spend, and the quality difference with its 95% interval),
 * from a collector's `GET /api/savings` or straight from a data folder.
 */
import { parseArgs } from 'node:util';
import { SavingsQuerySchema, savingsLedger } from '@modelmaxx/collector';
import type { SavingsLedger, SavingsQuery, SavingsRow } from '@modelmaxx/collector';
import { cleanAmount, formatResult, formatUsd, OUTPUT_FORMATS } from './format.js';
import type { OutputFormat, Tabular } from './format.js';
import { collectorUrl, openDataFolder, QueryFailedError, UsageError } from './query-source.js';
import { formatIssues } from '@modelmaxx/semconv';

export const SAVINGS_HELP = `Usage: modelmaxx savings [options]

The savings ledger per policy, class, feature and model over a window: routed calls, share sent
to cheaper models than the policy's reference, spend, what the reference model would have cost
for the same tokens (catalog prices), gross saving, shadow and judge spend (evaluation calls
linked to the policy), net saving, the quality difference against the reference with its 95%
interval and sample size (shadow verdicts), and how often judges agree with user feedback. The
last line is the total (its quality: traffic-weighted over the groups with an estimate).

Options:
  --window W            a number and m, h or d, at most 90d (default 24h)
  --by LIST             comma-separated: policy, class, feature, model (default all four)
  --database NAME       with --data: default modelmaxx
  --url URL             the collector to ask (its /api/savings); default $MODELMAXX_URL,
                        else http://127.0.0.1:4318
  --data DIR            or read a data folder directly (embedded ClickHouse; only while no
                        collector holds it)
  --format F            table (default), json (one object a line) or csv
  -h, --help            this text

Environment: MODELMAXX_URL, MODELMAXX_READ_TOKEN.
Exit codes: 0 ok, 1 the query or the collector failed, 2 usage error.
`;

interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
}

const percent = (value: number | null | undefined) =>
  value === null || value === undefined ? '' : `${(value * 100).toFixed(1)}%`;

function qualityText(row: SavingsRow, format: OutputFormat): unknown {
  if (row.quality === null) return format === 'table' ? '' : null;
  const { difference, halfWidth } = row.quality;
  if (format !== 'table') return difference;
  const points = (value: number) => `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)}`;
  return halfWidth === null
    ? points(difference)
    : `${points(difference)} ± ${(halfWidth * 100).toFixed(1)} pts`;
}

/** The ledger as a table: one line per group, then the total. */
export function savingsTable(ledger: SavingsLedger, format: OutputFormat): Tabular {
  const usd = (value: number) => (format === 'table' ? formatUsd(value) : cleanAmount(value));
  const line = (row: SavingsRow, total: boolean): Record<string, unknown> => ({
    ...Object.fromEntries(
      ledger.groupBy.map((dimension, index) => [
        dimension,
        total ? (index === 0 ? 'total' : '') : (row[dimension] ?? ''),
      ]),
    ),
    reference: row.referenceModel,
    calls: row.calls,
    cheaper: format === 'table' ? percent(row.cheaperShare) : row.cheaperShare,
    spend_usd: usd(row.spendUsd),
    reference_usd: usd(row.referenceUsd),
    gross_usd: usd(row.grossSavingUsd),
    shadow_usd: usd(row.shadowUsd),
    judge_usd: usd(row.judgeUsd),
    net_usd: usd(row.netSavingUsd),
    quality_diff: qualityText(row, format),
    ...(format === 'table'
      ? {}
      : {
          quality_low: row.quality?.low ?? null,
          quality_high: row.quality?.high ?? null,
        }),
    n: row.quality?.samples ?? 0,
    judge_accuracy: row.quality?.corrected ? row.quality.judgeAccuracy?.value : null,
    judge_feedback_agree:
      row.agreement === null
        ? format === 'table'
          ? ''
          : null
        : format === 'table'
          ? `${percent(row.agreement.rate)} of ${row.agreement.pairs}`
          : row.agreement.rate,
  });
  const rows = [...ledger.rows.map((row) => line(row, false)), line(ledger.total, true)];
  const names = Object.keys(rows[0] ?? {});
  return { columns: names.map((name) => ({ name })), rows };
}

interface SavingsArgs {
  window?: string;
  by?: string;
  database?: string;
  url?: string;
  data?: string;
  format?: string;
}

function parseSavingsArgs(args: string[]): SavingsArgs {
  try {
    return parseArgs({
      args,
      options: {
        window: { type: 'string' },
        by: { type: 'string' },
        database: { type: 'string' },
        url: { type: 'string' },
        data: { type: 'string' },
        format: { type: 'string' },
      },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** `--window` and `--by` as the collector's savings query (a usage error when invalid). */
function savingsQuery(values: SavingsArgs): SavingsQuery {
  const parsed = SavingsQuerySchema.safeParse({
    ...(values.window === undefined ? {} : { window: values.window }),
    ...(values.by === undefined ? {} : { groupBy: values.by }),
  });
  if (!parsed.success) {
    throw new UsageError(
      formatIssues(parsed.error.issues, {
        label: (path) => `--${path[0] === 'groupBy' ? 'by' : String(path[0])}`,
      }),
    );
  }
  return parsed.data;
}

/** The ledger straight from a data folder (embedded ClickHouse). */
async function ledgerFromData(
  data: string,
  database: string | undefined,
  query: SavingsQuery,
): Promise<SavingsLedger> {
  const store = await openDataFolder(data, {
    spoolDir: false,
    ...(database === undefined ? {} : { database }),
  });
  try {
    return await savingsLedger(store, query, { database: store.database });
  } finally {
    await store.close();
  }
}

/** The ledger from a collector's `GET /api/savings`. */
async function ledgerFromCollector(
  base: string,
  token: string | undefined,
  query: SavingsQuery,
): Promise<SavingsLedger> {
  const url = new URL('/api/savings', base);
  url.searchParams.set('window', query.window);
  url.searchParams.set('groupBy', query.groupBy.join(','));
  let response: Response;
  try {
    response = await fetch(url, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });
  } catch (error) {
    throw new QueryFailedError(
      `cannot reach the collector at ${base} (${(error as Error).message}); start it with \`modelmaxx serve\` or pass --data`,
      { cause: error },
    );
  }
  const body = (await response.json().catch(() => undefined)) as
    (SavingsLedger & { error?: string }) | undefined;
  if (!response.ok || body === undefined || !Array.isArray(body.rows)) {
    const reason = body?.error ?? `HTTP ${response.status} from GET /api/savings`;
    throw new QueryFailedError(
      response.status === 401 ? `${reason} (set MODELMAXX_READ_TOKEN)` : `${base}: ${reason}`,
    );
  }
  return body;
}

export async function savingsCommand(args: string[], io: Io): Promise<number> {
  const values = parseSavingsArgs(args);
  const format = (values.format ?? 'table') as OutputFormat;
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(
      `--format takes ${OUTPUT_FORMATS.join(', ')}; got ${JSON.stringify(values.format)}`,
    );
  }
  const query = savingsQuery(values);
  let ledger: SavingsLedger;
  if (values.data !== undefined) {
    if (values.url !== undefined) throw new UsageError('give --url or --data, not both');
    ledger = await ledgerFromData(values.data, values.database, query);
  } else {
    const base = collectorUrl(values.url, io.env);
    ledger = await ledgerFromCollector(base, io.env['MODELMAXX_READ_TOKEN'], query);
  }
  io.stdout(formatResult(savingsTable(ledger, format), format));
  return 0;
}
