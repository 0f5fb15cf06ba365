/**
 * `node collector/dist/main.js [--host H] [--port P] [--data DIR] [--clickhouse-url URL]`:
 * loads the configuration once, creates the one pino logger, starts the
 * collector and shuts it down gracefully on SIGTERM/SIGINT (stop accepting,
 * drain the store, exit 0).
 */
import { serve } from './serve.js';

await serve({ argv: process.argv.slice(2), env: process.env });
