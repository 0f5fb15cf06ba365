/**
 * Request bodies with hard limits: `Content-Length` is checked before reading,
 * the bytes on the wire are counted while reading, and a gzip body is inflated
 * with a cap on its output, so a gzip bomb is refused (413) after at most
 * `maxBytes` of output, never inflated in full.
 *
 * For ingest, reading is also bounded in time (the whole body must arrive within
 * `timeoutMs`, else 408) and in memory across requests (`BodyBudget`: the bytes
 * held by bodies still arriving), so that slow senders cost little and cannot
 * hold anything but their own sockets.
 */
import { promisify } from 'node:util';
import { gunzip, type InputType, type ZlibOptions } from 'node:zlib';
import type { Request } from 'express';
import {
  MalformedPayloadError,
  OverloadedError,
  PayloadTooLargeError,
  RequestTimeoutError,
  UnsupportedMediaTypeError,
} from '../errors.js';

const gunzipAsync = promisify(gunzip) as (
  buffer: InputType,
  options: ZlibOptions,
) => Promise<Buffer>;

/** The media type of `Content-Type` without parameters, lower-case (`''` when absent). */
export function mediaTypeOf(request: Request): string {
  const header = request.headers['content-type'] ?? '';
  return (header.split(';')[0] ?? '').trim().toLowerCase();
}

/** Bytes held by request bodies still arriving, across requests, within a limit. */
export class BodyBudget {
  readonly limitBytes: number;
  /** Bodies being read now. */
  reading = 0;
  /** Bytes they hold. */
  heldBytes = 0;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  /** Takes `bytes` for a body being read; `false` (nothing taken) when that would pass the limit. */
  take(bytes: number): boolean {
    if (this.heldBytes + bytes > this.limitBytes) return false;
    this.heldBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.heldBytes -= bytes;
  }
}

export interface ReadOptions {
  /** The whole body must arrive within this many milliseconds (408 otherwise). */
  timeoutMs?: number;
  /** Shared by the requests being read; a body that would pass its limit is refused (429). */
  budget?: BodyBudget;
}

/** A body as it came off the wire, and its `Content-Encoding`. */
export interface RawBody {
  bytes: Buffer;
  gzip: boolean;
}

/** Reads the whole body (inflating gzip) within `maxBytes`. */
export async function readBody(
  request: Request,
  maxBytes: number,
  options: ReadOptions = {},
): Promise<Buffer> {
  return inflateBody(await readRawBody(request, maxBytes, options), maxBytes);
}

/** Reads the body as sent, within `maxBytes` (and `options`); checks the `Content-Encoding` first. */
export async function readRawBody(
  request: Request,
  maxBytes: number,
  options: ReadOptions = {},
): Promise<RawBody> {
  const encoding = (request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'gzip' && encoding !== 'identity' && encoding !== '') {
    throw new UnsupportedMediaTypeError(
      `unsupported Content-Encoding "${encoding}" (use gzip or none)`,
    );
  }
  const declared = request.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw new PayloadTooLargeError(
      `request body of ${declared} bytes is larger than the limit of ${maxBytes} bytes`,
      maxBytes,
    );
  }
  return { bytes: await readRaw(request, maxBytes, options), gzip: encoding === 'gzip' };
}

/** The body inflated when it is gzip, within `maxBytes` of output (413 beyond). */
export async function inflateBody(body: RawBody, maxBytes: number): Promise<Buffer> {
  if (!body.gzip) return body.bytes;
  try {
    return await gunzipAsync(body.bytes, { maxOutputLength: maxBytes });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw new PayloadTooLargeError(
        `gzip body inflates to more than the limit of ${maxBytes} bytes`,
        maxBytes,
        { cause: error },
      );
    }
    throw new MalformedPayloadError(`invalid gzip body: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function readRaw(request: Request, maxBytes: number, options: ReadOptions): Promise<Buffer> {
  const { timeoutMs, budget } = options;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let timer: NodeJS.Timeout | undefined;
    if (budget !== undefined) budget.reading += 1;
    const cleanup = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('aborted', onAborted);
      if (timer !== undefined) clearTimeout(timer);
      if (budget !== undefined) {
        budget.reading -= 1;
        budget.release(length);
      }
    };
    /**
     * Stops buffering: the rest of the body is discarded as it comes (so that the
     * client can read the answer), and the caller answers with `Connection: close`.
     */
    const fail = (error: Error) => {
      cleanup();
      length = 0;
      chunks.length = 0;
      request.resume();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      if (length + chunk.length > maxBytes) {
        fail(
          new PayloadTooLargeError(
            `request body is larger than the limit of ${maxBytes} bytes`,
            maxBytes,
          ),
        );
        return;
      }
      if (budget !== undefined && !budget.take(chunk.length)) {
        fail(
          new OverloadedError(
            `request bodies still arriving hold ${budget.heldBytes} bytes, the limit is ${budget.limitBytes}`,
            429,
            1,
          ),
        );
        return;
      }
      length += chunk.length;
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new MalformedPayloadError(`could not read the request body: ${error.message}`));
    };
    const onAborted = () => {
      cleanup();
      reject(new MalformedPayloadError('the client aborted the request body'));
    };
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        fail(
          new RequestTimeoutError(
            `the request body did not arrive within ${timeoutMs / 1000} s (${length} bytes came)`,
          ),
        );
      }, timeoutMs);
    }
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('aborted', onAborted);
  });
}
