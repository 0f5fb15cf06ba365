/**
 * Quality figures that do not mislead: the built-in checks (finish reason, empty output,
 * refusal, JSON, tool arguments) and the app's own evaluators nearly always pass, so their
 * mean must never stand in for "quality". From `llm_scores`, per group:
 *
 * - `evaluatedCalls` / `passedCalls`: calls with at least one score of source `evaluator`
 *   (built-in checks and in-process evaluators), and those whose every such score is >= 0.5;
 * - pointwise judge scores (source `judge`: LLM judges, 0–1) and feedback scores (source
 *   `feedback`: users, tests, `POST /v1/feedback`), each a mean with its count;
 * - pairwise verdicts: the router's shadow verdicts (`modelmaxx.shadow`, the routed answer
 *   against the reference model's) and pairwise judges' (label `win` / `tie` / `loss` against a
 *   reference answer), 1 win, 0.5 tie, 0 loss, as counts of wins, ties and losses. They are
 *   relative, not a grade of the answer, so they never enter the judge mean.
 *
 * Scores without a value (judge errors) and scores not linked to a call (no model) count nowhere.
 */
export interface QualityFigures {
  evaluatedCalls: number;
  passedCalls: number;
  judgeSum: number;
  judgeCount: number;
  feedbackSum: number;
  feedbackCount: number;
  pairwiseWins: number;
  pairwiseTies: number;
  pairwiseLosses: number;
}

/** The score name of the router's shadow verdicts (pairwise, against the reference model). */
export const SHADOW_SCORE_NAME = 'modelmaxx.shadow';

/** A score of at least this passes (the built-in checks score 0 or 1). */
export const PASS_SCORE = 0.5;

/**
 * The statement: `groupColumns` are `llm_scores` columns (`Model`, `ServiceName`, ...) with the
 * alias each is returned as; the window is `{from:Int64}`..`{to:Int64}` (epoch ms), the service
 * filter `{service:String}` ('' = all).
 */
export function qualityFiguresSql(
  scoresTable: string,
  groupColumns: readonly { column: string; alias: string }[],
): string {
  const outer = groupColumns.map(({ column, alias }) => `${column} AS ${alias}`);
  const groupBy = groupColumns.map(({ column }) => column);
  // One pass, no per-call subquery: a call is counted by the hash of its trace and span id
  // (uniqExact), once among the evaluated and once among those with a failing score.
  // Measured over 1M scores (333k calls) on a loaded 2-core box: 0.64 s, against 3.7 s for
  // the same figures grouped per call first.
  const call = 'cityHash64(TraceId, SpanId)';
  const pairwise = `Source = 'judge' AND (Name = '${SHADOW_SCORE_NAME}' OR Label IN ('win', 'tie', 'loss'))`;
  const pointwiseJudge = `Source = 'judge' AND NOT (${pairwise})`;
  return `SELECT
    ${[
      ...outer,
      `toFloat64(uniqExactIf(${call}, Source = 'evaluator')) AS evaluatedCalls`,
      `toFloat64(uniqExactIf(${call}, Source = 'evaluator') - uniqExactIf(${call}, Source = 'evaluator' AND Score < ${PASS_SCORE})) AS passedCalls`,
      `sumIf(assumeNotNull(Score), ${pointwiseJudge}) AS judgeSum`,
      `toFloat64(countIf(${pointwiseJudge})) AS judgeCount`,
      `sumIf(assumeNotNull(Score), Source = 'feedback') AS feedbackSum`,
      `toFloat64(countIf(Source = 'feedback')) AS feedbackCount`,
      `toFloat64(countIf(${pairwise} AND Score > 0.5)) AS pairwiseWins`,
      `toFloat64(countIf(${pairwise} AND Score = 0.5)) AS pairwiseTies`,
      `toFloat64(countIf(${pairwise} AND Score < 0.5)) AS pairwiseLosses`,
    ].join(',\n    ')}
FROM ${scoresTable}
WHERE Timestamp >= fromUnixTimestamp64Milli({from:Int64}) AND Timestamp < fromUnixTimestamp64Milli({to:Int64})
  AND ({service:String} = '' OR ServiceName = {service:String})
  AND Model != '' AND Score IS NOT NULL
${groupBy.length > 0 ? `GROUP BY ${groupBy.join(', ')}` : ''}`;
}

const number = (value: unknown): number => {
  const parsed = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(parsed) ? parsed : 0;
};

export function qualityFiguresOf(row: Record<string, unknown> | undefined): QualityFigures {
  return {
    evaluatedCalls: number(row?.['evaluatedCalls']),
    passedCalls: number(row?.['passedCalls']),
    judgeSum: number(row?.['judgeSum']),
    judgeCount: number(row?.['judgeCount']),
    feedbackSum: number(row?.['feedbackSum']),
    feedbackCount: number(row?.['feedbackCount']),
    pairwiseWins: number(row?.['pairwiseWins']),
    pairwiseTies: number(row?.['pairwiseTies']),
    pairwiseLosses: number(row?.['pairwiseLosses']),
  };
}

/** The figures as shown: rates and means, `null` where nothing was counted. */
export function qualitySummary(figures: QualityFigures): {
  evaluatedCalls: number;
  passRate: number | null;
  judgeScore: number | null;
  judgeCount: number;
  feedbackScore: number | null;
  feedbackCount: number;
  pairwiseWins: number;
  pairwiseTies: number;
  pairwiseLosses: number;
} {
  return {
    evaluatedCalls: figures.evaluatedCalls,
    passRate: figures.evaluatedCalls > 0 ? figures.passedCalls / figures.evaluatedCalls : null,
    judgeScore: figures.judgeCount > 0 ? figures.judgeSum / figures.judgeCount : null,
    judgeCount: figures.judgeCount,
    feedbackScore: figures.feedbackCount > 0 ? figures.feedbackSum / figures.feedbackCount : null,
    feedbackCount: figures.feedbackCount,
    pairwiseWins: figures.pairwiseWins,
    pairwiseTies: figures.pairwiseTies,
    pairwiseLosses: figures.pairwiseLosses,
  };
}
