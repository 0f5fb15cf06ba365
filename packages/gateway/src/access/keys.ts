/**
 * Virtual gateway keys: random, shown once, stored as SHA-256 hashes, compared in constant time.
 *
 * A key is 32 random bytes (256 bits), so an unsalted fast hash is enough: nobody can guess a
 * preimage, and a stolen config file gives away hashes only. The presented key is hashed and
 * compared with every configured hash by `timingSafeEqual`, without stopping at a match, so the
 * time taken says nothing about which key (or how much of one) matched.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { GatewayKeySchema } from './config.js';
import type { GatewayKeyConfig } from './config.js';
import type { Authentication, Principal } from './types.js';

export const KEY_PREFIX = 'mmx_';

/** `sha256:<hex>` of a key, as the config file stores it. */
export function hashGatewayKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

export interface NewGatewayKey {
  /** The key itself: show it once, store only `hash`. */
  readonly key: string;
  readonly id: string;
  readonly hash: string;
}

/** A new random key and its config entry (`id` defaults to `key_` + 8 random hex digits). */
export function generateGatewayKey(id?: string): NewGatewayKey {
  // Checked before the key is shown: the config would refuse the id at the gateway's start.
  const checked = id === undefined ? undefined : GatewayKeySchema.shape.id.safeParse(id);
  if (checked?.success === false) {
    const reason = checked.error.issues.map((issue) => issue.message).join('; ');
    throw new Error(`key id ${JSON.stringify(id)}: ${reason}`);
  }
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { key, id: id ?? `key_${randomBytes(4).toString('hex')}`, hash: hashGatewayKey(key) };
}

export const ANONYMOUS_KEY_ID = 'anonymous';
export const ANONYMOUS: Principal = Object.freeze({ keyId: ANONYMOUS_KEY_ID });

interface StoredKey {
  readonly digest: Buffer;
  readonly config: GatewayKeyConfig;
  readonly principal: Principal;
}

/** Looks presented keys up among the configured hashes. */
export class KeyRing {
  private readonly keys: StoredKey[];

  constructor(keys: readonly GatewayKeyConfig[]) {
    this.keys = keys.map((config) => ({
      digest: Buffer.from(config.hash.slice('sha256:'.length), 'hex'),
      config,
      principal: Object.freeze({
        keyId: config.id,
        ...(config.team === undefined ? {} : { team: config.team }),
        ...(config.user === undefined ? {} : { user: config.user }),
        ...(config.app === undefined ? {} : { app: config.app }),
      }),
    }));
  }

  /** Without keys the gateway is open (loopback only): every request is anonymous. */
  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /** `Authorization: Bearer <key>` (or the bare key, as in Anthropic's `x-api-key`). */
  authenticate(authorization: string | undefined): Authentication {
    if (!this.enabled) return { ok: true, principal: ANONYMOUS };
    const presented = bearer(authorization);
    if (presented === undefined) {
      return {
        ok: false,
        status: 401,
        message:
          'missing gateway key: give it as the SDK\'s API key (sent as "Authorization: Bearer <gateway key>" or "x-api-key: <gateway key>")',
      };
    }
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found: StoredKey | undefined;
    for (const stored of this.keys) {
      // No early exit: every hash is compared, whichever matches.
      if (timingSafeEqual(stored.digest, digest) && found === undefined) found = stored;
    }
    if (found === undefined) return { ok: false, status: 401, message: 'unknown gateway key' };
    if (found.config.disabled) {
      return { ok: false, status: 403, message: `gateway key "${found.config.id}" is disabled` };
    }
    return { ok: true, principal: found.principal };
  }
}

function bearer(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const text = authorization.trim();
  const match = /^bearer\s+(.+)$/i.exec(text);
  const key = (match?.[1] ?? text).trim();
  return key === '' ? undefined : key;
}
