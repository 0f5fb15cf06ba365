/**
 * The `llhttp` floor of the gateway benchmark (gateway-floor.ts, `GATEWAY_BENCH_FLOORS=llhttp`):
 * the `net` floor's proxy on raw `node:net` sockets (gateway-floor-net.ts: same sockets, upstream
 * pool and writing), its requests and llm-sim's answers read by Node's own HTTP/1.1 parser,
 * llhttp, as node:http's server and client bind it (`HTTPParser` of `node:_http_common`), without
 * node:http's IncomingMessage, ServerResponse or streams.
 *
 * What llhttp gives over the hand parser: chunked request bodies, a request with both
 * `Content-Length` and `Transfer-Encoding` refused (a 400 and the connection closed, as any parse
 * error, as node:http does), node:http's header size limit (16 KiB), keep-alive by HTTP version
 * and `Connection`, chunk extensions and trailers. Upgrades are refused (400); 1xx answers and
 * answers delimited by the connection's close are not supported (a 502, or the stream cut).
 */
import { createRequire } from 'node:module';
import type {
  Answer,
  AnswerParser,
  ParsedRequest,
  Parsers,
  RequestParser,
} from './gateway-floor-net.ts';

/** The binding's parser, as `node:_http_common` exports it (no published types). */
interface Llhttp {
  initialize(type: number, resource: object): void;
  execute(chunk: Buffer): number | Error;
  [callback: number]: unknown;
}

interface LlhttpClass {
  new (): Llhttp;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}

const { HTTPParser } = createRequire(import.meta.url)('node:_http_common') as {
  HTTPParser: LlhttpClass;
};

/**
 * kOnHeadersComplete's arguments: versionMajor, versionMinor, headers (a flat name/value list, or
 * undefined when they were flushed to kOnHeaders, as when they span reads), method (an index into
 * `methods`), url, statusCode, statusMessage, upgrade, shouldKeepAlive.
 */
type HeadersComplete = (
  major: number,
  minor: number,
  headers: string[] | undefined,
  method: number | undefined,
  url: string | undefined,
  status: number | undefined,
  message: string | undefined,
  upgrade: boolean,
  keepAlive: boolean,
) => void;

function parser(type: number): Llhttp {
  const created = new HTTPParser();
  created.initialize(type, {});
  return created;
}

class LlhttpRequests implements RequestParser {
  private readonly parser = parser(HTTPParser.REQUEST);
  private readonly ready: ParsedRequest[] = [];
  private body: Buffer[] = [];
  private close = false;
  private bad = false;

  constructor() {
    const onHeadersComplete: HeadersComplete = (...args) => {
      if (args[7]) this.bad = true;
      this.close = !args[8];
    };
    this.parser[HTTPParser.kOnHeadersComplete] = onHeadersComplete;
    this.parser[HTTPParser.kOnBody] = (chunk: Buffer) => this.body.push(chunk);
    this.parser[HTTPParser.kOnMessageComplete] = () => {
      if (this.bad) return;
      const body = this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body);
      this.ready.push({ body, close: this.close });
      this.body = [];
    };
  }

  push(chunk: Buffer): void {
    if (this.bad) return;
    if (this.parser.execute(chunk) instanceof Error) this.bad = true;
  }

  shift(): ParsedRequest | 'bad' | undefined {
    return this.ready.shift() ?? (this.bad ? 'bad' : undefined);
  }
}

/** Whether a flat header list says `text/event-stream`. */
function isStream(headers: readonly string[]): boolean {
  for (let index = 0; index + 1 < headers.length; index += 2) {
    if (headers[index]!.toLowerCase() === 'content-type') {
      return headers[index + 1]!.startsWith('text/event-stream');
    }
  }
  return false;
}

class LlhttpAnswers implements AnswerParser {
  reusable = true;
  private readonly parser = parser(HTTPParser.RESPONSE);
  private answer: Answer | undefined;
  /** Header lines flushed to kOnHeaders before the head was complete. */
  private flushed: string[] = [];
  private inHead = true;
  private complete = false;

  constructor() {
    this.parser[HTTPParser.kOnHeaders] = (headers: string[]) => {
      // After the head, kOnHeaders carries trailers: not passed on.
      if (this.inHead) this.flushed.push(...headers);
    };
    const onHeadersComplete: HeadersComplete = (...args) => {
      const headers = args[2] ?? this.flushed;
      this.flushed = [];
      this.inHead = false;
      this.reusable = args[8];
      this.answer?.start(args[5] ?? 502, isStream(headers));
    };
    this.parser[HTTPParser.kOnHeadersComplete] = onHeadersComplete;
    this.parser[HTTPParser.kOnBody] = (chunk: Buffer) => this.answer?.data(chunk);
    this.parser[HTTPParser.kOnMessageComplete] = () => {
      this.complete = true;
      this.inHead = true;
    };
  }

  feed(chunk: Buffer, answer: Answer): boolean {
    this.answer = answer;
    this.complete = false;
    const result = this.parser.execute(chunk);
    if (result instanceof Error) throw result;
    return this.complete;
  }
}

export const llhttpParsers: Parsers = {
  request: () => new LlhttpRequests(),
  answer: () => new LlhttpAnswers(),
};
