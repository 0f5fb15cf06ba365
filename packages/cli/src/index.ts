export { runCli } from './main.js';
export { runDemo } from './demo.js';
export { splitServeArgs, storeSpanExporter } from './gateway-command.js';
export { formatCsv, formatJsonLines, formatResult, formatTable, OUTPUT_FORMATS } from './format.js';
export type { OutputFormat, Tabular } from './format.js';
export { parseSince, parseGroup, reportSql, REPORT_GROUPS } from './report.js';
export type { ReportGroup } from './report.js';
