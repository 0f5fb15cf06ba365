/**
 * A gateway mounted on another server (`modelmaxx serve --gateway`: the collector's server calls
 * `gateway.handle`) has no server of its own to drain at close: `close()` waits for the requests
 * it is answering to settle before it closes the access layer (budget state file, state dir
 * lock), and refuses new ones meanwhile. The real `openai` SDK against an upstream that streams
 * slowly.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccess, createGateway, resolveConfig } from '../src/index.js';
import { STATE_LOCK_NAME } from '../src/access/state-lock.js';
import { startSlowUpstream } from './helpers.js';
import type { SlowUpstream } from './helpers.js';

let slow: SlowUpstream;
let server: Server;
let stateDir: string;

beforeAll(async () => {
  // Ten chunks 100 ms apart: the stream stays in flight for about a second.
  slow = await startSlowUpstream(100, 10);
  stateDir = mkdtempSync(join(tmpdir(), 'modelmaxx-close-in-flight-'));
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await slow?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('close of a gateway mounted on another server', () => {
  it('waits for the requests in flight to settle before the access layer closes', async () => {
    const config = resolveConfig(
      { upstreams: { slow: { kind: 'openai-compatible', models: ['slow-model'] } } },
      { upstreamFlags: [`slow=${slow.baseURL}`], env: {} },
    );
    const access = createAccess(
      { budgets: [{ name: 'daily', scope: 'global', period: 'day', limitUsd: 10 }] },
      { stateDir },
    );
    const gateway = createGateway({
      config,
      access,
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    server = createServer((request, response) => {
      if (gateway.handle(request, response)) return;
      response.statusCode = 404;
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const openai = new OpenAI({
      baseURL: `http://127.0.0.1:${port}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
    });
    const stream = await openai.chat.completions.create({
      model: 'slow-model',
      stream: true,
      messages: [{ role: 'user', content: 'tell me slowly' }],
    });
    const chunks = stream[Symbol.asyncIterator]();
    await chunks.next();
    expect(access.inFlight).toBe(1);

    let atClose: { unsettled: number; locked: boolean } | undefined;
    const closing = gateway.close().then(() => {
      atClose = {
        unsettled: access.inFlight,
        locked: existsSync(join(stateDir, STATE_LOCK_NAME)),
      };
    });
    // A new request while the gateway stops: refused, not admitted into a closing access layer.
    const late = await openai.chat.completions
      .create({ model: 'slow-model', messages: [{ role: 'user', content: 'late' }] })
      .catch((error: unknown) => error);
    const lateStatus = late instanceof OpenAI.APIError ? late.status : 'answered';

    let text = '';
    for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) {
      text += next.value.choices[0]?.delta.content ?? '';
    }
    expect(text).not.toBe('');
    await closing;
    // Settled (its reservation released, its spend in the state file) before the dir was given back.
    expect({ lateStatus, atClose }).toEqual({
      lateStatus: 503,
      atClose: { unsettled: 0, locked: false },
    });
  });
});
