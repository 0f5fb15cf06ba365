/**
 * The floor of the gateway benchmark: the least a Node proxy in front of llm-sim does per request,
 * in the same harness as the gateway (gateway-child.ts `floor-<client>`). A node:http server
 * reads the body, parses it, serializes it again and calls llm-sim on kept-alive connections;
 * a whole answer is read, parsed and sent back, a streamed one (`text/event-stream`) passed
 * through chunk by chunk. No spans, routing, headers rules or errors beyond a 502.
 *
 * The upstream client is what varies:
 * - `http`: node:http's client on a kept-alive Agent (headers as a list, as the gateway's);
 * - `undici`: the `undici` package's Pool, `request()` (a Readable body);
 * - `undici-dispatch`: the same Pool, `dispatch()` with a handler (no stream objects);
 * - `net`: no node:http at all, raw `node:net` sockets on both sides (gateway-floor-net.ts: the
 *   HTTP/1.1 the bench and llm-sim send, read and written by hand);
 * - `llhttp`: the `net` floor with both sides read by Node's own parser, llhttp
 *   (gateway-floor-llhttp.ts), in place of the hand parser.
 */
import { createServer, Agent, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { llhttpParsers } from './gateway-floor-llhttp.ts';
import { startNetFloor } from './gateway-floor-net.ts';

export type FloorClient = 'http' | 'undici' | 'undici-dispatch' | 'net' | 'llhttp';

interface Floor {
  readonly url: string;
  readonly requests: () => number;
  close(): Promise<void>;
}

/** Sends the upstream's answer: parsed whole when JSON, passed through when streamed. */
interface Answer {
  start(status: number, streamed: boolean): void;
  data(chunk: Buffer): void;
  end(): void;
  fail(): void;
}

function answerTo(response: ServerResponse): Answer {
  let streamed = false;
  let status = 200;
  const chunks: Buffer[] = [];
  return {
    start(code, isStream) {
      status = code;
      streamed = isStream;
      if (streamed) response.writeHead(status, { 'content-type': 'text/event-stream' });
    },
    data(chunk) {
      if (streamed) response.write(chunk);
      else chunks.push(chunk);
    },
    end() {
      if (streamed) {
        response.end();
        return;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      JSON.parse(text);
      response.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      response.end(text);
    },
    fail() {
      if (!response.headersSent) response.writeHead(502);
      response.end();
    },
  };
}

type Call = (body: Buffer, answer: Answer) => void;

function httpCall(sim: URL): Call {
  const agent = new Agent({ keepAlive: true });
  const path = `${sim.pathname.replace(/\/$/, '')}/v1/chat/completions`;
  return (body, answer) => {
    const call = httpRequest(
      {
        hostname: sim.hostname,
        port: sim.port,
        path,
        method: 'POST',
        agent,
        headers: [
          'host',
          sim.host,
          'content-type',
          'application/json',
          'content-length',
          String(body.length),
        ],
      },
      (message: IncomingMessage) => {
        answer.start(
          message.statusCode ?? 502,
          String(message.headers['content-type']).startsWith('text/event-stream'),
        );
        message.on('data', (chunk: Buffer) => answer.data(chunk));
        message.on('end', () => answer.end());
      },
    );
    call.on('error', () => answer.fail());
    call.end(body);
  };
}

function headersOf(body: Buffer): string[] {
  return ['content-type', 'application/json', 'content-length', String(body.length)];
}

function undiciRequest(pool: Pool, path: string): Call {
  return (body, answer) => {
    pool.request({ path, method: 'POST', headers: headersOf(body), body }).then(
      (result) => {
        const type = result.headers['content-type'];
        answer.start(result.statusCode, String(type).startsWith('text/event-stream'));
        result.body.on('data', (chunk: Buffer) => answer.data(chunk));
        result.body.on('end', () => answer.end());
        result.body.on('error', () => answer.fail());
      },
      () => answer.fail(),
    );
  };
}

/** Whether raw headers (`[name, value, …]` as bytes) say `text/event-stream`. */
function isStream(raw: readonly (Buffer | string)[]): boolean {
  for (let index = 0; index + 1 < raw.length; index += 2) {
    if (String(raw[index]).toLowerCase() === 'content-type') {
      return String(raw[index + 1]).startsWith('text/event-stream');
    }
  }
  return false;
}

function undiciDispatch(pool: Pool, path: string): Call {
  return (body, answer) => {
    const handler: Dispatcher.DispatchHandlers = {
      onConnect() {},
      onHeaders(status, headers) {
        answer.start(status, isStream(headers ?? []));
        return true;
      },
      onData(chunk) {
        answer.data(chunk);
        return true;
      },
      onComplete() {
        answer.end();
      },
      onError() {
        answer.fail();
      },
    };
    pool.dispatch({ path, method: 'POST', headers: headersOf(body), body }, handler);
  };
}

function callOf(
  client: Exclude<FloorClient, 'net' | 'llhttp'>,
  sim: URL,
): { call: Call; close(): Promise<void> } {
  if (client === 'http') return { call: httpCall(sim), close: () => Promise.resolve() };
  const pool = new Pool(sim.origin);
  const path = `${sim.pathname.replace(/\/$/, '')}/v1/chat/completions`;
  const call = client === 'undici' ? undiciRequest(pool, path) : undiciDispatch(pool, path);
  return { call, close: () => pool.close() };
}

export async function startFloor(client: FloorClient, simUrl: string): Promise<Floor> {
  if (client === 'net') return startNetFloor(simUrl);
  if (client === 'llhttp') return startNetFloor(simUrl, llhttpParsers);
  const upstream = callOf(client, new URL(simUrl));
  let requests = 0;
  const server: Server = createServer((request, response) => {
    requests += 1;
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as object;
      upstream.call(Buffer.from(JSON.stringify(parsed)), answerTo(response));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await upstream.close();
    },
  };
}
