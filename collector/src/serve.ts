/**
 * `serve()`: the collector as a process — loads the configuration once from
 * flags and environment, creates the one pino logger, starts the collector and
 * shuts it down gracefully on SIGTERM/SIGINT (stop accepting, drain the store,
 * exit 0). Used by `main.ts` and by `modelmaxx serve`.
 */
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from './config.js';
import { ConfigError } from './errors.js';
import { dataFolderHolder } from './store/data-folder.js';
import { startCollector } from './index.js';

export interface ServeOptions {
  argv: string[];
  env: Record<string, string | undefined>;
}

const REDACT = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  '*.authorization',
  'config.ingestToken',
  'config.readToken',
  'config.clickhousePassword',
];

function folderInUse(dataDir: string, pid: number | undefined): string {
  return `the data folder ${resolve(dataDir)} is in use by another process (a running collector?${pid === undefined ? '' : ` pid ${pid}`}); stop it, or start this one with another --data`;
}

/** The address a local app uses: a wildcard listen address is reached on loopback. */
function clientBaseUrl(url: string, host: string): string {
  if (host === '0.0.0.0') return url.replace('//0.0.0.0:', '//127.0.0.1:');
  if (host === '::' || host === '[::]') return url.replace('//[::]:', '//[::1]:');
  return url;
}

/**
 * The start line's second half with `MODELMAXX_INGEST_TOKEN` set: apps send the token in a header
 * or get 401. Names the header and where the token comes from; never prints the token.
 */
export function ingestHeaderHint(ingestToken: string | undefined): string {
  if (ingestToken === undefined) return '';
  return `                   and  OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer <token>   (the token: this collector's MODELMAXX_INGEST_TOKEN; without it spans get 401)\n`;
}

export async function serve(options: ServeOptions): Promise<void> {
  let config;
  try {
    config = loadConfig({ env: options.env, argv: options.argv });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`modelmaxx collector: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = pino({ level: config.logLevel, redact: REDACT });
  // chDB prints its own lock error and a stack; name the cause in one line instead.
  const embedded = config.clickhouseUrl === undefined;
  const holder = embedded ? dataFolderHolder(join(config.dataDir, 'data')) : undefined;
  if (holder !== undefined) {
    process.stderr.write(`modelmaxx collector: ${folderInUse(config.dataDir, holder)}\n`);
    process.exit(1);
  }
  let collector;
  try {
    collector = await startCollector({ config, logger });
  } catch (error) {
    if (embedded && (error as { code?: unknown }).code === 'CHDB_CONNECTION') {
      const message = folderInUse(config.dataDir, dataFolderHolder(join(config.dataDir, 'data')));
      logger.fatal(message);
      process.stderr.write(`modelmaxx collector: ${message}\n`);
      process.exit(1);
    }
    if (error instanceof ConfigError) {
      logger.fatal(error.message);
      process.stderr.write(`modelmaxx collector: ${error.message}\n`);
      process.exit(2);
    }
    logger.fatal({ err: error }, 'collector failed to start');
    process.exit(1);
  }
  logger.info(
    {
      url: collector.url,
      storage: config.clickhouseUrl === undefined ? config.dataDir : 'clickhouse server',
    },
    'collector listening',
  );
  const base = clientBaseUrl(collector.url, config.host);
  process.stderr.write(
    `modelmaxx collector listening on ${collector.url} (storage: ${config.clickhouseUrl ?? config.dataDir})\n` +
      `  apps send spans with  OTEL_EXPORTER_OTLP_ENDPOINT=${base}   (the base URL; the exporter adds /v1/traces)\n` +
      ingestHeaderHint(config.ingestToken) +
      `  dashboard             ${base}/\n`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    collector.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
