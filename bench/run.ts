/**
 * `pnpm bench [--quick] [filter…]`: runs each `bench/*.bench.ts` module's exported
 * `run({ quick })`, prints a table and updates `bench/results.json` (entries of benchmarks not
 * run this time are kept).
 * Runs under plain Node (type stripping); benchmarks import workspace packages by name (their dist).
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult, BenchRun } from './types.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const filters = args.filter((arg) => !arg.startsWith('--'));

function format(value: number | null): string {
  if (value === null) return '-';
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toPrecision(3);
}

function goalMet(result: BenchResult): boolean | undefined {
  const match = /^\s*(<=|>=|<|>)\s*([\d.eE+-]+)\s*$/.exec(result.goal);
  if (match === null) return undefined;
  const measured = result.ratio ?? result.value;
  const target = Number(match[2]);
  switch (match[1]) {
    case '<=':
      return measured <= target;
    case '>=':
      return measured >= target;
    case '<':
      return measured < target;
    default:
      return measured > target;
  }
}

function printTable(results: BenchResult[]): void {
  const header = ['name', 'value', 'unit', 'baseline', 'ratio', 'goal', 'met'];
  const rows = results.map((result) => {
    const met = goalMet(result);
    return [
      result.name,
      format(result.value),
      result.unit,
      format(result.baseline),
      format(result.ratio),
      result.goal,
      met === undefined ? '?' : met ? 'yes' : 'NO',
    ];
  });
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)),
  );
  const line = (cells: string[]): string =>
    cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ');
  console.log(line(header));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of rows) console.log(line(row));
  for (const result of results)
    if (result.notes !== '') console.log(`\n${result.name}: ${result.notes}`);
}

const files = readdirSync(benchDir)
  .filter((file) => file.endsWith('.bench.ts'))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();

const results: BenchResult[] = [];
let failed = false;
for (const file of files) {
  const started = performance.now();
  console.log(`bench: ${file}${quick ? ' (quick)' : ''}`);
  try {
    const module = (await import(pathToFileURL(join(benchDir, file)).href)) as { run?: BenchRun };
    if (typeof module.run !== 'function') {
      console.error(`bench: ${file} exports no run(); skipped`);
      continue;
    }
    results.push(...(await module.run({ quick })));
  } catch (error) {
    failed = true;
    console.error(`bench: ${file} failed`, error);
  }
  console.log(`bench: ${file} took ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

console.log('');
printTable(results);
// The entries of benchmarks that did not run this time stay (a filtered run updates its own).
const resultsFile = join(benchDir, 'results.json');
const ran = new Set(results.map((result) => result.name));
let kept: BenchResult[] = [];
try {
  kept = (JSON.parse(readFileSync(resultsFile, 'utf8')) as BenchResult[]).filter(
    (result) => !ran.has(result.name),
  );
} catch {
  // No results yet (or unreadable): this run's only.
}
writeFileSync(resultsFile, `${JSON.stringify([...kept, ...results], null, 2)}\n`);
console.log(`\nbench: wrote ${join(benchDir, 'results.json')}`);
if (failed) process.exitCode = 1;
