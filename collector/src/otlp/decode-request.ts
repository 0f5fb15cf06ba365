/**
 * One export request's body → one Native block of `otel_traces` rows, whatever
 * its encoding: what a decode thread runs (`decode-worker.ts`), and what the
 * receiver runs itself when it has no decode threads. Also the messages the
 * receiver and its decode threads exchange.
 */
import { MalformedPayloadError, PayloadTooLargeError } from '../errors.js';
import { spanRowsToNative } from '../store/span-row-native.js';
import { decodeTraceRequestProtobufToNative } from './decode-protobuf.js';
import type * as JsonDecoder from './decode-json.js';
import type { OtlpEncoding } from './encode-response.js';
import type { DecodeLimits, EncodedTraces } from './to-span-rows.js';

let jsonDecoder: typeof JsonDecoder | undefined;

/**
 * Loads the JSON decoder (zod and its schemas: most of a decode thread's start-up
 * time and heap) on the first JSON request, not before.
 */
export async function loadJsonDecoder(): Promise<void> {
  jsonDecoder ??= await import('./decode-json.js');
}

/** Decodes one body; JSON needs `loadJsonDecoder()` to have been awaited once. */
export function decodeRequest(
  encoding: OtlpEncoding,
  body: Uint8Array,
  limits: DecodeLimits,
): EncodedTraces {
  if (encoding === 'protobuf') return decodeTraceRequestProtobufToNative(body, limits);
  if (jsonDecoder === undefined) throw new Error('the JSON decoder is not loaded');
  // JSON goes through rows, encoded the way the store's write(rows) encodes them.
  const decoded = jsonDecoder.decodeTraceRequestJson(body, limits);
  return {
    block: spanRowsToNative(decoded.rows),
    spans: decoded.rows.length,
    rejectedSpans: decoded.rejectedSpans,
    problems: decoded.problems,
    truncatedValues: decoded.truncatedValues,
  };
}

/** A request for a decode thread; `body` is transferred. */
export interface DecodeJob {
  id: number;
  encoding: OtlpEncoding;
  body: Uint8Array;
  limits: DecodeLimits;
}

/**
 * What a decode thread reports of an error (classes do not cross threads): which of the
 * classes the HTTP layer maps it was (`other` for anything else), and its message.
 */
export interface DecodeFailure {
  kind: 'malformed' | 'too-large' | 'other';
  name: string;
  message: string;
}

/** A decode thread's answer: the result with its block transferred, or the error. */
export type DecodeReply =
  | { id: number; result: Omit<EncodedTraces, 'block'> & { block: Uint8Array } }
  | { id: number; error: DecodeFailure };

/** `error` as a decode thread reports it. */
export function decodeFailureOf(error: unknown): DecodeFailure {
  const { name, message } = error instanceof Error ? error : new Error(String(error));
  const kind =
    error instanceof MalformedPayloadError
      ? 'malformed'
      : error instanceof PayloadTooLargeError
        ? 'too-large'
        : 'other';
  return { kind, name, message };
}

/** The error a decode thread reported, as the class the HTTP layer maps. */
export function errorOfDecodeFailure(failure: DecodeFailure, limits: DecodeLimits): Error {
  switch (failure.kind) {
    case 'malformed':
      return new MalformedPayloadError(failure.message);
    case 'too-large':
      return new PayloadTooLargeError(failure.message, limits.maxSpans);
    default:
      return new Error(`decoding failed in a decode thread: ${failure.name}: ${failure.message}`);
  }
}

/**
 * `bytes` as a view of a whole `ArrayBuffer` of its own, copying them when they
 * share one (Node's pooled small buffers, slices of socket reads), so that the
 * buffer can be transferred to another thread.
 */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength) {
    if (bytes.buffer instanceof ArrayBuffer) return bytes;
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}
