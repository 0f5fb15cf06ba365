/** Configuration from env and flags, and the refusal to listen beyond loopback without tokens. */
import { describe, expect, it } from 'vitest';
import { assertSafeToListen, isLoopbackHost, loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { startCollector } from '../src/index.js';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig();
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 4318,
      dataDir: './.modelmaxx',
      database: 'modelmaxx',
      maxBodyBytes: 16 * 1024 * 1024,
      sqlMaxRows: 10_000,
      sqlMaxExecutionSeconds: 10,
    });
    expect(config.clickhouseUrl).toBeUndefined();
    expect(config.ingestToken).toBeUndefined();
  });

  it('reads MODELMAXX_* and lets flags win over them', () => {
    const config = loadConfig({
      env: {
        MODELMAXX_PORT: '5000',
        MODELMAXX_HOST: '0.0.0.0',
        MODELMAXX_INGEST_TOKEN: 'in',
        MODELMAXX_READ_TOKEN: ' ',
        MODELMAXX_CLICKHOUSE_URL: 'http://ch:8123',
        MODELMAXX_MAX_BODY_BYTES: '1000',
      },
      argv: ['--port', '6000', '--data', '/tmp/x'],
    });
    expect(config).toMatchObject({
      port: 6000,
      host: '0.0.0.0',
      dataDir: '/tmp/x',
      ingestToken: 'in',
      clickhouseUrl: 'http://ch:8123',
      maxBodyBytes: 1000,
    });
    // A blank token is no token.
    expect(config.readToken).toBeUndefined();
  });

  it('reads the Host allow-list from MODELMAXX_ALLOWED_HOSTS and --allowed-hosts', () => {
    expect(loadConfig().allowedHosts).toEqual([]);
    expect(
      loadConfig({ env: { MODELMAXX_ALLOWED_HOSTS: ' Collector.LAN, proxy.lan:8080,,' } })
        .allowedHosts,
    ).toEqual(['collector.lan', 'proxy.lan:8080']);
    expect(
      loadConfig({
        env: { MODELMAXX_ALLOWED_HOSTS: 'a.lan' },
        argv: ['--allowed-hosts', 'b.lan,*'],
      }).allowedHosts,
    ).toEqual(['b.lan', '*']);
  });

  it('says everything that is wrong in one ConfigError', () => {
    const load = () =>
      loadConfig({ env: { MODELMAXX_PORT: '99999', MODELMAXX_CLICKHOUSE_URL: 'not a url' } });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/port: .*65535.*clickhouseUrl: /);
    expect(() => loadConfig({ argv: ['--bogus', '1'] })).toThrow(/invalid command line/);
  });
});

describe('listening beyond loopback', () => {
  it('knows loopback hosts', () => {
    for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', '::1', '[::1]']) {
      expect(isLoopbackHost(host)).toBe(true);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'collector.internal', '128.0.0.1']) {
      expect(isLoopbackHost(host)).toBe(false);
    }
  });

  it('refuses without both tokens, naming the missing ones', () => {
    expect(() => assertSafeToListen(loadConfig({ overrides: { host: '0.0.0.0' } }))).toThrow(
      'refusing to listen on 0.0.0.0: beyond loopback the collector needs bearer tokens; set MODELMAXX_INGEST_TOKEN and MODELMAXX_READ_TOKEN (or listen on 127.0.0.1)',
    );
    expect(() =>
      assertSafeToListen(loadConfig({ overrides: { host: '::', ingestToken: 'a' } })),
    ).toThrow(/set MODELMAXX_READ_TOKEN \(/);
    expect(() =>
      assertSafeToListen(
        loadConfig({ overrides: { host: '0.0.0.0', ingestToken: 'a', readToken: 'b' } }),
      ),
    ).not.toThrow();
  });

  it('startCollector refuses before opening any storage', async () => {
    await expect(
      startCollector({ config: { host: '0.0.0.0', port: 0, dataDir: '/nonexistent/never' } }),
    ).rejects.toThrow(/^refusing to listen on 0\.0\.0\.0/);
  });
});
