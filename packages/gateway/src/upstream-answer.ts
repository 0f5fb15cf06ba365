/**
 * An upstream's answer as the gateway reads it: status, headers (merged as node:http merges
 * repeated ones) and the body as `data` events, then `end` (or `error`) and `close`, as
 * node:http's IncomingMessage gives them. Fed by an undici dispatch handler (./upstream.ts): no
 * stream object per answer.
 *
 * undici hands over the first body bytes in the same tick as the headers, before whoever awaits
 * the answer can listen: body events are held until a `data` listener or `resume()` arrives, and
 * delivered in order right after (in a microtask, once the reader's listeners are all attached).
 */
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';

/** Repeated headers node:http keeps the first of (`matchKnownFields` in _http_incoming.js). */
const SINGLE = new Set([
  'content-type',
  'content-length',
  'user-agent',
  'referer',
  'host',
  'authorization',
  'proxy-authorization',
  'if-modified-since',
  'if-unmodified-since',
  'from',
  'location',
  'max-forwards',
  'retry-after',
  'etag',
  'last-modified',
  'server',
  'age',
  'expires',
]);

/**
 * The raw response headers undici gives (`[name, value, …]`, as bytes) merged as node:http
 * merges them: names in lower case, values read as latin1; a repeated set-cookie makes a list, a
 * repeated header of SINGLE keeps its first value, cookie joins with `; `, others with `, `.
 */
export function mergedHeaders(raw: readonly (Buffer | string)[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = latin1(raw[index]!).toLowerCase();
    const value = latin1(raw[index + 1]!);
    const known = out[name];
    if (name === '__proto__') continue; // As node:http: such a header sets nothing.
    if (name === 'set-cookie') {
      if (known === undefined) out[name] = [value];
      else (known as string[]).push(value);
    } else if (known === undefined) out[name] = value;
    else if (!SINGLE.has(name))
      out[name] = `${known as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out as IncomingHttpHeaders;
}

function latin1(value: Buffer | string): string {
  return typeof value === 'string' ? value : value.toString('latin1');
}

/** A held body event: a chunk, the end (null), or the error that cut it. */
type Held = Buffer | null | Error;

export class UpstreamAnswer extends EventEmitter {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  /** The whole body arrived (as IncomingMessage#complete). */
  complete = false;
  /** Body events not delivered yet; undefined once the answer flows. */
  private held: Held[] | undefined = [];
  private flushing = false;
  private closed = false;
  private readonly stop: () => void;

  /** `stop` aborts the upstream request (the answer then ends with an error). */
  constructor(statusCode: number, headers: IncomingHttpHeaders, stop: () => void) {
    super();
    this.statusCode = statusCode;
    this.headers = headers;
    this.stop = stop;
    this.on('newListener', flowOnData);
  }

  /** A body chunk from the upstream. */
  push(chunk: Buffer): void {
    if (this.held === undefined) this.emit('data', chunk);
    else this.held.push(chunk);
  }

  /** The body's end. */
  end(): void {
    this.complete = true;
    if (this.held === undefined) this.finish(null);
    else this.held.push(null);
  }

  /** The body was cut (upstream gone, aborted). */
  fail(error: Error): void {
    if (this.held === undefined) this.finish(error);
    else this.held.push(error);
  }

  /** Reads on without a `data` listener: the rest of the body is dropped. */
  resume(): this {
    this.flow();
    return this;
  }

  /** Stops the upstream request; a body not complete ends with an error. */
  destroy(): this {
    if (!this.complete && !this.closed) this.stop();
    return this;
  }

  /** Delivers what is held, after the listeners being attached now. */
  flow(): void {
    if (this.held === undefined || this.flushing) return;
    this.flushing = true;
    queueMicrotask(() => {
      const held = this.held!;
      this.held = undefined;
      for (const event of held) {
        if (event === null || event instanceof Error) this.finish(event);
        else this.emit('data', event);
      }
    });
  }

  private finish(error: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    this.removeListener('newListener', flowOnData);
    if (error === null) this.emit('end');
    else if (this.listenerCount('error') > 0) this.emit('error', error);
    this.emit('close');
  }
}

/** The answer's `newListener` hook, one function for all answers (no closure per answer). */
function flowOnData(this: UpstreamAnswer, event: string | symbol): void {
  if (event === 'data') this.flow();
}
