/** Reading a collector's store in tests: `POST /api/sql`, once or until enough rows are there. */
import { expect } from 'vitest';

export type Row = Record<string, unknown>;

/** The rows of one read-only query; a non-200 answer fails the test with its body. */
export async function sqlRows(collectorUrl: string, query: string): Promise<Row[]> {
  const response = await fetch(`${collectorUrl}/api/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sql: query }),
  });
  const body = (await response.json()) as { rows: Row[] };
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body.rows;
}

/** Polls until the query returns `count` rows or `timeoutMs` passes; returns the last rows. */
export async function rowsEventually(
  collectorUrl: string,
  query: string,
  count: number,
  timeoutMs = 30_000,
): Promise<Row[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await sqlRows(collectorUrl, query);
    if (rows.length >= count || Date.now() > deadline) return rows;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
