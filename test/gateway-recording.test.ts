/**
 * What `modelmaxx serve --gateway` records, read back from its embedded chDB store: spend per
 * gateway team / key / app in `modelmaxx report` agreeing with the budget state and the spans, the
 * status of calls the app abandoned and of a route whose every attempt failed, the SQL that
 * docs/gateway.md gives, and no upstream or gateway key in any stored row. Real openai and
 * @anthropic-ai/sdk clients against llm-sim (latency on: a stream can be cut mid-way).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsEventually, sqlRows } from './support/collector-sql.js';
import type { Row } from './support/collector-sql.js';
import { CLI, spawnServeGateway } from './support/serve-gateway.js';
import type { ServeGateway } from './support/serve-gateway.js';
import { TEST_DIR } from './support/run-fixture.js';

const run = promisify(execFile);
const UPSTREAM_KEY = 'sk-upstream-secret-4711';
const keyOf = (id: string) => `mmx_${id}_${randomBytes(24).toString('base64url')}`;
const KEYS = { web: keyOf('web'), batch: keyOf('batch'), est: keyOf('est') };
const CLIENT_GONE = 'the app closed the connection before the answer ended';

let sim: LlmSim;
let dir: string;
let serve: ServeGateway;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'modelmaxx-gateway-recording-'));
  sim = await startLlmSim({ seed: 4, latencyScale: 0.5 });
  const hash = (key: string) => `sha256:${createHash('sha256').update(key).digest('hex')}`;
  const config = join(dir, 'gateway.json');
  await writeFile(
    config,
    JSON.stringify({
      keys: [
        { id: 'web', hash: hash(KEYS.web), team: 'support', user: 'ana', app: 'helpdesk' },
        { id: 'batch', hash: hash(KEYS.batch), team: 'data', app: 'etl' },
        { id: 'est', hash: hash(KEYS.est), team: 'finops', app: 'meter' },
      ],
      policies: [
        {
          name: 'pair',
          candidates: [{ model: 'gpt-4o-mini' }, { model: 'claude-haiku-4-5' }],
          fallback: { maxAttempts: 2, cooldownMs: 1 },
        },
      ],
      budgets: [
        { name: 'teams', scope: 'team', period: 'day', limitUsd: 100, mode: 'soft' },
        { name: 'users', scope: 'user', period: 'day', limitUsd: 100, mode: 'soft' },
        { name: 'tiny', scope: 'feature', match: 'tiny', period: 'day', limitUsd: 0.000001 },
      ],
    }),
  );
  serve = await spawnServeGateway(
    join(dir, 'data'),
    [
      ...['--upstream', `openai=${sim.openaiBaseURL}`, '--upstream', `anthropic=${sim.url}`],
      ...['--config', config],
    ],
    { MODELMAXX_UPSTREAM_OPENAI_KEY: UPSTREAM_KEY, MODELMAXX_UPSTREAM_ANTHROPIC_KEY: UPSTREAM_KEY },
  );
}, 120_000);

afterAll(async () => {
  await serve?.stop();
  await sim?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}, 60_000);

const openai = (key: string) =>
  new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: key, maxRetries: 0 });
const anthropic = (key: string) =>
  new Anthropic({ baseURL: serve.url, apiKey: key, maxRetries: 0 });
const spans = (where: string, count: number) =>
  rowsEventually(
    serve.url,
    `SELECT SpanName, StatusCode, StatusMessage, SpanAttributes['error.type'] AS type
     FROM otel_traces WHERE ${where} ORDER BY Timestamp`,
    count,
  );

/** One budget's spend per subject in the state file, once it holds every subject asked for. */
async function budgetState(budget: string, subjects: string[]): Promise<Record<string, number>> {
  const state = join(dir, 'data', 'gateway-budgets.json');
  for (let tries = 0; tries < 50; tries += 1) {
    if (existsSync(state)) {
      const { windows } = JSON.parse(readFileSync(state, 'utf8')) as {
        windows: { budget: string; subject: string; spentUsd: number }[];
      };
      const found = Object.fromEntries(
        windows.filter((w) => w.budget === budget).map((w) => [w.subject, w.spentUsd]),
      );
      if (subjects.every((subject) => found[subject] !== undefined)) return found;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no budget state for ${budget} in ${state}`);
}

describe('spend per gateway team, key and app', () => {
  it('report --by team / key / app gives the spans’ cost, as the budget state counts it', async () => {
    await openai(KEYS.web).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'support question' }],
    });
    await anthropic(KEYS.web).messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'support question two' }],
    });
    await openai(KEYS.batch).embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
    await openai(KEYS.batch).chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'batch job' }],
    });
    const byTeam = await spans(`SpanAttributes['modelmaxx.gateway.team'] != ''`, 4);
    expect(byTeam).toHaveLength(4);
    const stored = await sqlRows(
      serve.url,
      `SELECT SpanAttributes['modelmaxx.gateway.team'] AS team,
         sum(toFloat64(SpanAttributes['gen_ai.usage.cost.amount'])) AS cost
       FROM otel_traces WHERE team != '' GROUP BY team`,
    );
    const cost = Object.fromEntries(stored.map((row) => [row['team'], Number(row['cost'])]));
    expect(cost['support']).toBeGreaterThan(0);
    expect(cost['data']).toBeGreaterThan(0);
    const report = async (by: string) => {
      const { stdout } = await run(process.execPath, [
        ...[CLI, 'report', '--url', serve.url, '--by', by, '--since', '1h', '--format', 'json'],
      ]);
      const rows = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Row);
      return Object.fromEntries(rows.map((row) => [row[by], row]));
    };
    const teams = await report('team');
    expect(Number(teams['support']!['spend_usd'])).toBeCloseTo(cost['support']!, 12);
    expect(Number(teams['data']!['spend_usd'])).toBeCloseTo(cost['data']!, 12);
    expect(teams['data']!['calls']).toBe(2);
    const keys = await report('key');
    expect(Object.keys(keys).sort()).toEqual(['batch', 'web']);
    expect(Number(keys['web']!['spend_usd'])).toBeCloseTo(cost['support']!, 12);
    const apps = await report('app');
    expect(Number(apps['etl']!['spend_usd'])).toBeCloseTo(cost['data']!, 12);
    // The budget state (written within a second of the settle) counts the same dollars.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const budget = await budgetState('teams', ['data', 'support']);
    expect(budget['support']).toBeCloseTo(cost['support']!, 12);
    expect(budget['data']).toBeCloseTo(cost['data']!, 12);
  }, 60_000);
});

describe('user budgets', () => {
  it('a key’s user is on the span beside the app’s end user, and the docs’ SQL gives its spend', async () => {
    await openai(KEYS.web).chat.completions.create({
      model: 'gpt-4o-mini',
      user: 'bob',
      messages: [{ role: 'user', content: 'asked for bob' }],
    });
    const [span] = await rowsEventually(
      serve.url,
      `SELECT SpanAttributes AS a FROM otel_traces WHERE SpanAttributes['enduser.id'] = 'bob'`,
      1,
    );
    expect(span!['a']).toMatchObject({ 'enduser.id': 'bob', 'modelmaxx.gateway.user': 'ana' });
    // The key's user is charged (budgets: "the key's user, else the app's end user").
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const budget = await budgetState('users', ['ana']);
    expect(budget['bob']).toBeUndefined();
    const docs = readFileSync(join(TEST_DIR, '..', 'docs', 'gateway.md'), 'utf8');
    const sql = [...docs.matchAll(/^```sql\n([\s\S]*?)^```$/gm)]
      .map((match) => match[1]!)
      .find((block) => block.includes("'modelmaxx.gateway.user'"));
    const rows = await sqlRows(serve.url, sql!);
    const spent = Object.fromEntries(rows.map((row) => [row['user'], Number(row['spent_usd'])]));
    expect(Object.keys(spent).sort()).toEqual(['ana']);
    expect(spent['ana']).toBeCloseTo(budget['ana']!, 12);
  }, 60_000);
});

describe('failures as the store shows them', () => {
  it('a stream the app aborts mid-way: client_aborted, said to be the app’s doing', async () => {
    const controller = new AbortController();
    const stream = await openai(KEYS.web).chat.completions.create(
      {
        model: 'gpt-4o-mini',
        stream: true,
        messages: [{ role: 'user', content: 'abort me [sim:tokens=300]' }],
      },
      { signal: controller.signal },
    );
    let chunks = 0;
    try {
      for await (const chunk of stream) {
        void chunk;
        chunks += 1;
        if (chunks === 3) controller.abort();
      }
    } catch (error) {
      expect((error as Error).name).toMatch(/Abort/);
    }
    expect(chunks).toBe(3);
    // A JSON answer the app gave up on before it came.
    const body = {
      model: 'claude-haiku-4-5',
      max_tokens: 32,
      messages: [{ role: 'user' as const, content: 'slow [sim:slow-first=3000]' }],
    };
    await expect(anthropic(KEYS.web).messages.create(body, { timeout: 300 })).rejects.toThrow();
    const rows = await spans(`SpanAttributes['error.type'] = 'client_aborted'`, 2);
    expect(rows.map((row) => [row['StatusCode'], row['StatusMessage']])).toEqual([
      ['Error', CLIENT_GONE],
      ['Error', CLIENT_GONE],
    ]);
    // The provider had its prompt: the admission's input estimate (body bytes ÷ 4), no output.
    const [json] = await rowsEventually(
      serve.url,
      `SELECT CostSource AS source, InputTokens AS input, OutputTokens AS output, CostUSD AS cost
       FROM llm_calls WHERE SpanId IN (SELECT SpanId FROM otel_traces
         WHERE SpanName = 'chat claude-haiku-4-5'
           AND SpanAttributes['error.type'] = 'client_aborted')`,
      1,
    );
    const input = Math.ceil(Buffer.byteLength(JSON.stringify(body)) / 4);
    expect([json!['source'], Number(json!['input']), Number(json!['output'])]).toEqual([
      'estimate',
      input,
      0,
    ]);
    expect(Number(json!['cost'])).toBeCloseTo(input / 1e6, 15); // claude-haiku-4-5: $1 / MTok in
  }, 60_000);

  it('a route whose every attempt failed: the route span has the last error', async () => {
    const error = await openai(KEYS.batch)
      .chat.completions.create({
        model: 'route:pair',
        messages: [{ role: 'user', content: `both fail ${Date.now()} [sim:status=500]` }],
      })
      .catch((caught: unknown) => caught);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(500);
    const [route] = await spans(`SpanName = 'route pair' AND StatusCode = 'Error'`, 1);
    expect(route).toMatchObject({ type: '500', StatusMessage: 'upstream answered 500' });
  }, 60_000);
});

/** Reads `count` events of a stream, then aborts it; returns the text the app got. */
async function readThenAbort(
  events: AsyncIterable<unknown>,
  controller: AbortController,
  count: number,
  textOf: (event: unknown) => string,
): Promise<string> {
  let seen = 0;
  let text = '';
  try {
    for await (const event of events) {
      text += textOf(event);
      seen += 1;
      if (seen === count) controller.abort();
    }
  } catch (error) {
    expect((error as Error).name).toMatch(/Abort/);
  }
  expect(seen).toBe(count);
  return text;
}

describe('streams that end without the provider’s usage', () => {
  it('aborted chat and /v1/responses streams carry an estimate, charged to the budget; a completed one the provider’s usage', async () => {
    type Delta = { choices?: { delta?: { content?: string } }[] };
    const chatAbort = new AbortController();
    const chatText = await readThenAbort(
      await openai(KEYS.est).chat.completions.create(
        {
          model: 'gpt-4o-mini',
          stream: true,
          messages: [{ role: 'user', content: 'estimate me [sim:tokens=400]' }],
        },
        { signal: chatAbort.signal },
      ),
      chatAbort,
      12,
      (chunk) => (chunk as Delta).choices?.[0]?.delta?.content ?? '',
    );
    const responsesAbort = new AbortController();
    const responsesText = await readThenAbort(
      await openai(KEYS.est).responses.create(
        { model: 'gpt-4o-mini', stream: true, input: 'estimate me too [sim:tokens=400]' },
        { signal: responsesAbort.signal },
      ),
      responsesAbort,
      12,
      (event) => {
        const { type, delta } = event as { type: string; delta?: string };
        return type === 'response.output_text.delta' ? (delta ?? '') : '';
      },
    );
    expect(chatText.length).toBeGreaterThan(0);
    expect(responsesText.length).toBeGreaterThan(0);
    // A completed stream: the provider's usage, as before.
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    for await (const chunk of await openai(KEYS.est).chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'complete me [sim:tokens=40]' }],
    })) {
      usage = chunk.usage ?? usage;
    }
    const rows = await rowsEventually(
      serve.url,
      `SELECT SpanAttributes['error.type'] AS type, SpanAttributes['gen_ai.usage.cost.source'] AS source,
         toFloat64OrZero(SpanAttributes['gen_ai.usage.cost.amount']) AS cost,
         toInt64OrZero(SpanAttributes['gen_ai.usage.input_tokens']) AS input,
         toInt64OrZero(SpanAttributes['gen_ai.usage.output_tokens']) AS output
       FROM otel_traces WHERE SpanAttributes['modelmaxx.gateway.key_id'] = 'est' ORDER BY Timestamp`,
      3,
    );
    expect(rows).toHaveLength(3);
    const [chat, responses, completed] = rows as Record<string, number | string>[];
    for (const [row, text] of [
      [chat!, chatText],
      [responses!, responsesText],
    ] as const) {
      expect(row['type']).toBe('client_aborted');
      expect(row['source']).toBe('estimate');
      expect(Number(row['input'])).toBeGreaterThan(0);
      // At least what the app got (characters ÷ 4), at most the 400 tokens asked for.
      expect(Number(row['output'])).toBeGreaterThanOrEqual(Math.ceil(text.length / 4));
      expect(Number(row['output'])).toBeLessThan(400);
      expect(Number(row['cost'])).toBeGreaterThan(0);
    }
    expect(completed).toMatchObject({ type: '', source: 'local' });
    expect(Number(completed!['input'])).toBe(usage!.prompt_tokens);
    expect(Number(completed!['output'])).toBe(usage!.completion_tokens);
    const total = rows.reduce((sum, row) => sum + Number(row['cost']), 0);
    // llm_calls tells the estimates from billed usage (CostSource), at the spans' cost.
    const calls = await rowsEventually(
      serve.url,
      `SELECT CostSource AS source, CostUSD AS cost FROM llm_calls
       WHERE SpanId IN (SELECT SpanId FROM otel_traces
                        WHERE SpanAttributes['modelmaxx.gateway.key_id'] = 'est')
       ORDER BY Timestamp`,
      3,
    );
    expect(calls.map((row) => row['source'])).toEqual(['estimate', 'estimate', 'span']);
    calls.forEach((row, at) =>
      expect(Number(row['cost'])).toBeCloseTo(Number(rows[at]!['cost']), 12),
    );
    // The budget state (written within a second of the settle) is charged the estimates.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const budget = await budgetState('teams', ['finops']);
    expect(budget['finops']).toBeCloseTo(total, 12);
  }, 60_000);
});

describe('requests the gateway refused', () => {
  it('a budget 429 is a `gateway refused` span in the app’s trace, not an llm_calls row', async () => {
    const traceId = randomBytes(16).toString('hex');
    const error = await openai(KEYS.web)
      .chat.completions.create(
        { model: 'gpt-4o', messages: [{ role: 'user', content: 'refuse me' }] },
        {
          headers: {
            'x-modelmaxx-feature': 'tiny',
            traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
          },
        },
      )
      .catch((caught: unknown) => caught);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(429);
    const [span] = await rowsEventually(
      serve.url,
      `SELECT SpanName, ParentSpanId, StatusCode, StatusMessage, SpanAttributes AS a
       FROM otel_traces WHERE TraceId = '${traceId}'`,
      1,
    );
    expect(span).toMatchObject({
      SpanName: 'gateway refused',
      ParentSpanId: '00f067aa0ba902b7',
      StatusCode: 'Error',
      StatusMessage: (error as Error).message.replace(/^429 /, ''),
      a: {
        'error.type': 'budget_exceeded',
        'modelmaxx.gateway.refused_by': 'tiny',
        'modelmaxx.gateway.requested_model': 'gpt-4o',
        'modelmaxx.gateway.key_id': 'web',
        'modelmaxx.gateway.team': 'support',
        'modelmaxx.feature': 'tiny',
        'enduser.id': 'ana',
      },
    });
    const calls = await sqlRows(serve.url, `SELECT 1 FROM llm_calls WHERE TraceId = '${traceId}'`);
    expect(calls).toHaveLength(0);
  });
});

describe('docs/gateway.md against this store', () => {
  it('every ```sql block runs', async () => {
    const docs = readFileSync(join(TEST_DIR, '..', 'docs', 'gateway.md'), 'utf8');
    const blocks = [...docs.matchAll(/^```sql\n([\s\S]*?)^```$/gm)].map((match) => match[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const sql of blocks) await sqlRows(serve.url, sql);
  });

  it('no upstream key or gateway key in any stored row', async () => {
    const secrets = [UPSTREAM_KEY, KEYS.web, KEYS.batch, KEYS.est];
    const [row] = await sqlRows(
      serve.url,
      `SELECT count() AS n FROM otel_traces WHERE ${secrets
        .map((secret) => `position(toString(tuple(*)), '${secret}') > 0`)
        .join(' OR ')}`,
    );
    expect(Number(row!['n'])).toBe(0);
    expect(
      Number((await sqlRows(serve.url, 'SELECT count() AS n FROM otel_traces'))[0]!['n']),
    ).toBeGreaterThan(5);
  });
});
