/* global window, document, sessionStorage, localStorage, URLSearchParams, setTimeout, clearTimeout */
/**
 * The collector's built-in dashboard (served as-is, no build step: ES modules
 * from this folder). Polls `/api/dashboard/overview`, `/api/dashboard/traces`
 * and `/api/savings` every few seconds and updates the Chart.js charts in place
 * (`charts.mjs`), the figures and tables (`tables.mjs`); a click on a trace
 * loads it from Jaeger's `/api/traces/{id}` and draws its spans as a waterfall
 * (`trace-view.mjs`). All data is inserted as text, never as HTML.
 */
import { charts, createCharts, drawCharts } from './charts.mjs';
import { $, api, AuthError, takeTokenFromUrl, TOKEN_KEY } from './dom.mjs';
import { drawSavings, drawTotals, drawTraces } from './tables.mjs';
import { closeTrace, openTrace } from './trace-view.mjs';

const REFRESH_MS = 5000;
const WINDOW_KEY = 'modelmaxx.window';

function showTrace(traceId) {
  openTrace(traceId).catch((error) => {
    if (error instanceof AuthError) showError(error);
    else $('trace-summary').textContent = `could not load it: ${error.message}`;
  });
}

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
    drawTraces(traces.traces, showTrace);
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
  $('trace-close').addEventListener('click', closeTrace);
  window.modelmaxxDashboard = { charts, refresh };
  void refresh();
}

start();
