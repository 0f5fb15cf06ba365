/**
 * The built-in dashboard in a real browser (Debian's `/usr/bin/chromium`
 * driven by `playwright-core`; no browser is ever downloaded). A collector on
 * the embedded ClickHouse with both tokens gets demo traffic, the page is
 * opened with `?token=`, and the test checks that every chart has drawn data,
 * the totals and recent traces match what was sent, a new batch shows up by
 * itself (live refresh), a trace opens as a span waterfall, the console has no
 * errors and no request failed; then it saves a screenshot to
 * `collector/test/output/dashboard.png`. A second tab without the token gets
 * the token form and works once the token is typed in.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '../src/index.js';
import type { DashboardOverview } from '../src/dashboard/dashboard-queries.js';
import {
  planTraffic,
  summarize,
  toOtlpJson,
  type PlannedCall,
} from './support/dashboard-traffic.js';
import { CHROMIUM, CHROMIUM_ARGS } from './support/chromium.js';
import { otlpAttributes, otlpChatSpan, postOtlpSpans } from '../../test/support/otlp-json.js';

const OUTPUT = join(import.meta.dirname, 'output');
const SCREENSHOT = join(OUTPUT, 'dashboard.png');
const INGEST = 'ingest-browser';
const READ = 'read-browser';
const CHART_IDS = [
  'chart-spend',
  'chart-calls',
  'chart-latency',
  'chart-quality',
  'chart-routing',
  'chart-services',
  'chart-features',
] as const;

let collector: RunningCollector;
let dataDir: string;
let profileDir: string;
let context: BrowserContext;
const sent: PlannedCall[] = [];

async function send(calls: PlannedCall[]): Promise<void> {
  const response = await fetch(`${collector.url}/v1/traces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INGEST}`, 'content-type': 'application/json' },
    body: JSON.stringify(toOtlpJson(calls)),
  });
  expect(response.status).toBe(200);
  sent.push(...calls);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await fetch(`${collector.url}/api/dashboard/overview?minutes=60`, {
      headers: { authorization: `Bearer ${READ}` },
    });
    const { totals } = (await response.json()) as DashboardOverview;
    if (totals.calls >= sent.length && totals.scored >= summarize(sent).scored) return;
    if (Date.now() > deadline)
      throw new Error(`only ${totals.calls} of ${sent.length} calls arrived`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * What the browser-side callbacks touch (this project compiles without the DOM
 * lib). Callbacks, not strings: the page's CSP forbids eval, which Playwright
 * would need for string predicates.
 */
interface PageGlobals {
  document: {
    body: { dataset: Record<string, string | undefined> };
    getElementById(id: string): { textContent: string | null } | null;
  };
}

/** The page has drawn its data at least once. */
const REFRESHED = () =>
  Number((globalThis as unknown as PageGlobals).document.body.dataset.refreshes ?? 0) >= 1;

interface ChartState {
  id: string;
  labels: number;
  datasets: string[];
  nonZero: number;
  painted: number;
  size: number;
}

/**
 * Browser-side: each chart's labels, datasets and positive points (from
 * Chart.js itself) and how many canvas pixels are painted.
 */
const describeCharts = (ids: readonly string[]) => `${JSON.stringify(ids)}.map((id) => {
  const canvas = document.getElementById(id);
  const chart = Chart.getChart(canvas);
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let index = 3; index < pixels.length; index += 4) if (pixels[index] > 0) painted += 1;
  const values = chart.data.datasets.flatMap((dataset) => dataset.data);
  return {
    id,
    labels: chart.data.labels.length,
    datasets: chart.data.datasets.map((dataset) => dataset.label || ''),
    nonZero: values.filter((value) => typeof value === 'number' && value > 0).length,
    painted,
    size: canvas.width * canvas.height,
  };
})`;

const traceIds = async (page: Page): Promise<string[]> => {
  const ids: string[] = [];
  for (const row of await page.locator('#traces-body tr').all()) {
    ids.push((await row.getAttribute('data-trace-id')) ?? '');
  }
  return ids;
};

/** Console errors, uncaught exceptions and failed or refused requests of a page. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`exception: ${error.message}`));
  page.on('requestfailed', (request) =>
    problems.push(`failed: ${request.url()} ${request.failure()?.errorText ?? ''}`),
  );
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  return problems;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium). ` +
        'This test drives the system browser and never downloads one.',
    );
  }
  dataDir = await mkdtemp(join(tmpdir(), 'mm-dashboard-browser-'));
  profileDir = await mkdtemp(join(tmpdir(), 'mm-dashboard-chromium-'));
  collector = await startCollector({
    config: { port: 0, dataDir, ingestToken: INGEST, readToken: READ },
  });
  await send(planTraffic(150, Date.now(), 25, 11));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1440, height: 1000 },
    deviceScaleFactor: 1,
    timezoneId: 'UTC',
    locale: 'en-GB',
  });
}, 120_000);

afterAll(async () => {
  await context?.close();
  await collector?.close();
  for (const dir of [dataDir, profileDir]) {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('dashboard in chromium', () => {
  it('draws every chart with data, lists traces, refreshes live and opens a trace', async () => {
    const page = context.pages()[0] ?? (await context.newPage());
    const problems = watch(page);
    page.setDefaultTimeout(30_000);

    await page.goto(`${collector.url}/?token=${READ}`, { waitUntil: 'load' });
    await page.waitForFunction(REFRESHED);
    // The token left the address bar (it stays in this tab's sessionStorage).
    expect(page.url()).toBe(`${collector.url}/`);
    expect(await page.evaluate('sessionStorage.getItem("modelmaxx.readToken")')).toBe(READ);

    const expected = summarize(sent);
    expect(await page.textContent('#kpi-calls')).toBe(String(expected.calls));
    // Three significant digits at least (cents from $1 up), the same amount as sent.
    const kpiSpend = (await page.textContent('#kpi-spend')) ?? '';
    expect(kpiSpend).toMatch(/^\$(\d{1,3}(,\d{3})*\.\d\d|0\.0*[1-9]\d{1,2})$/);
    const shown = Number(kpiSpend.slice(1).replaceAll(',', ''));
    expect(Math.abs(shown - expected.costUsd) / expected.costUsd).toBeLessThan(0.005);
    // Separate quality figures: every evaluator score sent is >= 0.7 (a pass); no judge, no feedback.
    expect(await page.textContent('#kpi-checks')).toBe('100%');
    expect(await page.textContent('#kpi-evaluated')).toBe(`of ${expected.scored} evaluated calls`);
    expect(await page.textContent('#kpi-judged')).toBe('– · –');
    expect(await page.textContent('#kpi-judged-count')).toBe('0 judged · 0 feedback');
    expect(await page.textContent('#kpi-pairwise')).toBe('–');
    // The savings ledger answered (these spans name no reference model: nothing to book).
    expect(await page.textContent('#kpi-saving-note')).toBe('no routed calls');
    expect(await page.isVisible('#savings-empty')).toBe(true);

    // Every chart: datasets with points, and pixels drawn on its canvas.
    const charts = (await page.evaluate(describeCharts(CHART_IDS))) as ChartState[];
    for (const chart of charts) {
      expect(chart.datasets.length, chart.id).toBeGreaterThan(0);
      expect(chart.nonZero, chart.id).toBeGreaterThan(0);
      expect(chart.size, chart.id).toBeGreaterThan(10_000);
      // Axes, labels and data: far more than a blank canvas.
      expect(chart.painted, chart.id).toBeGreaterThan(chart.size * 0.01);
    }
    const byId = new Map(charts.map((chart) => [chart.id, chart]));
    const models = [...expected.byModel.keys()].sort();
    expect(byId.get('chart-spend')?.datasets).toEqual(models);
    expect(byId.get('chart-calls')?.datasets).toEqual(models);
    expect(byId.get('chart-spend')?.labels).toBe(60);
    expect(byId.get('chart-routing')?.datasets).toEqual(
      [...expected.routed.keys()].map((key) => key.replace('|', ' → ')).sort(),
    );
    expect(byId.get('chart-services')?.labels).toBe(expected.byService.size);
    expect(byId.get('chart-features')?.labels).toBe(expected.byFeature.size);
    expect(await page.isHidden('#chart-quality + .empty')).toBe(true);

    // Recent traces: the 25 newest.
    const newest = [...sent].sort((a, b) => b.startMs - a.startMs).slice(0, 25);
    expect(await traceIds(page)).toEqual(newest.map((call) => call.traceId));

    // Live: a new batch appears without reloading.
    const before = Number(await page.getAttribute('body', 'data-refreshes'));
    await send(planTraffic(12, Date.now(), 1, 99));
    await page.waitForFunction(
      (calls) =>
        (globalThis as unknown as PageGlobals).document.getElementById('kpi-calls')?.textContent ===
        String(calls),
      sent.length,
      { timeout: 30_000 },
    );
    expect(Number(await page.getAttribute('body', 'data-refreshes'))).toBeGreaterThan(before);
    expect(await page.getAttribute('body', 'data-state')).toBe('live');

    // A trace opens as a waterfall of its three spans; a span shows its attributes.
    const first = (await traceIds(page))[0];
    const call = sent.find((planned) => planned.traceId === first);
    expect(call).toBeDefined();
    await page.click('#traces-body tr');
    await page.waitForSelector('#waterfall .span-row');
    expect(await page.textContent('#trace-id')).toBe(first);
    const spans = await page.locator('#waterfall .span-name').allTextContents();
    expect(spans).toEqual([
      `${call?.service} · POST /api/${call?.feature}`,
      `${call?.service} · route ${call?.policy}`,
      `${call?.service} · chat ${call?.model}`,
    ]);
    await page.click(`#waterfall .span-row:nth-child(3) .span-name`);
    await page.waitForSelector('#span-details table');
    const cells = await page.locator('#span-details td').allTextContents();
    const details = Object.fromEntries(
      Array.from({ length: cells.length / 2 }, (_, index) => [
        cells[2 * index],
        cells[2 * index + 1],
      ]),
    );
    expect(details['gen_ai.request.model']).toBe(call?.model);
    expect(details['modelmaxx.route.policy']).toBe(call?.policy);

    await mkdir(OUTPUT, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect((await stat(SCREENSHOT)).size).toBeGreaterThan(50_000);

    expect(problems).toEqual([]);
  }, 120_000);

  it('asks for the read token when the tab has none, then shows the data', async () => {
    const page = await context.newPage();
    const problems = watch(page);
    page.setDefaultTimeout(30_000);
    await page.goto(`${collector.url}/`, { waitUntil: 'load' });
    await page.waitForSelector('#token-form', { state: 'visible' });
    expect(await page.getAttribute('body', 'data-state')).toBe('error');
    await page.fill('#token-input', READ);
    await page.click('#token-form button[type=submit]');
    await page.waitForFunction(REFRESHED);
    expect(await page.isHidden('#token-form')).toBe(true);
    expect(await page.textContent('#kpi-calls')).toBe(String(sent.length));
    // Only the refused first loads (401) were reported, nothing else went wrong.
    expect(problems.length).toBeGreaterThan(0);
    for (const problem of problems) expect(problem).toMatch(/401/);
    await page.close();
  }, 90_000);

  it('shows a failed refresh and recovers on the next one', async () => {
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    await page.goto(`${collector.url}/?token=${READ}`, { waitUntil: 'load' });
    await page.waitForFunction(REFRESHED);
    // The collector answers 500 for a while (e.g. ClickHouse is down).
    await page.route('**/api/dashboard/overview**', (route) =>
      route.fulfill({
        status: 500,
        contentType: 'application/json',
        body: JSON.stringify({ error: 'ClickHouse is unreachable' }),
      }),
    );
    await page.waitForSelector('#error', { state: 'visible', timeout: 30_000 });
    expect(await page.textContent('#error')).toContain('HTTP 500: ClickHouse is unreachable');
    expect(await page.getAttribute('body', 'data-state')).toBe('error');
    // The charts keep their last data meanwhile.
    expect(await page.textContent('#kpi-calls')).toBe(String(sent.length));
    await page.unroute('**/api/dashboard/overview**');
    await page.waitForSelector('#error', { state: 'hidden', timeout: 30_000 });
    expect(await page.getAttribute('body', 'data-state')).toBe('live');

    // A trace that cannot be loaded says so in the trace view.
    await page.route('**/api/traces/**', (route) =>
      route.fulfill({
        status: 404,
        contentType: 'application/json',
        body: JSON.stringify({ data: null, errors: [{ code: 404, msg: 'trace not found' }] }),
      }),
    );
    await page.click('#traces-body tr');
    await page.waitForFunction(() =>
      (
        (globalThis as unknown as PageGlobals).document.getElementById('trace-summary')
          ?.textContent ?? ''
      ).startsWith('could not load it'),
    );
    expect(await page.textContent('#trace-summary')).toContain('HTTP 404');
    expect(await page.isHidden('#error')).toBe(true);
    await page.close();
  }, 90_000);

  it('shows small amounts with their digits and unpriced calls as "unpriced", never $0', async () => {
    const page = await context.newPage();
    const problems = watch(page);
    page.setDefaultTimeout(30_000);
    const span = (id: number, model: string, cost: number | undefined) =>
      otlpChatSpan({
        id,
        model,
        durationMs: 300,
        inputTokens: 1000,
        outputTokens: 200,
        ...(cost === undefined ? {} : { cost }),
      });
    // No cost on the span and no catalog price for the model: unpriced.
    const spans = [span(0xa1, 'gpt-4o-mini', 0.0462), span(0xb2, 'house-model-x', undefined)];
    const [small, unpriced] = spans.map((each) => each.traceId) as [string, string];
    const ingest = { authorization: `Bearer ${INGEST}` };
    expect(await postOtlpSpans(collector.url, spans, 'pricing-shop', ingest)).toBe(200);
    await page.goto(`${collector.url}/?token=${READ}`, { waitUntil: 'load' });
    const costOf = async (traceId: string): Promise<string> => {
      const row = page.locator(`#traces-body tr[data-trace-id="${traceId}"]`);
      await row.waitFor({ timeout: 60_000 });
      return (await row.locator('td').nth(6).textContent()) ?? '';
    };
    expect(await costOf(small)).toBe('$0.0462');
    expect(await costOf(unpriced)).toBe('unpriced');
    await page.waitForFunction(() =>
      (
        (globalThis as unknown as PageGlobals).document.getElementById('kpi-tokens')?.textContent ??
        ''
      ).includes('unpriced'),
    );
    expect(await page.textContent('#kpi-tokens')).toMatch(/ · 1 unpriced call$/);
    // The spend chart's tooltip for the unpriced model's bar says so too.
    const tooltip = await page.evaluate(`(() => {
      const chart = Chart.getChart(document.getElementById('chart-spend'));
      const dataset = chart.data.datasets.find((d) => d.label === 'house-model-x');
      const index = dataset.unpriced.findIndex((n) => n > 0);
      const label = chart.options.plugins.tooltip.callbacks.label;
      return label({ dataset, dataIndex: index, parsed: { y: dataset.data[index] } });
    })()`);
    expect(tooltip).toBe('house-model-x: unpriced');
    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);
  it('shows pointwise judge scores and shadow verdicts as separate figures', async () => {
    const page = await context.newPage();
    const problems = watch(page);
    page.setDefaultTimeout(30_000);
    /** A judge score or shadow verdict (late-score event) on the call. */
    const verdict = (name: string, score: number, label?: string) => ({
      timeUnixNano: String(BigInt(Date.now() - 500) * 1_000_000n),
      name: 'gen_ai.evaluation.result',
      attributes: otlpAttributes({
        'gen_ai.evaluation.name': name,
        'gen_ai.evaluation.score.value': score,
        'modelmaxx.evaluation.source': 'judge',
        ...(label === undefined ? {} : { 'gen_ai.evaluation.score.label': label }),
      }),
    });
    // Pointwise judge scores 0.9 and 0.3 (mean 0.60); pairwise: shadow verdicts win, tie, loss
    // and a pairwise judge's tie (label) against a reference answer.
    const events = [
      [verdict('correctness', 0.9, 'pass'), verdict('modelmaxx.shadow', 1)],
      [verdict('correctness', 0.3), verdict('modelmaxx.shadow', 0.5)],
      [verdict('vs-gold-answer', 0.5, 'tie')],
      [verdict('modelmaxx.shadow', 0)],
    ];
    const spans = events.map((list, index) => ({
      ...otlpChatSpan({ id: 0xc10 + index, model: 'gpt-4o-mini', cost: 0.001 }),
      events: list,
    }));
    const ingest = { authorization: `Bearer ${INGEST}` };
    expect(await postOtlpSpans(collector.url, spans, 'judged-shop', ingest)).toBe(200);
    await page.goto(`${collector.url}/?token=${READ}`, { waitUntil: 'load' });
    await page.waitForFunction(() =>
      (
        (globalThis as unknown as PageGlobals).document.getElementById('kpi-pairwise-count')
          ?.textContent ?? ''
      ).startsWith('4 verdicts'),
    );
    // The judge figure is the pointwise scores only; pairwise verdicts are win · tie · loss shares.
    expect(await page.textContent('#kpi-judged')).toBe('0.60 · –');
    expect(await page.textContent('#kpi-judged-count')).toBe('2 judged · 0 feedback');
    expect(await page.textContent('#kpi-pairwise')).toBe('25% · 50% · 25%');
    expect(await page.textContent('#kpi-pairwise-count')).toBe('4 verdicts: win · tie · loss');
    // The same figures in the dashboard's API.
    const response = await fetch(`${collector.url}/api/dashboard/overview?minutes=60`, {
      headers: { authorization: `Bearer ${READ}` },
    });
    const { totals } = (await response.json()) as DashboardOverview;
    expect(totals).toMatchObject({
      judgeCount: 2,
      pairwiseWins: 1,
      pairwiseTies: 2,
      pairwiseLosses: 1,
    });
    expect(totals.judgeScore).toBeCloseTo(0.6, 9);
    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);
});
