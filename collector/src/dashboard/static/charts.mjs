/* global Chart */
/**
 * The Chart.js charts of the overview (created once, updated in place on each
 * refresh) and the colour each model or service keeps.
 */
import { $ } from './dom.mjs';
import { bucketLabel, usd, usdTick } from './format.mjs';

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

const colors = new Map();
export function colorOf(name) {
  let color = colors.get(name);
  if (color === undefined) {
    color = PALETTE[colors.size % PALETTE.length];
    colors.set(name, color);
  }
  return color;
}

export const charts = {};

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

export function createCharts() {
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

export function drawCharts(overview) {
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
