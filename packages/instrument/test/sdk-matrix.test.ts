import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { requireSdk } from './support/sdk.js';

// `.ci/run`'s SDK matrix runs the SDK tests with MODELMAXX_SDK_DIR naming a scratch install: this
// checks that the tests' `import` and `require` really got the scratch copy (a leg that silently
// tested the workspace's copy would pass for nothing). Without the variable: the workspace's copy.

const dir = process.env['MODELMAXX_SDK_DIR'];
const base = dir === undefined || dir === '' ? join(import.meta.dirname, '..') : dir;

function expectedVersion(name: string): string | undefined {
  try {
    const manifest = join(base, 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
  } catch {
    return undefined; // the leg installed the other SDK only
  }
}

const clients = {
  openai: (module: { OpenAI: typeof OpenAI }) => new module.OpenAI({ apiKey: 'k' }),
  '@anthropic-ai/sdk': (module: { Anthropic: typeof Anthropic }) =>
    new module.Anthropic({ apiKey: 'k' }),
};

describe('the SDK copy under test', () => {
  it.each([
    ['openai', new OpenAI({ apiKey: 'k' }), 'OpenAI/JS'],
    ['@anthropic-ai/sdk', new Anthropic({ apiKey: 'k' }), 'Anthropic/JS'],
  ] as const)('%s: import and require give the expected version', (name, client, agent) => {
    const version = expectedVersion(name);
    if (version === undefined) return;
    const userAgent = (client as unknown as { getUserAgent(): string }).getUserAgent();
    expect(userAgent).toBe(`${agent} ${version}`);
    const cjs = requireSdk(name) as never;
    const cjsClient = clients[name](cjs) as unknown as { getUserAgent(): string };
    expect(cjsClient.getUserAgent()).toBe(`${agent} ${version}`);
  });
});
