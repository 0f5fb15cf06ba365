/** Argument parsing of `modelmaxx demo`; the traffic itself is in `demo.ts`. */
import { parseArgs } from 'node:util';
import { runDemo } from './demo.js';
import { collectorUrl, UsageError } from './query-source.js';

interface DemoIo {
  stdout: (text: string) => void;
  env: Record<string, string | undefined>;
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

export async function demoCommand(args: string[], io: DemoIo): Promise<number> {
  let values: {
    url?: string | undefined;
    requests?: string | undefined;
    data?: string | undefined;
    seed?: string | undefined;
    exit?: boolean | undefined;
  };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        url: { type: 'string' },
        requests: { type: 'string' },
        data: { type: 'string' },
        seed: { type: 'string' },
        exit: { type: 'boolean' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const requests = Number(values.requests ?? '300');
  if (!Number.isInteger(requests) || requests <= 0) {
    throw new UsageError('--requests takes a positive whole number');
  }
  const seed = Number(values.seed ?? '1');
  if (!Number.isInteger(seed)) throw new UsageError('--seed takes a whole number');
  const url = collectorUrl(values.url, io.env);
  const summary = await runDemo({
    url,
    requests,
    seed,
    exit: values.exit === true,
    ...(values.data === undefined ? {} : { dataDir: values.data }),
    ingestToken: io.env['MODELMAXX_INGEST_TOKEN'],
    readToken: io.env['MODELMAXX_READ_TOKEN'],
    stdout: io.stdout,
    waitForStop: waitForSignal,
  });
  return summary.calls > 0 ? 0 : 1;
}
