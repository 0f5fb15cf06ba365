/**
 * Stream relay: the upstream's answer goes to the app as it arrives (SSE event by event, never
 * buffered; the usage chunk the gateway asked for is left out when the app did not ask for it),
 * and is read on the side for the span (model, id, finish reasons, usage, cost).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { returnedHeaders } from './upstream.js';
import { scanEvent, summarizeBody } from './usage.js';
import type { Summary, Wire } from './usage.js';

export interface RelayResult {
  summary: Summary;
  firstChunkAt: number | undefined;
  /** The upstream's body ended normally and the app got all of it. */
  complete: boolean;
}

/** A JSON answer up to this size is sent in one write; larger ones as they come. */
const WHOLE_LIMIT = 1024 * 1024;
/** A JSON answer up to this size is read for the span. */
const SUMMARY_LIMIT = 32 * 1024 * 1024;

/** A JSON (or other non-SSE) body: kept to be read at the end, written through unless whole. */
class BodyRelay {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly response: ServerResponse;
  /** Sent in one write at the end (with its headers) rather than as it comes. */
  private readonly whole: boolean;

  constructor(upstream: IncomingMessage, response: ServerResponse) {
    this.response = response;
    // A JSON answer of known, modest size is of no use to the app before its last byte.
    const declared = Number(upstream.headers['content-length']);
    this.whole = Number.isFinite(declared) && declared <= WHOLE_LIMIT;
  }

  write(chunk: Buffer): void {
    if (this.size <= SUMMARY_LIMIT) this.chunks.push(chunk);
    this.size += chunk.length;
    if (!this.whole) this.response.write(chunk);
  }

  end(): void {
    if (!this.whole) {
      this.response.end();
      return;
    }
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.chunks.length = 0;
    this.chunks.push(body);
    this.response.end(body);
  }

  summary(wire: Wire): Summary | undefined {
    if (this.size === 0 || this.size > SUMMARY_LIMIT) return undefined;
    try {
      const text = Buffer.concat(this.chunks, this.size).toString('utf8');
      return summarizeBody(wire, JSON.parse(text) as unknown);
    } catch {
      return undefined; // Not JSON (an HTML error page): nothing to read.
    }
  }
}

/** An SSE body: passed through chunk by chunk, each complete event scanned for the span. */
class EventRelay {
  readonly summary: Summary = { finishReasons: [] };
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';
  private first = true;
  private readonly response: ServerResponse;
  private readonly wire: Wire;
  private readonly hideUsage: boolean;

  constructor(response: ServerResponse, wire: Wire, hideUsage: boolean) {
    this.response = response;
    this.wire = wire;
    this.hideUsage = hideUsage;
  }

  write(chunk: Buffer): void {
    const text = this.pending + this.decoder.write(chunk);
    const end = text.lastIndexOf('\n\n');
    if (end < 0) {
      this.pending = text;
      if (!this.hideUsage) this.response.write(chunk);
      return;
    }
    this.pending = text.slice(end + 2);
    const events = text.slice(0, end).split('\n\n');
    if (!this.hideUsage) {
      // The bytes as they came; the events only read.
      this.response.write(chunk);
      for (const event of events) this.scan(event);
      return;
    }
    let out = '';
    for (const event of events) if (!this.scan(event)) out += `${event}\n\n`;
    if (out !== '') this.response.write(out);
  }

  end(): void {
    if (this.hideUsage && this.pending !== '') this.response.write(this.pending);
    this.response.end();
  }

  /** Reads one event into the summary; true when it is the hidden usage chunk. */
  private scan(event: string): boolean {
    const hidden = scanEvent(this.wire, event, this.summary, this.first);
    this.first = false;
    return hidden;
  }
}

/** Writes the upstream's answer to the app as it arrives; reads it on the side for the span. */
export function relay(
  upstream: IncomingMessage,
  response: ServerResponse,
  wire: Wire,
  hideUsage: boolean,
  extraHeaders: Record<string, string>,
): Promise<RelayResult> {
  const sse = String(upstream.headers['content-type'] ?? '').includes('text/event-stream');
  response.writeHead(upstream.statusCode ?? 502, {
    ...returnedHeaders(upstream.headers, !sse || !hideUsage),
    ...extraHeaders,
  });
  if (sse) response.flushHeaders();
  const events = sse ? new EventRelay(response, wire, hideUsage) : undefined;
  const body = sse ? undefined : new BodyRelay(upstream, response);
  return new Promise((resolve) => {
    let firstChunkAt: number | undefined;
    let done = false;
    const finish = (complete: boolean) => {
      if (done) return;
      done = true;
      const summary = events?.summary ??
        (complete ? body!.summary(wire) : undefined) ?? { finishReasons: [] };
      resolve({ summary, firstChunkAt, complete });
    };
    upstream.on('data', (chunk: Buffer) => {
      firstChunkAt ??= performance.now();
      (events ?? body!).write(chunk);
    });
    upstream.once('end', () => {
      (events ?? body!).end();
      finish(true);
    });
    upstream.once('error', () => {
      response.destroy();
      finish(false);
    });
    upstream.once('close', () => {
      if (!upstream.complete) {
        response.destroy();
        finish(false);
      }
    });
  });
}
