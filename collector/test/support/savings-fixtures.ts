/** Spans, verdicts and the Grafana ledger panel's rows shared by the savings ledger tests. */
import { readFileSync } from 'node:fs';
import type { ClickHouseEngine } from '../../src/store/engine.js';
import type { llmSpan } from '../store-fixtures.js';
import { hex, nanos, spanRow } from '../store-fixtures.js';
import { expand } from './grafana-macros.js';

/** The routing attributes of a call `policy` sent to `model` (its reference: `reference`). */
export const route = (policy: string, klass: string, model: string, reference: string) => ({
  'modelmaxx.route.policy': policy,
  'modelmaxx.route.class': klass,
  'modelmaxx.route.model': model,
  'modelmaxx.route.reference_model': reference,
});

/** A verdict or feedback event on a short span under the scored call's parent (late-score path). */
export function score(
  call: ReturnType<typeof llmSpan>,
  name: string,
  value: number,
  source: 'judge' | 'feedback',
  model = call.SpanAttributes['gen_ai.request.model']!,
) {
  return spanRow({
    TraceId: call.TraceId,
    ParentSpanId: call.ParentSpanId === '' ? hex(8) : call.ParentSpanId,
    SpanName: `evaluate ${name}`,
    SpanKind: 'Internal',
    Events: {
      Timestamp: [nanos(Date.now() - 500)],
      Name: ['gen_ai.evaluation.result'],
      Attributes: [
        {
          'gen_ai.evaluation.name': name,
          'gen_ai.evaluation.score.value': String(value),
          'modelmaxx.evaluation.source': source,
          'gen_ai.response.id': call.SpanAttributes['gen_ai.response.id']!,
          'gen_ai.request.model': model,
        },
      ],
    },
  });
}

/** The rows of the Routing Grafana dashboard's savings ledger panel over the last hour. */
export async function ledgerPanelRows(
  engine: Pick<ClickHouseEngine, 'query'>,
): Promise<Record<string, unknown>[]> {
  const dashboard = JSON.parse(
    readFileSync(new URL('../../../dashboards/routing.json', import.meta.url), 'utf8'),
  ) as { panels: { title?: string; targets?: { rawSql?: string }[] }[] };
  const panel = dashboard.panels.find((each) => each.title?.startsWith('Savings ledger'))!;
  const sql = expand(panel.targets![0]!.rawSql!, {
    fromMs: Date.now() - 3_600_000,
    toMs: Date.now() + 1000,
    intervalMs: 60_000,
    values: { service: ['$__all'] },
    options: { service: [] },
  });
  return (await engine.query<Record<string, unknown>>(sql)).data;
}
