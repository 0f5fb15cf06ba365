/* global document */
/**
 * The overview's figures, the savings ledger and the list of recent traces.
 */
import { $, cell } from './dom.mjs';
import { count, ms, percent, spend, usd } from './format.mjs';
import { selectedTraceId } from './trace-view.mjs';

export function drawTotals(overview) {
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
  drawPairwise(totals);
}

/** Pairwise verdicts (shadow: routed answer vs the reference's): shares of wins, ties, losses. */
function drawPairwise(totals) {
  const verdicts = totals.pairwiseWins + totals.pairwiseTies + totals.pairwiseLosses;
  const share = (n) => percent(n / verdicts);
  $('kpi-pairwise').textContent =
    verdicts > 0
      ? `${share(totals.pairwiseWins)} · ${share(totals.pairwiseTies)} · ${share(totals.pairwiseLosses)}`
      : '–';
  $('kpi-pairwise-count').textContent =
    `${count(verdicts)} verdict${verdicts === 1 ? '' : 's'}: win · tie · loss`;
}

/** The quality difference in points, its interval, sample size and whether it is judge-corrected. */
function points(quality) {
  if (quality === null) return '–';
  const sign = quality.difference >= 0 ? '+' : '';
  const diff = `${sign}${(quality.difference * 100).toFixed(1)}`;
  const judge = quality.corrected
    ? `judge accuracy ${quality.judgeAccuracy.value.toFixed(2)}`
    : 'not corrected for judge accuracy';
  return quality.halfWidth === null
    ? `${diff} pts (n ${quality.samples}, ${judge})`
    : `${diff} ± ${(quality.halfWidth * 100).toFixed(1)} pts (n ${quality.samples}, ${judge})`;
}

export function drawSavings(ledger) {
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

/** The recent traces; a click on one calls `onOpen(traceId)`. */
export function drawTraces(traces, onOpen) {
  const body = $('traces-body');
  const rows = traces.map((trace) => {
    const tr = document.createElement('tr');
    tr.dataset.traceId = trace.traceId;
    if (trace.traceId === selectedTraceId()) tr.className = 'selected';
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
    tr.addEventListener('click', () => onOpen(trace.traceId));
    return tr;
  });
  body.replaceChildren(...rows);
  $('traces-empty').hidden = traces.length > 0;
}
