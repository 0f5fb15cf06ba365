/** One row of `bench/results.json` (SPEC: Benchmarks). */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  /** The baseline measured in the same run (null when the metric is absolute). */
  baseline: number | null;
  /** value ÷ baseline, or the ratio the metric itself is (null when there is none). */
  ratio: number | null;
  /** The goal as text, e.g. `<= 0.33`. */
  goal: string;
  notes: string;
}

export interface BenchOptions {
  /** `--quick`: a reduced run (all benchmarks together in under two minutes). */
  quick: boolean;
}

/** What every `bench/*.bench.ts` module exports. */
export type BenchRun = (options: BenchOptions) => Promise<BenchResult[]>;
