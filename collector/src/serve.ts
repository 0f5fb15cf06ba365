/**
 * `serve()`: the collector as a process — loads the configuration once from
 * flags and environment, creates the one pino logger, starts the collector and
 * shuts it down gracefully on SIGTERM/SIGINT (stop accepting, drain the store,
 * exit 0). Used by `main.ts` and by `modelmaxx serve`.
 */
import { pino } from 'pino';
import { loadConfig } from './config.js';
import { ConfigError } from './errors.js';
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
  let collector;
  try {
    collector = await startCollector({ config, logger });
  } catch (error) {
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
  process.stderr.write(
    `modelmaxx collector listening on ${collector.url} (OTLP/HTTP: ${collector.url}/v1/traces; storage: ${config.clickhouseUrl ?? config.dataDir})\n`,
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
