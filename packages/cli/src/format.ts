/** Rendering of query results for the terminal: an aligned table, JSON lines or CSV. */

/**
 * A dollar amount for people: cents from $1 up (`12.35`), three significant digits below
 * (`0.0462`, `0.00000825`), never an exponent or float noise (`0.000008249999999999999`).
 */
export function formatUsd(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1) return value.toFixed(2);
  const decimals = Math.min(20, 2 - Math.floor(Math.log10(magnitude)));
  const text = value.toFixed(decimals);
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

/** A float sum without its noise (12 significant digits), still a number: for JSON and CSV. */
export function cleanAmount(value: number): number {
  return Number.isFinite(value) && value !== 0 ? Number(value.toPrecision(12)) : value;
}

export const OUTPUT_FORMATS = ['table', 'json', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface Tabular {
  columns: { name: string; type?: string }[];
  rows: Record<string, unknown>[];
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return String(value);
  }
  return JSON.stringify(value);
}

const NUMERIC_TYPE = /^(Nullable\()?(U?Int|Float|Decimal)/;

function isNumericColumn(
  column: { name: string; type?: string },
  rows: Record<string, unknown>[],
): boolean {
  if (column.type !== undefined) return NUMERIC_TYPE.test(column.type);
  return rows.every((row) => row[column.name] === null || typeof row[column.name] === 'number');
}

export function formatTable(result: Tabular): string {
  const { columns, rows } = result;
  if (columns.length === 0) return '';
  const cells = rows.map((row) => columns.map((column) => cellText(row[column.name])));
  const widths = columns.map((column, index) =>
    Math.max(column.name.length, ...cells.map((line) => (line[index] ?? '').length)),
  );
  const numeric = columns.map((column) => isNumericColumn(column, rows));
  const pad = (text: string, index: number): string =>
    numeric[index] ? text.padStart(widths[index] ?? 0) : text.padEnd(widths[index] ?? 0);
  const lines = [
    columns.map((column, index) => pad(column.name, index)).join('  '),
    widths.map((width) => '-'.repeat(width)).join('  '),
    ...cells.map((line) => line.map((text, index) => pad(text, index)).join('  ')),
  ];
  return `${lines.map((line) => line.trimEnd()).join('\n')}\n`;
}

export function formatJsonLines(result: Tabular): string {
  return result.rows.map((row) => `${JSON.stringify(row)}\n`).join('');
}

function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** RFC 4180: a header line, CRLF line ends, fields quoted when they need it. */
export function formatCsv(result: Tabular): string {
  const lines = [
    result.columns.map((column) => csvField(column.name)).join(','),
    ...result.rows.map((row) =>
      result.columns.map((column) => csvField(cellText(row[column.name]))).join(','),
    ),
  ];
  return `${lines.join('\r\n')}\r\n`;
}

export function formatResult(result: Tabular, format: OutputFormat): string {
  switch (format) {
    case 'json':
      return formatJsonLines(result);
    case 'csv':
      return formatCsv(result);
    case 'table':
      return formatTable(result);
  }
}
