/**
 * Grafana's SQL expansion for grafana-clickhouse-datasource panels, the way the plugin and
 * Grafana expand it: `$__conditionalAll` in the browser, then Grafana's template variables, then
 * the backend macros of the plugin's `pkg/macros`. Unknown macros, variables and multi-values
 * without a format throw, so a dashboard that Grafana would reject fails its test.
 */

export interface ExpandContext {
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

export function expand(sql: string, context: ExpandContext): string {
  const expanded = applyBackendMacros(
    applyTemplateVariables(applyConditionalAll(sql, context), context),
    context,
  );
  if (/\$\{|\$\w|\[\[/.test(expanded)) throw new Error(`unexpanded variable left in ${expanded}`);
  return expanded;
}
