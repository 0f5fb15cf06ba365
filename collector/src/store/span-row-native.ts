/**
 * The columns of `otel_traces` as one block of ClickHouse's `Native` format
 * (columns in `OTEL_TRACES_INSERT_COLUMNS` order). This is the ingest hot path:
 * ClickHouse reads Native column by column without parsing text, about five
 * times cheaper than TabSeparated with `Map` columns, and the encoding here is
 * cheaper too (no escaping, no per-row string).
 *
 * `SpanColumns` is the one place that knows the columns. Two writers fill it:
 * `addRow` takes a `SpanRow` (the JSON decoder, the store's `write(rows)`), and
 * the protobuf decoder (`../otlp/decode-protobuf.ts`) writes straight from the
 * request's bytes (ids as hex from the bytes, ASCII strings copied as they are,
 * timestamps as 64-bit halves) without building rows. Both give the same bytes
 * for the same spans: attribute maps have the entry order and the last-wins
 * rule of the JS object a `SpanRow` holds (`MapColumn.end`).
 *
 * The block uses plain types (`String` for the `LowCardinality(String)`
 * columns, `Map(String, String)`): the insert converts them to the table's
 * types. Blocks can be concatenated: a Native stream is a sequence of blocks,
 * which is what a spool segment is (one block per request).
 *
 * Layout of a block (ClickHouse `NativeWriter`, no block info, as the `Native`
 * input/output format writes it): varint column count, varint row count, then
 * per column its name and type (varint-length strings) and its data:
 * `String` = varint length + bytes per row; `UInt64` / `DateTime64(9)` =
 * 8 bytes little-endian per row; `Array(T)` = the end offset of the row's
 * elements (cumulative, UInt64) per row, then the elements as a column of `T`;
 * `Map(K, V)` = an `Array(Tuple(K, V))`: offsets, then all keys, then all values.
 */
import { setAttribute } from '../otlp/to-span-rows.js';
import { MapColumn, varintAt } from './native-map-column.js';
import { InvalidSpanRowError, Sink, type ByteSource } from './native-sink.js';
import type { SpanRow } from './span-store.js';

const DIGITS = /^\d{1,20}$/;
const MAX_UINT64 = (1n << 64n) - 1n;
/** DateTime64 is a signed 64-bit count of nanoseconds. */
const MAX_INT64 = (1n << 63n) - 1n;

const MAP_TYPE = 'Map(String, String)';

/**
 * The column streams of one block, reused by every block (the encoding is
 * synchronous): one allocation per block (the result) instead of one per stream
 * keeps the garbage collector out of the hot path.
 */
export class SpanColumns {
  rows = 0;
  readonly timestamps = new Sink(64 * 1024);
  readonly traceIds = new Sink(64 * 1024);
  readonly spanIds = new Sink(32 * 1024);
  readonly parentSpanIds = new Sink(32 * 1024);
  readonly traceStates = new Sink(4 * 1024);
  readonly spanNames = new Sink(32 * 1024);
  readonly spanKinds = new Sink(16 * 1024);
  readonly serviceNames = new Sink(16 * 1024);
  readonly resource = new MapColumn(8192, 64);
  readonly scopeNames = new Sink(64 * 1024);
  readonly scopeVersions = new Sink(16 * 1024);
  readonly attributes = new MapColumn(8192, 256);
  readonly durations = new Sink(64 * 1024);
  readonly statusCodes = new Sink(16 * 1024);
  readonly statusMessages = new Sink(16 * 1024);
  readonly eventOffsets = new Sink(64 * 1024);
  eventTotal = 0;
  readonly eventTimestamps = new Sink(16 * 1024);
  readonly eventNames = new Sink(16 * 1024);
  readonly eventMaps = new MapColumn(2048, 64);
  readonly linkOffsets = new Sink(64 * 1024);
  linkTotal = 0;
  readonly linkTraceIds = new Sink(1024);
  readonly linkSpanIds = new Sink(1024);
  readonly linkTraceStates = new Sink(1024);
  readonly linkMaps = new MapColumn(64, 64);
  /** A one-row map for the resource attributes while a resource's spans are written. */
  readonly resourceStage = new MapColumn(1, 1024);
  private readonly head = new Sink(4096);
  /** Where the streams a row writes to before it is complete were (`beginRow`). */
  private markEventTimestamps = 0;
  private markEventNames = 0;
  private markLinkTraceIds = 0;
  private markLinkSpanIds = 0;
  private markLinkTraceStates = 0;

  reset(): void {
    this.rows = 0;
    this.eventTotal = 0;
    this.linkTotal = 0;
    for (const value of Object.values(this)) {
      if (value instanceof Sink) value.length = 0;
      else if (value instanceof MapColumn) value.reset();
    }
  }

  /**
   * Starts a row written in pieces (the protobuf decoder: attributes, events and
   * links as they come, the rest once the span is known to be valid): opens its
   * attribute map; `dropRow()` takes everything back.
   */
  beginRow(): void {
    this.attributes.mark();
    this.eventMaps.mark();
    this.linkMaps.mark();
    this.markEventTimestamps = this.eventTimestamps.length;
    this.markEventNames = this.eventNames.length;
    this.markLinkTraceIds = this.linkTraceIds.length;
    this.markLinkSpanIds = this.linkSpanIds.length;
    this.markLinkTraceStates = this.linkTraceStates.length;
    this.attributes.begin();
  }

  dropRow(): void {
    this.attributes.rollback();
    this.eventMaps.rollback();
    this.linkMaps.rollback();
    this.eventTimestamps.length = this.markEventTimestamps;
    this.eventNames.length = this.markEventNames;
    this.linkTraceIds.length = this.markLinkTraceIds;
    this.linkSpanIds.length = this.markLinkSpanIds;
    this.linkTraceStates.length = this.markLinkTraceStates;
  }

  /** One `SpanRow`. Throws `InvalidSpanRowError` on a timestamp or duration that is not a 64-bit count. */
  addRow(row: SpanRow): void {
    if (!DIGITS.test(row.Timestamp)) {
      throw new InvalidSpanRowError(`not a nanosecond timestamp: ${JSON.stringify(row.Timestamp)}`);
    }
    if (!DIGITS.test(row.Duration)) {
      throw new InvalidSpanRowError(`not a nanosecond duration: ${JSON.stringify(row.Duration)}`);
    }
    const events = row.Events;
    const eventCount = events.Name.length;
    if (events.Timestamp.length !== eventCount || events.Attributes.length !== eventCount) {
      throw new InvalidSpanRowError('Events arrays differ in length');
    }
    for (const timestamp of events.Timestamp) {
      if (!DIGITS.test(timestamp)) {
        throw new InvalidSpanRowError(`not a nanosecond timestamp: ${JSON.stringify(timestamp)}`);
      }
    }
    const links = row.Links;
    const linkCount = links.TraceId.length;
    if (
      links.SpanId.length !== linkCount ||
      links.TraceState.length !== linkCount ||
      links.Attributes.length !== linkCount
    ) {
      throw new InvalidSpanRowError('Links arrays differ in length');
    }
    this.timestamps.decimal64(row.Timestamp, MAX_INT64);
    this.traceIds.string(row.TraceId);
    this.spanIds.string(row.SpanId);
    this.parentSpanIds.string(row.ParentSpanId);
    this.traceStates.string(row.TraceState);
    this.spanNames.string(row.SpanName);
    this.spanKinds.string(row.SpanKind);
    this.serviceNames.string(row.ServiceName);
    this.resource.addRecord(row.ResourceAttributes);
    this.scopeNames.string(row.ScopeName);
    this.scopeVersions.string(row.ScopeVersion);
    this.attributes.addRecord(row.SpanAttributes);
    this.durations.decimal64(row.Duration, MAX_UINT64);
    this.statusCodes.string(row.StatusCode);
    this.statusMessages.string(row.StatusMessage);
    this.eventTotal += eventCount;
    this.eventOffsets.uint64(this.eventTotal);
    for (let index = 0; index < eventCount; index++) {
      this.eventTimestamps.decimal64(events.Timestamp[index]!, MAX_INT64);
      this.eventNames.string(events.Name[index]!);
      this.eventMaps.addRecord(events.Attributes[index]!);
    }
    this.linkTotal += linkCount;
    this.linkOffsets.uint64(this.linkTotal);
    for (let index = 0; index < linkCount; index++) {
      this.linkTraceIds.string(links.TraceId[index]!);
      this.linkSpanIds.string(links.SpanId[index]!);
      this.linkTraceStates.string(links.TraceState[index]!);
      this.linkMaps.addRecord(links.Attributes[index]!);
    }
    this.rows += 1;
  }

  /** The block of every row written since `reset()`. */
  finish(): Buffer {
    const out = this.head;
    out.length = 0;
    out.varint(22);
    out.varint(this.rows);
    const parts: Buffer[] = [];
    let headStart = 0;
    const column = (name: string, type: string, ...data: Sink[]) => {
      out.string(name);
      out.string(type);
      parts.push(out.buffer.subarray(headStart, out.length));
      headStart = out.length;
      for (const sink of data) parts.push(sink.view());
    };
    const map = (name: string, type: string, column_: MapColumn, ...outer: Sink[]) =>
      column(name, type, ...outer, column_.offsets, column_.keys, column_.values);
    column('Timestamp', 'DateTime64(9)', this.timestamps);
    column('TraceId', 'String', this.traceIds);
    column('SpanId', 'String', this.spanIds);
    column('ParentSpanId', 'String', this.parentSpanIds);
    column('TraceState', 'String', this.traceStates);
    column('SpanName', 'String', this.spanNames);
    column('SpanKind', 'String', this.spanKinds);
    column('ServiceName', 'String', this.serviceNames);
    map('ResourceAttributes', MAP_TYPE, this.resource);
    column('ScopeName', 'String', this.scopeNames);
    column('ScopeVersion', 'String', this.scopeVersions);
    map('SpanAttributes', MAP_TYPE, this.attributes);
    column('Duration', 'UInt64', this.durations);
    column('StatusCode', 'String', this.statusCodes);
    column('StatusMessage', 'String', this.statusMessages);
    column('Events.Timestamp', 'Array(DateTime64(9))', this.eventOffsets, this.eventTimestamps);
    column('Events.Name', 'Array(String)', this.eventOffsets, this.eventNames);
    map('Events.Attributes', `Array(${MAP_TYPE})`, this.eventMaps, this.eventOffsets);
    column('Links.TraceId', 'Array(String)', this.linkOffsets, this.linkTraceIds);
    column('Links.SpanId', 'Array(String)', this.linkOffsets, this.linkSpanIds);
    column('Links.TraceState', 'Array(String)', this.linkOffsets, this.linkTraceStates);
    map('Links.Attributes', `Array(${MAP_TYPE})`, this.linkMaps, this.linkOffsets);
    return Buffer.concat(parts);
  }
}

let scratch: SpanColumns | undefined;

/** The shared column streams, emptied. Use synchronously: the next call empties them again. */
export function spanColumns(): SpanColumns {
  const columns = (scratch ??= new SpanColumns());
  columns.reset();
  return columns;
}

/** All rows of one request as one Native block. Throws `InvalidSpanRowError` before anything is written. */
export function spanRowsToNative(rows: readonly SpanRow[]): Buffer {
  const columns = spanColumns();
  for (const row of rows) columns.addRow(row);
  return columns.finish();
}

type ColumnValues = (string | Record<string, string> | ColumnValues)[];

/** Reads the columns of Native blocks written by `SpanColumns` (strict: throws on anything else). */
class NativeBlockReader {
  private readonly buffer: ByteSource;
  private at = 0;

  constructor(block: Uint8Array) {
    this.buffer = Buffer.from(block.buffer, block.byteOffset, block.byteLength) as ByteSource;
  }

  get done(): boolean {
    return this.at >= this.buffer.length;
  }

  private need(bytes: number): void {
    if (this.at + bytes > this.buffer.length) {
      throw new InvalidSpanRowError('truncated Native block');
    }
  }

  varint(): number {
    this.need(1);
    const { value, end } = varintAt(this.buffer, this.at);
    this.at = end;
    return value;
  }

  string(): string {
    const length = this.varint();
    this.need(length);
    const text = this.buffer.utf8Slice(this.at, this.at + length);
    this.at += length;
    return text;
  }

  private u64s(count: number): string[] {
    this.need(count * 8);
    const values: string[] = [];
    for (let index = 0; index < count; index++) {
      values.push(this.buffer.readBigUInt64LE(this.at).toString());
      this.at += 8;
    }
    return values;
  }

  /** `count` rows of a column of `type` (`nullPrototype`: maps as objects without a prototype). */
  column(type: string, count: number, nullPrototype: boolean): ColumnValues {
    if (type === 'String') return Array.from({ length: count }, () => this.string());
    if (type === 'UInt64' || type === 'DateTime64(9)') return this.u64s(count);
    if (type === MAP_TYPE) return this.maps(count, nullPrototype);
    if (type.startsWith('Array(') && type.endsWith(')')) {
      const ends = this.u64s(count).map(Number);
      const items = this.column(type.slice(6, -1), ends.at(-1) ?? 0, false);
      let start = 0;
      return ends.map((end) => {
        const row = items.slice(start, end);
        start = end;
        return row;
      });
    }
    throw new InvalidSpanRowError(`unexpected column type ${type}`);
  }

  private maps(count: number, nullPrototype: boolean): Record<string, string>[] {
    const ends = this.u64s(count).map(Number);
    const total = ends.at(-1) ?? 0;
    const keys = this.column('String', total, false) as string[];
    const values = this.column('String', total, false) as string[];
    let start = 0;
    return ends.map((end) => {
      const map = (nullPrototype ? Object.create(null) : {}) as Record<string, string>;
      for (let index = start; index < end; index++) {
        if (Object.hasOwn(map, keys[index]!)) {
          throw new InvalidSpanRowError(`repeated map key ${JSON.stringify(keys[index])}`);
        }
        setAttribute(map, keys[index]!, values[index]!);
      }
      start = end;
      return map;
    });
  }
}

/** Row `index` of a block's columns as a `SpanRow`. */
function spanRowOf(columns: Map<string, ColumnValues>, index: number): SpanRow {
  const value = <T>(name: string): T => {
    const values = columns.get(name);
    if (values === undefined) throw new InvalidSpanRowError(`no column ${name}`);
    return values[index] as T;
  };
  return {
    Timestamp: value('Timestamp'),
    TraceId: value('TraceId'),
    SpanId: value('SpanId'),
    ParentSpanId: value('ParentSpanId'),
    TraceState: value('TraceState'),
    SpanName: value('SpanName'),
    SpanKind: value('SpanKind'),
    ServiceName: value('ServiceName'),
    ResourceAttributes: value('ResourceAttributes'),
    ScopeName: value('ScopeName'),
    ScopeVersion: value('ScopeVersion'),
    SpanAttributes: value('SpanAttributes'),
    Duration: value('Duration'),
    StatusCode: value('StatusCode'),
    StatusMessage: value('StatusMessage'),
    Events: {
      Timestamp: value('Events.Timestamp'),
      Name: value('Events.Name'),
      Attributes: value('Events.Attributes'),
    },
    Links: {
      TraceId: value('Links.TraceId'),
      SpanId: value('Links.SpanId'),
      TraceState: value('Links.TraceState'),
      Attributes: value('Links.Attributes'),
    },
  };
}

/**
 * Reads blocks written by `SpanColumns` back into `SpanRow`s (tests, tools; not
 * the hot path). Strict: a map with a repeated key, or a column other than the
 * ones written here, throws.
 */
export function nativeToSpanRows(block: Uint8Array): SpanRow[] {
  const reader = new NativeBlockReader(block);
  const rows: SpanRow[] = [];
  while (!reader.done) {
    const columnCount = reader.varint();
    const count = reader.varint();
    const columns = new Map<string, ColumnValues>();
    for (let index = 0; index < columnCount; index++) {
      const name = reader.string();
      columns.set(name, reader.column(reader.string(), count, name === 'SpanAttributes'));
    }
    for (let index = 0; index < count; index++) rows.push(spanRowOf(columns, index));
  }
  return rows;
}
