/**
 * The SQL of the savings ledger (`GET /api/savings`, `modelmaxx savings`, the dashboard's
 * savings card, the Grafana panel, the cookbook). Fixed text with `{from:DateTime64(3)}` /
 * `{to:DateTime64(3)}` parameters; the group columns come from a fixed list, never from a
 * request.
 *
 * - Routed app calls: `llm_calls` rows with `Purpose = 'app'` and a `RoutePolicy` and
 *   `RouteReferenceModel` (schema v5). What the reference model would have cost for the same
 *   tokens: input tokens × its input price + output tokens × its output price, from the price
 *   catalog in `llm_prices` (the dictionaries `llm_calls` is priced with; cache and reasoning
 *   prices are not applied, as another model's cache would not have held the prompt). A call
 *   the reference answered costs what it cost.
 * - Evaluation spend: `Purpose = 'evaluation'` rows linked to a policy (`RoutePolicy`):
 *   the shadow calls to the reference (`RouteReferenceModel` set) and the judge calls, whose
 *   models name the group's judge (the pool its accuracy is measured in, `judge-correction.ts`).
 * - Quality: shadow verdicts (`llm_scores.Name = 'modelmaxx.shadow'`, 1 win / 0.5 tie / 0 loss of
 *   the routed answer against the reference's) joined to the routed call by trace and
 *   response id; the difference of a verdict is 2 × score − 1. Per group also the verdicts
 *   with user feedback on the same call, and those the feedback contradicts (a loss of an
 *   answer the user found right, a win of one found wrong): the judge's measured accuracy
 *   (`judge-correction.ts`).
 * - Agreement: calls with both a judge score and user feedback, binarized at 0.5.
 */
import { lowerTrimSqlExpression, modelNameSqlExpression } from '../schema/model-name.js';
import { tableNames } from '../schema/schema.js';
import { SHADOW_SCORE_NAME } from '../store/quality-figures.js';

/** The dimensions the ledger can be grouped by, and their `llm_calls` columns. */
export const SAVINGS_DIMENSIONS = {
  policy: 'RoutePolicy',
  class: 'RouteClass',
  feature: 'Feature',
  model: 'RouteModel',
} as const;
export type SavingsDimension = keyof typeof SAVINGS_DIMENSIONS;

export interface SavingsSql {
  calls: string;
  evaluation: string;
  quality: string;
  agreement: string;
}

function dimensionList(groupBy: readonly SavingsDimension[], prefix = ''): string {
  return groupBy
    .map((dimension) => `${prefix}${SAVINGS_DIMENSIONS[dimension]} AS ${dimension}`)
    .join(', ');
}

/** What the four statements share: the tables, the group columns and the window. */
interface StatementParts {
  tables: ReturnType<typeof tableNames>;
  database: string;
  /** `llm_calls` group columns, with a trailing comma ('' without grouping). */
  select: string;
  /** The same over the routed calls joined as `c`. */
  joinedSelect: string;
  /**
   * The same over the verdicts `s` joined to the routed calls `c`: a verdict on a call the
   * reference answered (a counterfactual shadow) is about the cheaper model it names (`s.Model`).
   */
  verdictSelect: string;
  /** GROUP BY / ORDER BY of the group aliases ('' without grouping). */
  groupClause: string;
  /** The routed app calls of the window. */
  routed: string;
}

/** Routed calls with their group columns: what scores are joined to (`c`). */
function routedCalls(parts: StatementParts): string {
  return `SELECT TraceId, ResponseId, ${dimensionList(['policy', 'class', 'feature', 'model'])},
        RouteReferenceModel AS referenceModel
    FROM ${parts.tables.calls}
    WHERE ${parts.routed} AND ResponseId != ''`;
}

/** Routed calls, spend, and what the reference would have cost for the same tokens. */
function callsSql(parts: StatementParts): string {
  const { database } = parts;
  const keys = `dictGetOrNull('${database}.llm_price_keys', 'PriceId', cityHash64('', 'exact', ${lowerTrimSqlExpression('RouteReferenceModel')})),
            dictGetOrNull('${database}.llm_price_keys', 'PriceId', cityHash64('', 'normalized', ${modelNameSqlExpression('RouteReferenceModel')}))`;
  const price = (name: string) =>
    `dictGetOrDefault('${database}.llm_price_entries', '${name}', ifNull(RefPriceId, toUInt64(0)), toFloat64(0))`;
  return `SELECT
    ${parts.select}count() AS calls,
    countIf(RouteModel != RouteReferenceModel) AS cheaperCalls,
    sum(ifNull(CostUSD, 0)) AS spendUsd,
    sum(ifNull(ReferenceCostUSD, 0)) AS referenceUsd,
    countIf(ReferenceCostUSD IS NULL) AS unpricedCalls,
    any(RouteReferenceModel) AS referenceModel
FROM
(
    SELECT
        *,
        if(RouteModel = RouteReferenceModel, CostUSD,
           if(RefPriceId IS NULL, NULL,
              (toFloat64(InputTokens) * ${price('InputPerMTok')} + toFloat64(OutputTokens) * ${price('OutputPerMTok')}) / 1000000)) AS ReferenceCostUSD
    FROM
    (
        SELECT *, coalesce(
            ${keys}) AS RefPriceId
        FROM ${parts.tables.calls}
        WHERE ${parts.routed}
    )
)${parts.groupClause}`;
}

/** Shadow verdicts per group, and those with user feedback on the same call. */
function qualitySql(parts: StatementParts): string {
  const { tables } = parts;
  // Feedback is about the routed answer: it measures the judge on verdicts about that answer only
  // (not a counterfactual verdict on a call the reference answered).
  const paired = `f.hasFeedback = 1 AND c.model != c.referenceModel`;
  // A loss of an answer the user found right, or a win of one found wrong: a judge error.
  const contradicted = `${paired} AND ((s.Score < 0.5 AND f.feedback >= 0.5) OR (s.Score > 0.5 AND f.feedback < 0.5))`;
  return `SELECT
    ${parts.verdictSelect}count() AS samples,
    avg(2 * s.Score - 1) AS difference,
    if(count() > 1, varSamp(2 * s.Score - 1), NULL) AS variance,
    countIf(${paired}) AS calibrationPairs,
    countIf(${contradicted}) AS contradictions,
    sumIf(2 * s.Score - 1, ${paired}) AS pairedDifferenceSum,
    sumIf(2 * s.Score - 1, ${contradicted}) AS contradictedDifferenceSum
FROM ${tables.scores} AS s
INNER JOIN
(
    ${routedCalls(parts)}
) AS c ON s.TraceId = c.TraceId AND s.ResponseId = c.ResponseId
LEFT JOIN
(
    SELECT TraceId, ResponseId, avg(Score) AS feedback, toUInt8(1) AS hasFeedback
    FROM ${tables.scores}
    WHERE Source = 'feedback' AND Score IS NOT NULL AND ResponseId != '' AND Timestamp >= {from:DateTime64(3)}
    GROUP BY TraceId, ResponseId
) AS f ON s.TraceId = f.TraceId AND s.ResponseId = f.ResponseId
WHERE s.Name = '${SHADOW_SCORE_NAME}' AND s.Score IS NOT NULL AND s.Timestamp >= {from:DateTime64(3)}${parts.groupClause}`;
}

/** Calls with both a judge score and user feedback, and those where both agree. */
function agreementSql(parts: StatementParts): string {
  return `SELECT
    ${parts.joinedSelect}count() AS pairs,
    countIf((if(c.model = c.referenceModel, j.ownJudge, j.judge) >= 0.5) = (j.feedback >= 0.5)) AS agreeing
FROM
(
    SELECT TraceId, ResponseId, avgIf(Score, Source = 'judge') AS judge, avgIf(Score, Source = 'feedback') AS feedback,
        countIf(Source = 'judge' AND Name != '${SHADOW_SCORE_NAME}') AS ownJudges,
        avgIf(Score, Source = 'judge' AND Name != '${SHADOW_SCORE_NAME}') AS ownJudge
    FROM ${parts.tables.scores}
    WHERE Score IS NOT NULL AND ResponseId != '' AND Timestamp >= {from:DateTime64(3)}
    GROUP BY TraceId, ResponseId
    HAVING countIf(Source = 'judge') > 0 AND countIf(Source = 'feedback') > 0
) AS j
INNER JOIN
(
    ${routedCalls(parts)}
) AS c ON j.TraceId = c.TraceId AND j.ResponseId = c.ResponseId
-- A shadow verdict on a call the reference answered is about another model's answer.
WHERE c.model != c.referenceModel OR j.ownJudges > 0${parts.groupClause}`;
}

/** The model a verdict is about: the routed one, or the one a counterfactual shadow called. */
const VERDICT_MODEL = `if(c.model = c.referenceModel AND s.Model != '', s.Model, c.model)`;

/** `expression AS dimension` for each group column. */
function joined(
  groupBy: readonly SavingsDimension[],
  expression: (dimension: SavingsDimension) => string,
): string {
  return groupBy.map((dimension) => `${expression(dimension)} AS ${dimension}`).join(', ');
}

/** The four statements of the ledger for `groupBy` (an empty list: one total row each). */
export function savingsSql(
  groupBy: readonly SavingsDimension[],
  options: { database?: string } = {},
): SavingsSql {
  const grouped = groupBy.length > 0;
  const window = `Timestamp >= {from:DateTime64(3)} AND Timestamp < {to:DateTime64(3)}`;
  const parts: StatementParts = {
    tables: tableNames(options.database === undefined ? {} : { database: options.database }),
    database: options.database ?? 'modelmaxx',
    select: grouped ? `${dimensionList(groupBy)},\n    ` : '',
    joinedSelect: grouped ? `${joined(groupBy, (dimension) => `c.${dimension}`)},\n    ` : '',
    verdictSelect: grouped
      ? `${joined(groupBy, (dimension) => (dimension === 'model' ? VERDICT_MODEL : `c.${dimension}`))},\n    `
      : '',
    groupClause: grouped ? `\nGROUP BY ${groupBy.join(', ')}\nORDER BY ${groupBy.join(', ')}` : '',
    routed: `Purpose = 'app' AND RoutePolicy != '' AND RouteReferenceModel != '' AND ${window}`,
  };
  const evaluation = `SELECT
    ${parts.select}sumIf(ifNull(CostUSD, 0), RouteReferenceModel != '') AS shadowUsd,
    sumIf(ifNull(CostUSD, 0), RouteReferenceModel = '') AS judgeUsd,
    countIf(RouteReferenceModel != '') AS shadowCalls,
    countIf(RouteReferenceModel = '') AS judgeCalls,
    arrayStringConcat(arraySort(groupUniqArrayIf(RequestModel, RouteReferenceModel = '')), ',') AS judgeModels
FROM ${parts.tables.calls}
WHERE Purpose = 'evaluation' AND RoutePolicy != '' AND ${window}${parts.groupClause}`;
  return {
    calls: callsSql(parts),
    evaluation,
    quality: qualitySql(parts),
    agreement: agreementSql(parts),
  };
}
