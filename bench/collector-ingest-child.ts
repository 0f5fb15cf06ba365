/**
 * The baseline of `collector-ingest.bench.ts`, as a child process with a fresh data folder:
 * `node bench/collector-ingest-child.ts BODIES_FILE DATA_DIR` decodes the packed request bodies
 * with the collector's own decoder and Native encoder (one block per request, as in its spool
 * segments), writes them to files of up to 100k rows before the clock starts, then times only
 * `engine.insert` of those files into `otel_traces` (materialized views included). Prints one
 * JSON line (`RawResult`).
 */
import type { SpanRow } from '@modelmaxx/collector';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { unpackBodies } from './collector-ingest-requests.ts';
import { peakRssMb } from './proc-status.ts';

/** Rows per insert of the raw baseline. */
const RAW_BATCH_ROWS = 100_000;

/** The decoded bodies as Native files of up to `RAW_BATCH_ROWS` rows; the rows they hold. */
async function batchFiles(bodiesFile: string): Promise<{ files: string[]; rows: number }> {
  const { decodeTraceRequestProtobuf } = await import('@modelmaxx/collector');
  const { spanRowsToNative } = (await import('../collector/dist/store/span-row-native.js')) as {
    spanRowsToNative(rows: SpanRow[]): Buffer;
  };
  const bodies = unpackBodies(await readFile(bodiesFile));
  const files: string[] = [];
  let pending: Buffer[] = [];
  let pendingRows = 0;
  let rows = 0;
  const flushBatch = async () => {
    const file = join(dirname(bodiesFile), `raw-batch-${files.length}.native`);
    await writeFile(file, Buffer.concat(pending));
    files.push(file);
    pending = [];
    pendingRows = 0;
  };
  for (const body of bodies) {
    const decoded = decodeTraceRequestProtobuf(body).rows;
    pending.push(spanRowsToNative(decoded));
    pendingRows += decoded.length;
    rows += decoded.length;
    if (pendingRows >= RAW_BATCH_ROWS) await flushBatch();
  }
  if (pendingRows > 0) await flushBatch();
  return { files, rows };
}

async function rawInsert(bodiesFile: string, dataDir: string): Promise<void> {
  const { openStore, OTEL_TRACES_INSERT_COLUMNS } = await import('@modelmaxx/collector');
  const { files, rows } = await batchFiles(bodiesFile);
  const store = await openStore({ dataDir, spoolDir: false });
  const started = performance.now();
  for (const file of files) {
    await store.engine.insert({
      table: 'modelmaxx.otel_traces',
      columns: OTEL_TRACES_INSERT_COLUMNS,
      format: 'Native',
      file,
    });
  }
  const ms = performance.now() - started;
  const counted = await store.engine.query<{ rows: string }>(
    'SELECT count() AS rows FROM modelmaxx.otel_traces',
  );
  const calls = await store.engine.query<{ rows: string }>(
    'SELECT count() AS rows FROM modelmaxx.llm_calls',
  );
  await store.close();
  process.stdout.write(
    `${JSON.stringify({
      rows,
      stored: Number(counted.data[0]?.rows),
      calls: Number(calls.data[0]?.rows),
      ms,
      batches: files.length,
      peakRssMb: peakRssMb(process.pid),
    })}\n`,
  );
}

await rawInsert(process.argv[2]!, process.argv[3]!);
