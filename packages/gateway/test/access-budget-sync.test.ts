/**
 * Budgets shared by two gateway replicas (`budgetSync`): both export their spans to one real
 * collector (chDB) and read the other's spend back from its `POST /api/sql`. Spend through replica
 * A shows in B's `GET /v1/budgets` and stops B at a hard limit A exhausted; A's own spend is not
 * counted twice in A; with the collector gone, admission goes on (one warning, last figures kept).
 * Real calls with the `openai` SDK to llm-sim.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccess, createGateway, resolveConfig } from '../src/index.js';
import type { AccessLayer, Gateway } from '../src/index.js';
import { generateGatewayKey } from '../src/access/index.js';
import { simUpstreams, waitFor } from './helpers.js';

const support = generateGatewayKey('support-web');
const racer = generateGatewayKey('race-bot');
const ops = generateGatewayKey('ops-cron');
/** A few calls of `ask` (max_tokens 40) each: A can make only some before its limit. */
const TEAM_LIMIT_USD = 0.0002;
const SYNC_SECONDS = 0.2;

interface BudgetView {
  name: string;
  subject: string;
  limit_usd: number;
  spent_usd: number;
  others_usd: number;
  reserved_usd: number;
  remaining_usd: number;
}

interface Replica {
  readonly name: string;
  readonly access: AccessLayer;
  readonly gateway: Gateway;
  readonly url: string;
  readonly warnings: string[];
  client(key: string): OpenAI;
}

let sim: LlmSim;
let collector: RunningCollector;
let collectorOpen = true;
let dataDir: string;
let a: Replica;
let b: Replica;

/**
 * A replica exporting spans to the collector: A from the main thread, B from a span thread as
 * `modelmaxx gateway` does (./span-thread.ts), so both resources carry the instance id.
 */
async function startReplica(name: string, inThread: boolean): Promise<Replica> {
  const traces = `${collector.url}/v1/traces`;
  const warnings: string[] = [];
  const access = createAccess(
    {
      keys: [
        { id: support.id, hash: support.hash, team: 'support' },
        { id: racer.id, hash: racer.hash, team: 'race' },
        { id: ops.id, hash: ops.hash, team: 'ops' },
      ],
      budgets: [
        { name: 'team-daily', scope: 'team', period: 'day', limitUsd: TEAM_LIMIT_USD },
        { name: 'all-monthly', scope: 'global', period: 'month', limitUsd: 100, mode: 'soft' },
      ],
      budgetSync: { collector: collector.url, intervalSeconds: SYNC_SECONDS },
    },
    {
      logger: {
        info: () => undefined,
        warn: (fields, message) => warnings.push(`${message} ${JSON.stringify(fields)}`),
        error: () => undefined,
      },
    },
  );
  const gateway = createGateway({
    config: resolveConfig({}, simUpstreams(sim)),
    access,
    spanExporter: inThread
      ? {
          module: import.meta.resolve('@opentelemetry/exporter-trace-otlp-http'),
          options: { url: traces },
        }
      : new OTLPTraceExporter({ url: traces }),
    serviceName: 'gateway-sync-test',
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const { url } = await gateway.listen(0, '127.0.0.1');
  return {
    name,
    access,
    gateway,
    url,
    warnings,
    client: (key) => new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 }),
  };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'modelmaxx-budget-sync-'));
  sim = await startLlmSim({ seed: 11 });
  collector = await startCollector({ config: { port: 0, dataDir } });
  a = await startReplica('A', false);
  b = await startReplica('B', true);
}, 60_000);

afterAll(async () => {
  await a?.gateway.close();
  await b?.gateway.close();
  if (collectorOpen) await collector?.close();
  await sim?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function budgets(replica: Replica, key: string): Promise<Record<string, BudgetView>> {
  const response = await fetch(`${replica.url}/v1/budgets`, {
    headers: { authorization: `Bearer ${key}` },
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { data: BudgetView[] };
  return Object.fromEntries(body.data.map((view) => [view.name, view]));
}

/** Polls `replica`'s view of the budget `name` until `done` holds (15 s at most). */
async function waitForView(
  replica: Replica,
  key: string,
  name: string,
  done: (view: BudgetView) => boolean,
): Promise<BudgetView> {
  const until = Date.now() + 15_000;
  for (;;) {
    const view = (await budgets(replica, key))[name]!;
    if (done(view)) return view;
    if (Date.now() > until) throw new Error(`${replica.name}: ${JSON.stringify(view)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The `service.instance.id`s of the spans the collector stored. */
async function storedInstanceIds(): Promise<string[]> {
  const response = await fetch(`${collector.url}/api/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      sql: "SELECT DISTINCT ResourceAttributes['service.instance.id'] AS id FROM otel_traces ORDER BY id",
    }),
  });
  return ((await response.json()) as { rows: { id: string }[] }).rows.map((row) => row.id);
}

/** One call; its outcome: 'ok' or the 429's error type. */
async function ask(replica: Replica, key: string): Promise<string> {
  try {
    await replica.client(key).chat.completions.create({
      model: 'gpt-4o-mini',
      max_tokens: 40,
      messages: [{ role: 'user', content: 'spend a little' }],
    });
    return 'ok';
  } catch (error) {
    if (error instanceof OpenAI.RateLimitError) return String(error.code);
    throw error;
  }
}

/** A sync of `replica` that started after now, and is over. */
async function nextSync(replica: Replica): Promise<void> {
  const after = Date.now();
  const sync = replica.access.budgetSync!;
  await waitFor(() => (sync.lastSyncAt ?? 0) > after, 10_000);
}

describe('budgetSync: budgets shared by two replicas through the collector', () => {
  it("shows A's spend in B's budgets, and B refuses once A exhausted a hard budget", async () => {
    expect(a.access.instanceId).not.toBe(b.access.instanceId);
    expect(await ask(a, support.key)).toBe('ok');
    const answeredAt = Date.now();
    await a.gateway.forceFlush();
    const first = (await budgets(a, support.key))['team-daily']!;
    expect(first.spent_usd).toBeGreaterThan(0);
    expect(first.others_usd).toBe(0);
    // B sees it once the span is in the collector and B synced.
    const seen = await waitForView(b, support.key, 'team-daily', (view) => view.others_usd > 0);
    const delayMs = Date.now() - answeredAt;
    await b.access.budgetSync!.sync();
    const syncStart = Date.now();
    await b.access.budgetSync!.sync();
    const syncMs = Date.now() - syncStart;
    console.log(
      `budget sync: A's spend visible in B after ${delayMs} ms (interval ${SYNC_SECONDS * 1000} ms; one sync's query ${syncMs} ms)`,
    );
    expect(seen.others_usd).toBeCloseTo(first.spent_usd, 12);
    expect(seen.spent_usd).toBeCloseTo(first.spent_usd, 12);
    expect((await budgets(b, support.key))['all-monthly']!.others_usd).toBeCloseTo(
      first.spent_usd,
      12,
    );

    // A spends the rest of the team's day until A itself refuses.
    let calls = 1;
    while ((await ask(a, support.key)) === 'ok') calls += 1;
    expect(calls).toBeGreaterThan(1);
    await a.gateway.forceFlush();
    const spentByA = (await budgets(a, support.key))['team-daily']!.spent_usd;
    expect(spentByA).toBeLessThanOrEqual(TEAM_LIMIT_USD);
    await waitForView(
      b,
      support.key,
      'team-daily',
      (view) => Math.abs(view.others_usd - spentByA) < 1e-12,
    );
    expect(await ask(b, support.key)).toBe('budget_exceeded');
    // Another team's budget on B is untouched.
    expect(await ask(b, racer.key)).toBe('ok');

    // Both instance ids are stored with the spans (otel_traces.ResourceAttributes).
    await b.gateway.forceFlush();
    const expected = [a.access.instanceId, b.access.instanceId].sort();
    let ids: string[] = [];
    for (let tries = 0; tries < 100 && ids.length < 2; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      ids = await storedInstanceIds();
    }
    expect(ids).toEqual(expected);

    // A's own spend is not counted again as another replica's.
    await nextSync(a);
    await nextSync(a);
    const mine = (await budgets(a, support.key))['team-daily']!;
    expect(mine.others_usd).toBe(0);
    expect(mine.spent_usd).toBeCloseTo(spentByA, 12);
  }, 60_000);

  it('two replicas racing for one budget overspend by what one sync interval lets through', async () => {
    const outcomes = { A: [] as string[], B: [] as string[] };
    for (let round = 0; round < 40; round += 1) {
      const [fromA, fromB] = await Promise.all([ask(a, racer.key), ask(b, racer.key)]);
      outcomes.A.push(fromA);
      outcomes.B.push(fromB);
      if (fromA !== 'ok' && fromB !== 'ok') break;
    }
    await Promise.all([a.gateway.forceFlush(), b.gateway.forceFlush()]);
    await nextSync(a);
    await nextSync(b);
    const own = (view: BudgetView) => view.spent_usd - view.others_usd;
    const fromA = (await budgets(a, racer.key))['team-daily']!;
    const fromB = (await budgets(b, racer.key))['team-daily']!;
    const total = own(fromA) + own(fromB);
    console.log(
      `budget sync race: A ${outcomes.A.filter((o) => o === 'ok').length} calls, B ${outcomes.B.filter((o) => o === 'ok').length} calls; spent ${total.toPrecision(3)} of ${TEAM_LIMIT_USD} (overspend ${Math.max(0, total - TEAM_LIMIT_USD).toPrecision(3)})`,
    );
    // Both replicas see the whole spend now, and neither admits more.
    expect(fromA.spent_usd).toBeCloseTo(total, 12);
    expect(fromB.spent_usd).toBeCloseTo(total, 12);
    expect(await ask(a, racer.key)).toBe('budget_exceeded');
    expect(await ask(b, racer.key)).toBe('budget_exceeded');
  }, 60_000);

  it("a restart that turns budgetSync on does not count the gateway's own restored spend again", async () => {
    const restarter = generateGatewayKey('restarter');
    const stateDir = await mkdtemp(join(tmpdir(), 'modelmaxx-budget-sync-restart-'));
    const start = async (sync: boolean) => {
      const access = createAccess(
        {
          keys: [{ id: restarter.id, hash: restarter.hash, team: 'restart' }],
          budgets: [{ name: 'team-daily', scope: 'team', period: 'day', limitUsd: 1 }],
          ...(sync ? { budgetSync: { collector: collector.url, intervalSeconds: 60 } } : {}),
        },
        { stateDir },
      );
      const gateway = createGateway({
        config: resolveConfig({}, simUpstreams(sim)),
        access,
        spanExporter: new OTLPTraceExporter({ url: `${collector.url}/v1/traces` }),
        serviceName: 'gateway-sync-test',
        logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
      });
      const { url } = await gateway.listen(0, '127.0.0.1');
      const replica: Replica = {
        name: sync ? 'C with budgetSync' : 'C',
        access,
        gateway,
        url,
        warnings: [],
        client: (key) => new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 }),
      };
      return replica;
    };
    try {
      // Before budgetSync: one call, its span in the collector, its spend in the state file.
      const before = await start(false);
      expect(await ask(before, restarter.key)).toBe('ok');
      await before.gateway.forceFlush();
      const spent = (await budgets(before, restarter.key))['team-daily']!.spent_usd;
      expect(spent).toBeGreaterThan(0);
      for (let tries = 0; tries < 200; tries += 1) {
        if ((await storedInstanceIds()).includes(before.access.instanceId)) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await before.gateway.close();
      // Restarted with budgetSync: the spend restored is its own, and so is the span.
      const after = await start(true);
      try {
        await after.access.budgetSync!.sync();
        const view = (await budgets(after, restarter.key))['team-daily']!;
        expect({ spent: view.spent_usd, others: view.others_usd }).toEqual({
          spent: expect.closeTo(spent, 12) as number,
          others: 0,
        });
        expect(after.access.instanceId).toBe(before.access.instanceId);
      } finally {
        await after.gateway.close();
      }
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  }, 30_000);

  it('leaves out spans without an instance id (a gateway from before budgetSync: its own restored spend)', async () => {
    // An older gateway's call span: the gateway's scope, a cost, a team, no service.instance.id.
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'gateway-sync-test' }),
      spanProcessors: [
        new SimpleSpanProcessor({
          exporter: new OTLPTraceExporter({ url: `${collector.url}/v1/traces` }),
        }),
      ],
    });
    const span = provider.getTracer('@modelmaxx/gateway').startSpan('chat gpt-4o-mini', {
      kind: SpanKind.CLIENT,
      attributes: {
        'modelmaxx.gateway.key_id': 'k_legacy',
        'modelmaxx.gateway.team': 'legacy',
        'gen_ai.usage.cost.amount': 0.00005,
      },
    });
    span.end();
    await provider.forceFlush();
    await provider.shutdown();
    const stored = async () => {
      const response = await fetch(`${collector.url}/api/sql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          sql: "SELECT count() AS n FROM otel_traces WHERE SpanAttributes['modelmaxx.gateway.team'] = 'legacy'",
        }),
      });
      return Number(((await response.json()) as { rows: { n: number | string }[] }).rows[0]!.n);
    };
    for (let tries = 0; tries < 100 && (await stored()) === 0; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await stored()).toBe(1);
    await nextSync(b);
    await nextSync(b);
    // Counted, it would be team legacy's "others" spend on B (and, for the gateway that wrote it,
    // its own restored spend a second time).
    expect(b.access.budgetStatus().filter((window) => window.subject === 'legacy')).toEqual([]);
  }, 30_000);

  it('with the collector down, admission goes on with the last figures and one warning', async () => {
    const before = (await budgets(b, support.key))['team-daily']!;
    expect(before.others_usd).toBeGreaterThan(0);
    expect(b.warnings).toEqual([]);
    await collector.close();
    collectorOpen = false;
    await new Promise((resolve) => setTimeout(resolve, SYNC_SECONDS * 5 * 1000));
    const failed = b.warnings.filter((warning) => warning.startsWith('budget sync failed'));
    expect(failed).toHaveLength(1);
    expect(b.warnings.length).toBe(1);
    // The others' spend is still counted (and the team still refused); other admissions go on.
    expect((await budgets(b, support.key))['team-daily']!.others_usd).toBe(before.others_usd);
    expect(await ask(b, support.key)).toBe('budget_exceeded');
    expect(await ask(b, ops.key)).toBe('ok');
    expect(await ask(b, ops.key)).toBe('ok');
    expect(b.warnings.length).toBe(1);
  }, 30_000);
});
