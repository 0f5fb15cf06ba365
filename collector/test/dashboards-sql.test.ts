/**
 * Every Grafana dashboard in `dashboards/`: its JSON model (data source as a
 * variable, no hard-coded uid, ClickHouse targets in the plugin's model), and
 * every panel's and variable's SQL, expanded the way grafana-clickhouse-datasource
 * expands it (`$__conditionalAll` in the browser, then Grafana's template
 * variables, then the backend macros of `pkg/macros`), run on the real schema
 * (embedded ClickHouse) over demo spans written through the store: no error
 * anywhere, and with every variable on "All" every panel returns rows.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseStore } from '../src/store/clickhouse-store.js';
import { openStore } from '../src/store/open-store.js';
import { demoSpans } from './support/dashboard-spans.js';
import type { Demo } from './support/dashboard-spans.js';
import { expand } from './support/grafana-macros.js';
import type { ExpandContext } from './support/grafana-macros.js';

const DASHBOARDS_DIR = fileURLToPath(new URL('../../dashboards/', import.meta.url));
const PLUGIN = 'grafana-clickhouse-datasource';
const DS_UID = '${datasource}';

// ------------------------------------------------------------------ JSON model

interface DataSourceRef {
  type?: string;
  uid?: string;
}

interface Target {
  refId: string;
  datasource?: DataSourceRef;
  editorType?: string;
  queryType?: string;
  format?: number;
  rawSql?: string;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: DataSourceRef;
  targets?: Target[];
  panels?: Panel[];
}

interface Variable {
  name: string;
  type: string;
  query?: unknown;
  datasource?: DataSourceRef;
  multi?: boolean;
  includeAll?: boolean;
  current?: { value?: unknown };
}

interface Dashboard {
  uid: string;
  title: string;
  templating: { list: Variable[] };
  panels: Panel[];
}

const dashboardFiles = readdirSync(DASHBOARDS_DIR)
  .filter((name) => name.endsWith('.json'))
  .sort();
const dashboards = dashboardFiles.map((file) => ({
  file,
  json: JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')) as Dashboard,
}));

const allPanels = (panels: Panel[]): Panel[] =>
  panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);

/** Every `uid` under a `datasource` key anywhere in the model. */
function datasourceUids(value: unknown, path: string, found: [string, unknown][]): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => datasourceUids(item, `${path}[${index}]`, found));
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, child] of Object.entries(value)) {
      if (key === 'datasource') {
        if (typeof child === 'string') found.push([`${path}.datasource`, child]);
        else if (typeof child === 'object' && child !== null)
          found.push([`${path}.datasource.uid`, (child as DataSourceRef).uid]);
      }
      datasourceUids(child, `${path}.${key}`, found);
    }
  }
}

/** The plugin's `Format` enum (src/types/sql.ts) for each `queryType`. */
const FORMAT_OF_QUERY_TYPE: Record<string, number> = {
  timeseries: 0,
  table: 1,
  logs: 2,
  traces: 3,
};

// ------------------------------------------------------------------ the test

let store: ClickHouseStore;
let dataDir: string;
let demo: Demo;
const NOW_MS = Date.now();

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mm-dashboards-'));
  store = await openStore({ dataDir, spoolDir: false });
  demo = demoSpans(NOW_MS);
  const result = await store.write(demo.rows);
  expect(result.status).toBe('ok');
  const llmSpans = demo.rows.filter(
    (row) => row.SpanAttributes['gen_ai.request.model'] !== undefined,
  ).length;
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const counts = await store.engine.query<{ spans: string; calls: string }>(
      'SELECT (SELECT count() FROM modelmaxx.otel_traces) AS spans, (SELECT count() FROM modelmaxx.llm_calls) AS calls',
    );
    if (
      Number(counts.data[0]?.spans) === demo.rows.length &&
      Number(counts.data[0]?.calls) === llmSpans
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('demo spans did not become queryable');
}, 120_000);

afterAll(async () => {
  await store?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function run(sql: string): Promise<Record<string, unknown>[]> {
  const result = await store.engine.query<Record<string, unknown>>(sql, undefined, {
    readonly: 1,
    max_execution_time: 60,
  });
  return result.data;
}

/** The time range of every run: the last 24 hours, 1-minute interval. */
const timeRange = () => ({
  fromMs: NOW_MS - 24 * 3600_000,
  toMs: NOW_MS + 60_000,
  intervalMs: 60_000,
});

/**
 * Resolves the dashboard's variables in order (query variables by running their
 * SQL with the variables before them), picking per variable with `choose`.
 */
async function resolveVariables(
  dashboard: Dashboard,
  choose: (variable: Variable, options: string[]) => string | string[],
  textboxes: Record<string, string>,
): Promise<ExpandContext> {
  const context: ExpandContext = { ...timeRange(), values: {}, options: {} };
  for (const variable of dashboard.templating.list) {
    if (variable.type === 'datasource') continue;
    if (variable.type === 'textbox') {
      context.values[variable.name] = textboxes[variable.name] ?? '';
      continue;
    }
    expect(variable.type, `${dashboard.uid}: variable ${variable.name}`).toBe('query');
    expect(variable.datasource).toEqual({ type: PLUGIN, uid: DS_UID });
    expect(typeof variable.query, `${variable.name} query`).toBe('string');
    const rows = await run(expand(variable.query as string, context));
    const options = rows.map((row) => String(Object.values(row)[0]));
    expect(options.length, `${dashboard.uid}: options of ${variable.name}`).toBeGreaterThan(0);
    context.options[variable.name] = options;
    context.values[variable.name] = choose(variable, options);
  }
  return context;
}

describe('dashboards', () => {
  it('has at least 4 dashboards and 20 SQL panels', () => {
    expect(dashboardFiles).toEqual([
      'latency.json',
      'quality.json',
      'routing.json',
      'spend.json',
      'traces.json',
    ]);
    const sqlPanels = dashboards.flatMap(({ json }) =>
      allPanels(json.panels).filter((panel) => panel.targets?.some((target) => target.rawSql)),
    );
    expect(sqlPanels.length).toBeGreaterThanOrEqual(20);
    expect(new Set(dashboards.map(({ json }) => json.uid)).size).toBe(dashboards.length);
  });

  for (const { file, json } of dashboards) {
    it(`${file}: data source is a variable, no hard-coded uid, plugin target model`, () => {
      expect(json.uid).toMatch(/^modelmaxx-[a-z]+$/);
      expect(json.title).toMatch(/^modelmaxx · /);
      const [first] = json.templating.list;
      expect(first).toMatchObject({ name: 'datasource', type: 'datasource', query: PLUGIN });
      const uids: [string, unknown][] = [];
      datasourceUids(json, file, uids);
      expect(uids.length).toBeGreaterThan(0);
      for (const [path, uid] of uids) expect(uid, path).toBe(DS_UID);
      const ids = new Set<number>();
      for (const panel of allPanels(json.panels)) {
        expect(ids.has(panel.id), `${file}: panel id ${panel.id}`).toBe(false);
        ids.add(panel.id);
        expect(panel.datasource, panel.title).toEqual({ type: PLUGIN, uid: DS_UID });
        expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
        expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
        for (const target of panel.targets ?? []) {
          expect(target.datasource, panel.title).toEqual({ type: PLUGIN, uid: DS_UID });
          expect(target.editorType, panel.title).toBe('sql');
          expect(target.rawSql?.trim(), panel.title).toBeTruthy();
          expect(FORMAT_OF_QUERY_TYPE[target.queryType ?? ''], panel.title).toBe(target.format);
          if (panel.type === 'timeseries') expect(target.queryType, panel.title).toBe('timeseries');
          if (panel.type === 'traces') expect(target.queryType, panel.title).toBe('traces');
        }
      }
    });
  }

  for (const { file, json } of dashboards) {
    it(`${file}: every panel's SQL runs with all variables on All (and returns rows)`, async () => {
      const context = await resolveVariables(
        json,
        (variable, options) => (variable.includeAll ? ['$__all'] : options[0]!),
        { trace_id: demo.routedTraceIds.at(-1)!, span_search: '' },
      );
      for (const panel of allPanels(json.panels)) {
        for (const target of panel.targets ?? []) {
          const sql = expand(target.rawSql!, context);
          let rows: Record<string, unknown>[];
          try {
            rows = await run(sql);
          } catch (error) {
            throw new Error(`${file} / ${panel.title}: ${(error as Error).message}\n${sql}`, {
              cause: error,
            });
          }
          expect(rows.length, `${file} / ${panel.title} returned no rows:\n${sql}`).toBeGreaterThan(
            0,
          );
        }
      }
    }, 180_000);

    it(`${file}: every panel's SQL runs with one service and two models selected`, async () => {
      const context = await resolveVariables(
        json,
        (variable, options) =>
          variable.multi ? options.slice(0, variable.name === 'model' ? 2 : 1) : options.at(-1)!,
        { trace_id: demo.routedTraceIds[0]!, span_search: 'chat' },
      );
      for (const panel of allPanels(json.panels)) {
        for (const target of panel.targets ?? []) {
          const sql = expand(target.rawSql!, context);
          try {
            await run(sql);
          } catch (error) {
            throw new Error(`${file} / ${panel.title}: ${(error as Error).message}\n${sql}`, {
              cause: error,
            });
          }
        }
      }
    }, 180_000);
  }

  it('filters really apply: spend for one service is less than for all', async () => {
    const spend = dashboards.find(({ file }) => file === 'spend.json')!.json;
    const panel = allPanels(spend.panels).find(
      (candidate) => candidate.title === 'Spend in range',
    )!;
    const all = await resolveVariables(spend, () => ['$__all'], {});
    const one = await resolveVariables(
      spend,
      (variable) => (variable.name === 'service' ? ['shop'] : ['$__all']),
      {},
    );
    const [allRow] = await run(expand(panel.targets![0]!.rawSql!, all));
    const [oneRow] = await run(expand(panel.targets![0]!.rawSql!, one));
    expect(Number(oneRow!.spend_usd)).toBeGreaterThan(0);
    expect(Number(oneRow!.spend_usd)).toBeLessThan(Number(allRow!.spend_usd));
  });

  it('the expander refuses unknown macros, variables and multi-values without a format', () => {
    const context: ExpandContext = { ...timeRange(), values: { service: ['a', 'b'] }, options: {} };
    expect(() => expand('SELECT $__timeGroup(Timestamp)', context)).toThrow(/unknown macro/);
    expect(() => expand('SELECT $nope', context)).toThrow(/unknown variable/);
    expect(() => expand('SELECT 1 WHERE x IN ($service)', context)).toThrow(/needs a format/);
    expect(
      expand('SELECT 1 WHERE $__conditionalAll(x IN (${service:singlequote}), $service)', context),
    ).toBe("SELECT 1 WHERE x IN ('a','b')");
    expect(
      expand('SELECT 1 WHERE $__conditionalAll(x IN (${service:singlequote}), $service)', {
        ...context,
        values: { service: ['$__all'] },
      }),
    ).toBe('SELECT 1 WHERE 1=1');
    expect(expand('SELECT $__timeInterval(Timestamp), $__interval_s', context)).toBe(
      'SELECT toStartOfInterval(toDateTime(Timestamp), INTERVAL 60 second), 60',
    );
  });
});

describe('provisioning', () => {
  const read = (name: string) => readFileSync(join(DASHBOARDS_DIR, 'provisioning', name), 'utf8');

  it('provisions the ClickHouse and Jaeger data sources and the dashboards folder', () => {
    const datasources = read('datasources.yaml');
    expect(datasources).toMatch(/^apiVersion: 1$/m);
    expect(datasources).toMatch(/type: grafana-clickhouse-datasource$/m);
    expect(datasources).toMatch(/defaultDatabase: modelmaxx$/m);
    expect(datasources).toMatch(/otelEnabled: true$/m);
    expect(datasources).toMatch(/defaultTable: otel_traces$/m);
    expect(datasources).toMatch(/durationUnit: nanoseconds$/m);
    expect(datasources).toMatch(/type: jaeger$/m);
    const providers = read('dashboards.yaml');
    expect(providers).toMatch(/^apiVersion: 1$/m);
    expect(providers).toMatch(/type: file$/m);
    expect(providers).toMatch(/path: \S+/m);
  });
});
