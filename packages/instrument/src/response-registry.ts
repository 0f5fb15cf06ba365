import type { Attributes, SpanContext, TraceState, Tracer } from '@opentelemetry/api';
import { SCORED_CALL_KEYS } from './evaluators.js';

/** What `feedback({ responseId })` needs of a call that has ended. */
export interface RememberedCall {
  spanContext: SpanContext;
  tracer: Tracer;
  /** The scored call's identity: its `SCORED_CALL_KEYS` (those it has). */
  call: Attributes;
  /**
   * More than one call of this process got this response id (two providers, or two services
   * with their own tracer providers, that reuse ids): the id alone does not say which call is
   * meant, and `feedback()` needs the span.
   */
  ambiguous?: true;
}

const TRACE_ID_BYTES = 16;
const SPAN_ID_BYTES = 8;

/** The value of one hex digit (either case), or -1. */
function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  const lower = code | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/** Writes the bytes of an even-length hex string at `offset`; false (bytes undefined) if not hex. */
function writeHex(target: Uint8Array, offset: number, hex: string): boolean {
  for (let index = 0; index < hex.length; index += 2) {
    const high = hexDigit(hex.charCodeAt(index));
    const low = hexDigit(hex.charCodeAt(index + 1));
    if (high < 0 || low < 0) return false;
    target[offset + index / 2] = (high << 4) | low;
  }
  return true;
}

/**
 * The last `capacity` LLM responses of this process by response id, for `feedback()`.
 *
 * Every call is remembered, and most are never scored, so remembering must cost the call almost
 * nothing: nothing per call stays alive but the response id string. Slots form a ring; the span
 * ids are kept as bytes in one buffer, the rest as references in preallocated arrays (the
 * tracer, the trace state and the call's identity strings are shared between calls), and the
 * id → slot map holds small integers. A lookup rebuilds the span context from the slot.
 */
export class ResponseRegistry {
  readonly capacity: number;
  private readonly slotById = new Map<string, number>();
  private readonly ids: (string | undefined)[];
  private readonly spanIds: Uint8Array;
  private readonly traceFlags: Uint8Array;
  /** 1 where the slot's id was returned by more than one call (different spans). */
  private readonly ambiguous: Uint8Array;
  private readonly traceStates: (TraceState | undefined)[];
  private readonly tracers: (Tracer | undefined)[];
  /** Per `SCORED_CALL_KEYS` key, the value of each slot's call. */
  private readonly identity: unknown[][];
  private next = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.ids = new Array<string | undefined>(capacity).fill(undefined);
    this.spanIds = new Uint8Array(capacity * (TRACE_ID_BYTES + SPAN_ID_BYTES));
    this.traceFlags = new Uint8Array(capacity);
    this.ambiguous = new Uint8Array(capacity);
    this.traceStates = new Array<TraceState | undefined>(capacity).fill(undefined);
    this.tracers = new Array<Tracer | undefined>(capacity).fill(undefined);
    this.identity = SCORED_CALL_KEYS.map(() => new Array<unknown>(capacity).fill(undefined));
  }

  get size(): number {
    return this.slotById.size;
  }

  /**
   * Remembers a call; the same id again moves to the newest slot. When the same id comes back
   * from another span (another call: a provider that reuses ids, or a second service in this
   * process), the id is marked ambiguous until it is evicted. Ids that are not hex are not kept.
   */
  remember(
    responseId: string,
    spanContext: SpanContext,
    tracer: Tracer,
    call: Attributes | undefined,
  ): void {
    const { traceId, spanId } = spanContext;
    if (traceId.length !== 2 * TRACE_ID_BYTES || spanId.length !== 2 * SPAN_ID_BYTES) return;
    const previous = this.slotById.get(responseId);
    let ambiguous = 0;
    if (previous !== undefined) {
      ambiguous =
        this.ambiguous[previous] === 1 || !this.sameSpan(previous, traceId, spanId) ? 1 : 0;
      this.ids[previous] = undefined;
      this.slotById.delete(responseId);
    }
    const slot = this.next;
    this.next = slot + 1 === this.capacity ? 0 : slot + 1;
    const evicted = this.ids[slot];
    if (evicted !== undefined) this.slotById.delete(evicted);
    this.ids[slot] = undefined;
    const offset = slot * (TRACE_ID_BYTES + SPAN_ID_BYTES);
    // Ids that are not hex are not kept.
    if (
      !writeHex(this.spanIds, offset, traceId) ||
      !writeHex(this.spanIds, offset + TRACE_ID_BYTES, spanId)
    ) {
      return;
    }
    this.ids[slot] = responseId;
    this.slotById.set(responseId, slot);
    this.traceFlags[slot] = spanContext.traceFlags;
    this.ambiguous[slot] = ambiguous;
    this.traceStates[slot] = spanContext.traceState;
    this.tracers[slot] = tracer;
    for (let index = 0; index < SCORED_CALL_KEYS.length; index += 1) {
      this.identity[index]![slot] = call?.[SCORED_CALL_KEYS[index]!];
    }
  }

  /** Whether a slot holds this trace and span id (lower-case hex, as the SDK makes them). */
  private sameSpan(slot: number, traceId: string, spanId: string): boolean {
    const offset = slot * (TRACE_ID_BYTES + SPAN_ID_BYTES);
    return (
      Buffer.from(this.spanIds.buffer, offset, TRACE_ID_BYTES).toString('hex') ===
        traceId.toLowerCase() &&
      Buffer.from(this.spanIds.buffer, offset + TRACE_ID_BYTES, SPAN_ID_BYTES).toString('hex') ===
        spanId.toLowerCase()
    );
  }

  get(responseId: string): RememberedCall | undefined {
    const slot = this.slotById.get(responseId);
    const tracer = slot === undefined ? undefined : this.tracers[slot];
    if (slot === undefined || tracer === undefined) return undefined;
    const offset = slot * (TRACE_ID_BYTES + SPAN_ID_BYTES);
    const spanContext: SpanContext = {
      traceId: Buffer.from(this.spanIds.buffer, offset, TRACE_ID_BYTES).toString('hex'),
      spanId: Buffer.from(this.spanIds.buffer, offset + TRACE_ID_BYTES, SPAN_ID_BYTES).toString(
        'hex',
      ),
      traceFlags: this.traceFlags[slot] ?? 0,
    };
    const traceState = this.traceStates[slot];
    if (traceState !== undefined) spanContext.traceState = traceState;
    const call: Attributes = {};
    SCORED_CALL_KEYS.forEach((key, index) => {
      const value = this.identity[index]![slot];
      if (typeof value === 'string') call[key] = value;
    });
    return this.ambiguous[slot] === 1
      ? { spanContext, tracer, call, ambiguous: true }
      : { spanContext, tracer, call };
  }
}
