/**
 * Calling one candidate through the app's own SDK client (openai, or anthropic through the
 * adapter), inside a context that carries the route decision and the app's task so the
 * instrumentation records them on the LLM call's own span.
 */
import { context, createContextKey } from '@opentelemetry/api';
import type { Attributes, Context } from '@opentelemetry/api';
import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';
import { CONTEXT_KEY_LLM_CONTEXT, CONTEXT_KEY_ROUTE_ATTRIBUTES } from '@modelmaxx/semconv';
import {
  fromAnthropicMessage,
  fromAnthropicStream,
  toAnthropicParams,
} from './anthropic-adapter.js';
import type { Candidate, Policy } from './policy.js';
import { RouterConfigError } from './route-errors.js';
import type {
  AnthropicLike,
  ChatParams,
  ChatResult,
  OpenAILike,
  RouterOptions,
} from './router-types.js';

// Context slots shared with @modelmaxx/instrument (createContextKey is Symbol.for(description)).
export const ROUTE_ATTRIBUTES_KEY = createContextKey(CONTEXT_KEY_ROUTE_ATTRIBUTES);
export const LLM_CONTEXT_KEY = createContextKey(CONTEXT_KEY_LLM_CONTEXT);

/** The active context with the route's attributes and the app's task (for the instrumentation). */
export function callContext(route: Attributes, task: string | undefined): Context {
  const active = context.active().setValue(ROUTE_ATTRIBUTES_KEY, route);
  if (task === undefined) return active;
  const existing = active.getValue(LLM_CONTEXT_KEY);
  return active.setValue(LLM_CONTEXT_KEY, {
    ...(typeof existing === 'object' && existing !== null ? existing : {}),
    task,
  });
}

/** The app's SDK clients, one per candidate (`clients[candidate.client ?? candidate.provider]`). */
export class CandidateClients {
  private readonly clients: RouterOptions['clients'];

  /** Throws a `RouterConfigError` when a candidate has no client. */
  constructor(policy: Policy, clients: RouterOptions['clients']) {
    for (const candidate of policy.candidates) {
      const name = candidate.client ?? candidate.provider;
      if (clients[name] === undefined) {
        throw new RouterConfigError(
          `no client "${name}" for candidate ${candidate.model}: pass clients.${name}`,
        );
      }
    }
    this.clients = clients;
  }

  /**
   * Calls one candidate inside a context that carries the route decision and the app's task,
   * so the instrumentation records them on the LLM call's own span (`llm_calls.RoutePolicy`,
   * `RouteReason`, `Task`): each attempt is its own span, child of the `route` span.
   */
  callInRoute(
    candidate: Candidate,
    params: ChatParams,
    requestOptions: OpenAI.RequestOptions,
    route: Attributes,
    task: string | undefined,
  ): Promise<ChatResult> {
    return context.with(callContext(route, task), () =>
      this.call(candidate, params, requestOptions),
    );
  }

  /** Calls one candidate in the active context. */
  async call(
    candidate: Candidate,
    params: ChatParams,
    requestOptions: OpenAI.RequestOptions,
  ): Promise<ChatResult> {
    const client = this.clients[candidate.client ?? candidate.provider]!;
    if (candidate.provider === 'anthropic') {
      const anthropic = client as AnthropicLike;
      const result = await anthropic.messages.create(
        toAnthropicParams(params, candidate.model),
        requestOptions as unknown as Anthropic.RequestOptions,
      );
      if (params.stream === true) {
        return fromAnthropicStream(
          result as AsyncIterable<Anthropic.RawMessageStreamEvent>,
          params.stream_options?.include_usage === true,
        );
      }
      return fromAnthropicMessage(result as Anthropic.Message);
    }
    const openai = client as OpenAILike;
    return (await openai.chat.completions.create(
      { ...params, model: candidate.model },
      requestOptions,
    )) as ChatResult;
  }
}
