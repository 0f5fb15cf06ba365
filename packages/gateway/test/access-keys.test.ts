import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type * as Crypto from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';

// Count the constant-time comparisons the key ring makes (the real function still runs).
const compares = vi.hoisted(() => ({ count: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof Crypto>();
  return {
    ...real,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compares.count += 1;
      return real.timingSafeEqual(a, b);
    },
  };
});

const { createAccess, generateGatewayKey, hashGatewayKey } = await import('../src/access/index.js');

describe('virtual keys', () => {
  beforeEach(() => {
    compares.count = 0;
  });

  it('a new key is random, shown once, and only its SHA-256 goes in the config', () => {
    const a = generateGatewayKey('support-web');
    const b = generateGatewayKey();
    expect(a.key).toMatch(/^mmx_[A-Za-z0-9_-]{43}$/);
    expect(a.key).not.toBe(b.key);
    expect(a.id).toBe('support-web');
    expect(b.id).toMatch(/^key_[0-9a-f]{8}$/);
    expect(a.hash).toBe(`sha256:${createHash('sha256').update(a.key).digest('hex')}`);
    expect(hashGatewayKey(a.key)).toBe(a.hash);
    // Nothing of the key itself in what is stored.
    expect(a.hash).not.toContain(a.key.slice(4, 20));
    // An id the config would refuse at the gateway's start is refused before a key is shown.
    expect(() => generateGatewayKey('bad id!')).toThrow(
      'key id "bad id!": letters, digits and _ . : @ / - only',
    );
  });

  it('authenticates by hash with metadata; unknown, missing and disabled keys are refused', () => {
    const keys = Array.from({ length: 5 }, (_, index) => generateGatewayKey(`k${index}`));
    const access = createAccess({
      keys: [
        ...keys.map((key, index) => ({
          id: key.id,
          hash: key.hash,
          team: index % 2 === 0 ? 'support' : 'sales',
          user: `user${index}`,
          app: 'helpdesk',
        })),
        { id: 'old', hash: hashGatewayKey('mmx_revoked'), disabled: true },
      ],
    });
    expect(access.keyed).toBe(true);
    const third = access.authenticate(`Bearer ${keys[2]?.key}`);
    expect(third).toEqual({
      ok: true,
      principal: { keyId: 'k2', team: 'support', user: 'user2', app: 'helpdesk' },
    });
    // The bare key (Anthropic's x-api-key) works too; "bearer" in any case.
    expect(access.authenticate(keys[1]?.key)).toMatchObject({
      ok: true,
      principal: { keyId: 'k1' },
    });
    expect(access.authenticate(`bearer ${keys[4]?.key}`)).toMatchObject({ ok: true });

    expect(access.authenticate(undefined)).toEqual({
      ok: false,
      status: 401,
      message:
        'missing gateway key: give it as the SDK\'s API key (sent as "Authorization: Bearer <gateway key>" or "x-api-key: <gateway key>")',
    });
    expect(access.authenticate('Bearer ')).toMatchObject({ ok: false, status: 401 });
    expect(access.authenticate(`Bearer ${keys[0]?.key}x`)).toEqual({
      ok: false,
      status: 401,
      message: 'unknown gateway key',
    });
    expect(access.authenticate('Bearer mmx_revoked')).toEqual({
      ok: false,
      status: 403,
      message: 'gateway key "old" is disabled',
    });
  });

  it('compares with every configured hash in constant time, whichever key matches', () => {
    const keys = Array.from({ length: 8 }, (_, index) => generateGatewayKey(`k${index}`));
    const access = createAccess({ keys: keys.map(({ id, hash }) => ({ id, hash })) });
    const counts: number[] = [];
    for (const presented of [keys[0]?.key, keys[7]?.key, 'mmx_nobody']) {
      compares.count = 0;
      access.authenticate(`Bearer ${presented}`);
      counts.push(compares.count);
    }
    // No early exit at a match: the first key, the last key and no key all cost 8 comparisons.
    expect(counts).toEqual([8, 8, 8]);
  });

  it('without keys the gateway is open and every request is anonymous', () => {
    const access = createAccess({});
    expect(access.keyed).toBe(false);
    expect(access.authenticate(undefined)).toEqual({ ok: true, principal: { keyId: 'anonymous' } });
    expect(access.authenticate('Bearer whatever')).toMatchObject({ ok: true });
  });

  it('`modelmaxx gateway keys create --config F` prints the key once and stores only its hash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelmaxx-keys-'));
    try {
      const file = join(dir, 'gateway.json');
      writeFileSync(file, JSON.stringify({ upstreams: { openai: {} } }));
      const bin = join(import.meta.dirname, '..', '..', 'cli', 'bin', 'modelmaxx.js');
      const { stdout, stderr } = await promisify(execFile)(
        process.execPath,
        [
          bin,
          'gateway',
          'keys',
          'create',
          '--id',
          'web',
          '--team',
          'support',
          '--user',
          'ana',
          '--config',
          file,
        ],
        { timeout: 60_000 },
      );
      const key = stdout.trim();
      expect(key).toMatch(/^mmx_[A-Za-z0-9_-]{43}$/);
      expect(stderr).toContain('key "web" added to');
      const text = readFileSync(file, 'utf8');
      expect(text).not.toContain(key);
      const config = JSON.parse(text) as { upstreams: object; keys: unknown[] };
      expect(config.upstreams).toEqual({ openai: {} });
      expect(config.keys).toEqual([
        { id: 'web', hash: hashGatewayKey(key), team: 'support', user: 'ana' },
      ]);
      const access = createAccess(config);
      expect(access.authenticate(`Bearer ${key}`)).toEqual({
        ok: true,
        principal: { keyId: 'web', team: 'support', user: 'ana' },
      });

      // `keys create --help` is the subcommand's help (it was `gateway`'s), and makes no key.
      const help = await promisify(execFile)(
        process.execPath,
        [bin, 'gateway', 'keys', 'create', '--id', 'x', '--help', '--config', file],
        { timeout: 60_000 },
      );
      expect(help.stdout).toMatch(/^Usage: modelmaxx gateway keys create /);
      expect(JSON.parse(readFileSync(file, 'utf8')).keys).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
