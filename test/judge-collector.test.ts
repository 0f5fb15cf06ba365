/**
 * LLM judges end to end: an app's calls (real openai SDK against llm-sim) are judged by
 * `judge()` of the instrumentation with the same client, exported over the real OTLP/HTTP
 * exporter to a collector on the embedded ClickHouse. The judge's calls land in `llm_calls` as
 * `Purpose = 'evaluation'` with their cost and stay out of `/api/stats`; the verdicts land in
 * `llm_scores` on the judged calls with source `judge`, and `/api/stats` gives their mean apart
 * from the built-in checks' pass rate. llm-sim's judge answers with accuracy 1 here, so each
 * verdict is the truth (`answerIsCorrect`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '@modelmaxx/collector';
import { judge, observe } from '@modelmaxx/instrument';
import type { JudgeEvaluator } from '@modelmaxx/instrument';
import { answerIsCorrect, generateTask, startLlmSim, type LlmSim } from '@modelmaxx/llm-sim';
import { rowsEventually } from './support/collector-sql.js';
import type { Row } from './support/collector-sql.js';

let sim: LlmSim;
let collector: RunningCollector;
let dataDir: string;
let provider: TracerProvider;

const waitForRows = (query: string, count: number) => rowsEventually(collector.url, query, count);

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-judge-e2e-'));
  collector = await startCollector({ config: { port: 0, dataDir } });
  sim = await startLlmSim({ seed: 17, judge: { accuracy: 1 } });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'judged-app' }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: `${collector.url}/v1/traces` }),
        scheduledDelayMillis: 50,
      }),
    ],
  });
  trace.setGlobalTracerProvider(provider);
});

afterAll(async () => {
  await provider?.shutdown();
  trace.disable();
  context.disable();
  await sim?.close();
  await collector?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('judge() into the collector', () => {
  it('judge calls are evaluation spend; verdicts are judge scores on the judged calls', async () => {
    const evaluators: JudgeEvaluator[] = [];
    const client = observe(new OpenAI({ baseURL: sim.openaiBaseURL, apiKey: 'k', maxRetries: 0 }), {
      evaluators,
    });
    const evaluator = judge({ client, model: 'gpt-4o-mini', name: 'judge.correct' });
    evaluators.push(evaluator);
    const asked: { id: string; correct: boolean }[] = [];
    for (let index = 0; index < 12; index++) {
      const task = generateTask({ seed: 8, index });
      const completion = await client.chat.completions.create({
        model: 'llama-3.1-8b-instant',
        messages: [{ role: 'user', content: task.prompt }],
      });
      const answer = completion.choices[0]?.message.content ?? '';
      asked.push({ id: completion.id, correct: answerIsCorrect(task.prompt, answer) });
    }
    await evaluator.idle();
    expect(evaluator.stats()).toMatchObject({ scored: 12, judgeCalls: 12 });
    await provider.forceFlush();

    const calls = await waitForRows(
      `SELECT Purpose, RequestModel, CostUSD FROM modelmaxx.llm_calls WHERE ServiceName = 'judged-app'`,
      24,
    );
    const evaluation = calls.filter((row) => row['Purpose'] === 'evaluation');
    expect(evaluation).toHaveLength(12);
    expect(new Set(evaluation.map((row) => row['RequestModel']))).toEqual(new Set(['gpt-4o-mini']));
    const evaluationUsd = evaluation.reduce((sum, row) => sum + Number(row['CostUSD']), 0);
    // The judge's spend in llm_calls is what the judge counted for its cap (costOf of its usage).
    expect(evaluationUsd).toBeCloseTo(evaluator.stats().spentUsd, 12);
    expect(calls.filter((row) => row['Purpose'] === 'app')).toHaveLength(12);

    const scores = await waitForRows(
      `SELECT s.ResponseId AS ResponseId, s.Score AS Score, s.Label AS Label, s.Model AS Model,
              toBool(c.SpanId != '') AS Linked
       FROM modelmaxx.llm_scores AS s
       LEFT JOIN modelmaxx.llm_calls AS c ON c.SpanId = s.SpanId AND c.TraceId = s.TraceId
       WHERE s.Source = 'judge' AND s.Name = 'judge.correct'`,
      12,
    );
    expect(scores).toHaveLength(12);
    for (const item of asked) {
      const score = scores.find((row) => row['ResponseId'] === item.id);
      expect(score).toMatchObject({
        Label: item.correct ? 'pass' : 'fail',
        Model: 'llama-3.1-8b-instant',
        Linked: true,
      });
    }

    // /api/stats: the app's model only, the judge mean apart from the checks' pass rate.
    let rows: Row[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const response = await fetch(
        `${collector.url}/api/stats?window=1h&service=judged-app&quality=true`,
      );
      rows = ((await response.json()) as { rows: Row[] }).rows;
      if (rows[0]?.['judgeCount'] === 12) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(rows.map((row) => row['model'])).toEqual(['llama-3.1-8b-instant']);
    const judgedMean = scores.reduce((sum, row) => sum + Number(row['Score']), 0) / scores.length;
    expect(rows[0]).toMatchObject({ calls: 12, evaluatedCalls: 12, judgeCount: 12 });
    expect(rows[0]?.['judgeScore']).toBeCloseTo(judgedMean, 12);
    const right = asked.filter((item) => item.correct).length;
    // The checks pass on (nearly) every call; the judge tells right from wrong.
    expect(rows[0]?.['passRate']).toBe(1);
    expect(right).toBeLessThan(12);
    expect(rows[0]?.['judgeScore']).toBeLessThan(0.9);
  }, 120_000);
});
