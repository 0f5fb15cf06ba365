/** The body an upstream gets: the app's (./request.ts), or translated to the upstream's format. */
import { upstreamBody } from '../request.js';
import type { GatewayRequest } from '../request.js';
import type { Target } from '../targets.js';
import { chatToMessages, messagesToChat } from './requests.js';

/** Throws a 400 `RequestError` when the request cannot be translated for this target. */
export function bodyFor(request: GatewayRequest, target: Target): Buffer {
  if (target.wire === request.wire) return upstreamBody(request, target.model);
  const body =
    target.wire === 'messages'
      ? chatToMessages(request.body, target.model)
      : messagesToChat(request.body, target.model, target.upstream.kind);
  return Buffer.from(JSON.stringify(body));
}
