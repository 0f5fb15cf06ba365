/**
 * OTLP/HTTP replies in the request's encoding: `ExportTraceServiceResponse`
 * (with `partial_success` when spans were rejected) on success, and
 * `google.rpc.Status` for errors, as protobuf or JSON.
 */

export type OtlpEncoding = 'protobuf' | 'json';

export const CONTENT_TYPES: Record<OtlpEncoding, string> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

/** gRPC status codes used in `google.rpc.Status.code`. */
export const GRPC_CODES = {
  invalidArgument: 3,
  resourceExhausted: 8,
  internal: 13,
  unavailable: 14,
  unauthenticated: 16,
} as const;

export function grpcCodeForStatus(status: number): number {
  if (status === 401) return GRPC_CODES.unauthenticated;
  if (status === 413 || status === 429) return GRPC_CODES.resourceExhausted;
  if (status === 503) return GRPC_CODES.unavailable;
  if (status >= 500) return GRPC_CODES.internal;
  return GRPC_CODES.invalidArgument;
}

function varint(value: number, out: number[]): void {
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function lengthDelimited(field: number, payload: Uint8Array, out: number[]): void {
  varint((field << 3) | 2, out);
  varint(payload.length, out);
  for (const byte of payload) out.push(byte);
}

/** `ExportTraceServiceResponse`; empty (all defaults) when nothing was rejected. */
export function encodeExportResponse(
  encoding: OtlpEncoding,
  rejectedSpans: number,
  errorMessage: string,
): Buffer {
  if (encoding === 'json') {
    return Buffer.from(
      JSON.stringify(
        rejectedSpans > 0 || errorMessage !== ''
          ? { partialSuccess: { rejectedSpans: String(rejectedSpans), errorMessage } }
          : {},
      ),
    );
  }
  if (rejectedSpans === 0 && errorMessage === '') return Buffer.alloc(0);
  const partial: number[] = [];
  if (rejectedSpans > 0) {
    varint((1 << 3) | 0, partial);
    varint(rejectedSpans, partial);
  }
  if (errorMessage !== '') lengthDelimited(2, Buffer.from(errorMessage), partial);
  const out: number[] = [];
  lengthDelimited(1, Uint8Array.from(partial), out);
  return Buffer.from(out);
}

/** `google.rpc.Status { code, message }`. */
export function encodeStatus(encoding: OtlpEncoding, code: number, message: string): Buffer {
  if (encoding === 'json') return Buffer.from(JSON.stringify({ code, message }));
  const out: number[] = [];
  if (code !== 0) {
    varint((1 << 3) | 0, out);
    varint(code, out);
  }
  if (message !== '') lengthDelimited(2, Buffer.from(message), out);
  return Buffer.from(out);
}
