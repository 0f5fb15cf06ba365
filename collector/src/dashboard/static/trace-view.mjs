/* global document */
/**
 * One trace, loaded from Jaeger's `/api/traces/{id}`: its spans as a waterfall
 * (tree order, bars on a shared time axis) and a clicked span's tags and events.
 */
import { colorOf } from './charts.mjs';
import { $, api, cell } from './dom.mjs';
import { ms } from './format.mjs';

let selectedTrace = null;

/** The trace shown (or being loaded), if any. */
export function selectedTraceId() {
  return selectedTrace;
}

/** Hides the trace view. */
export function closeTrace() {
  selectedTrace = null;
  $('trace-view').hidden = true;
  for (const row of $('traces-body').querySelectorAll('tr.selected')) row.className = '';
}

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

export async function openTrace(traceId) {
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
