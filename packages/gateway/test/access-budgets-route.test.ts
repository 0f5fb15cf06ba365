/**
 * `GET /v1/budgets`: each caller sees where its own budgets stand (spent, reserved by its
 * requests in flight, remaining, when the window resets), never another key's or team's. Spend
 * comes from real calls through the gateway to llm-sim with the real `openai` SDK.
 */
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccess, resolveConfig } from '../src/index.js';
import type { AccessLayer } from '../src/index.js';
import { generateGatewayKey, windowOf } from '../src/access/index.js';
import { simUpstreams, startSdkGateway } from './helpers.js';
import type { SdkGateway } from './helpers.js';

const support = generateGatewayKey('support-web');
const sales = generateGatewayKey('sales-bot');

let sim: LlmSim;
let access: AccessLayer;
let sdk: SdkGateway;

interface BudgetView {
  object: string;
  name: string;
  scope: string;
  subject: string;
  mode: string;
  period: string;
  limit_usd: number;
  spent_usd: number;
  reserved_usd: number;
  remaining_usd: number;
  window_start: string;
  resets_at: string;
}

beforeAll(async () => {
  sim = await startLlmSim({ seed: 5 });
  access = createAccess({
    keys: [
      { id: support.id, hash: support.hash, team: 'support', user: 'ana' },
      { id: sales.id, hash: sales.hash, team: 'sales' },
    ],
    budgets: [
      { name: 'everything', scope: 'global', period: 'month', limitUsd: 10 },
      { name: 'team-daily', scope: 'team', period: 'day', limitUsd: 1, mode: 'soft' },
      { name: 'search', scope: 'feature', match: 'search', period: 'day', limitUsd: 0.5 },
    ],
  });
  sdk = await startSdkGateway(resolveConfig({}, simUpstreams(sim)), { access });
});

afterAll(async () => {
  await sdk?.close();
  await sim?.close();
});

async function budgets(key: string, query = ''): Promise<{ status: number; data: BudgetView[] }> {
  const response = await fetch(`${sdk.url}/v1/budgets${query}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  const body = (await response.json()) as { data: BudgetView[] };
  return { status: response.status, data: body.data };
}

const byName = (views: BudgetView[]) => Object.fromEntries(views.map((view) => [view.name, view]));

describe('GET /v1/budgets', () => {
  it("shows a caller its budgets' spend after real calls, and not another team's", async () => {
    const openai = new OpenAI({ baseURL: `${sdk.url}/v1`, apiKey: support.key, maxRetries: 0 });
    const completion = await openai.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'spend a little' }] },
      { headers: { 'x-modelmaxx-feature': 'search' } },
    );
    expect(completion.choices[0]?.message.content).toBeTruthy();
    const spans = await sdk.chatSpans(1);
    const cost = spans[0]!.attributes['gen_ai.usage.cost.amount'] as number;
    expect(cost).toBeGreaterThan(0);

    const mine = await budgets(support.key, '?feature=search');
    expect(mine.status).toBe(200);
    const views = byName(mine.data);
    expect(Object.keys(views).sort()).toEqual(['everything', 'search', 'team-daily']);
    const day = windowOf('day', Date.now());
    expect(views['team-daily']).toMatchObject({
      object: 'budget',
      scope: 'team',
      subject: 'support',
      mode: 'soft',
      period: 'day',
      limit_usd: 1,
      reserved_usd: 0,
      window_start: new Date(day.start).toISOString(),
      resets_at: new Date(day.end).toISOString(),
    });
    for (const name of ['everything', 'team-daily', 'search']) {
      expect(views[name]!.spent_usd).toBeCloseTo(cost, 12);
      expect(views[name]!.remaining_usd).toBeCloseTo(views[name]!.limit_usd - cost, 12);
    }
    // Without naming the feature, its budget is not among the caller's.
    expect(byName((await budgets(support.key)).data)['search']).toBeUndefined();

    // Sales sees the global budget (the support call counts there) and its own team's, empty.
    const theirs = byName((await budgets(sales.key)).data);
    expect(Object.keys(theirs).sort()).toEqual(['everything', 'team-daily']);
    expect(theirs['team-daily']).toMatchObject({ subject: 'sales', spent_usd: 0 });
    expect(theirs['everything']!.spent_usd).toBeCloseTo(cost, 12);
  });

  it('needs a gateway key, and GET', async () => {
    const anonymous = await fetch(`${sdk.url}/v1/budgets`);
    expect(anonymous.status).toBe(401);
    const posted = await fetch(`${sdk.url}/v1/budgets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${support.key}` },
    });
    expect(posted.status).toBe(405);
    expect(posted.headers.get('allow')).toBe('GET');
  });
});
