import { StatsQuerySchema, StatsResponseSchema } from '@modelmaxx/semconv/schemas';
import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../src/store/span-store.js';
import { llmSpan, nanos, spanRow } from './store-fixtures.js';
import { useTestStore } from './support/test-store.js';

const db = useTestStore('mm-stats-', { batch: { maxDelayMs: 20 } });

function withEvaluation(
  span: SpanRow,
  name: string,
  score: number,
  extra: Record<string, string> = {},
): SpanRow {
  span.Events.Timestamp.push(nanos(Date.now() - 500));
  span.Events.Name.push('gen_ai.evaluation.result');
  span.Events.Attributes.push({
    'gen_ai.evaluation.name': name,
    'gen_ai.evaluation.score.value': String(score),
    'gen_ai.evaluation.score.label': score >= 0.5 ? 'pass' : 'fail',
    'gen_ai.evaluation.explanation': `${name} said so`,
    ...extra,
  });
  return span;
}

describe('scores', () => {
  it('come from gen_ai.evaluation.result events and from feedback by response id or by trace and span id', async () => {
    const first = withEvaluation(
      llmSpan({ model: 'gpt-4o', task: 'qa' }),
      'modelmaxx.finish_length',
      1,
    );
    const second = withEvaluation(
      llmSpan({ model: 'gpt-4o', task: 'qa' }),
      'judge.helpfulness',
      0.25,
      {
        'modelmaxx.evaluation.source': 'judge',
      },
    );
    // An event that is not an evaluation is ignored.
    second.Events.Timestamp.push(nanos(Date.now()));
    second.Events.Name.push('exception');
    second.Events.Attributes.push({ 'exception.type': 'Oops' });
    expect(await db.store.write([first, second])).toMatchObject({ status: 'ok' });

    const responseId = first.SpanAttributes['gen_ai.response.id'] ?? '';
    await db.store.insertFeedback({
      responseId,
      name: 'thumbs',
      score: 1,
      label: 'up',
      comment: 'great',
      source: 'feedback',
    });
    await db.store.insertFeedback({
      traceId: second.TraceId,
      spanId: second.SpanId,
      name: 'thumbs',
      score: 0,
      source: 'feedback',
      timestamp: new Date(Date.now() - 1000).toISOString(),
    });
    const rows = await db.query(
      `SELECT TraceId, SpanId, ResponseId, Name, Score, Label, Explanation, Source, ServiceName, Provider, Model, Task, Feature
       FROM modelmaxx.llm_scores ORDER BY Name, Score`,
    );
    const common = {
      ServiceName: 'shop',
      Provider: 'openai',
      Model: 'gpt-4o',
      Task: 'qa',
      Feature: '',
    };
    expect(rows).toEqual([
      {
        TraceId: second.TraceId,
        SpanId: second.SpanId,
        ResponseId: second.SpanAttributes['gen_ai.response.id'],
        Name: 'judge.helpfulness',
        Score: 0.25,
        Label: 'fail',
        Explanation: 'judge.helpfulness said so',
        Source: 'judge',
        ...common,
      },
      {
        TraceId: first.TraceId,
        SpanId: first.SpanId,
        ResponseId: responseId,
        Name: 'modelmaxx.finish_length',
        Score: 1,
        Label: 'pass',
        Explanation: 'modelmaxx.finish_length said so',
        Source: 'evaluator',
        ...common,
      },
      {
        TraceId: second.TraceId,
        SpanId: second.SpanId,
        ResponseId: second.SpanAttributes['gen_ai.response.id'],
        Name: 'thumbs',
        Score: 0,
        Label: '',
        Explanation: '',
        Source: 'feedback',
        ...common,
      },
      {
        TraceId: first.TraceId,
        SpanId: first.SpanId,
        ResponseId: responseId,
        Name: 'thumbs',
        Score: 1,
        Label: 'up',
        Explanation: 'great',
        Source: 'feedback',
        ...common,
      },
    ]);
    const stats = await db.store.stats(StatsQuerySchema.parse({ window: '1h', groupBy: 'task' }));
    expect(stats.rows).toHaveLength(1);
    expect(stats.rows[0]).toMatchObject({
      model: 'gpt-4o',
      task: 'qa',
      calls: 2,
      scoreCount: 4,
      meanScore: (1 + 0.25 + 1 + 0) / 4,
    });
    // Only some evaluation names (e.g. the app's own checks, without the built-ins).
    const named = await db.store.stats(
      StatsQuerySchema.parse({
        window: '1h',
        groupBy: 'task',
        scores: ' thumbs, judge.helpfulness',
      }),
    );
    expect(named.rows).toHaveLength(1);
    expect(named.rows[0]).toMatchObject({
      task: 'qa',
      calls: 2,
      scoreCount: 3,
      meanScore: (0.25 + 0 + 1) / 3,
    });
    const none = await db.store.stats(
      StatsQuerySchema.parse({ window: '1h', groupBy: 'task', scores: 'app.unknown' }),
    );
    expect(none.rows[0]).toMatchObject({ calls: 2, scoreCount: 0, meanScore: null });
    expect(StatsQuerySchema.parse({ scores: 'a, b,,a' }).scores).toEqual(['a', 'b']);
  });
});

describe('stats', () => {
  it('match a direct aggregation of the stored calls, per group, within the window', async () => {
    const now = Date.now();
    const spans: SpanRow[] = [];
    const expected = new Map<
      string,
      {
        calls: number;
        errors: number;
        cost: number;
        costCalls: number;
        input: number;
        output: number;
      }
    >();
    for (let index = 0; index < 240; index++) {
      const model = index % 3 === 0 ? 'claude-haiku-4-5' : 'gpt-4o-mini';
      const provider = model.startsWith('claude') ? 'anthropic' : 'openai';
      const task = index % 2 === 0 ? 'chat' : 'extract';
      const service = index % 5 === 0 ? 'billing' : 'support';
      const error = index % 11 === 0 ? 'APIConnectionError' : undefined;
      const costUsd = index % 4 === 0 ? 0.001 * (index % 7) : undefined;
      const input = 100 + index * 3;
      const output = 10 + (index % 13);
      spans.push(
        llmSpan({
          model,
          provider,
          task,
          service,
          input,
          output,
          durationMs: 50 + ((index * 37) % 900),
          timestampMs: now - 1000 - index * 5000, // spread over the last 20 minutes
          ...(error === undefined ? {} : { error }),
          ...(costUsd === undefined ? {} : { costUsd }),
        }),
      );
      const key = `${model}|${task}`;
      const entry = expected.get(key) ?? {
        calls: 0,
        errors: 0,
        cost: 0,
        costCalls: 0,
        input: 0,
        output: 0,
      };
      entry.calls++;
      entry.errors += error === undefined ? 0 : 1;
      entry.input += input;
      entry.output += output;
      expected.set(key, entry);
    }
    // Outside a 1h window, inside 3h.
    spans.push(llmSpan({ model: 'gpt-4o-mini', task: 'chat', timestampMs: now - 2 * 3600_000 }));
    expect(await db.store.write(spans)).toMatchObject({ status: 'ok' });
    expect(await db.store.flush()).toBe(true);

    const stats = await db.store.stats(
      StatsQuerySchema.parse({ window: '1h', groupBy: 'model,task,service' }),
    );
    expect(StatsResponseSchema.parse(stats)).toEqual(stats);
    expect(stats.groupBy).toEqual(['model', 'task', 'service']);
    const direct = await db.query<Record<string, unknown>>(
      `SELECT if(RequestModel != '', RequestModel, ResponseModel) AS model, Task AS task, ServiceName AS service,
              count() AS calls, countIf(StatusCode = 'Error' OR ErrorType != '') AS errors,
              sum(ifNull(CostUSD, 0)) AS cost, countIf(CostUSD IS NOT NULL) AS costCalls,
              avg(InputTokens) AS meanInput, avg(OutputTokens) AS meanOutput,
              quantilesTDigest(0.5, 0.95, 0.99)(DurationMs) AS latency,
              quantilesExact(0.5, 0.95, 0.99)(DurationMs) AS exactLatency
       FROM modelmaxx.llm_calls
       WHERE Timestamp >= toStartOfMinute(now() - INTERVAL 1 HOUR) AND RequestModel != 'gpt-4o'
       GROUP BY model, task, service ORDER BY calls DESC, model, task, service`,
    );
    const ours = stats.rows.filter((row) => row.model !== 'gpt-4o');
    expect(ours.map((row) => [row.model, row.task, row.service])).toEqual(
      direct.map((row) => [row.model, row.task, row.service]),
    );
    expect(ours.length).toBe(8);
    for (const [index, row] of direct.entries()) {
      const got = ours[index];
      const calls = Number(row.calls);
      const latency = row.latency as number[];
      const exact = row.exactLatency as number[];
      expect(got).toMatchObject({
        calls,
        errors: Number(row.errors),
        errorRate: Number(row.errors) / calls,
        meanScore: null,
        scoreCount: 0,
      });
      expect(got?.costUsd).toBeCloseTo(Number(row.cost), 12);
      expect(got?.costPerCallUsd).toBeCloseTo(Number(row.cost) / Number(row.costCalls), 12);
      expect(got?.meanInputTokens).toBeCloseTo(Number(row.meanInput), 9);
      expect(got?.meanOutputTokens).toBeCloseTo(Number(row.meanOutput), 9);
      // t-digest states merged per minute vs one t-digest over the rows: equal up to its error.
      for (const [quantile, value] of [
        got?.latencyP50Ms,
        got?.latencyP95Ms,
        got?.latencyP99Ms,
      ].entries()) {
        expect(Math.abs((value ?? Number.NaN) - (latency[quantile] ?? 0))).toBeLessThanOrEqual(
          0.02 * (exact[quantile] ?? 0) + 60,
        );
      }
    }
    // The same numbers as the rows we wrote, per model and task.
    const byModelTask = await db.store.stats(
      StatsQuerySchema.parse({ window: '1h', groupBy: 'task' }),
    );
    for (const [key, entry] of expected) {
      const [model, task] = key.split('|');
      const row = byModelTask.rows.find(
        (candidate) => candidate.model === model && candidate.task === task,
      );
      expect(row, key).toMatchObject({ calls: entry.calls, errors: entry.errors });
      expect(row?.meanInputTokens).toBeCloseTo(entry.input / entry.calls, 9);
      expect(row?.meanOutputTokens).toBeCloseTo(entry.output / entry.calls, 9);
    }
    const wide = await db.store.stats(StatsQuerySchema.parse({ window: '3h', groupBy: 'task' }));
    const chat = (response: typeof wide) =>
      response.rows.find((row) => row.model === 'gpt-4o-mini' && row.task === 'chat')?.calls ?? 0;
    expect(chat(wide)).toBe(chat(byModelTask) + 1);
    // A day reads the hourly rollup: the same calls, errors, costs and tokens.
    const day = await db.store.stats(StatsQuerySchema.parse({ window: '24h', groupBy: 'task' }));
    const numbers = (response: typeof wide) =>
      response.rows.map((row) => ({
        key: `${row.model}|${row.task}`,
        calls: row.calls,
        errors: row.errors,
        cost: row.costUsd.toFixed(9),
        input: row.meanInputTokens.toFixed(6),
        scores: row.scoreCount,
      }));
    expect(numbers(day)).toEqual(numbers(wide));
    expect(Date.parse(day.from) % 3_600_000).toBe(0);
    for (const row of day.rows) {
      const minute = wide.rows.find(
        (candidate) => candidate.model === row.model && candidate.task === row.task,
      );
      expect(Math.abs((row.latencyP50Ms ?? 0) - (minute?.latencyP50Ms ?? 0))).toBeLessThanOrEqual(
        0.05 * (minute?.latencyP50Ms ?? 0) + 20,
      );
    }
    const billing = await db.store.stats(
      StatsQuerySchema.parse({ window: '1h', groupBy: 'service', service: 'billing' }),
    );
    expect(billing.rows.map((row) => row.service)).toEqual(billing.rows.map(() => 'billing'));
    expect(billing.rows.reduce((sum, row) => sum + row.calls, 0)).toBe(48);
  });
});

describe('late scores', () => {
  it('from a feedback child span are stored against the scored call and counted in stats', async () => {
    const call = llmSpan({ model: 'claude-haiku-4-5', provider: 'anthropic', task: 'late-qa' });
    call.SpanAttributes['modelmaxx.feature'] = 'chat';
    const responseId = call.SpanAttributes['gen_ai.response.id'] ?? '';
    // What `feedback()` emits once the call's span has ended: a child span, no LLM attributes,
    // the evaluated call named in the event.
    const late = spanRow({
      TraceId: call.TraceId,
      ParentSpanId: call.SpanId,
      SpanName: 'feedback user.thumbs',
      SpanKind: 'Internal',
      SpanAttributes: {},
    });
    withEvaluation(late, 'user.thumbs', 0, {
      'gen_ai.response.id': responseId,
      'modelmaxx.evaluation.source': 'feedback',
      'gen_ai.request.model': 'claude-haiku-4-5',
      'gen_ai.provider.name': 'anthropic',
      'modelmaxx.task': 'late-qa',
      'modelmaxx.feature': 'chat',
    });
    // An evaluation event on a plain span that names no call stays on that span.
    const other = withEvaluation(spanRow({ SpanName: 'tool run' }), 'tool.ok', 1);
    expect(await db.store.write([call, late, other])).toMatchObject({ status: 'ok' });
    // Acknowledged means spooled; wait for the batch to reach ClickHouse.
    const sql = `SELECT TraceId, SpanId, ResponseId, Source, Provider, Model, Task, Feature FROM modelmaxx.llm_scores
       WHERE Name IN ('user.thumbs', 'tool.ok') ORDER BY Name DESC`;
    let rows = await db.query(sql);
    for (let tries = 0; rows.length < 2 && tries < 200; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      rows = await db.query(sql);
    }
    expect(rows).toEqual([
      {
        TraceId: call.TraceId,
        SpanId: call.SpanId,
        ResponseId: responseId,
        Source: 'feedback',
        Provider: 'anthropic',
        Model: 'claude-haiku-4-5',
        Task: 'late-qa',
        Feature: 'chat',
      },
      {
        TraceId: other.TraceId,
        SpanId: other.SpanId,
        ResponseId: '',
        Source: 'evaluator',
        Provider: '',
        Model: '',
        Task: '',
        Feature: '',
      },
    ]);
    const stats = await db.store.stats(StatsQuerySchema.parse({ window: '1h', groupBy: 'task' }));
    expect(stats.rows.find((row) => row.task === 'late-qa')).toMatchObject({
      model: 'claude-haiku-4-5',
      calls: 1,
      scoreCount: 1,
      meanScore: 0,
    });
  });
  it('take the latency percentiles of a group with more than 1000 calls from the DDSketch states', async () => {
    const now = Date.now();
    const spans = Array.from({ length: 1200 }, (_, index) =>
      llmSpan({
        model: 'big-group-model',
        service: 'big-group',
        durationMs: 100 + ((index * 7919) % 900),
        timestampMs: now - 60_000 - (index % 600) * 50,
      }),
    );
    expect(await db.store.write(spans)).toMatchObject({ status: 'ok' });
    expect(await db.store.flush()).toBe(true);
    const stats = await db.store.stats(
      StatsQuerySchema.parse({ window: '1h', groupBy: 'model', service: 'big-group' }),
    );
    const [direct] = await db.query<{ latency: number[] }>(
      `SELECT quantilesDD(0.01, 0.5, 0.95, 0.99)(DurationMs) AS latency
       FROM modelmaxx.llm_calls WHERE ServiceName = 'big-group'`,
    );
    expect(stats.rows).toHaveLength(1);
    expect(stats.rows[0]).toMatchObject({ model: 'big-group-model', calls: 1200 });
    expect(stats.rows[0]?.latencyP50Ms).toBeCloseTo(direct?.latency[0] ?? Number.NaN, 6);
    expect(stats.rows[0]?.latencyP99Ms).toBeCloseTo(direct?.latency[2] ?? Number.NaN, 6);
  });
});
