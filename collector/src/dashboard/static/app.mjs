/* global window, document, sessionStorage, localStorage, location, history, fetch, URL, URLSearchParams, Chart, setTimeout, clearTimeout */
/**
 * The collector's built-in dashboard (served as-is, no build step). Polls
 * `/api/dashboard/overview` and `/api/dashboard/traces` every few seconds and
 * updates the Chart.js charts in place; a click on a trace loads it from
 * Jaeger's `/api/traces/{id}` and draws its spans as a waterfall.
 *
 * The read token (when the collector has one) comes from `?token=` once or
 * from the form the page shows on 401; it is kept in sessionStorage and sent
 * as a Bearer header. All data is inserted as text, never as HTML.
 */

const REFRESH_MS = 5000;
const TOKEN_KEY = 'modelmaxx.readToken';
const WINDOW_KEY = 'modelmaxx.window';
const PALETTE = [
  '#4263eb',
  '#f76707',
  '#0ca678',
  '#ae3ec9',
  '#e8590c',
  '#1098ad',
  '#d6336c',
  '#74b816',
  '#7048e8',
  '#f59f00',
  '#495057',
  '#15aabf',
];

const $ = (id) => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`missing #${id}`);
  return element;
};

class AuthError extends Error {}

// ---- token -----------------------------------------------------------------

function takeTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  if (token === null) return;
  if (token !== '') sessionStorage.setItem(TOKEN_KEY, token);
  url.searchParams.delete('token');
  // Drop it from the address bar and history.
  history.replaceState(null, '', url.pathname + url.search + url.hash);
}

async function api(path) {
  const headers = { accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, cache: 'no-store' });
  if (response.status === 401) throw new AuthError('the read token is missing or wrong');
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`${path}: HTTP ${response.status} (not JSON)`);
  }
  if (!response.ok) {
    const message = typeof body?.error === 'string' ? body.error : JSON.stringify(body?.errors);
    throw new Error(`${path}: HTTP ${response.status}: ${message}`);
  }
  return body;
}

// ---- formatting --------------------------------------------------------------

/**
 * Dollars: whole dollars from $1,000, cents from $1, three significant digits below
 * ($0.0462, $0.00000825), so small amounts keep their digits.
 */
const usd = (value) => {
  if (value === 0) return '$0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return `$${Math.round(value).toLocaleString('en-US')}`;
  if (magnitude >= 1) {
    return `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  }
  const decimals = Math.min(20, 2 - Math.floor(Math.log10(magnitude)));
  return `$${value.toFixed(decimals).replace(/0+$/, '').replace(/\.$/, '')}`;
};
/** A cost that is unknown (no call of it has a price) says so instead of $0. */
const spend = (costUsd, pricedCalls, calls) =>
  calls > 0 && pricedCalls === 0 ? 'unpriced' : usd(costUsd);
/** Axis ticks: three significant digits. */
const usdTick = (value) => (value === 0 ? '$0' : `$${Number(value.toPrecision(3))}`);
const count = (value) => Math.round(value).toLocaleString('en-US');
const ms = (value) => {
  if (value === null || value === undefined) return '–';
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10_000 ? 1 : 2)} s`;
  return `${Math.round(value).toLocaleString('en-US')} ms`;
};
const percent = (value) => `${(value * 100).toFixed(value < 0.1 ? 1 : 0)}%`;

function bucketLabel(seconds, stepSeconds) {
  const date = new Date(seconds * 1000);
  const time = date.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
  if (stepSeconds < 3600) return time;
  return `${date.toLocaleDateString('en-GB', { weekday: 'short' })} ${time}`;
}

// ---- charts ------------------------------------------------------------------

const colors = new Map();
function colorOf(name) {
  let color = colors.get(name);
  if (color === undefined) {
    color = PALETTE[colors.size % PALETTE.length];
    colors.set(name, color);
  }
  return color;
}

const charts = {};

function baseOptions(extra = {}) {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: 'index', intersect: false },
    plugins: {
      legend: { position: 'bottom', labels: { boxWidth: 10, boxHeight: 10, font: { size: 11 } } },
      tooltip: { enabled: true },
    },
    scales: {
      x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
      y: { beginAtZero: true, grid: { color: '#eef1f5' } },
    },
    ...extra,
  };
}

/** The x axis of the stacked bar charts: time buckets, no grid, labels kept level. */
const stackedTimeAxis = {
  stacked: true,
  grid: { display: false },
  ticks: { maxRotation: 0, autoSkipPadding: 12 },
};

function createCharts() {
  const make = (id, type, options) =>
    new Chart($(id), { type, data: { labels: [], datasets: [] }, options });
  charts.spend = make(
    'chart-spend',
    'bar',
    baseOptions({
      scales: {
        x: stackedTimeAxis,
        y: { stacked: true, beginAtZero: true, ticks: { callback: (v) => usdTick(Number(v)) } },
      },
      plugins: {
        legend: baseOptions().plugins.legend,
        tooltip: {
          enabled: true,
          callbacks: {
            label: (item) =>
              `${item.dataset.label}: ${
                item.dataset.unpriced?.[item.dataIndex] > 0 && !(item.parsed.y > 0)
                  ? 'unpriced'
                  : usd(item.parsed.y ?? 0)
              }`,
          },
        },
      },
    }),
  );
  charts.calls = make('chart-calls', 'line', baseOptions());
  charts.latency = make('chart-latency', 'line', baseOptions());
  charts.quality = make('chart-quality', 'line', baseOptions());
  charts.routing = make(
    'chart-routing',
    'bar',
    baseOptions({
      scales: {
        x: stackedTimeAxis,
        y: { stacked: true, min: 0, max: 100, ticks: { callback: (v) => `${v}%` } },
      },
    }),
  );
  const ranking = () =>
    baseOptions({
      indexAxis: 'y',
      interaction: { mode: 'nearest', intersect: true },
      plugins: {
        legend: { display: false },
        tooltip: { enabled: true, callbacks: { label: (item) => usd(item.parsed.x ?? 0) } },
      },
      scales: {
        x: { beginAtZero: true, ticks: { callback: (v) => usdTick(Number(v)) } },
        y: { grid: { display: false } },
      },
    });
  charts.services = make('chart-services', 'bar', ranking());
  charts.features = make('chart-features', 'bar', ranking());
}

/** Replaces a chart's data in place (same chart object, no re-creation, no animation). */
function setChartData(chart, labels, datasets) {
  chart.data.labels = labels;
  const previous = new Map(chart.data.datasets.map((dataset) => [dataset.label, dataset]));
  chart.data.datasets = datasets.map((dataset) => {
    const kept = previous.get(dataset.label);
    if (kept === undefined) return dataset;
    Object.assign(kept, dataset);
    return kept;
  });
  chart.update('none');
}

function lineDataset(label, data, extra = {}) {
  const color = colorOf(label);
  return {
    label,
    data,
    borderColor: color,
    backgroundColor: `${color}33`,
    borderWidth: 2,
    // Sparse series (e.g. the first minute of traffic) need dots to be seen at all.
    pointRadius: data.filter((value) => value !== null && value !== 0).length <= 12 ? 2.5 : 0,
    pointHoverRadius: 3,
    tension: 0.25,
    spanGaps: true,
    ...extra,
  };
}

function perModel(overview, pick) {
  const { buckets } = overview.window;
  const index = new Map(buckets.map((t, i) => [t, i]));
  const byModel = new Map();
  for (const point of overview.series) {
    const i = index.get(point.t);
    if (i === undefined) continue;
    const name = point.model === '' ? '(unknown)' : point.model;
    let values = byModel.get(name);
    if (values === undefined) {
      values = new Array(buckets.length).fill(null);
      byModel.set(name, values);
    }
    const value = pick(point);
    if (value !== null) values[i] = (values[i] ?? 0) + value;
  }
  return [...byModel.entries()].sort(([a], [b]) => a.localeCompare(b));
}

function drawCharts(overview) {
  const { buckets, stepSeconds } = overview.window;
  const labels = buckets.map((t) => bucketLabel(t, stepSeconds));

  const spendByModel = perModel(overview, (p) => p.costUsd);
  // Calls without a price per model and bucket: their tooltip says "unpriced", not $0.
  const unpricedByModel = new Map(perModel(overview, (p) => p.calls - p.pricedCalls));
  setChartData(
    charts.spend,
    labels,
    spendByModel.map(([model, values]) => ({
      label: model,
      data: values.map((v) => v ?? 0),
      unpriced: unpricedByModel.get(model) ?? [],
      backgroundColor: colorOf(model),
      borderRadius: 2,
    })),
  );

  const calls = perModel(overview, (p) => p.calls);
  setChartData(
    charts.calls,
    labels,
    calls.map(([model, values]) =>
      lineDataset(
        model,
        values.map((v) => v ?? 0),
      ),
    ),
  );

  const latency = perModel(overview, (p) => p.p95Ms);
  setChartData(
    charts.latency,
    labels,
    latency
      .filter(([, values]) => values.some((v) => v !== null))
      .map(([model, values]) => lineDataset(model, values)),
  );

  const quality = perModel(overview, (p) => p.quality).filter(([, values]) =>
    values.some((v) => v !== null),
  );
  setChartData(
    charts.quality,
    labels,
    quality.map(([model, values]) => lineDataset(model, values, { pointRadius: 2 })),
  );
  showEmpty(charts.quality, quality.length === 0);

  drawRouting(overview, labels);

  const ranking = (chart, rows) => {
    setChartData(
      chart,
      rows.map((row) => {
        const name = row.name === '' ? '(none)' : row.name;
        return row.calls > 0 && row.pricedCalls === 0 ? `${name} (unpriced)` : name;
      }),
      [
        {
          label: 'spend',
          data: rows.map((row) => row.costUsd),
          backgroundColor: rows.map((row) => colorOf(`rank:${row.name}`)),
          borderRadius: 3,
        },
      ],
    );
  };
  ranking(charts.services, overview.topServices);
  ranking(charts.features, overview.topFeatures);
}

function drawRouting(overview, labels) {
  const { buckets } = overview.window;
  const index = new Map(buckets.map((t, i) => [t, i]));
  const totals = new Map();
  for (const point of overview.routing) {
    const key = `${point.policy}|${point.t}`;
    totals.set(key, (totals.get(key) ?? 0) + point.calls);
  }
  const series = new Map();
  for (const point of overview.routing) {
    const i = index.get(point.t);
    if (i === undefined) continue;
    const model = point.model === '' ? '(unknown)' : point.model;
    const label = `${point.policy} → ${model}`;
    let entry = series.get(label);
    if (entry === undefined) {
      entry = { policy: point.policy, model, values: new Array(buckets.length).fill(null) };
      series.set(label, entry);
    }
    entry.values[i] = (100 * point.calls) / (totals.get(`${point.policy}|${point.t}`) ?? 1);
  }
  const datasets = [...series.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([label, entry]) => ({
      label,
      data: entry.values,
      stack: entry.policy,
      // A model has one colour on every chart; each policy is its own stack.
      backgroundColor: colorOf(entry.model),
      borderRadius: 1,
    }));
  setChartData(charts.routing, labels, datasets);
  showEmpty(charts.routing, datasets.length === 0);
}

function showEmpty(chart, empty) {
  const note = chart.canvas.parentElement?.querySelector('.empty');
  if (note) note.hidden = !empty;
}

// ---- totals and traces -------------------------------------------------------

function drawTotals(overview) {
  const { totals, window: w } = overview;
  $('kpi-spend').textContent = spend(totals.costUsd, totals.pricedCalls, totals.calls);
  const unpriced = totals.calls - totals.pricedCalls;
  $('kpi-tokens').textContent =
    `${count(totals.tokens)} tokens` +
    (unpriced > 0 ? ` · ${count(unpriced)} unpriced call${unpriced === 1 ? '' : 's'}` : '');
  $('kpi-calls').textContent = count(totals.calls);
  const minutes = (w.to - w.from) / 60;
  $('kpi-rate').textContent = `${(totals.calls / minutes).toFixed(1)} / min`;
  $('kpi-errors').textContent = totals.calls > 0 ? percent(totals.errors / totals.calls) : '–';
  $('kpi-error-count').textContent = `${count(totals.errors)} failed`;
  $('kpi-latency').textContent =
    totals.p50Ms === null ? '–' : `${ms(totals.p50Ms)} / ${ms(totals.p95Ms)}`;
  // Separate figures: the checks' pass rate is no quality measure (they nearly always pass).
  $('kpi-checks').textContent = totals.passRate === null ? '–' : percent(totals.passRate);
  $('kpi-evaluated').textContent = `of ${count(totals.evaluatedCalls)} evaluated calls`;
  const mean = (value) => (value === null ? '–' : value.toFixed(2));
  $('kpi-judged').textContent = `${mean(totals.judgeScore)} · ${mean(totals.feedbackScore)}`;
  // Judge calls are evaluation work, not in the spend above: their own figure.
  $('kpi-judged-count').textContent =
    `${count(totals.judgeCount)} judged · ${count(totals.feedbackCount)} feedback` +
    (totals.evaluationCalls > 0 ? ` · ${usd(totals.evaluationUsd)} judge spend` : '');
}

// ---- savings ledger ------------------------------------------------------------

function points(quality) {
  if (quality === null) return '–';
  const sign = quality.difference >= 0 ? '+' : '';
  const diff = `${sign}${(quality.difference * 100).toFixed(1)}`;
  return quality.halfWidth === null
    ? `${diff} pts (n ${quality.samples})`
    : `${diff} ± ${(quality.halfWidth * 100).toFixed(1)} pts (n ${quality.samples})`;
}

function drawSavings(ledger) {
  const body = $('savings-body');
  if (ledger === null) {
    $('kpi-saving').textContent = '–';
    $('kpi-saving-note').textContent = 'savings ledger unavailable';
    body.replaceChildren();
    $('savings-empty').hidden = false;
    return;
  }
  const total = ledger.total;
  $('kpi-saving').textContent = total.calls > 0 ? usd(total.netSavingUsd) : '–';
  $('kpi-saving-note').textContent =
    total.calls > 0
      ? `${usd(total.grossSavingUsd)} gross · ${usd(total.shadowUsd + total.judgeUsd)} measuring · quality ${points(total.quality)}`
      : 'no routed calls';
  const rows = ledger.rows.map((row) => {
    const tr = document.createElement('tr');
    tr.append(
      cell(row.policy ?? ''),
      cell(row.class === '' ? '–' : (row.class ?? '')),
      cell(row.model ?? ''),
      cell(row.referenceModel),
      cell(count(row.calls), 'num'),
      cell(percent(row.cheaperShare), 'num'),
      cell(usd(row.spendUsd), 'num'),
      cell(usd(row.referenceUsd), 'num'),
      cell(usd(row.shadowUsd + row.judgeUsd), 'num'),
      cell(usd(row.netSavingUsd), 'num'),
      cell(points(row.quality), 'num'),
    );
    return tr;
  });
  body.replaceChildren(...rows);
  $('savings-empty').hidden = rows.length > 0;
}

let selectedTrace = null;

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function drawTraces(traces) {
  const body = $('traces-body');
  const rows = traces.map((trace) => {
    const tr = document.createElement('tr');
    tr.dataset.traceId = trace.traceId;
    if (trace.traceId === selectedTrace) tr.className = 'selected';
    tr.append(
      cell(new Date(trace.startMs).toLocaleTimeString('en-GB')),
      cell(trace.service),
      cell(trace.feature === '' ? '–' : trace.feature),
    );
    const models = document.createElement('td');
    for (const model of trace.models) {
      const tag = document.createElement('span');
      tag.className = 'model';
      tag.textContent = model;
      models.append(tag);
    }
    tr.append(
      models,
      cell(count(trace.calls), 'num'),
      cell(count(trace.tokens), 'num'),
      cell(spend(trace.costUsd, trace.pricedCalls, trace.calls), 'num'),
      cell(ms(trace.maxCallMs), 'num'),
    );
    const status = document.createElement('td');
    const pill = document.createElement('span');
    pill.className = trace.errors > 0 ? 'pill bad' : 'pill';
    pill.textContent =
      trace.errors > 0 ? `${trace.errors} error${trace.errors > 1 ? 's' : ''}` : 'ok';
    status.append(pill);
    tr.append(status);
    tr.addEventListener('click', () => {
      openTrace(trace.traceId).catch((error) => {
        if (error instanceof AuthError) showError(error);
        else $('trace-summary').textContent = `could not load it: ${error.message}`;
      });
    });
    return tr;
  });
  body.replaceChildren(...rows);
  $('traces-empty').hidden = traces.length > 0;
}

// ---- trace view ----------------------------------------------------------------

function tagValue(span, key) {
  return span.tags.find((tag) => tag.key === key)?.value;
}

function isError(span) {
  return tagValue(span, 'error') === true || tagValue(span, 'otel.status_code') === 'ERROR';
}

/** Spans in tree order (parents before children, siblings by start), with their depth. */
function orderSpans(spans) {
  const ids = new Set(spans.map((span) => span.spanID));
  const children = new Map();
  const roots = [];
  for (const span of spans) {
    const parent = span.references.find((ref) => ref.refType === 'CHILD_OF' && ids.has(ref.spanID));
    if (parent === undefined) roots.push(span);
    else {
      const list = children.get(parent.spanID) ?? [];
      list.push(span);
      children.set(parent.spanID, list);
    }
  }
  const byStart = (a, b) => a.startTime - b.startTime;
  const ordered = [];
  const visit = (span, depth) => {
    ordered.push({ span, depth });
    for (const child of (children.get(span.spanID) ?? []).sort(byStart)) visit(child, depth + 1);
  };
  for (const root of roots.sort(byStart)) visit(root, 0);
  return ordered;
}

async function openTrace(traceId) {
  selectedTrace = traceId;
  for (const row of $('traces-body').querySelectorAll('tr')) {
    row.classList.toggle('selected', row.dataset.traceId === traceId);
  }
  const view = $('trace-view');
  view.hidden = false;
  $('trace-id').textContent = traceId;
  $('trace-summary').textContent = 'loading…';
  $('span-details').hidden = true;
  const body = await api(`/api/traces/${encodeURIComponent(traceId)}`);
  const trace = body.data?.[0];
  if (trace === undefined) throw new Error(`trace ${traceId} not found`);
  if (selectedTrace !== traceId) return;
  drawWaterfall(trace);
  view.scrollIntoView({ behavior: 'instant', block: 'nearest' });
}

function drawWaterfall(trace) {
  const spans = trace.spans;
  const start = Math.min(...spans.map((span) => span.startTime));
  const end = Math.max(...spans.map((span) => span.startTime + span.duration));
  const total = Math.max(end - start, 1);
  const services = new Set();
  const rows = orderSpans(spans).map(({ span, depth }) => {
    const service = trace.processes[span.processID]?.serviceName ?? '?';
    services.add(service);
    const row = document.createElement('div');
    row.className = 'span-row';
    row.dataset.spanId = span.spanID;

    const name = document.createElement('div');
    name.className = 'span-name';
    name.style.paddingLeft = `${depth * 14}px`;
    const svc = document.createElement('span');
    svc.className = 'svc';
    svc.textContent = `${service} · `;
    name.append(svc, document.createTextNode(span.operationName));
    name.title = `${service} · ${span.operationName}`;

    const track = document.createElement('div');
    track.className = 'span-track';
    const bar = document.createElement('div');
    bar.className = isError(span) ? 'span-bar error' : 'span-bar';
    bar.style.left = `${(100 * (span.startTime - start)) / total}%`;
    bar.style.width = `${Math.max((100 * span.duration) / total, 0.4)}%`;
    bar.style.background = colorOf(`service:${service}`);
    track.append(bar);

    const duration = document.createElement('div');
    duration.className = 'span-duration';
    duration.textContent = ms(span.duration / 1000);

    row.append(name, track, duration);
    row.addEventListener('click', () => {
      for (const other of $('waterfall').querySelectorAll('.span-row')) {
        other.classList.toggle('selected', other === row);
      }
      drawSpanDetails(span, service);
    });
    return row;
  });
  $('waterfall').replaceChildren(...rows);
  $('trace-summary').textContent = `${spans.length} spans · ${services.size} service${
    services.size === 1 ? '' : 's'
  } · ${ms(total / 1000)}`;
}

function drawSpanDetails(span, service) {
  const details = $('span-details');
  const table = document.createElement('table');
  const add = (key, value) => {
    const tr = document.createElement('tr');
    tr.append(cell(key), cell(String(value)));
    table.append(tr);
  };
  add('service', service);
  add('span', span.operationName);
  for (const tag of [...span.tags].sort((a, b) => a.key.localeCompare(b.key))) {
    add(tag.key, tag.value);
  }
  for (const log of span.logs) {
    const fields = log.fields.map((field) => `${field.key}=${field.value}`).join(' ');
    add('event', fields);
  }
  details.replaceChildren(table);
  details.hidden = false;
}

// ---- refresh loop ------------------------------------------------------------

let timer;
let paused = false;
let refreshes = 0;

function setState(state, text) {
  document.body.dataset.state = state;
  $('status-text').textContent = text;
}

function showError(error) {
  if (error instanceof AuthError) {
    $('token-form').hidden = false;
    $('error').hidden = true;
    setState('error', 'read token needed');
    return;
  }
  const banner = $('error');
  banner.textContent = `Could not refresh: ${error instanceof Error ? error.message : String(error)}`;
  banner.hidden = false;
  setState('error', 'refresh failed; retrying');
}

function windowMinutes() {
  return Number($('window').value);
}

let generation = 0;

async function refresh() {
  clearTimeout(timer);
  // Only the latest refresh draws and schedules the next one (one loop, ever).
  const mine = ++generation;
  const minutes = windowMinutes();
  try {
    const query = new URLSearchParams({ minutes: String(minutes) });
    const [overview, traces, ledger] = await Promise.all([
      api(`/api/dashboard/overview?${query}`),
      api(`/api/dashboard/traces?${query}&limit=25`),
      // The ledger is extra: when it fails, the rest of the page still draws.
      api(`/api/savings?window=${minutes}m&groupBy=policy,class,model`).catch((error) => {
        if (error instanceof AuthError) throw error;
        return null;
      }),
    ]);
    if (mine !== generation) return; // a newer refresh (window change, resume) took over
    drawTotals(overview);
    drawCharts(overview);
    drawTraces(traces.traces);
    drawSavings(ledger);
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    $('error').hidden = true;
    $('token-form').hidden = true;
    setState(
      paused ? 'paused' : 'live',
      `${paused ? 'paused' : 'live'} · updated ${new Date().toLocaleTimeString('en-GB')}`,
    );
  } catch (error) {
    if (mine !== generation) return;
    showError(error);
    if (error instanceof AuthError) return; // wait for the token form
  }
  if (!paused) timer = setTimeout(() => void refresh(), REFRESH_MS);
}

function start() {
  takeTokenFromUrl();
  const saved = localStorage.getItem(WINDOW_KEY);
  if (saved !== null && [...$('window').options].some((option) => option.value === saved)) {
    $('window').value = saved;
  }
  createCharts();
  $('window').addEventListener('change', () => {
    localStorage.setItem(WINDOW_KEY, $('window').value);
    void refresh();
  });
  $('pause').addEventListener('click', () => {
    paused = !paused;
    $('pause').textContent = paused ? 'Resume' : 'Pause';
    $('pause').setAttribute('aria-pressed', String(paused));
    if (paused) {
      clearTimeout(timer);
      setState('paused', 'paused');
    } else void refresh();
  });
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('token-input');
    const token = input.value.trim();
    if (token === '') return;
    sessionStorage.setItem(TOKEN_KEY, token);
    input.value = '';
    void refresh();
  });
  $('trace-close').addEventListener('click', () => {
    selectedTrace = null;
    $('trace-view').hidden = true;
    for (const row of $('traces-body').querySelectorAll('tr.selected')) row.className = '';
  });
  window.modelmaxxDashboard = { charts, refresh };
  void refresh();
}

start();
