import { context, createContextKey } from '@opentelemetry/api';
import type { Attributes, Context } from '@opentelemetry/api';
import { CONTEXT_KEY_LLM_CONTEXT, CONTEXT_KEY_ROUTE_ATTRIBUTES } from '@modelmaxx/semconv';
import type { LlmContextAttributes } from './types.js';

/**
 * Context keys are `Symbol.for(description)`, so any package (the router, another copy of this
 * one) that uses the same description reads and writes the same slot.
 */
export const LLM_CONTEXT_KEY = createContextKey(CONTEXT_KEY_LLM_CONTEXT);
/** Route attributes (`modelmaxx.route.*`) a router puts in context for the LLM call it makes. */
export const ROUTE_CONTEXT_KEY = createContextKey(CONTEXT_KEY_ROUTE_ATTRIBUTES);

/** Runs `fn` with app context that every LLM span started inside it records. Nested calls merge, inner wins. */
export function withLlmContext<T>(attributes: LlmContextAttributes, fn: () => T): T {
  const merged = { ...getLlmContext(), ...definedOnly(attributes) };
  return context.with(context.active().setValue(LLM_CONTEXT_KEY, merged), fn);
}

/** No app context (shared, frozen). */
export const NO_LLM_CONTEXT: LlmContextAttributes = Object.freeze({});
const NO_ROUTE_ATTRIBUTES: Attributes = Object.freeze({});

/** The app context in `ctx` (read only: a shared empty object when there is none). */
export function getLlmContext(ctx: Context = context.active()): LlmContextAttributes {
  const value = ctx.getValue(LLM_CONTEXT_KEY);
  return typeof value === 'object' && value !== null
    ? (value as LlmContextAttributes)
    : NO_LLM_CONTEXT;
}

/** Runs `fn` with route attributes that the LLM span started inside it records. For routers. */
export function withRouteAttributes<T>(attributes: Attributes, fn: () => T): T {
  return context.with(context.active().setValue(ROUTE_CONTEXT_KEY, { ...attributes }), fn);
}

/** The route attributes in `ctx` (read only: a shared empty object when there are none). */
export function getRouteAttributes(ctx: Context = context.active()): Attributes {
  const value = ctx.getValue(ROUTE_CONTEXT_KEY);
  return typeof value === 'object' && value !== null ? (value as Attributes) : NO_ROUTE_ATTRIBUTES;
}

function definedOnly(attributes: LlmContextAttributes): LlmContextAttributes {
  const out: LlmContextAttributes = {};
  if (typeof attributes.task === 'string') out.task = attributes.task;
  if (typeof attributes.feature === 'string') out.feature = attributes.feature;
  if (typeof attributes.userId === 'string') out.userId = attributes.userId;
  if (typeof attributes.conversationId === 'string') out.conversationId = attributes.conversationId;
  return out;
}

export { definedOnly as pickLlmContext };
