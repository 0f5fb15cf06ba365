/**
 * zod schemas of the OTLP/JSON `ExportTraceServiceRequest` (OTLP specification,
 * "JSON Protobuf Encoding"): lowerCamelCase keys, objects not strict (unknown
 * fields are ignored), trace and span ids as hex (any case), 64-bit integers as
 * decimal strings or numbers, enums as integers (the proto names are accepted too),
 * bytes as base64.
 *
 * The request is parsed in two steps so that one bad span is rejected on its own:
 * `TraceRequestJsonSchema` checks the envelope down to each scope's `spans`
 * array, then `SpanJsonSchema` runs per span.
 */
import { z } from 'zod';
import { SPAN_KIND_PROTO_NAMES, STATUS_CODE_PROTO_NAMES } from './to-span-rows.js';

const hexId = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`), `must be ${bytes * 2} hex digits`);

const optionalHexId = (bytes: number) =>
  z
    .string()
    .regex(
      new RegExp(`^(?:[0-9a-fA-F]{${bytes * 2}})?$`),
      `must be empty or ${bytes * 2} hex digits`,
    );

/** Any integral JSON number (zod's `.int()` stops at 2^53, below real nanosecond timestamps). */
const integer = z.number().refine(Number.isInteger, 'must be an integer');

/** uint64 / int64 as JSON: a decimal string or an integer number. */
const unsignedInt64 = z.union([
  z.string().regex(/^\d{1,20}$/, 'must be a decimal integer'),
  integer.refine((value) => value >= 0, 'must not be negative'),
]);
export const Int64Schema = z.union([
  z.string().regex(/^-?\d{1,20}$/, 'must be a decimal integer'),
  integer,
]);

const enumValue = (names: readonly string[]) =>
  z.union([
    z.number().int(),
    z.enum(names as [string, ...string[]]).transform((name) => names.indexOf(name)),
  ]);

/**
 * One level of an `AnyValue`. The items of `arrayValue` / `kvlistValue` are
 * checked one by one by the converter (`decode-json.ts`) as it descends, with a
 * depth limit: a recursive zod schema (`z.lazy`) costs several times more per
 * span, and attribute values are on the JSON ingest path.
 */
export const AnyValueJsonSchema = z.object({
  stringValue: z.string().optional(),
  boolValue: z.boolean().optional(),
  intValue: Int64Schema.optional(),
  doubleValue: z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]).optional(),
  arrayValue: z.object({ values: z.array(z.unknown()).optional() }).optional(),
  kvlistValue: z.object({ values: z.array(z.unknown()).optional() }).optional(),
  bytesValue: z.base64().optional(),
});
export type AnyValueJson = z.infer<typeof AnyValueJsonSchema>;

export const KeyValueJsonSchema = z.object({
  key: z.string(),
  value: AnyValueJsonSchema.optional(),
});
export type KeyValueJson = z.infer<typeof KeyValueJsonSchema>;

/** Proto3 JSON: `null` for a field means its default, so span-level fields are nullish. */
const AttributesSchema = z.array(KeyValueJsonSchema).nullish();

export const SpanJsonSchema = z.object({
  traceId: hexId(16),
  spanId: hexId(8),
  traceState: z.string().nullish(),
  parentSpanId: optionalHexId(8).nullish(),
  flags: z.number().int().nullish(),
  name: z.string().nullish(),
  kind: enumValue(SPAN_KIND_PROTO_NAMES).nullish(),
  startTimeUnixNano: unsignedInt64,
  endTimeUnixNano: unsignedInt64,
  attributes: AttributesSchema,
  droppedAttributesCount: z.number().nullish(),
  events: z
    .array(
      z.object({
        timeUnixNano: unsignedInt64.nullish(),
        name: z.string().nullish(),
        attributes: AttributesSchema,
      }),
    )
    .nullish(),
  links: z
    .array(
      z.object({
        traceId: optionalHexId(16).nullish(),
        spanId: optionalHexId(8).nullish(),
        traceState: z.string().nullish(),
        attributes: AttributesSchema,
      }),
    )
    .nullish(),
  status: z
    .object({
      message: z.string().nullish(),
      code: enumValue(STATUS_CODE_PROTO_NAMES).nullish(),
    })
    .nullish(),
});
export type SpanJson = z.infer<typeof SpanJsonSchema>;

export const TraceRequestJsonSchema = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes: AttributesSchema }).nullish(),
        scopeSpans: z
          .array(
            z.object({
              scope: z
                .object({ name: z.string().nullish(), version: z.string().nullish() })
                .nullish(),
              spans: z.array(z.unknown()).nullish(),
            }),
          )
          .nullish(),
      }),
    )
    .nullish(),
});
