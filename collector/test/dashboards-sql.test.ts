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
import type { SpanRow } from '../src/store/span-store.js';

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

// ------------------------------------------------------------------ macros

interface ExpandContext {
  fromMs: number;
  toMs: number;
  intervalMs: number;
  /** Variable values: a string, or a list for multi-value variables; `['$__all']` is "All". */
  values: Record<string, string | string[]>;
  /** The options of each query variable (what "All" stands for). */
  options: Record<string, string[]>;
}

/** The arguments of the call whose `(` is at `openIndex` (the plugin's `getMacroArgs`). */
function macroArguments(sql: string, openIndex: number): { args: string[]; end: number } {
  const args: string[] = [];
  let depth = 0;
  let start = openIndex + 1;
  for (let index = openIndex; index < sql.length; index += 1) {
    const char = sql[index];
    if (char === '(') depth += 1;
    else if (char === ')') depth -= 1;
    if (char === ',' && depth === 1) {
      args.push(sql.slice(start, index));
      start = index + 1;
    }
    if (depth === 0) {
      args.push(sql.slice(start, index));
      return { args, end: index + 1 };
    }
  }
  throw new Error(`unbalanced parentheses after ${sql.slice(openIndex, openIndex + 40)}`);
}

const isAll = (value: string | string[] | undefined) =>
  value === undefined ||
  value === '' ||
  (Array.isArray(value) ? value.join(',') : value) === '$__all';

/** `$__conditionalAll(condition, $var)`: `1=1` when the variable is All (or empty), else the condition. */
function applyConditionalAll(sql: string, context: ExpandContext): string {
  const macro = '$__conditionalAll(';
  let index = sql.lastIndexOf(macro);
  while (index !== -1) {
    const { args, end } = macroArguments(sql, index + macro.length - 1);
    if (args.length !== 2)
      throw new Error(`$__conditionalAll takes 2 arguments: ${sql.slice(index, end)}`);
    const name = /(?<=\$\{)\w+(?=\})|(?<=\$)\w+/.exec(args[1]!.trim())?.[0];
    if (name === undefined || !(name in context.values)) {
      throw new Error(`$__conditionalAll names no known variable: ${args[1]}`);
    }
    const phrase = isAll(context.values[name]) ? '1=1' : args[0]!;
    sql = sql.slice(0, index) + phrase + sql.slice(end);
    index = sql.lastIndexOf(macro);
  }
  return sql;
}

const singleQuote = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** Grafana's template variables: `$var`, `${var}`, `${var:format}`, `[[var]]`. */
function applyTemplateVariables(sql: string, context: ExpandContext): string {
  return sql.replace(
    /\$\{(\w+)(?::(\w+))?\}|\$(\w+)|\[\[(\w+)\]\]/g,
    (
      match,
      braced: string | undefined,
      format: string | undefined,
      plain: string | undefined,
      bracket: string | undefined,
    ) => {
      const name = braced ?? plain ?? bracket ?? '';
      if (name.startsWith('__')) {
        if (braced !== undefined || bracket !== undefined)
          throw new Error(`unknown Grafana variable ${match}`);
        return match; // a backend macro, expanded next
      }
      if (!(name in context.values)) throw new Error(`unknown variable ${match}`);
      const raw = context.values[name]!;
      const list = isAll(raw) && context.options[name] !== undefined ? context.options[name]! : raw;
      const values = Array.isArray(list) ? list : [list];
      switch (format) {
        case 'singlequote':
          return values.map(singleQuote).join(',');
        case 'csv':
        case 'raw':
          return values.join(',');
        case undefined:
          if (values.length !== 1)
            throw new Error(`multi-value ${match} needs a format (e.g. :singlequote)`);
          return values[0]!;
        default:
          throw new Error(`format ${format} is not supported by this expander: ${match}`);
      }
    },
  );
}

/** The backend macros of grafana/clickhouse-datasource `pkg/macros/macros.go`. */
function applyBackendMacros(sql: string, context: ExpandContext): string {
  const fromS = Math.floor(context.fromMs / 1000);
  const toS = Math.floor(context.toMs / 1000);
  const intervalS = Math.max(Math.floor(context.intervalMs / 1000), 1);
  const date = (ms: number) => `toDate('${new Date(ms).toISOString().slice(0, 10)}')`;
  const oneArgument = (name: string, args: string[]) => {
    if (args.length !== 1 || args[0]!.trim() === '') throw new Error(`$__${name} takes 1 argument`);
    return args[0]!.trim();
  };
  const macros: Record<string, (args: string[]) => string> = {
    fromTime: () => `toDateTime(${fromS})`,
    toTime: () => `toDateTime(${toS})`,
    fromTime_ms: () => `fromUnixTimestamp64Milli(${context.fromMs})`,
    toTime_ms: () => `fromUnixTimestamp64Milli(${context.toMs})`,
    timeFilter: (args) => {
      const column = oneArgument('timeFilter', args);
      return `${column} >= toDateTime(${fromS}) AND ${column} <= toDateTime(${toS})`;
    },
    timeFilter_ms: (args) => {
      const column = oneArgument('timeFilter_ms', args);
      return `${column} >= fromUnixTimestamp64Milli(${context.fromMs}) AND ${column} <= fromUnixTimestamp64Milli(${context.toMs})`;
    },
    dateFilter: (args) => {
      const column = oneArgument('dateFilter', args);
      return `${column} >= ${date(context.fromMs)} AND ${column} <= ${date(context.toMs)}`;
    },
    timeInterval: (args) =>
      `toStartOfInterval(toDateTime(${oneArgument('timeInterval', args)}), INTERVAL ${intervalS} second)`,
    timeInterval_ms: (args) =>
      `toStartOfInterval(toDateTime64(${oneArgument('timeInterval_ms', args)}, 3), INTERVAL ${Math.max(context.intervalMs, 1)} millisecond)`,
    interval_s: () => String(intervalS),
  };
  let result = '';
  let rest = sql;
  for (;;) {
    const match = /\$__(\w+)/.exec(rest);
    if (match === null) return result + rest;
    const name = match[1]!;
    const expand = macros[name];
    if (expand === undefined) throw new Error(`unknown macro $__${name}`);
    const after = match.index + match[0].length;
    let args: string[] = [];
    let end = after;
    if (rest[after] === '(') ({ args, end } = macroArguments(rest, after));
    result += rest.slice(0, match.index) + expand(args);
    rest = rest.slice(end);
  }
}

function expand(sql: string, context: ExpandContext): string {
  const expanded = applyBackendMacros(
    applyTemplateVariables(applyConditionalAll(sql, context), context),
    context,
  );
  if (/\$\{|\$\w|\[\[/.test(expanded)) throw new Error(`unexpanded variable left in ${expanded}`);
  return expanded;
}

// ------------------------------------------------------------------ demo data

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MODELS = [
  { model: 'gpt-4o', provider: 'openai', latencyMs: 1800, quality: 0.92 },
  { model: 'gpt-4o-mini', provider: 'openai', latencyMs: 700, quality: 0.81 },
  { model: 'claude-sonnet-4-5', provider: 'anthropic', latencyMs: 2100, quality: 0.94 },
  { model: 'claude-haiku-4-5', provider: 'anthropic', latencyMs: 650, quality: 0.83 },
  { model: 'acme-llm-1', provider: 'acme', latencyMs: 900, quality: 0.7 },
] as const;
const SERVICES = ['shop', 'support-bot', 'search-api'] as const;
const FEATURES = ['checkout-assistant', 'ticket-triage', 'semantic-search'] as const;
const TASKS = ['classify', 'summarize', 'answer'] as const;
const FINISH = ['stop', 'stop', 'stop', 'length', 'tool_calls', 'content_filter'] as const;
const CALLS = 420;

const hex = (next: () => number, bytes: number) =>
  Array.from({ length: bytes }, () =>
    Math.floor(next() * 256)
      .toString(16)
      .padStart(2, '0'),
  ).join('');
const nanos = (ms: number) => (BigInt(Math.round(ms * 1000)) * 1000n).toString();

interface Demo {
  rows: SpanRow[];
  routedTraceIds: string[];
}

function demoSpans(nowMs: number): Demo {
  const next = random(42);
  const rows: SpanRow[] = [];
  const routedTraceIds: string[] = [];
  const span = (
    fields: Partial<SpanRow> & Pick<SpanRow, 'TraceId' | 'SpanId' | 'ServiceName'>,
  ): SpanRow => ({
    Timestamp: nanos(nowMs),
    ParentSpanId: '',
    TraceState: '',
    SpanName: 'span',
    SpanKind: 'Internal',
    ResourceAttributes: {
      'service.name': fields.ServiceName,
      'deployment.environment.name': 'demo',
    },
    ScopeName: '@modelmaxx/instrument',
    ScopeVersion: '0.1.0',
    SpanAttributes: {},
    Duration: '1000000',
    StatusCode: 'Unset',
    StatusMessage: '',
    Events: { Timestamp: [], Name: [], Attributes: [] },
    Links: { TraceId: [], SpanId: [], TraceState: [], Attributes: [] },
    ...fields,
  });
  for (let index = 0; index < CALLS; index += 1) {
    // Six hours of traffic, the last call five seconds ago.
    const startMs = nowMs - 5000 - (CALLS - 1 - index) * 51_000 - Math.floor(next() * 1000);
    const serviceIndex = index % SERVICES.length;
    const service = SERVICES[serviceIndex]!;
    const feature = FEATURES[serviceIndex]!;
    const task = TASKS[Math.floor(next() * TASKS.length)]!;
    const user = `user-${1 + Math.floor(next() * 12)}`;
    const traceId = hex(next, 16);
    const rootId = hex(next, 8);
    const routed = index % 3 !== 0;
    const fallback = routed && index % 17 === 1;
    const model = MODELS[routed ? index % 4 : index % MODELS.length]!;
    const stream = index % 4 === 0;
    const failed = index % 23 === 5;
    const durationMs = model.latencyMs * (0.5 + next()) + (fallback ? 400 : 0);
    const inputTokens = 200 + Math.floor(next() * 3000);
    const outputTokens = failed ? 0 : 20 + Math.floor(next() * 700);
    const cacheRead = index % 5 === 0 ? Math.floor(inputTokens * 0.6) : 0;
    const reasoning =
      model.model === 'gpt-4o' && index % 2 === 0 ? Math.floor(outputTokens / 3) : 0;
    const finish = FINISH[Math.floor(next() * FINISH.length)]!;
    rows.push(
      span({
        TraceId: traceId,
        SpanId: rootId,
        ServiceName: service,
        Timestamp: nanos(startMs),
        SpanName: `POST /api/${feature}`,
        SpanKind: 'Server',
        SpanAttributes: { 'http.request.method': 'POST', 'http.route': `/api/${feature}` },
        Duration: nanos(durationMs + 30),
        StatusCode: failed ? 'Error' : 'Unset',
      }),
    );
    let parentId = rootId;
    const routeAttributes: Record<string, string> = {};
    if (routed) {
      routedTraceIds.push(traceId);
      const routeId = hex(next, 8);
      const weight = (0.4 + next() * 0.6).toFixed(3);
      Object.assign(routeAttributes, {
        'modelmaxx.route.policy': 'auto',
        'modelmaxx.route.class': task,
        'modelmaxx.route.model': model.model,
        'modelmaxx.route.reference_model': 'gpt-4o',
        'modelmaxx.route.weight': weight,
        'modelmaxx.route.reason': fallback
          ? 'fallback after a retryable error'
          : `weighted choice for ${task}`,
        'modelmaxx.route.attempt': fallback ? '2' : '1',
      });
      const failedModel = MODELS[(index + 1) % 4]!.model;
      rows.push(
        span({
          TraceId: traceId,
          SpanId: routeId,
          ParentSpanId: rootId,
          ServiceName: service,
          Timestamp: nanos(startMs + 5),
          SpanName: 'route auto',
          SpanAttributes: { ...routeAttributes },
          Duration: nanos(durationMs + 10),
          StatusCode: failed ? 'Error' : 'Unset',
          StatusMessage: failed ? 'policy "auto": all 2 attempts failed' : '',
          Events: fallback
            ? {
                Timestamp: [nanos(startMs + 300)],
                Name: ['route.attempt_failed'],
                Attributes: [
                  {
                    'modelmaxx.route.model': failedModel,
                    'modelmaxx.route.attempt': '1',
                    'error.type': 'RateLimitError',
                  },
                ],
              }
            : { Timestamp: [], Name: [], Attributes: [] },
        }),
      );
      parentId = routeId;
    }
    const evaluations: { name: string; score: string; label: string; source: string }[] = [
      {
        name: 'modelmaxx.finish_length',
        score: finish === 'length' ? '0' : '1',
        label: finish === 'length' ? 'truncated' : 'complete',
        source: 'evaluator',
      },
    ];
    if (!failed && index % 2 === 0) {
      const score = Math.min(1, Math.max(0, model.quality + (next() - 0.5) * 0.3));
      evaluations.push({ name: 'relevance', score: score.toFixed(3), label: '', source: 'judge' });
    }
    if (!failed && index % 7 === 0) {
      evaluations.push({
        name: 'user_feedback',
        score: next() > 0.3 ? '1' : '0',
        label: 'thumbs',
        source: 'feedback',
      });
    }
    const attributes: Record<string, string> = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': model.provider,
      'gen_ai.request.model': model.model,
      'gen_ai.usage.input_tokens': String(inputTokens),
      'gen_ai.usage.output_tokens': String(outputTokens),
      'modelmaxx.task': task,
      'modelmaxx.feature': feature,
      'enduser.id': user,
      'gen_ai.conversation.id': `conv-${index % 40}`,
      ...routeAttributes,
    };
    if (!failed) {
      attributes['gen_ai.response.model'] = model.model;
      attributes['gen_ai.response.id'] = `resp-${index}`;
      attributes['gen_ai.response.finish_reasons'] = JSON.stringify([finish]);
    } else {
      attributes['error.type'] = 'RateLimitError';
    }
    if (cacheRead > 0) attributes['gen_ai.usage.cache_read.input_tokens'] = String(cacheRead);
    if (reasoning > 0) attributes['gen_ai.usage.reasoning.output_tokens'] = String(reasoning);
    if (stream) {
      attributes['gen_ai.request.stream'] = 'true';
      attributes['gen_ai.response.time_to_first_chunk'] = (
        (durationMs * (0.15 + next() * 0.2)) /
        1000
      ).toFixed(4);
    }
    if (index % 9 === 0 && model.model !== 'acme-llm-1') {
      attributes['gen_ai.usage.cost.amount'] = ((inputTokens + 4 * outputTokens) / 1e6).toFixed(6);
      attributes['gen_ai.usage.cost.currency'] = 'USD';
    }
    const llmStartMs = startMs + (fallback ? 400 : 10);
    rows.push(
      span({
        TraceId: traceId,
        SpanId: hex(next, 8),
        ParentSpanId: parentId,
        ServiceName: service,
        Timestamp: nanos(llmStartMs),
        SpanName: `chat ${model.model}`,
        SpanKind: 'Client',
        SpanAttributes: attributes,
        Duration: nanos(durationMs),
        StatusCode: failed ? 'Error' : 'Unset',
        StatusMessage: failed ? '429 Rate limit reached' : '',
        Events: failed
          ? { Timestamp: [], Name: [], Attributes: [] }
          : {
              Timestamp: evaluations.map(() => nanos(llmStartMs + durationMs + 1)),
              Name: evaluations.map(() => 'gen_ai.evaluation.result'),
              Attributes: evaluations.map((evaluation) => ({
                'gen_ai.evaluation.name': evaluation.name,
                'gen_ai.evaluation.score.value': evaluation.score,
                ...(evaluation.label === ''
                  ? {}
                  : { 'gen_ai.evaluation.score.label': evaluation.label }),
                'gen_ai.evaluation.explanation': `${evaluation.name} for resp-${index}`,
                'gen_ai.response.id': `resp-${index}`,
                'modelmaxx.evaluation.source': evaluation.source,
              })),
            },
      }),
    );
  }
  return { rows, routedTraceIds };
}

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
