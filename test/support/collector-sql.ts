/**
 * Reading a collector in tests: its store through `POST /api/sql` (once, or until enough rows are
 * there) and its counters through `GET /metrics`. Collector tests include this file too.
 */
import { expect } from 'vitest';

export type Row = Record<string, unknown>;

/**
 * The rows of one read-only query; a non-200 answer fails the test with its body, and so does a
 * truncated answer (`maxRows`: ask for more rows than the collector's default, when it allows them).
 */
export async function sqlRows(
  collectorUrl: string,
  query: string,
  maxRows?: number,
): Promise<Row[]> {
  const response = await fetch(`${collectorUrl}/api/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(maxRows === undefined ? { sql: query } : { sql: query, maxRows }),
  });
  const body = (await response.json()) as { rows: Row[]; truncated?: boolean };
  expect(response.status, JSON.stringify(body)).toBe(200);
  expect(body.truncated ?? false, `truncated: ${query}`).toBe(false);
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

/** Parses the Prometheus text of `/metrics` into `name{labels}` → value. */
export async function readMetrics(collectorUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${collectorUrl}/metrics`)).text();
  const metrics: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    metrics[line.slice(0, space)] = Number(line.slice(space + 1));
  }
  return metrics;
}
