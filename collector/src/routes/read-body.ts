/**
 * Request bodies with hard limits: `Content-Length` is checked before reading,
 * the bytes on the wire are counted while reading, and a gzip body is inflated
 * with a cap on its output, so a gzip bomb is refused (413) after at most
 * `maxBytes` of output, never inflated in full.
 */
import { promisify } from 'node:util';
import { gunzip, type InputType, type ZlibOptions } from 'node:zlib';
import type { Request } from 'express';
import {
  MalformedPayloadError,
  PayloadTooLargeError,
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

/** Reads the whole body (inflating gzip) within `maxBytes`. */
export async function readBody(request: Request, maxBytes: number): Promise<Buffer> {
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
  const raw = await readRaw(request, maxBytes);
  if (encoding !== 'gzip') return raw;
  try {
    return await gunzipAsync(raw, { maxOutputLength: maxBytes });
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

function readRaw(request: Request, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const cleanup = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) {
        cleanup();
        // Stop buffering; Node discards the rest of the body.
        request.resume();
        reject(
          new PayloadTooLargeError(
            `request body is larger than the limit of ${maxBytes} bytes`,
            maxBytes,
          ),
        );
        return;
      }
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
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('aborted', onAborted);
  });
}
