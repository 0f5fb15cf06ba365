/**
 * Stream relay: the upstream's answer goes to the app as it arrives (SSE event by event, never
 * buffered; the usage chunk the gateway asked for is left out when the app did not ask for it),
 * and is read on the side for the span (model, id, finish reasons, usage, cost). An answer in
 * the other provider's format goes through a translating sink (./translate/sinks.ts). An upstream
 * that sends nothing for the idle timeout is cut: before anything reached the app the exchange
 * may fall back; after, the app gets an error event in its format and a clean end.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { translatingSink } from './translate/sinks.js';
import { streamErrorEvent } from './translate/responses.js';
import { returnedHeaders } from './upstream.js';
import type { UpstreamAnswer } from './upstream.js';
import { ENDED_EARLY, scanEvent, summarizeBody } from './usage.js';
import type { Summary, Wire } from './usage.js';

export interface RelayResult {
  summary: Summary;
  firstChunkAt: number | undefined;
  /** The upstream's body ended normally and the app got all of it. */
  complete: boolean;
  /** The upstream sent nothing for the idle timeout and was cut. */
  idle: boolean;
  /** Something (headers included) reached the app. */
  sent: boolean;
}

/** A call that got no answer (the app went away before the upstream's headers). */
export function noAnswer(): RelayResult {
  return {
    summary: { finishReasons: [] },
    firstChunkAt: undefined,
    complete: false,
    idle: false,
    sent: false,
  };
}

export interface RelayOptions {
  /** The app's wire format. */
  readonly wire: Wire;
  /** The upstream's wire format (the app's unless translated). */
  readonly upstreamWire: Wire;
  readonly hideUsage: boolean;
  /** A translated chat stream: the app asked for the usage chunk. */
  readonly includeUsage: boolean;
  readonly extraHeaders: Record<string, string>;
  /** Longest silence of the upstream's body, ms. */
  readonly idleTimeoutMs: number;
}

/** Where the upstream's body goes: to the app as it came, or translated. */
export interface Sink {
  write(chunk: Buffer): void;
  end(): void;
  /** The upstream stalled after the app got part of the answer: end it in the app's format. */
  stall(type: string, message: string): void;
  /** What the span records (read from the upstream's format). */
  summary(complete: boolean): Summary;
}

/** Splits a byte stream into complete SSE events (without their blank line) and reads each. */
export class EventScanner {
  /** What the span records, read from the events in `wire`'s format. */
  readonly summary: Summary = { finishReasons: [] };
  /** The part of an event not complete yet. */
  pending = '';
  private readonly decoder = new StringDecoder('utf8');
  private first = true;
  /** The last event scanned: a stream's terminator is its last event. */
  private last = '';
  private readonly wire: Wire;

  constructor(wire: Wire) {
    this.wire = wire;
  }

  /** The events this chunk completes; undefined when none. */
  push(chunk: Buffer): string[] | undefined {
    const text = this.pending + this.decoder.write(chunk);
    const end = text.lastIndexOf('\n\n');
    if (end < 0) {
      this.pending = text;
      return undefined;
    }
    this.pending = text.slice(end + 2);
    return text.slice(0, end).split('\n\n');
  }

  /** Reads one event into the summary; true when it is the hidden usage chunk. */
  scan(event: string): boolean {
    const hidden = scanEvent(this.wire, event, this.summary, this.first);
    this.first = false;
    this.last = event;
    return hidden;
  }

  /**
   * The stream said how it ended: its terminator (chat `[DONE]`, Anthropic `message_stop`), a
   * finish or stop reason, a Responses `response.completed` / `incomplete` / `failed`, or an error
   * event. A stream whose body ended without any of these was cut short.
   */
  get terminated(): boolean {
    const { summary, wire } = this;
    if (summary.finishReasons.length > 0 || summary.streamError !== undefined) return true;
    // Read at the end only (no cost per event); a last event without its blank line counts.
    return closesStream(wire, this.last) || closesStream(wire, this.pending.trimEnd());
  }
}

/**
 * A stream's own end event: `[DONE]` ends its event, and text that quotes `"message_stop"`
 * comes JSON-escaped (`\"message_stop\"`), so neither matches content.
 */
function closesStream(wire: Wire, event: string): boolean {
  if (wire === 'chat') return event.endsWith('[DONE]');
  return wire === 'messages' && event.includes('"message_stop"');
}

/** A JSON answer up to this size is sent in one write; larger ones as they come. */
const WHOLE_LIMIT = 1024 * 1024;
/** A JSON answer up to this size is read for the span. */
const SUMMARY_LIMIT = 32 * 1024 * 1024;

/** A JSON (or other non-SSE) body: kept to be read at the end, written through unless whole. */
export class BodyRelay implements Sink {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly response: ServerResponse;
  private readonly wire: Wire;
  /** Sent in one write at the end (with its headers) rather than as it comes. */
  private readonly whole: boolean;

  constructor(
    upstream: { readonly headers: IncomingHttpHeaders },
    response: ServerResponse,
    wire: Wire,
    whole?: boolean,
  ) {
    this.response = response;
    this.wire = wire;
    // A JSON answer of known, modest size is of no use to the app before its last byte.
    const declared = Number(upstream.headers['content-length']);
    this.whole = whole ?? (Number.isFinite(declared) && declared <= WHOLE_LIMIT);
  }

  write(chunk: Buffer): void {
    if (this.size <= SUMMARY_LIMIT) this.chunks.push(chunk);
    this.size += chunk.length;
    if (!this.whole) this.response.write(chunk);
  }

  /** The body so far in one buffer. */
  body(): Buffer {
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.chunks.length = 0;
    this.chunks.push(body);
    return body;
  }

  end(): void {
    if (!this.whole) this.response.end();
    else this.response.end(this.body());
  }

  stall(): void {
    this.response.destroy(); // A JSON body cut in the middle has no clean end.
  }

  summary(complete: boolean): Summary {
    if (!complete || this.size === 0 || this.size > SUMMARY_LIMIT) return { finishReasons: [] };
    try {
      return summarizeBody(this.wire, JSON.parse(this.body().toString('utf8')) as unknown);
    } catch {
      return { finishReasons: [] }; // Not JSON (an HTML error page): nothing to read.
    }
  }
}

/** An SSE body: passed through chunk by chunk, each complete event scanned for the span. */
class EventRelay implements Sink {
  private readonly scanner: EventScanner;
  private readonly response: ServerResponse;
  private readonly wire: Wire;
  private readonly hideUsage: boolean;

  constructor(response: ServerResponse, wire: Wire, hideUsage: boolean) {
    this.scanner = new EventScanner(wire);
    this.response = response;
    this.wire = wire;
    this.hideUsage = hideUsage;
  }

  write(chunk: Buffer): void {
    const { scanner } = this;
    const events = scanner.push(chunk);
    if (!this.hideUsage) {
      // The bytes as they came; the events only read.
      this.response.write(chunk);
      if (events !== undefined) for (const event of events) scanner.scan(event);
      return;
    }
    if (events === undefined) return;
    let out = '';
    for (const event of events) if (!scanner.scan(event)) out += `${event}\n\n`;
    if (out !== '') this.response.write(out);
  }

  end(): void {
    if (this.hideUsage && this.scanner.pending !== '') this.response.write(this.scanner.pending);
    this.response.end();
  }

  stall(type: string, message: string): void {
    // A partial event the app already got (passed through as it came) is closed first.
    const open = !this.hideUsage && this.scanner.pending !== '' ? '\n\n' : '';
    this.response.end(open + streamErrorEvent(this.wire, type, message));
  }

  summary(complete: boolean): Summary {
    const { scanner } = this;
    // The app got the bytes as they came; the span says the answer was cut.
    if (!complete || scanner.terminated) return scanner.summary;
    return { ...scanner.summary, streamError: ENDED_EARLY };
  }
}

function sinkOf(
  upstream: UpstreamAnswer,
  response: ServerResponse,
  sse: boolean,
  options: RelayOptions,
): Sink {
  if (options.upstreamWire !== options.wire) {
    return translatingSink(upstream, response, sse, options);
  }
  return sse
    ? new EventRelay(response, options.wire, options.hideUsage)
    : new BodyRelay(upstream, response, options.wire);
}

/** Writes the upstream's answer to the app as it arrives; reads it on the side for the span. */
export function relay(
  upstream: UpstreamAnswer,
  response: ServerResponse,
  options: RelayOptions,
): Promise<RelayResult> {
  const sse = String(upstream.headers['content-type'] ?? '').includes('text/event-stream');
  const translated = options.upstreamWire !== options.wire;
  const sink = sinkOf(upstream, response, sse, options);
  // Headers go out with the first bytes: until then the exchange may still fall back. A
  // translated JSON answer writes its own, once translated.
  let headed = translated && !sse;
  const head = () => {
    if (headed) return;
    headed = true;
    const headers = returnedHeaders(upstream.headers, !translated && (!sse || !options.hideUsage));
    if (translated) headers['content-type'] = sse ? 'text/event-stream' : 'application/json';
    response.writeHead(upstream.statusCode, { ...headers, ...options.extraHeaders });
  };
  return new Promise((resolve) => {
    let firstChunkAt: number | undefined;
    let lastChunkAt = performance.now();
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (complete: boolean, idle = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({
        summary: sink.summary(complete),
        firstChunkAt,
        complete,
        idle,
        sent: response.headersSent,
      });
    };
    const idle = () => {
      const silent = performance.now() - lastChunkAt;
      if (silent < options.idleTimeoutMs) {
        timer = setTimeout(idle, options.idleTimeoutMs - silent);
        return;
      }
      const seconds = Math.round(options.idleTimeoutMs / 100) / 10;
      finish(false, true);
      upstream.destroy();
      if (response.headersSent) {
        sink.stall('timeout', `the upstream sent nothing for ${seconds} s; the answer is cut here`);
      }
    };
    timer = setTimeout(idle, options.idleTimeoutMs);
    upstream.on('data', (chunk: Buffer) => {
      lastChunkAt = performance.now();
      firstChunkAt ??= lastChunkAt;
      head();
      sink.write(chunk);
    });
    upstream.once('end', () => {
      if (done) return;
      head();
      sink.end();
      finish(true);
    });
    const cut = () => {
      if (done) return;
      response.destroy();
      finish(false);
    };
    upstream.once('error', cut);
    upstream.once('close', () => {
      if (!upstream.complete) cut();
    });
  });
}
