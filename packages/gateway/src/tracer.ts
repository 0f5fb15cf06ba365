/**
 * The gateway's span recorder: what `@opentelemetry/sdk-trace`'s TracerProvider, Tracer and Span
 * do for the gateway's spans — parent-based sampling with the root always on (a remote parent
 * that is not sampled: nothing recorded, its context propagated), random W3C ids, the default
 * limit of 128 attributes, start in ms and duration in sub-ms as the SDK measures them — without
 * the SDK's sanitizing copies: its Tracer copies a span's attributes twice and its Span once per
 * `setAttribute`, allocating a WeakSet for every value checked (sdk-trace 3.1), about a tenth of
 * the gateway's CPU per request and a good part of its garbage. The gateway writes its attributes
 * itself (strings, numbers, booleans and arrays of them), so it hands them over as they are.
 *
 * Ended spans go to the span processor (a BatchSpanProcessor) as ReadableSpans, so exporters read
 * them exactly as they read the SDK's.
 */
import { SpanStatusCode, TraceFlags, isSpanContextValid, trace } from '@opentelemetry/api';
import type {
  AttributeValue,
  Attributes,
  Context,
  Exception,
  HrTime,
  Link,
  Span,
  SpanContext,
  SpanKind,
  SpanStatus,
  TimeInput,
} from '@opentelemetry/api';
import { addHrTimes, hrTimeDuration, millisToHrTime, timeInputToHrTime } from '@opentelemetry/core';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace';

/** The SDK's default attribute count limit per span (and per event). */
const ATTRIBUTE_COUNT_LIMIT = 128;

const idBytes = Buffer.allocUnsafe(16);

/** `bytes` random bytes as lowercase hex, never all zero (as the SDK's RandomIdGenerator). */
function randomId(bytes: 8 | 16): string {
  for (let offset = 0; offset < bytes; offset += 4) {
    idBytes.writeUInt32BE((Math.random() * 2 ** 32) >>> 0, offset);
  }
  let zero = true;
  for (let offset = 0; offset < bytes && zero; offset += 4)
    zero = idBytes.readUInt32BE(offset) === 0;
  if (zero) idBytes[bytes - 1] = 1;
  return idBytes.toString('hex', 0, bytes);
}

/** A recorded span: the API's Span for the gateway's code, a ReadableSpan for the exporters. */
export class RecordedSpan implements Span, ReadableSpan {
  name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext?: SpanContext;
  readonly startTime: HrTime;
  endTime: HrTime = [0, 0];
  duration: HrTime = [-1, -1];
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  readonly links: Link[] = [];
  readonly events: TimedEvent[] = [];
  ended = false;
  droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  private readonly context: SpanContext;
  private readonly recorder: SpanRecorder;
  private readonly startedAt = performance.now();
  /**
   * The attributes in a Map: an object given more than a dozen keys by keyed stores turns into a
   * V8 dictionary, slower to fill and to serialize (./span-thread.ts posts the pairs).
   */
  private readonly values = new Map<string, AttributeValue>();
  private materialized: Attributes | undefined;

  constructor(
    recorder: SpanRecorder,
    name: string,
    kind: SpanKind,
    context: SpanContext,
    parent: SpanContext | undefined,
    attributes: Attributes,
  ) {
    this.recorder = recorder;
    this.name = name;
    this.kind = kind;
    this.context = context;
    if (parent !== undefined) this.parentSpanContext = parent;
    this.startTime = millisToHrTime(Date.now());
    this.setAttributes(attributes);
  }

  /** The attributes as an object (the exporters' view), made once the span has ended. */
  get attributes(): Attributes {
    if (this.materialized !== undefined) return this.materialized;
    const attributes = Object.fromEntries(this.values) as Attributes;
    if (this.ended) this.materialized = attributes;
    return attributes;
  }

  /** The attributes as `[key, value, key, value, …]`, in the order they were first set. */
  attributePairs(): (string | AttributeValue)[] {
    const pairs: (string | AttributeValue)[] = [];
    for (const [key, value] of this.values) pairs.push(key, value);
    return pairs;
  }

  get resource(): Resource {
    return this.recorder.resource;
  }

  get instrumentationScope(): InstrumentationScope {
    return this.recorder.scope;
  }

  spanContext(): SpanContext {
    return this.context;
  }

  setAttribute(key: string, value: AttributeValue | undefined): this {
    if (this.ended || value === undefined || key === '') return this;
    const { values } = this;
    if (values.size >= ATTRIBUTE_COUNT_LIMIT && !values.has(key)) {
      this.droppedAttributesCount += 1;
      return this;
    }
    // Arrays are copied, as the SDK does: the span must not change with its caller's array.
    values.set(key, Array.isArray(value) ? value.slice() : value);
    return this;
  }

  setAttributes(attributes: Attributes): this {
    for (const key in attributes) this.setAttribute(key, attributes[key]);
    return this;
  }

  addEvent(name: string, attributes?: Attributes | TimeInput, time?: TimeInput): this {
    if (this.ended) return this;
    const hasAttributes =
      typeof attributes === 'object' && !Array.isArray(attributes) && !(attributes instanceof Date);
    const at = hasAttributes ? time : (attributes as TimeInput | undefined);
    this.events.push({
      name,
      time: at === undefined ? this.now() : timeInputToHrTime(at),
      attributes: hasAttributes ? { ...attributes } : {},
      droppedAttributesCount: 0,
    });
    return this;
  }

  addLink(link: Link): this {
    if (!this.ended) this.links.push({ ...link });
    return this;
  }

  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.ended || status.code === SpanStatusCode.UNSET) return this;
    if (this.status.code === SpanStatusCode.OK) return this;
    this.status =
      status.code === SpanStatusCode.ERROR && typeof status.message === 'string'
        ? { code: status.code, message: status.message }
        : { code: status.code };
    return this;
  }

  updateName(name: string): this {
    if (!this.ended) this.name = name;
    return this;
  }

  end(): void {
    if (this.ended) return;
    this.endTime = this.now();
    this.duration = hrTimeDuration(this.startTime, this.endTime);
    this.ended = true;
    this.recorder.processor.onEnd(this);
  }

  isRecording(): boolean {
    return !this.ended;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === 'string') attributes['exception.message'] = exception;
    else {
      const type = exception.code?.toString() ?? exception.name;
      if (type !== undefined) attributes['exception.type'] = type;
      if (exception.message !== undefined) attributes['exception.message'] = exception.message;
      if (exception.stack !== undefined) attributes['exception.stacktrace'] = exception.stack;
    }
    this.addEvent('exception', attributes, time);
  }

  /** The start plus the time since, in sub-ms (the SDK's end time). */
  private now(): HrTime {
    return addHrTimes(this.startTime, millisToHrTime(performance.now() - this.startedAt));
  }
}

/** Starts the gateway's spans and hands the ended ones to `processor`. */
export class SpanRecorder {
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
  readonly processor: SpanProcessor;

  constructor(resource: Resource, scope: InstrumentationScope, processor: SpanProcessor) {
    this.resource = resource;
    this.scope = scope;
    this.processor = processor;
  }

  /**
   * A span under `parent`'s span (if any): recorded when there is no parent or the parent is
   * sampled, else a non-recording span that carries the trace on (as the SDK's default sampler).
   */
  startSpan(name: string, kind: SpanKind, attributes: Attributes, parent: Context): Span {
    const parentContext = trace.getSpanContext(parent);
    const valid = parentContext !== undefined && isSpanContextValid(parentContext);
    const context: SpanContext = {
      traceId: valid ? parentContext.traceId : randomId(16),
      spanId: randomId(8),
      traceFlags: TraceFlags.SAMPLED,
    };
    if (valid && parentContext.traceState !== undefined) {
      context.traceState = parentContext.traceState;
    }
    if (valid && (parentContext.traceFlags & TraceFlags.SAMPLED) === 0) {
      context.traceFlags = TraceFlags.NONE;
      return trace.wrapSpanContext(context);
    }
    const span = new RecordedSpan(
      this,
      name,
      kind,
      context,
      valid ? parentContext : undefined,
      attributes,
    );
    this.processor.onStart(span, parent);
    return span;
  }
}
