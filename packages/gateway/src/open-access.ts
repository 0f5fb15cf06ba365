/**
 * The pass-through access layer: every caller is `anonymous`, every request is admitted on the
 * candidates it asked for, nothing is counted. What the gateway uses when no `GatewayAccess` is
 * given (and so only on loopback: it has no keys).
 */
import type { Admission, GatewayAccess } from './access/types.js';

const ANONYMOUS = { ok: true, principal: { keyId: 'anonymous' } } as const;

export function openAccess(): GatewayAccess {
  let admitted = 0;
  return {
    keyed: false,
    authenticate: () => ANONYMOUS,
    admit: (request): Promise<Admission> =>
      Promise.resolve({
        ok: true,
        id: String((admitted += 1)),
        candidates: request.candidates,
        warnings: [],
      }),
    settle: () => undefined,
    close: () => Promise.resolve(),
  };
}
