/**
 * The body an upstream gets: the app's (./request.ts), or translated to the upstream's format
 * (a Responses request reaches an Anthropic upstream through its chat counterpart, and an
 * OpenAI-style upstream without the Responses API as that chat counterpart).
 */
import { upstreamBody } from '../request.js';
import type { GatewayRequest } from '../request.js';
import type { Target } from '../targets.js';
import { chatToMessages, messagesToChat } from './requests.js';
import { responsesToChat } from './responses-requests.js';

/** Throws a 400 `RequestError` when the request cannot be translated for this target. */
export function bodyFor(request: GatewayRequest, target: Target): Buffer {
  if (target.wire === request.wire) return upstreamBody(request, target.model);
  const { kind } = target.upstream;
  let body: Record<string, unknown>;
  if (request.wire === 'responses' && target.wire === 'chat')
    body = { ...responsesToChat(request.body, kind), model: target.model };
  else if (target.wire !== 'messages') body = messagesToChat(request.body, target.model, kind);
  else if (request.wire === 'responses')
    body = chatToMessages(responsesToChat(request.body), target.model);
  else body = chatToMessages(request.body, target.model);
  return Buffer.from(JSON.stringify(body));
}
