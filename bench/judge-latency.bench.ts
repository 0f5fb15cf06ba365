/**
 * `judge-added-latency-p99-ms` (SPEC: judges never on the response path, goal 0 within noise):
 * app calls (`chat.completions.create`, real openai SDK against llm-sim, latency 0) through two
 * instrumented clients, interleaved call by call: one plain, one whose every call is judged by
 * `judge()` with a judge call that takes 200 ms (llm-sim `slow-first=200`). The app-side time
 * of each call is measured; the value is p99(judged) - p99(plain). A second plain client in the
 * same rotation is the A/A control: p99(plain B) - p99(plain), the noise of the machine, is the
 * baseline. The judge calls run concurrently (concurrency 4) while the app goes on.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import OpenAI from 'openai';
import { judge, observe } from '@modelmaxx/instrument';
import type { JudgeEvaluator } from '@modelmaxx/instrument';
import { generateTask, startLlmSim } from '@modelmaxx/llm-sim';
import type { BenchOptions, BenchResult } from './types.js';

const JUDGE_MS = 200;

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const calls = options.quick ? 150 : 600;
  const sim = await startLlmSim({ seed: 3, judge: { accuracy: 0.9 } });
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  try {
    const client = (headers?: Record<string, string>) =>
      new OpenAI({
        baseURL: sim.openaiBaseURL,
        apiKey: 'k',
        maxRetries: 0,
        ...(headers === undefined ? {} : { defaultHeaders: headers }),
      });
    const plain = observe(client());
    const control = observe(client());
    const evaluators: JudgeEvaluator[] = [];
    const judged = observe(client(), { evaluators });
    const judgeClient = observe(client({ 'x-sim-directives': `slow-first=${JUDGE_MS}` }));
    const evaluator = judge({
      client: judgeClient,
      model: 'gpt-4o-mini',
      concurrency: 4,
      queueSize: 10_000,
    });
    evaluators.push(evaluator);
    const timings = { plain: [] as number[], control: [] as number[], judged: [] as number[] };
    for (let index = 0; index < calls + 10; index++) {
      const content = generateTask({ seed: 5, index }).prompt;
      for (const [key, app] of [
        ['plain', plain],
        ['judged', judged],
        ['control', control],
      ] as const) {
        const started = performance.now();
        await app.chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content }],
        });
        // The first ten of each are warm-up.
        if (index >= 10) timings[key].push(performance.now() - started);
      }
      // Keep the spans in memory bounded.
      if (index % 100 === 99) exporter.reset();
    }
    await evaluator.idle();
    const stats = evaluator.stats();
    const p50 = quantile(timings.judged, 0.5) - quantile(timings.plain, 0.5);
    const p99 = quantile(timings.judged, 0.99) - quantile(timings.plain, 0.99);
    const plainP99 = quantile(timings.plain, 0.99);
    const noise = quantile(timings.control, 0.99) - plainP99;
    return [
      {
        name: 'judge-added-latency-p99-ms',
        value: Number(p99.toFixed(3)),
        unit: 'ms',
        baseline: Number(noise.toFixed(3)),
        ratio: null,
        goal: '<= 5',
        notes: `${calls} app calls judged (every one, by a judge call of ${JUDGE_MS} ms, concurrency 4) interleaved with ${calls} plain calls, real openai SDK against llm-sim: app-side p99 ${quantile(timings.judged, 0.99).toFixed(2)} ms vs ${plainP99.toFixed(2)} ms plain (added ${p99.toFixed(2)} ms), p50 added ${p50.toFixed(2)} ms; baseline: the A/A control, a second plain client in the same rotation, p99 ${quantile(timings.control, 0.99).toFixed(2)} ms (${noise.toFixed(2)} ms from plain: the noise of p99 on this machine). ${stats.scored} verdicts recorded, ${stats.dropped} dropped. Goal: 0 within noise (<= 5 ms); the judge's ${JUDGE_MS} ms never shows.`,
      },
    ];
  } finally {
    await provider.shutdown();
    trace.disable();
    context.disable();
    await sim.close();
  }
}
