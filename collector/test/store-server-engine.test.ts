/**
 * The server path (@clickhouse/client) at its seam: a loopback HTTP server that
 * answers like ClickHouse's HTTP interface and records what the client sends.
 * No ClickHouse server can run here; the SQL itself is the same text the
 * embedded engine runs in the other store-* tests.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseError } from '../src/store/engine.js';
import { ServerEngine } from '../src/store/server-engine.js';
import { ClickHouseStore } from '../src/store/clickhouse-store.js';
import { SCHEMA_VERSION, schemaStatements } from '../src/schema/schema.js';
import { llmSpan, tempDir } from './store-fixtures.js';

interface Recorded {
  method: string;
  params: Record<string, string>;
  authorization: string | undefined;
  body: string;
}

let server: Server;
let url: string;
const requests: Recorded[] = [];
let failNext = 0;

function respond(request: Recorded, response: ServerResponse): void {
  const query = request.params.query ?? request.body;
  if (failNext > 0) {
    failNext--;
    response.writeHead(500, { 'X-ClickHouse-Exception-Code': '242', 'Content-Type': 'text/plain' });
    response.end(
      'Code: 242. DB::Exception: Table is in readonly mode. (TABLE_IS_READ_ONLY) (version 26.7.2.1)\n',
    );
    return;
  }
  if (/^\s*SELECT count\(\) AS present/i.test(query)) {
    response.writeHead(200, { 'Content-Type': 'application/json', 'X-ClickHouse-Format': 'JSON' });
    response.end(
      JSON.stringify({
        meta: [{ name: 'present', type: 'UInt64' }],
        data: [{ present: '0' }],
        rows: 1,
      }),
    );
    return;
  }
  const json = (meta: { name: string; type: string }[], data: Record<string, unknown>[]) => {
    response.writeHead(200, { 'Content-Type': 'application/json', 'X-ClickHouse-Format': 'JSON' });
    response.end(JSON.stringify({ meta, data, rows: data.length }));
  };
  if (query.startsWith('SELECT formatQuerySingleLine')) {
    json([{ name: 'query', type: 'String' }], [{ query: request.params.param_sql }]);
    return;
  }
  if (query.startsWith('EXPLAIN AST')) {
    json(
      [{ name: 'explain', type: 'String' }],
      [
        { explain: 'SelectWithUnionQuery (children 1)' },
        { explain: ' ExpressionList (children 1)' },
      ],
    );
    return;
  }
  if (/FORMAT JSONCompactEachRowWithNamesAndTypes$/.test(query) && query.includes('sleep(')) {
    // A query that runs until it is killed: no answer; the client's abort closes the request.
    response.writeHead(200, { 'Content-Type': 'text/plain' });
    response.write('["n"]\n["UInt64"]\n');
    return;
  }
  if (/FORMAT JSONCompactEachRowWithNamesAndTypes$/.test(query)) {
    response.writeHead(200, {
      'Content-Type': 'text/plain',
      'X-ClickHouse-Format': 'JSONCompactEachRowWithNamesAndTypes',
    });
    response.end('["x"]\n["UInt8"]\n[1]\n');
    return;
  }
  if (/^\s*SELECT/i.test(query)) {
    response.writeHead(200, { 'Content-Type': 'application/json', 'X-ClickHouse-Format': 'JSON' });
    response.end(
      JSON.stringify({ meta: [{ name: 'x', type: 'UInt8' }], data: [{ x: 1 }], rows: 1 }),
    );
    return;
  }
  response.writeHead(200, { 'X-ClickHouse-Summary': '{"written_rows":"1"}' });
  response.end();
}

beforeAll(async () => {
  server = createServer((incoming: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      let body = Buffer.concat(chunks);
      if (incoming.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const params = Object.fromEntries(new URL(incoming.url ?? '/', 'http://x').searchParams);
      const recorded = {
        method: incoming.method ?? '',
        params,
        authorization: incoming.headers.authorization,
        body: body.toString('utf8'),
      };
      requests.push(recorded);
      respond(recorded, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('ClickHouse server engine', () => {
  it('sends the shared DDL, credentials and database settings over HTTP', async () => {
    requests.length = 0;
    const engine = new ServerEngine({ url, username: 'collector', password: 's3cret' });
    const store = new ClickHouseStore({ engine, database: 'obs', priceRows: [] });
    try {
      await store.migrate();
      const ddl = requests.map((request) => request.body || request.params.query || '');
      const expected = schemaStatements({ database: 'obs' }).map((statement) => statement.sql);
      for (const sql of expected) expect(ddl).toContain(sql);
      expect(requests[0]?.authorization).toBe(
        `Basic ${Buffer.from('collector:s3cret').toString('base64')}`,
      );
      expect(ddl.some((sql) => sql.startsWith('INSERT INTO obs.schema_migrations'))).toBe(true);
      const versionInsert = requests.find((request) =>
        (request.body || request.params.query || '').startsWith(
          'INSERT INTO obs.schema_migrations',
        ),
      );
      // Values travel as query parameters, never inside the SQL text.
      expect(versionInsert?.params.param_version).toBe(String(SCHEMA_VERSION));
    } finally {
      await store.close();
    }
  });

  it('inserts Native batches with the deduplication token, and reports ClickHouse errors with their code', async () => {
    requests.length = 0;
    const engine = new ServerEngine({ url });
    const spool = tempDir('mm-server-spool-');
    const store = new ClickHouseStore({
      engine,
      database: 'obs',
      spoolDir: spool.path,
      batch: { maxDelayMs: 5 },
      retryMinMs: 10,
    });
    try {
      await store.start();
      failNext = 1; // the first attempt fails, the retry goes through
      const span = llmSpan({ model: 'gpt-4o' });
      expect(await store.write([span])).toEqual({ status: 'ok', durability: 'spool' });
      expect(await store.flush(10_000)).toBe(true);
      const inserts = requests.filter((request) =>
        (request.params.query ?? '').startsWith('INSERT INTO obs.otel_traces'),
      );
      expect(inserts).toHaveLength(2);
      const insert = inserts[1];
      expect(insert?.params.query).toBe(
        'INSERT INTO obs.otel_traces (`Timestamp`, `TraceId`, `SpanId`, `ParentSpanId`, `TraceState`, `SpanName`, `SpanKind`, `ServiceName`, `ResourceAttributes`, `ScopeName`, `ScopeVersion`, `SpanAttributes`, `Duration`, `StatusCode`, `StatusMessage`, `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`, `Links.SpanId`, `Links.TraceState`, `Links.Attributes`) FORMAT Native',
      );
      expect(insert?.params.insert_deduplication_token).toMatch(
        /^modelmaxx-[0-9a-f]{16}-\d{16}-[0-9a-f]{16}$/,
      );
      expect(insert?.params.insert_deduplication_token).toBe(
        inserts[0]?.params.insert_deduplication_token,
      );
      expect(insert?.params.deduplicate_blocks_in_dependent_materialized_views).toBe('1');
      expect(insert?.body).toContain(span.TraceId);
      expect(store.metrics()).toMatchObject({ insertErrors: 1, batches: 1, stored: 1 });

      failNext = 1;
      const error = await engine.command('SELECT 1').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ClickHouseError);
      expect((error as ClickHouseError).code).toBe(242);
      expect((error as ClickHouseError).message).toContain('Table is in readonly mode');
    } finally {
      await store.close();
      spool.remove();
    }
  });

  it('runs read-only SQL with readonly, time, memory and row limits as ClickHouse settings', async () => {
    requests.length = 0;
    const store = new ClickHouseStore({ engine: new ServerEngine({ url }), database: 'obs' });
    try {
      const result = await store.querySql('SELECT 1 AS x', { maxRows: 50, maxExecutionSeconds: 7 });
      expect(result).toEqual({
        columns: [{ name: 'x', type: 'UInt8' }],
        rows: [{ x: 1 }],
        truncated: false,
      });
      const [format, explain, run] = requests;
      expect(format?.params.param_sql).toBe('SELECT 1 AS x');
      expect(explain?.params.query ?? explain?.body).toContain('EXPLAIN AST');
      expect(run?.params.query ?? run?.body).toMatch(
        /^SELECT \* FROM \(SELECT 1 AS x\)\s+FORMAT JSONCompactEachRowWithNamesAndTypes$/,
      );
      // An id of ours, for KILL QUERY when the caller gives up.
      expect(run?.params.query_id).toMatch(/^modelmaxx-sql-[0-9a-f-]{36}$/);
      expect(run?.params).toMatchObject({
        // Unqualified table names resolve in the store's database.
        database: 'obs',
        readonly: '1',
        max_execution_time: '7',
        timeout_overflow_mode: 'throw',
        max_result_rows: '51',
        result_overflow_mode: 'break',
        max_memory_usage: String(1024 ** 3),
      });
    } finally {
      await store.close();
    }
  });

  it('kills an ad-hoc query by its query_id when the caller gives up', async () => {
    requests.length = 0;
    const store = new ClickHouseStore({ engine: new ServerEngine({ url }), database: 'obs' });
    try {
      const controller = new AbortController();
      const query = store.querySql('SELECT count() FROM system.numbers WHERE sleep(1) = 0', {
        maxRows: 10,
        maxExecutionSeconds: 30,
        signal: controller.signal,
      });
      const deadline = Date.now() + 10_000;
      while (
        !requests.some((request) => request.params.query_id?.startsWith('modelmaxx-sql-') === true)
      ) {
        if (Date.now() > deadline) throw new Error('the query never reached the server');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      controller.abort();
      await expect(query).rejects.toThrow(/gave up/);
      const queryId = requests.find(
        (request) => request.params.query_id?.startsWith('modelmaxx-sql-') === true,
      )?.params.query_id;
      while (
        !requests.some((request) => /KILL QUERY/.test(request.body + (request.params.query ?? '')))
      ) {
        if (Date.now() > deadline) throw new Error('no KILL QUERY');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const kill = requests.find((request) =>
        /KILL QUERY/.test(request.body + (request.params.query ?? '')),
      );
      expect(kill?.body + (kill?.params.query ?? '')).toMatch(
        /KILL QUERY WHERE query_id = \{id:String\}/,
      );
      expect(kill?.params.param_id).toBe(queryId);
    } finally {
      await store.close();
    }
  });
});
