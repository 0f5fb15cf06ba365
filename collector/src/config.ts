/**
 * Collector configuration: environment variables and command-line flags, checked
 * by zod once at start-up (`main.ts`); after boot nothing reads `process.env`.
 * Flags win over the environment.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { DEFAULT_DECODE_LIMITS } from './otlp/to-span-rows.js';
import { formatIssues } from '@modelmaxx/semconv';

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value));

export const ConfigSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.coerce.number().int().min(0).max(65535).default(4318),
    /** Folder of the embedded ClickHouse (chDB) and the spool. */
    dataDir: z.string().min(1).default('./.modelmaxx'),
    /** A ClickHouse server instead of the embedded engine. */
    clickhouseUrl: optionalText.pipe(z.url().optional()),
    database: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier')
      .default('modelmaxx'),
    clickhouseUser: optionalText,
    clickhousePassword: optionalText,
    /** Largest request body, checked on the wire and again after gzip inflation. */
    maxBodyBytes: z.coerce
      .number()
      .int()
      .positive()
      .default(16 * 1024 * 1024),
    /**
     * Export requests decoded or waiting on the store at once before answering 429.
     * A request takes a slot once its body has arrived: bodies still arriving hold none.
     */
    maxConcurrentRequests: z.coerce.number().int().positive().default(64),
    /** An export request's whole body must arrive within this many seconds (408 otherwise). */
    ingestBodyTimeoutSeconds: z.coerce.number().positive().default(15),
    /** Bytes held by export request bodies still arriving, all together, before answering 429. */
    maxBufferedBodyBytes: z.coerce
      .number()
      .int()
      .positive()
      .default(256 * 1024 * 1024),
    /** Spans in one export request (413 beyond, counted as it is decoded). */
    maxSpansPerRequest: z.coerce.number().int().positive().default(DEFAULT_DECODE_LIMITS.maxSpans),
    /** UTF-8 bytes of service, span, scope and event names and attribute keys; longer ones are cut. */
    maxNameBytes: z.coerce.number().int().positive().default(DEFAULT_DECODE_LIMITS.maxNameBytes),
    /** UTF-8 bytes of attribute values, status messages and trace states; longer ones are cut. */
    maxAttributeValueBytes: z.coerce
      .number()
      .int()
      .positive()
      .default(DEFAULT_DECODE_LIMITS.maxValueBytes),
    /** UTF-8 bytes of message-content attributes (`gen_ai.input.messages`, …); longer ones are cut. */
    maxContentValueBytes: z.coerce
      .number()
      .int()
      .positive()
      .default(DEFAULT_DECODE_LIMITS.maxContentBytes),
    /** Worker threads decoding export requests off the event loop (0: decode on it). */
    decodeThreads: z.coerce.number().int().min(0).max(64).default(2),
    ingestToken: optionalText,
    readToken: optionalText,
    /**
     * Extra names the `Host` header may carry (comma-separated: `name`, `name:port`,
     * `[v6]`; `*` turns the check off), beyond the loopback names with the bound port.
     * See `hostPolicy` in `auth.ts` (DNS rebinding).
     */
    allowedHosts: z
      .union([z.string(), z.array(z.string())])
      .default([])
      .transform((value) =>
        (Array.isArray(value) ? value : value.split(','))
          .map((name) => name.trim().toLowerCase())
          .filter((name) => name !== ''),
      ),
    /**
     * Free space the spool leaves on its disk for ClickHouse's inserts (503 below it); default
     * 10 % of the filesystem, at most 1 GiB.
     */
    spoolMinFreeBytes: z.coerce.number().int().nonnegative().optional(),
    sqlMaxRows: z.coerce.number().int().positive().default(10_000),
    sqlMaxExecutionSeconds: z.coerce.number().positive().default(10),
    /** `max_memory_usage` of an `/api/sql` query. */
    sqlMaxMemoryBytes: z.coerce
      .number()
      .int()
      .positive()
      .default(1024 ** 3),
    /** Largest `/api/sql` result (the rows' JSON text); cut there with `truncatedBy: 'maxResultBytes'`. */
    sqlMaxResultBytes: z.coerce
      .number()
      .int()
      .positive()
      .default(32 * 1024 ** 2),
    /** `/api/sql` queries running at once (default 1 on the embedded engine, 4 on a server). */
    sqlMaxConcurrent: z.coerce.number().int().positive().optional(),
    /** `/api/sql` queries waiting for a turn; beyond: 429 with `Retry-After`. */
    sqlMaxQueued: z.coerce.number().int().min(0).default(4),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
  })
  .refine((config) => config.maxBufferedBodyBytes >= config.maxBodyBytes, {
    path: ['maxBufferedBodyBytes'],
    message:
      'must be at least maxBodyBytes (MODELMAXX_MAX_BODY_BYTES), or no body that large could be read',
  });
export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

/** Environment variable → config key. */
const ENV_KEYS: Record<string, keyof Config> = {
  MODELMAXX_HOST: 'host',
  MODELMAXX_PORT: 'port',
  MODELMAXX_DATA_DIR: 'dataDir',
  MODELMAXX_CLICKHOUSE_URL: 'clickhouseUrl',
  MODELMAXX_DATABASE: 'database',
  MODELMAXX_CLICKHOUSE_USER: 'clickhouseUser',
  MODELMAXX_CLICKHOUSE_PASSWORD: 'clickhousePassword',
  MODELMAXX_MAX_BODY_BYTES: 'maxBodyBytes',
  MODELMAXX_MAX_CONCURRENT_REQUESTS: 'maxConcurrentRequests',
  MODELMAXX_INGEST_BODY_TIMEOUT_SECONDS: 'ingestBodyTimeoutSeconds',
  MODELMAXX_MAX_BUFFERED_BODY_BYTES: 'maxBufferedBodyBytes',
  MODELMAXX_MAX_SPANS_PER_REQUEST: 'maxSpansPerRequest',
  MODELMAXX_MAX_NAME_BYTES: 'maxNameBytes',
  MODELMAXX_MAX_ATTRIBUTE_VALUE_BYTES: 'maxAttributeValueBytes',
  MODELMAXX_MAX_CONTENT_VALUE_BYTES: 'maxContentValueBytes',
  MODELMAXX_DECODE_THREADS: 'decodeThreads',
  MODELMAXX_INGEST_TOKEN: 'ingestToken',
  MODELMAXX_READ_TOKEN: 'readToken',
  MODELMAXX_ALLOWED_HOSTS: 'allowedHosts',
  MODELMAXX_SPOOL_MIN_FREE_BYTES: 'spoolMinFreeBytes',
  MODELMAXX_SQL_MAX_ROWS: 'sqlMaxRows',
  MODELMAXX_SQL_MAX_EXECUTION_SECONDS: 'sqlMaxExecutionSeconds',
  MODELMAXX_SQL_MAX_MEMORY_BYTES: 'sqlMaxMemoryBytes',
  MODELMAXX_SQL_MAX_RESULT_BYTES: 'sqlMaxResultBytes',
  MODELMAXX_SQL_MAX_CONCURRENT: 'sqlMaxConcurrent',
  MODELMAXX_SQL_MAX_QUEUED: 'sqlMaxQueued',
  MODELMAXX_LOG_LEVEL: 'logLevel',
};

/** Command-line flag → config key. */
const FLAG_KEYS: Record<string, keyof Config> = {
  host: 'host',
  port: 'port',
  data: 'dataDir',
  'clickhouse-url': 'clickhouseUrl',
  database: 'database',
  'max-body-bytes': 'maxBodyBytes',
  'allowed-hosts': 'allowedHosts',
  'log-level': 'logLevel',
};

export interface LoadConfigOptions {
  env?: Record<string, string | undefined>;
  argv?: string[];
  /** Values that win over both (e.g. from `startCollector(options)`). */
  overrides?: Partial<ConfigInput>;
}

/** Parses env + flags (+ overrides); throws `ConfigError` with every problem in one message. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const input: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const value = options.env?.[name];
    if (value !== undefined) input[key] = value;
  }
  if (options.argv !== undefined && options.argv.length > 0) {
    let parsed;
    try {
      parsed = parseArgs({
        args: options.argv,
        options: Object.fromEntries(
          Object.keys(FLAG_KEYS).map((flag) => [flag, { type: 'string' as const }]),
        ),
        allowPositionals: false,
      });
    } catch (error) {
      throw new ConfigError(`invalid command line: ${(error as Error).message}`, { cause: error });
    }
    for (const [flag, value] of Object.entries(parsed.values)) {
      const key = FLAG_KEYS[flag];
      if (key !== undefined && typeof value === 'string') input[key] = value;
    }
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value !== undefined) input[key] = value;
  }
  const result = ConfigSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      `invalid collector configuration: ${formatIssues(result.error.issues, { root: 'config' })}`,
    );
  }
  return result.data;
}

const LOOPBACK_HOSTS = new Set(['localhost', '::1', '[::1]', 'ip6-localhost']);

/** True for 127.0.0.0/8, ::1 and localhost. `0.0.0.0` and `::` are every interface, not loopback. */
export function isLoopbackHost(host: string): boolean {
  const lower = host.toLowerCase();
  if (LOOPBACK_HOSTS.has(lower)) return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(lower)) return true;
  return lower.startsWith('::ffff:127.');
}

/** Refuses to serve beyond loopback unless both tokens are set. */
export function assertSafeToListen(config: Config): void {
  if (isLoopbackHost(config.host)) return;
  const missing = [
    config.ingestToken === undefined ? 'MODELMAXX_INGEST_TOKEN' : undefined,
    config.readToken === undefined ? 'MODELMAXX_READ_TOKEN' : undefined,
  ].filter((name) => name !== undefined);
  if (missing.length > 0) {
    throw new ConfigError(
      `refusing to listen on ${config.host}: beyond loopback the collector needs bearer tokens; set ${missing.join(' and ')} (or listen on 127.0.0.1)`,
    );
  }
}
