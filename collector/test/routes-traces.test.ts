/**
 * `POST /v1/traces` against a running collector (real embedded ClickHouse): every
 * bad input gets the status and the message the OTLP specification asks for,
 * replies come in the request's encoding, and bad spans are rejected one by one.
 */
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '../src/index.js';
import { recordSpans, toJson, toProtobuf } from './support/otlp-fixtures.js';

const MAX_BODY_BYTES = 2 * 1024 * 1024;
const INGEST = 'ingest-token-1';
const READ = 'read-token-2';

/** google.rpc.Status, decoded with protobufjs (independent of our encoder). */
const Status = protobuf.Root.fromJSON({
  nested: {
    Status: {
      fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 } },
    },
  },
}).lookupType('Status');

let collector: RunningCollector;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-routes-traces-'));
  collector = await startCollector({
    config: {
      port: 0,
      dataDir,
      maxBodyBytes: MAX_BODY_BYTES,
      ingestToken: INGEST,
      readToken: READ,
    },
  });
});

afterAll(async () => {
  await collector?.close();
  await rm(dataDir, { recursive: true, force: true });
});

interface Sent {
  status: number;
  headers: Headers;
  body: Buffer;
}

async function post(
  body: Uint8Array | string,
  headers: Record<string, string>,
  path = '/v1/traces',
): Promise<Sent> {
  const response = await fetch(`${collector.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INGEST}`, ...headers },
    body,
  });
  return {
    status: response.status,
    headers: response.headers,
    body: Buffer.from(await response.arrayBuffer()),
  };
}

const PROTOBUF = { 'content-type': 'application/x-protobuf' };
const JSON_TYPE = { 'content-type': 'application/json' };

function protobufStatus(sent: Sent): { code: number; message: string } {
  expect(sent.headers.get('content-type')).toMatch(/^application\/x-protobuf/);
  return Status.toObject(Status.decode(sent.body), { defaults: true }) as {
    code: number;
    message: string;
  };
}

function jsonStatus(sent: Sent): { code: number; message: string } {
  expect(sent.headers.get('content-type')).toMatch(/^application\/json/);
  return JSON.parse(sent.body.toString()) as { code: number; message: string };
}

/** A valid OTLP/JSON request whose spans are `spans` (merged over a valid span). */
function jsonRequest(spans: Record<string, unknown>[]): string {
  const valid = {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    name: 'chat gpt-4o',
    kind: 3,
    startTimeUnixNano: '1732740000000000000',
    endTimeUnixNano: '1732740001000000000',
  };
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'bad-inputs' } }] },
        scopeSpans: [
          { scope: { name: 'test' }, spans: spans.map((span) => ({ ...valid, ...span })) },
        ],
      },
    ],
  });
}

describe('POST /v1/traces success and partial success', () => {
  it('answers 200 with an empty ExportTraceServiceResponse in protobuf', async () => {
    const sent = await post(toProtobuf(await recordSpans()), PROTOBUF);
    expect(sent.status).toBe(200);
    expect(sent.headers.get('content-type')).toMatch(/^application\/x-protobuf/);
    expect(ProtobufTraceSerializer.deserializeResponse(sent.body)).toEqual({});
  });

  it('answers 200 with {} in JSON', async () => {
    const sent = await post(toJson(await recordSpans()), JSON_TYPE);
    expect(sent.status).toBe(200);
    expect(JSON.parse(sent.body.toString())).toEqual({});
  });

  it('reports rejected spans as partialSuccess in JSON and keeps the valid ones', async () => {
    const body = jsonRequest([
      { spanId: '1111111111111111' },
      { spanId: '2222222222222222', traceId: 'not-hex' },
      { spanId: '3333333333333333', endTimeUnixNano: '1' },
    ]);
    const sent = await post(body, JSON_TYPE);
    expect(sent.status).toBe(200);
    const response = JsonTraceSerializer.deserializeResponse(sent.body);
    expect(response).toEqual({
      partialSuccess: {
        rejectedSpans: '2',
        errorMessage: expect.stringMatching(
          /^2 span\(s\) rejected: .*spans\[1\]: traceId: must be 32 hex digits; .*spans\[2\]: endTimeUnixNano is before startTimeUnixNano$/,
        ),
      },
    });
  });

  it('reports rejected spans as partialSuccess in protobuf', async () => {
    const spans = await recordSpans();
    const bytes = Buffer.from(toProtobuf(spans));
    // Corrupt the first span's trace id length: replace its 16-byte id field
    // (tag 0x0a, length 0x10) by an 8-byte one plus an unknown 8-byte field of
    // the same total size, which keeps the message well formed.
    const firstTraceId = Buffer.from(spans[0]!.spanContext().traceId, 'hex');
    const at = bytes.indexOf(Buffer.concat([Buffer.from([0x0a, 0x10]), firstTraceId]));
    expect(at).toBeGreaterThan(0);
    bytes[at + 1] = 0x08;
    bytes[at + 10] = (99 << 3) | 2; // field 99, LEN
    bytes[at + 11] = 6;
    const sent = await post(bytes, PROTOBUF);
    expect(sent.status).toBe(200);
    const response = ProtobufTraceSerializer.deserializeResponse(sent.body);
    expect(response.partialSuccess?.rejectedSpans).toBe(1);
    expect(response.partialSuccess?.errorMessage).toMatch(
      /^1 span\(s\) rejected: resourceSpans\[0\]\.scopeSpans\[\d\]\.spans\[\d\]: traceId must be 16 bytes \(32 hex digits\), got 8$/,
    );
  });
});

describe('POST /v1/traces bad inputs', () => {
  it('400 with the position for malformed protobuf, as google.rpc.Status protobuf', async () => {
    const bytes = toProtobuf(await recordSpans());
    const sent = await post(bytes.subarray(0, bytes.length - 5), PROTOBUF);
    expect(sent.status).toBe(400);
    expect(protobufStatus(sent)).toEqual({
      code: 3,
      message: expect.stringMatching(/^invalid protobuf: .+ \(at byte \d+\)$/),
    });
  });

  it('400 for malformed JSON, as a JSON Status', async () => {
    const sent = await post('{"resourceSpans": [', JSON_TYPE);
    expect(sent.status).toBe(400);
    expect(jsonStatus(sent)).toEqual({
      code: 3,
      message: expect.stringMatching(/^invalid JSON: /),
    });
  });

  it('400 naming the path for JSON that is not an ExportTraceServiceRequest', async () => {
    const sent = await post('{"resourceSpans": [{"scopeSpans": {"spans": []}}]}', JSON_TYPE);
    expect(sent.status).toBe(400);
    expect(jsonStatus(sent).message).toMatch(
      /^invalid OTLP\/JSON: resourceSpans\.0\.scopeSpans: .*expected array/i,
    );
  });

  it('415 for other content types and encodings', async () => {
    const text = await post('hello', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(jsonStatus(text).message).toMatch(/unsupported Content-Type "text\/plain"/);
    const none = await post(Buffer.from([1, 2, 3]), {});
    expect(none.status).toBe(415);
    const brotli = await post(toProtobuf(await recordSpans()), {
      ...PROTOBUF,
      'content-encoding': 'br',
    });
    expect(brotli.status).toBe(415);
    expect(protobufStatus(brotli).message).toMatch(/unsupported Content-Encoding "br"/);
  });

  it('413 when Content-Length is over the limit', async () => {
    const sent = await post(Buffer.alloc(MAX_BODY_BYTES + 1), PROTOBUF);
    expect(sent.status).toBe(413);
    expect(protobufStatus(sent)).toEqual({
      code: 8,
      message: `request body of ${MAX_BODY_BYTES + 1} bytes is larger than the limit of ${MAX_BODY_BYTES} bytes`,
    });
  });

  it('413 for a chunked body that grows past the limit', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>(
      (resolve, reject) => {
        const url = new URL(`${collector.url}/v1/traces`);
        const request = httpRequest(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            headers: { ...JSON_TYPE, authorization: `Bearer ${INGEST}` },
          },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () =>
              resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
            );
          },
        );
        request.on('error', (error) => {
          // The server may close while we still write; only fail if no answer came.
          if (!request.writableEnded) return;
          reject(error);
        });
        const chunk = Buffer.alloc(256 * 1024, 0x20);
        let sent = 0;
        const pump = () => {
          while (sent < MAX_BODY_BYTES * 3) {
            sent += chunk.length;
            if (!request.write(chunk)) {
              request.once('drain', pump);
              return;
            }
          }
          request.end();
        };
        pump();
      },
    );
    expect(status).toBe(413);
    expect(JSON.parse(body)).toEqual({
      code: 8,
      message: `request body is larger than the limit of ${MAX_BODY_BYTES} bytes`,
    });
  });

  it('413 for a gzip bomb (1 GiB of zeros in ~1 MB), refused quickly with bounded memory', async () => {
    // 64 concatenated gzip members of 16 MiB of zeros each: 1 GiB inflated.
    const member = gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 });
    const bomb = Buffer.concat(Array.from({ length: 64 }, () => member));
    expect(bomb.length).toBeLessThan(MAX_BODY_BYTES);
    const rssBefore = process.resourceUsage().maxRSS;
    const started = performance.now();
    const sent = await post(bomb, { ...PROTOBUF, 'content-encoding': 'gzip' });
    const seconds = (performance.now() - started) / 1000;
    expect(sent.status).toBe(413);
    expect(protobufStatus(sent)).toEqual({
      code: 8,
      message: `gzip body inflates to more than the limit of ${MAX_BODY_BYTES} bytes`,
    });
    expect(seconds).toBeLessThan(10);
    // maxRSS is in KiB; inflating the bomb would add ~1 GiB.
    expect((process.resourceUsage().maxRSS - rssBefore) / 1024).toBeLessThan(256);
  });

  it('400 for a body that is not gzip, and for truncated gzip', async () => {
    const notGzip = await post(Buffer.from('definitely not gzip'), {
      ...PROTOBUF,
      'content-encoding': 'gzip',
    });
    expect(notGzip.status).toBe(400);
    expect(protobufStatus(notGzip).message).toMatch(/^invalid gzip body: /);
    const gzipped = gzipSync(toJson(await recordSpans()));
    const truncated = await post(gzipped.subarray(0, gzipped.length - 20), {
      ...JSON_TYPE,
      'content-encoding': 'gzip',
    });
    expect(truncated.status).toBe(400);
    expect(jsonStatus(truncated).message).toMatch(/^invalid gzip body: /);
  });

  it('401 without the ingest token or with a wrong one', async () => {
    const body = toProtobuf(await recordSpans());
    const missing = await fetch(`${collector.url}/v1/traces`, {
      method: 'POST',
      headers: PROTOBUF,
      body,
    });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const missingStatus = Status.decode(Buffer.from(await missing.arrayBuffer())) as unknown as {
      code: number;
      message: string;
    };
    expect(missingStatus.code).toBe(16);
    expect(missingStatus.message).toMatch(/missing bearer token/);
    const wrong = await post(body, { ...PROTOBUF, authorization: `Bearer ${READ}` });
    expect(wrong.status).toBe(401);
    expect(protobufStatus(wrong)).toEqual({ code: 16, message: 'wrong ingest token' });
  });
});
