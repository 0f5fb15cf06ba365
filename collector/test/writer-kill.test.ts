import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/open-store.js';
import { tempDir } from './store-fixtures.js';
import { SOURCE_HOOKS_ARGS } from './support/source-child.js';

const dir = tempDir('mm-kill-');
afterAll(() => dir.remove());

describe('a collector killed with acknowledged spans in its spool', () => {
  it('stores every acknowledged span once after it restarts', async () => {
    const dataDir = join(dir.path, 'data');
    const child = spawn(
      process.execPath,
      [
        ...SOURCE_HOOKS_ARGS,
        fileURLToPath(new URL('./writer-child.ts', import.meta.url)),
        dataDir,
        '30',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    let errors = '';
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('done\n')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`child exited early (${code}): ${errors}`)));
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;

    const acknowledged = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { result: { status: string }; spanIds: string[] });
    expect(acknowledged).toHaveLength(30);
    expect(acknowledged.every((entry) => entry.result.status === 'ok')).toBe(true);
    const spanIds = acknowledged.flatMap((entry) => entry.spanIds);

    const store = await openStore({ dataDir, batch: { maxDelayMs: 20 } });
    try {
      expect(await store.flush(30_000)).toBe(true);
      expect(store.metrics().replayedSegments).toBeGreaterThan(0);
      const [row] = (
        await store.engine.query<{ rows: string; distinct: string; calls: string }>(
          `SELECT toString(count()) AS rows, toString(uniqExact(SpanId)) AS distinct,
                  toString((SELECT count() FROM modelmaxx.llm_calls WHERE SpanId IN {ids:Array(String)})) AS calls
           FROM modelmaxx.otel_traces WHERE SpanId IN {ids:Array(String)}`,
          { ids: spanIds },
        )
      ).data;
      expect(row).toEqual({ rows: '300', distinct: '300', calls: '300' });
    } finally {
      await store.close();
    }
  }, 120_000);
});
