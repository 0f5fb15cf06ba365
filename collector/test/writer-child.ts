/**
 * Child process for writer-kill.test.ts: writes spans into a store whose
 * batches are never due, reports each acknowledgement, then waits to be killed.
 */
import { openStore } from '../src/store/open-store.js';
import { llmSpan } from './store-fixtures.js';

const [dataDir, requests] = process.argv.slice(2);
const store = await openStore({
  dataDir: dataDir ?? '',
  batch: { maxRows: 1_000_000, maxBytes: 1024 * 1024 * 1024, maxDelayMs: 3_600_000 },
});
for (let index = 0; index < Number(requests); index++) {
  const spans = Array.from({ length: 10 }, () => llmSpan({ service: 'killed' }));
  const result = await store.write(spans);
  process.stdout.write(
    `${JSON.stringify({ result, spanIds: spans.map((span) => span.SpanId) })}\n`,
  );
}
process.stdout.write('done\n');
setInterval(() => undefined, 60_000);
