/**
 * `modelmaxx demo`: simulated app traffic through the router and the
 * instrumentation into a collector. Three services (support-bot, search,
 * code-review) send a mix of easy and hard tasks, streams, tool calls and
 * embeddings to llm-sim; some models fail on purpose so fallbacks happen;
 * an evaluator checks each answer with llm-sim's `checkAnswer`, and some
 * answers get later `feedback()`. The router's weights are refreshed from the
 * collector's `/api/stats` while the traffic runs (the router's `WeightUpdater`
 * over `collectorStatsSource`), so they shift visibly.
 *
 * The steps: `demo-setup.ts` (simulator, services, routing), `demo-traffic.ts` (the requests),
 * `demo-summary.ts` (what the collector stored, and the summary printed).
 */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import { createRandom } from '@modelmaxx/router';
import {
  ChatSpanCounter,
  DEMO_SERVICES,
  demoRouting,
  demoServices,
  describeWeights,
  startDemoSim,
} from './demo-setup.js';
import type { DemoOptions, DemoSummary } from './demo-setup.js';
import { formatSummary, summarize } from './demo-summary.js';
import { runTraffic } from './demo-traffic.js';

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(new URL('/healthz', url), { signal: AbortSignal.timeout(1500) });
    return response.ok;
  } catch {
    return false;
  }
}

/** The collector at `options.url`, or one started here when nothing answers there. */
async function ensureCollector(
  options: DemoOptions,
): Promise<{ url: string; collector: RunningCollector | undefined }> {
  const url = options.url.replace(/\/+$/, '');
  if (await answers(url)) return { url, collector: undefined };
  const parsed = new URL(url);
  options.stdout(`modelmaxx demo: no collector answers at ${url}; starting one here\n`);
  const collector = await startCollector({
    config: {
      host: parsed.hostname.replace(/^\[|\]$/g, ''),
      port: parsed.port === '' ? 4318 : Number(parsed.port),
      dataDir: options.dataDir ?? './.modelmaxx',
    },
  });
  return { url: collector.url, collector };
}

const SHOWN_CLASSES = ['arithmetic-easy', 'arithmetic-hard', 'reverse-hard'];

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const out = options.stdout;
  const seed = options.seed ?? 1;
  const random = createRandom(seed);
  const runStart = new Date(Date.now() - 1000);
  const { url, collector } = await ensureCollector(options);

  const contextManager = new AsyncLocalStorageContextManager();
  contextManager.enable();
  const ownContextManager = context.setGlobalContextManager(contextManager);

  const sim = await startDemoSim(seed, options.latencyScale, options.failures);
  const chatSpans = new ChatSpanCounter();
  const services = demoServices(url, sim, options.ingestToken, chatSpans, options.exportQueueSize);
  const { weights, routers } = demoRouting(services, url, options.readToken, random, options);
  const weightsBefore = describeWeights(weights.current, SHOWN_CLASSES);
  weights.start();

  out(
    `modelmaxx demo: ${options.requests} requests from ${DEMO_SERVICES.join(', ')} via llm-sim (${sim.url}) into ${url}\n`,
  );
  const { failed, firstError } = await runTraffic({
    services,
    routers,
    random,
    seed,
    requests: options.requests,
    concurrency: options.concurrency ?? 8,
    out,
  });
  weights.stop();
  // The shadow comparisons still queued finish before the spans are flushed.
  await Promise.all(routers.map((router) => router.idle()));
  await Promise.all(services.map((service) => service.provider.forceFlush()));
  await Promise.all(services.map((service) => service.provider.shutdown()));
  await sim.close();
  if (ownContextManager) context.disable();
  await weights.refresh();
  const stale = weights.current.stale;
  const weightsAfter =
    describeWeights(weights.current, SHOWN_CLASSES) +
    (stale === undefined ? '' : `\n    note: ${stale}`);

  const stored = await summarize(
    url,
    options.readToken,
    runStart,
    chatSpans.count,
    weightsBefore,
    weightsAfter,
  );
  const summary = { ...stored, failedRequests: failed };
  out(formatSummary(summary, url));
  if (firstError !== undefined) out(`  first failed request: ${firstError.slice(0, 300)}\n`);
  if (collector !== undefined) await keepRunning(collector, url, options);
  return summary;
}

/** A collector started here runs until Ctrl-C (unless `--exit`), then closes. */
async function keepRunning(
  collector: RunningCollector,
  url: string,
  options: DemoOptions,
): Promise<void> {
  if (!options.exit && options.waitForStop !== undefined) {
    options.stdout(`\nThe collector keeps running at ${url}; Ctrl-C to stop.\n`);
    await options.waitForStop();
  }
  await collector.close();
}
