/**
 * The `net` floor of the gateway benchmark (gateway-floor.ts, `GATEWAY_BENCH_FLOORS=net`): the same
 * proxy as the other floors with neither node:http's server nor any HTTP client, on `node:net`
 * sockets on both sides, to measure what a Node proxy costs without Node's HTTP stack.
 *
 * The HTTP/1.1 on both sides is read by a parser pair (`Parsers`): by default the hand-written one
 * below; the `llhttp` floor (gateway-floor-llhttp.ts) gives Node's own llhttp instead, with this
 * file's sockets, pool and writing unchanged.
 *
 * A measurement floor for the bench only, not product code: the hand parser speaks just the HTTP/1.1
 * the bench and llm-sim send. Requests: a request line, headers and a `Content-Length` body (no chunked
 * request bodies, no `Expect`, no upgrades), kept alive, one at a time per connection (bytes of a
 * pipelined next request wait until the answer is sent); any path goes to llm-sim's chat
 * completions. Answers from llm-sim: a `Content-Length` or chunked body on connections kept alive
 * and reused (a pool of idle sockets, a new one when none is idle); 1xx heads, trailers' content
 * and bodies delimited by the connection's close are not supported (the last gives a 502).
 *
 * The work per request is the other floors': the body is read and `JSON.parse`d, serialized again
 * and sent to llm-sim; a whole answer is read, parsed and sent back with its status; a streamed one
 * (`text/event-stream`, chunked) is passed through chunk by chunk, decoded and chunked again, the
 * chunks of one socket read going out in one write.
 */
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

const EMPTY = Buffer.alloc(0);
const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  502: 'Bad Gateway',
};

/** A message's head: its first line and its header lines, and where its body starts. */
interface Head {
  readonly first: string;
  readonly lines: readonly string[];
  readonly bodyAt: number;
}

function headOf(buffer: Buffer): Head | undefined {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [first = '', ...lines] = buffer.toString('latin1', 0, end).split('\r\n');
  return { first, lines, bodyAt: end + 4 };
}

/** The value of the first header `name` (lower case) has, trimmed. */
function header(head: Head, name: string): string | undefined {
  for (const line of head.lines) {
    const colon = line.indexOf(':');
    if (colon === name.length && line.slice(0, colon).toLowerCase() === name) {
      return line.slice(colon + 1).trim();
    }
  }
  return undefined;
}

function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${REASONS[status] ?? ''}\r\n`;
}

/** Where an upstream answer goes: the app's socket. */
export interface Answer {
  start(status: number, streamed: boolean): void;
  data(chunk: Buffer): void;
  /** After each upstream read: what it produced goes out in one write. */
  flush(): void;
  end(): void;
  fail(): void;
}

/** A request read off an app's connection: its body, and whether the app asked to close after it. */
export interface ParsedRequest {
  readonly body: Buffer;
  readonly close: boolean;
}

/** Reads the requests of one app connection. */
export interface RequestParser {
  push(chunk: Buffer): void;
  /** The next complete request; undefined until one is in; `bad`: answered 400, connection closed. */
  shift(): ParsedRequest | 'bad' | undefined;
}

/** Reads one answer after another off one upstream connection. */
export interface AnswerParser {
  /** Feeds bytes to `answer`; true when its answer is complete. Throws on a malformed answer. */
  feed(chunk: Buffer, answer: Answer): boolean;
  /** After a complete answer: whether the connection may carry the next request. */
  readonly reusable: boolean;
}

/** A parser per app connection and per upstream connection. */
export interface Parsers {
  request(): RequestParser;
  answer(): AnswerParser;
}

function answerTo(socket: Socket, done: () => void): Answer {
  let status = 200;
  let streamed = false;
  let out: (Buffer | string)[] = [];
  const body: Buffer[] = [];
  const write = (data: Buffer | string) => {
    if (!socket.destroyed) socket.write(data);
  };
  return {
    start(code, isStream) {
      status = code;
      streamed = isStream;
      if (streamed) {
        out.push(
          `${statusLine(status)}content-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n`,
        );
      }
    },
    data(chunk) {
      if (!streamed) body.push(chunk);
      else if (chunk.length > 0) out.push(`${chunk.length.toString(16)}\r\n`, chunk, '\r\n');
    },
    flush() {
      if (out.length === 0 || socket.destroyed) return;
      socket.cork();
      for (const piece of out) socket.write(piece);
      socket.uncork();
      out = [];
    },
    end() {
      if (streamed) {
        out.push('0\r\n\r\n');
        this.flush();
      } else {
        const text = Buffer.concat(body).toString('utf8');
        JSON.parse(text);
        const length = Buffer.byteLength(text);
        const head = `${statusLine(status)}content-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;
        write(head + text);
      }
      done();
    },
    fail() {
      // Headers already sent: the stream is cut, as node:http's floors do.
      if (streamed) socket.destroy();
      else write(`${statusLine(502)}content-length: 0\r\n\r\n`);
      done();
    },
  };
}

/** The hand parser's requests: a head and a `Content-Length` body (a `Transfer-Encoding`: bad). */
class HandRequests implements RequestParser {
  private buffered: Buffer = EMPTY;

  push(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
  }

  shift(): ParsedRequest | 'bad' | undefined {
    const head = headOf(this.buffered);
    if (head === undefined) return undefined;
    const length = Number(header(head, 'content-length') ?? '0');
    if (!Number.isSafeInteger(length) || header(head, 'transfer-encoding') !== undefined) {
      return 'bad';
    }
    if (this.buffered.length < head.bodyAt + length) return undefined;
    const body = this.buffered.subarray(head.bodyAt, head.bodyAt + length);
    this.buffered = this.buffered.subarray(head.bodyAt + length);
    return { body, close: header(head, 'connection')?.toLowerCase() === 'close' };
  }
}

/** The hand parser's answers: head, then the body by length or chunks. */
class AnswerReader implements AnswerParser {
  private pending: Buffer = EMPTY;
  private mode: 'head' | 'length' | 'chunked' = 'head';
  private remaining = 0;
  private keepAlive = true;

  /** Feeds bytes; true when the answer is complete (the socket may be reused if `reusable`). */
  feed(chunk: Buffer, answer: Answer): boolean {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.mode === 'head' && !this.readHead(answer)) return false;
    const complete = this.mode === 'length' ? this.readLength(answer) : this.readChunks(answer);
    if (complete) {
      this.mode = 'head';
      this.pending = EMPTY;
    }
    return complete;
  }

  get reusable(): boolean {
    return this.keepAlive;
  }

  private readHead(answer: Answer): boolean {
    const head = headOf(this.pending);
    if (head === undefined) return false;
    const status = Number(head.first.split(' ')[1]);
    const length = header(head, 'content-length');
    const chunked = header(head, 'transfer-encoding')?.toLowerCase() === 'chunked';
    this.keepAlive = header(head, 'connection')?.toLowerCase() !== 'close';
    if (!chunked && length === undefined) throw new Error('answer delimited by close');
    const type = header(head, 'content-type') ?? '';
    answer.start(status, type.startsWith('text/event-stream'));
    this.mode = chunked ? 'chunked' : 'length';
    this.remaining = chunked ? 0 : Number(length);
    this.pending = this.pending.subarray(head.bodyAt);
    return true;
  }

  private readLength(answer: Answer): boolean {
    const take = Math.min(this.remaining, this.pending.length);
    if (take > 0) answer.data(this.pending.subarray(0, take));
    this.remaining -= take;
    this.pending = EMPTY;
    return this.remaining === 0;
  }

  /** Chunks: `<hex size>[;ext]\r\n<data>\r\n`, ended by a size 0 and the (empty) trailer. */
  private readChunks(answer: Answer): boolean {
    let at = 0;
    const buffer = this.pending;
    for (;;) {
      const lineEnd = buffer.indexOf('\r\n', at);
      if (lineEnd < 0) break;
      const size = parseInt(buffer.toString('latin1', at, lineEnd), 16);
      if (!Number.isInteger(size) || size < 0) throw new Error('bad chunk size');
      // The last chunk: complete once its (empty) trailer's blank line is in.
      if (size === 0) {
        if (buffer.indexOf('\r\n\r\n', lineEnd) >= 0) return true;
        break;
      }
      if (buffer.length < lineEnd + 2 + size + 2) break;
      answer.data(buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
    this.pending = buffer.subarray(at);
    return false;
  }
}

/** An upstream socket and the parser of its answers. */
interface Connection {
  readonly socket: Socket;
  readonly reader: AnswerParser;
}

/** Kept-alive raw sockets to llm-sim; a request goes to an idle one or a new one. */
class Upstream {
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Socket>();
  private readonly head: string;
  private readonly sim: URL;
  private readonly parsers: Parsers;

  constructor(sim: URL, parsers: Parsers) {
    this.sim = sim;
    this.parsers = parsers;
    const path = `${sim.pathname.replace(/\/$/, '')}/v1/chat/completions`;
    this.head = `POST ${path} HTTP/1.1\r\nhost: ${sim.host}\r\ncontent-type: application/json\r\ncontent-length: `;
  }

  send(body: string, answer: Answer): void {
    const connection = this.idle.pop() ?? this.open();
    const { socket, reader } = connection;
    const finish = (ok: boolean) => {
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      if (ok && reader.reusable) this.idle.push(connection);
      else socket.destroy();
    };
    const onData = (chunk: Buffer) => {
      let complete: boolean;
      try {
        complete = reader.feed(chunk, answer);
      } catch {
        finish(false);
        answer.fail();
        return;
      }
      if (!complete) {
        answer.flush();
        return;
      }
      finish(true);
      answer.end();
    };
    const onClose = () => {
      finish(false);
      answer.fail();
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(`${this.head}${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }

  private open(): Connection {
    const socket = connect(Number(this.sim.port), this.sim.hostname);
    socket.setNoDelay(true);
    const connection = { socket, reader: this.parsers.answer() };
    this.all.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.all.delete(socket);
      const index = this.idle.indexOf(connection);
      if (index >= 0) this.idle.splice(index, 1);
    });
    return connection;
  }

  close(): void {
    for (const socket of this.all) socket.destroy();
  }
}

/** One app connection: its requests read and answered one at a time. */
function serve(
  socket: Socket,
  upstream: Upstream,
  requests: RequestParser,
  counted: () => void,
): void {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  let busy = false;
  const refuse = () => {
    socket.end(`${statusLine(400)}content-length: 0\r\nconnection: close\r\n\r\n`);
    busy = true;
  };
  const next = (): void => {
    if (busy) return;
    const request = requests.shift();
    if (request === undefined) return;
    if (request === 'bad') {
      refuse();
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(request.body.toString('utf8'));
    } catch {
      refuse();
      return;
    }
    busy = true;
    counted();
    upstream.send(
      JSON.stringify(parsed),
      answerTo(socket, () => {
        busy = false;
        if (request.close) socket.end();
        else next();
      }),
    );
  };
  socket.on('data', (chunk: Buffer) => {
    requests.push(chunk);
    next();
  });
}

const HAND: Parsers = { request: () => new HandRequests(), answer: () => new AnswerReader() };

/** The floor on raw sockets, its HTTP/1.1 read by `parsers` (by default the hand parser). */
export async function startNetFloor(
  simUrl: string,
  parsers: Parsers = HAND,
): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  const upstream = new Upstream(new URL(simUrl), parsers);
  const sockets = new Set<Socket>();
  let requests = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serve(socket, upstream, parsers.request(), () => (requests += 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      upstream.close();
    },
  };
}
